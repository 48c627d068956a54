"""Trivial stand-ins for the fitter, world frame, body model and landmark regressor that convert imports.

``install_standins`` puts them in ``sys.modules`` where convert imports them from, so a test (or the long-clip
memory benchmark) checks the pipeline's own job, what it passes on and what it writes, without optimising.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import numpy as np

V_SKIN = 50  # stand-in skin vertices


@dataclass
class _Out:
    joints: object
    joints_ori: object
    skin_verts: object
    skin_faces: object
    v_shaped: object
    rest_frames: object
    joint_offsets: object
    pose_features: object
    bone_verts: object


class StandInBody:
    """Joints at fixed rest places shifted by trans; enough arrays for the result file."""

    def __init__(self) -> None:
        import torch

        rng = np.random.default_rng(1)
        self.name, self.device = "standin", torch.device("cpu")
        self.rest = torch.tensor(rng.normal(0, 0.3, (24, 3)), dtype=torch.float32)
        w = rng.random((V_SKIN, 24))
        self.skin_weights = (w / w.sum(1, keepdims=True)).astype(np.float32)
        self.calls: list[dict] = []

    def rest_arrays(self, betas) -> dict[str, np.ndarray]:
        """The rest fields of the result file: a 50-vertex skin and four one-joint bone vertices."""
        return {
            "rest_joints": self.rest.numpy(), "rest_frames": np.tile(np.eye(3, dtype=np.float32), (24, 1, 1)),
            "skin_rest_verts": np.zeros((V_SKIN, 3), np.float32), "skin_faces": np.array([[0, 1, 2]], np.int32),
            "skin_weights": self.skin_weights, "bone_rest_verts": np.zeros((4, 3), np.float32),
            "bone_faces": np.array([[0, 1, 2], [1, 2, 3]], np.int32), "bone_vertex_joint": np.arange(4, dtype=np.int32),
        }

    def __call__(self, poses, betas, trans, pose_correctives=True, bone_mesh=False, skin=True):
        import torch

        self.calls.append({"B": len(poses), "bone_mesh": bone_mesh})
        b = len(poses)
        joints = self.rest[None] + trans[:, None, :] + 0.01 * poses[:, :24, None]
        return _Out(
            joints=joints, joints_ori=torch.eye(3).expand(b, 24, 3, 3),
            skin_verts=torch.zeros(b, V_SKIN, 3), skin_faces=torch.tensor([[0, 1, 2]]),
            v_shaped=torch.zeros(b, V_SKIN, 3), rest_frames=torch.eye(3).expand(b, 24, 3, 3),
            joint_offsets=torch.zeros(b, 24, 3), pose_features=torch.zeros(b, 207),
            bone_verts=torch.zeros(b, 4, 3) if bone_mesh else None,
        )


def install_standins(record: dict | None = None) -> None:
    """Put stand-in fit/world/body/regressor modules where convert.py imports them from."""
    import torch

    import hsmr_backend.skel as skel

    record = record if record is not None else {}

    @dataclass
    class Camera:
        K: np.ndarray
        width: int
        height: int
        focal_source: str

    @dataclass
    class FitOptions:
        smoothing: float = 1.0
        device: str = "cpu"

    def default_camera(width, height, focal_px=None):
        f = focal_px or 1.2 * max(width, height)
        K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
        return Camera(K, width, height, "given" if focal_px else "default")

    def fit_sequence(track, model, regressor, camera, options, init=None, progress=None):
        record.update(track=track, camera=camera, options=options, init=init, regressor=regressor)
        n = len(track)
        poses = np.zeros((n, 46), np.float32)
        trans = np.tile([0.0, 0.0, 4.0], (n, 1)).astype(np.float32)
        out = model(torch.tensor(poses), torch.zeros(n, 10), torch.tensor(trans))
        if progress is not None:
            progress("fit", n, n)
        return types.SimpleNamespace(poses=poses, betas=np.zeros(10, np.float32), trans=trans,
                                     joints_cam=out.joints.numpy(), reprojection_error_px=np.full(n, 3.0),
                                     fit_loss=np.ones(n))

    def to_world(fit, model, camera):
        return types.SimpleNamespace(poses=fit.poses, trans=fit.trans, model_to_world=np.eye(4),
                                     camera_to_world=np.eye(4), joints_world=fit.joints_cam, notes="stand-in",
                                     up_source="balance")

    def fit_in_world(track, model, regressor, camera, options=None, init=None, progress=None, scene=None):
        record.update(scene=scene)
        fit = sys.modules["hsmr_backend.fit"].fit_sequence(track, model, regressor, camera, options, init, progress)
        return fit, sys.modules["hsmr_backend.world"].to_world(fit, model, camera), np.zeros((len(fit.poses), 4), bool)

    fit_mod = types.ModuleType("hsmr_backend.fit")
    fit_mod.Camera, fit_mod.FitOptions, fit_mod.default_camera, fit_mod.fit_sequence = (
        Camera, FitOptions, default_camera, fit_sequence)
    world_mod = types.ModuleType("hsmr_backend.world")
    world_mod.to_world, world_mod.fit_in_world = to_world, fit_in_world
    lm_mod = types.ModuleType("hsmr_backend.skel.landmarks")
    lm_mod.load_landmark_regressor = lambda name: ("regressor", name)
    sys.modules["hsmr_backend.fit"] = fit_mod
    sys.modules["hsmr_backend.world"] = world_mod
    sys.modules["hsmr_backend.skel.landmarks"] = lm_mod
    skel.load_body = lambda body: StandInBody()
