"""The result file's contents: the meta, the DoF table, the body's rest state and the per-frame arrays."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import asdict
from typing import Any

import numpy as np

from hsmr_contract import dofs
from hsmr_contract.meta import Meta

from .. import __version__
from .. import landmarks as L
from .state import ConvertRun


def _np(x: Any) -> np.ndarray:
    """A torch tensor (any device) or an array as a numpy array."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def model_forward(model: Any, poses: np.ndarray, betas: np.ndarray, trans: np.ndarray, *, batch: int = 64,
                  **kw: Any) -> list[Any]:
    """Run the body model in batches (numpy in); returns the SKELOutput of each batch."""
    import torch

    outs = []
    dtype, dev = torch.float32, model.device
    b = torch.as_tensor(np.asarray(betas, np.float32), dtype=dtype, device=dev).reshape(1, -1)
    with torch.no_grad():
        for i in range(0, len(poses), batch):
            p = torch.as_tensor(np.asarray(poses[i:i + batch], np.float32), dtype=dtype, device=dev)
            tr = torch.as_tensor(np.asarray(trans[i:i + batch], np.float32), dtype=dtype, device=dev)
            outs.append(model(p, b.expand(len(p), -1), tr, **kw))
    return outs


def dof_arrays() -> dict[str, np.ndarray]:
    """The serialised DoF table and kinematic tree (from hsmr_contract.dofs, the single source)."""
    return {
        "dof_names": np.array(dofs.DOF_NAMES),
        "dof_joint": np.array([d.joint for d in dofs.DOFS], np.int32),
        "dof_axis": np.array([d.axis for d in dofs.DOFS], np.float32),
        "dof_flip": np.array([d.flip for d in dofs.DOFS], np.float32),
        "dof_limits": np.array([(d.lower, d.upper) for d in dofs.DOFS], np.float32),
        "joint_names": np.array(dofs.JOINT_NAMES),
        "joint_parents": np.array(dofs.PARENTS, np.int32),
    }


def versions() -> dict[str, str]:
    out = {"hsmr_backend": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for mod in ("torch", "cv2", "mediapipe"):
        with contextlib.suppress(Exception):
            out[mod] = __import__(mod).__version__
    return out


def build_meta(run: ConvertRun) -> Meta:
    """The result file's ``meta_json``: how the result was made (hsmr_contract.meta, docs/result-format.md)."""
    opts, source, track, motion, focal = run.opts, run.source, run.track, run.motion, run.scene_focal
    meta = Meta(
        producer="hsmr-backend", versions=versions(), mode=run.mode, body=run.body, device=run.device,
        source=os.path.abspath(opts.video), source_fps=source.fps, rotation=source.rotation,
        stride=run.frame_range.stride, frames=opts.frames, focal_px=float(np.asarray(run.camera.K)[0, 0]),
        focal_source=run.camera.focal_source, subject=track.subject_note, candidates=track.candidates,
        options={k: v for k, v in asdict(opts).items() if k not in ("video", "output")},
        world_notes=run.world.notes, left_right_swaps=int(track.stats.get("left_right_swaps", 0)),
        leg_swaps=int(track.stats.get("leg_swaps", 0)), views=run.views, feet_resting_share=run.resting,
        up_source=run.world.up_source, scene_focal_px=None if focal is None else focal.focal_px,
        camera_motion=None if motion is None else {
            "moved": motion.moved, "shift": motion.shift, "rotation_deg": motion.rotation_deg,
            "frame": motion.frame, "pairs": motion.pairs},
    )
    if run.variable_rate_ms is not None:  # the real time of each frame, for tools that want it (the schema: fps)
        ts = source.timestamps_ms
        meta.variable_frame_rate = True
        meta.timestamps_ms = [ts.get(int(i)) for i in track.frame_index]
    return meta


def _posed_arrays(model: Any, poses: np.ndarray, betas: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """joint_offsets (T,24,3) and pose_features (T,207): the two per-frame arrays of the body model the file
    keeps. No skin is posed (it would cost time and, kept per frame, ~0.1 MB a frame of memory)."""
    offs, feats = [], []
    for i in range(0, len(poses), 64):
        [o] = model_forward(model, poses[i:i + 64], betas, trans[i:i + 64], batch=64, pose_correctives=True,
                            bone_mesh=False, skin=False)
        offs.append(_np(o.joint_offsets).astype(np.float32))
        feats.append(_np(o.pose_features).astype(np.float32))
        del o
    return np.concatenate(offs), np.concatenate(feats)


def assemble(run: ConvertRun) -> dict[str, Any]:
    """Every field of the result file from the stage outputs (validated later by result_format.save)."""
    track, fit, world = run.track, run.fit, run.world
    poses = _np(world.poses).astype(np.float32)
    trans = _np(world.trans).astype(np.float32)
    betas = _np(fit.betas).astype(np.float32).reshape(-1)
    joint_offsets, pose_features = _posed_arrays(run.model, poses, betas, trans)
    rest = run.model.rest_arrays(betas)
    arrays: dict[str, Any] = {
        "meta_json": build_meta(run).to_json(),
        "body": run.body,
        "fps": np.float64(track.fps),
        "frame_index": track.frame_index.astype(np.int64),
        "valid": track.valid.astype(bool),
        **dof_arrays(),
        "poses": poses,
        "betas": betas,
        "trans": trans,
        "joint_offsets": joint_offsets,
        "joints_cam": _np(fit.joints_cam).astype(np.float32),
        "joints_world": _np(world.joints_world).astype(np.float32),
        **rest,
        "model_to_world": _np(world.model_to_world).astype(np.float32),
        "camera_to_world": _np(world.camera_to_world).astype(np.float32),
        "camera_K": _np(run.camera.K).astype(np.float32),
        "image_size": np.array(track.image_size, np.int32),
        "keypoint_names": np.array(L.KEYPOINT_NAMES),
        "keypoints_2d": track.kp2d.astype(np.float32),
        "reprojection_error_px": np.nan_to_num(_np(fit.reprojection_error_px).astype(np.float32), nan=0.0),
        "fit_loss": np.nan_to_num(_np(fit.fit_loss).astype(np.float32), nan=0.0),
        "foot_resting": np.asarray(run.foot_resting, bool),
    }
    if "skin_posedirs" in rest:  # the correctives' per-frame weights go with the body's correctives
        arrays["pose_features"] = pose_features
    return arrays
