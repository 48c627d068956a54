"""The multi-view fit: SKELify over time (``hsmr_backend.fit``) with the reprojection term summed over every
calibrated view, in the first camera's frame; started from the triangulated keypoints; the world's up from the
calibration, the ground from the resting feet (``hsmr_backend.world``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from hsmr_contract.dofs import N_DOFS
from hsmr_contract.kinematics import pelvis_angles_sequence
from hsmr_contract.rotations import rigid_points_registration

from ..camera import Camera
from ..fit import TORSO, Body, ExtraViews, FitOptions, FitResult
from ..world import WorldResult, fit_in_world
from .cameras import CalibratedCamera

# MediaPipe's monocular 3D (segment directions) weighs 50 in a single-view fit; with calibrated views the image
# gives depth, and it stays only as a weak tie-breaker (where one view alone sees a segment)
MULTIVIEW_DEPTH_WEIGHT = 1.0
# the per-frame stages run this many times the single-view iterations: started from a zero pose (no monocular
# 3D to start the limbs from), the limbs have further to go (docs/multicamera.md)
ITERATION_FACTOR = 2
UP_AGREEMENT_DEG = 30.0  # a calibration axis this close to the body's up is the lab's vertical
MIN_VIEW_WEIGHT = 0.25


@dataclass
class MultiViewTrack:
    """The subject in V synchronised views, as the fitter reads a track: ``kp2d``/``kp3d`` are the first view's
    (its camera's frame is the fit's), ``extra_views`` the others; all keypoints undistorted."""

    frame_index: np.ndarray  # (T,) frame numbers of the first clip
    fps: float
    image_size: tuple[int, int]  # first camera's
    kp2d: np.ndarray  # (T,33,3)
    kp3d: np.ndarray  # (T,33,3) the first view's MediaPipe world landmarks (a weak tie-breaker)
    valid: np.ndarray  # (T,) some view sees the subject
    boxes: np.ndarray  # (T,4) first view's
    extra_views: ExtraViews
    kp2d_views: np.ndarray  # (V,T,33,3) every view, first included
    subject_note: str = ""
    candidates: list[list[float]] = field(default_factory=list)  # the first view's, as LandmarkTrack's
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame_index)


def relative_extrinsics(cams: list[CalibratedCamera]) -> tuple[np.ndarray, np.ndarray]:
    """(U,3,3), (U,3): the first camera's frame -> every other camera's (X_v = R X_0 + t)."""
    r0, t0 = cams[0].R, cams[0].t
    rs = np.stack([c.R @ r0.T for c in cams[1:]])
    return rs, np.stack([c.t - r @ t0 for c, r in zip(cams[1:], rs, strict=True)])


def view_weights(errors_px: np.ndarray) -> np.ndarray:
    """(V,) trust per view from its median reprojection error against the others (a view twice as far off as the
    median counts a quarter; never less than ``MIN_VIEW_WEIGHT``)."""
    e = np.asarray(errors_px, dtype=np.float64)
    ref = np.nanmedian(e) if np.isfinite(e).any() else 1.0
    w = np.where(np.isfinite(e) & (e > 0), (ref / np.maximum(e, 1e-9)) ** 2, 1.0)
    return np.clip(w, MIN_VIEW_WEIGHT, 1.0)


def make_track(kp_views: np.ndarray, kp3d_first: np.ndarray, cams: list[CalibratedCamera], weights: np.ndarray,
               fps: float, frame_index: np.ndarray, boxes_first: np.ndarray, **extra: Any) -> MultiViewTrack:
    """kp_views (V,T,33,3): undistorted, labels consistent, dropped-out frames at confidence 0."""
    rs, ts = relative_extrinsics(cams)
    w = np.asarray(weights, dtype=np.float64)
    views = ExtraViews(R=rs, t=ts, K=np.stack([c.K for c in cams[1:]]), kp2d=kp_views[1:],
                       weight=w[1:] / max(w[0], 1e-9))
    valid = (kp_views[..., 2] > 0).any(axis=(0, 2))
    return MultiViewTrack(np.asarray(frame_index), float(fps), cams[0].size, kp_views[0], kp3d_first, valid,
                          boxes_first, views, kp_views, **extra)


def calibration_up(cam0: CalibratedCamera, points_cam: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The calibration axis (±x, ±y, ±z of its world, in the first camera's frame) within ``UP_AGREEMENT_DEG`` of
    the triangulated body's up (ankles -> shoulders); None when none is (the body and ground decide)."""
    p = np.asarray(points_cam, dtype=np.float64)
    body = np.nanmean(p[:, [11, 12]].mean(1) - p[:, [27, 28]].mean(1), axis=0)
    if not np.all(np.isfinite(body)) or np.linalg.norm(body) < 1e-6:
        return None, "the calibration's up is not used (the body's up could not be measured)"
    body /= np.linalg.norm(body)
    axes = [(s * cam0.R[:, i], f"{'+' if s > 0 else '-'}{'xyz'[i]}") for i in range(3) for s in (1.0, -1.0)]
    axis, name = max(axes, key=lambda a: float(a[0] @ body))
    off = float(np.degrees(np.arccos(np.clip(axis @ body, -1.0, 1.0))))
    if off > UP_AGREEMENT_DEG:
        return None, f"no calibration axis is vertical (the nearest, {name}, is {off:.0f}° from the body's up)"
    return axis, f"up: the calibration's {name} axis ({off:.0f}° from the standing body's up)"


def _fill(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Copy the nearest measured frame's value into the others."""
    idx = np.flatnonzero(ok)
    near = idx[np.abs(np.arange(len(x))[:, None] - idx[None]).argmin(1)]
    return x[near]


def initial_pose(points_cam: np.ndarray, model: Any, regressor: Any, options: FitOptions) -> dict[str, np.ndarray]:
    """The fit's start from triangulated landmarks (T,33,3) in the first camera's frame (NaN where unseen): the
    rest body's torso rotated and moved onto them (Kabsch), body DoFs at zero."""
    j0, m0, lm_rest = Body(model, regressor, options).rest_pose(
        torch.zeros(options.n_betas, dtype=options.dtype, device=options.device))
    t = len(points_cam)
    rots, pos = np.repeat(np.eye(3)[None], t, 0), np.zeros((t, 3))
    ok = np.zeros(t, bool)
    torso = list(TORSO)  # not the knees: they would tilt the pelvis towards the thighs' flexion
    for i in range(t):
        seen = np.isfinite(points_cam[i, torso]).all(1)
        if seen.sum() >= 3:
            rots[i], shift = rigid_points_registration(lm_rest[torso][seen], points_cam[i, torso][seen])
            pos[i] = rots[i] @ j0 + shift  # where the rest pivot goes
            ok[i] = True
    if not ok.any():
        raise ValueError("no frame where two views see the subject's torso: check the calibration and the clips")
    rots, pos = _fill(rots, ok), _fill(pos, ok)
    poses = np.zeros((t, N_DOFS))
    poses[:, :3] = pelvis_angles_sequence(np.einsum("ji,tjk,kl->til", m0, rots, m0))
    return {"poses": poses, "betas": np.zeros((t, options.n_betas)), "cam_t": pos - j0}


def multiview_options(options: FitOptions | None = None) -> FitOptions:
    """The fit's options with MediaPipe's 3D as a tie-breaker, no pull towards the (zero-pose) start, and
    ``ITERATION_FACTOR`` times the per-frame iterations."""
    o = options or FitOptions()
    f = ITERATION_FACTOR
    return replace(o, w_depth=MULTIVIEW_DEPTH_WEIGHT, w_init=0.0, iterations=f * o.iterations,
                   pose_iterations=f * o.pose_iterations, temporal_iterations=f * o.temporal_iterations)


def per_view_errors(landmarks_cam: np.ndarray, kp_views: np.ndarray, cams: list[CalibratedCamera],
                    min_conf: float = 0.2) -> np.ndarray:
    """(V,T) confidence-weighted mean pixel error of the fitted landmarks (first camera's frame) in every view;
    0 where the view does not see the subject."""
    world = (np.asarray(landmarks_cam, dtype=np.float64) - cams[0].t) @ cams[0].R  # first camera -> world
    out = np.zeros(kp_views.shape[:2])
    for v, cam in enumerate(cams):
        err = np.linalg.norm(cam.project(world) - kp_views[v, ..., :2], axis=-1)
        conf = np.where(kp_views[v, ..., 2] >= min_conf, kp_views[v, ..., 2], 0.0)
        out[v] = np.where(conf.sum(1) > 0, (conf * err).sum(1) / np.maximum(conf.sum(1), 1e-9), 0.0)
    return out


def fit_views(track: MultiViewTrack, cams: list[CalibratedCamera], points_cam: np.ndarray, model: Any,
              regressor: Any, options: FitOptions | None = None, progress: Any = None, up: np.ndarray | None = None,
              ) -> tuple[FitResult, WorldResult, float, np.ndarray]:
    """The whole multi-view fit in the first camera's frame and its world. ``points_cam`` (T,33,3): the
    triangulated keypoints (the start). Returns the fit, its world, where the feet rest ((T,4) bool, as
    ``world.fit_in_world``) and the per-view reprojection errors (V,T)."""
    options = multiview_options(options)
    init = initial_pose(points_cam, model, regressor, options)
    w, h = cams[0].size
    camera = Camera(K=np.asarray(cams[0].K, dtype=np.float64), width=int(w), height=int(h), focal_source="calibration")
    fit, world, feet = fit_in_world(track, model, regressor, camera, options, init=init, progress=progress, up=up,
                                    still_in=list(track.kp2d_views[1:]))
    return fit, world, feet, per_view_errors(fit.landmarks_cam, track.kp2d_views, cams)
