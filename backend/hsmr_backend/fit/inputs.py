"""The fit's input: a landmark track checked and turned into tensors (image points with confidences, 3D
segment directions from MediaPipe's world landmarks with their weights), and the root's starting values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hsmr_contract.rotations import rigid_points_registration

from ..camera import Camera
from .options import FitOptions

N_LANDMARKS = 33
# MediaPipe pose landmark indices used below
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 11, 12, 23, 24
TORSO = (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP)
FOOT_LANDMARKS = (27, 28, 29, 30, 31, 32)  # ankles, heels, foot tips
# Segments whose 3D direction MediaPipe's world landmarks tell us (face and fingers are too noisy)
SEGMENTS = (
    (11, 12), (23, 24), (11, 23), (12, 24),
    (11, 13), (13, 15), (12, 14), (14, 16),
    (23, 25), (25, 27), (24, 26), (26, 28),
    (27, 31), (28, 32), (29, 31), (30, 32),
)
# heel -> foot tip of each side and the segments that carry that foot's direction
FEET = (((29, 31), ((27, 31), (29, 31))), ((30, 32), ((28, 32), (30, 32))))
# MediaPipe's world feet lean towards pointing at the camera (seen from behind they point backwards, from
# the side ~35° towards the lens): a foot further than this from the torso's facing has no depth prior
FOOT_TRUST_DEG = (60.0, 90.0)  # full weight within the first, none beyond the second, linear between


@dataclass
class ExtraViews:
    """The subject seen by U more calibrated cameras (a multi-view fit, ``track.extra_views``; the track's own
    ``kp2d`` is the first camera's, whose frame the fit lives in). Their reprojection terms join the first's."""

    R: np.ndarray  # (U,3,3) first camera's frame -> this camera's
    t: np.ndarray  # (U,3) metres
    K: np.ndarray  # (U,3,3) pixels (pinhole: the keypoints are undistorted)
    kp2d: np.ndarray  # (U,T,33,3) pixels + confidence, 0 where the view does not see the point
    weight: np.ndarray  # (U,) trust in each view relative to the first camera's (1 = the same)


@dataclass
class OtherView:
    """One of the ExtraViews as tensors over the whole clip (a window's ImageView is a slice of it)."""

    k: torch.Tensor  # (4,) fx, fy, cx, cy
    kp2d: torch.Tensor  # (T,33,2)
    conf: torch.Tensor  # (T,33) confidence times the view's weight
    scale_px: float
    rotation: torch.Tensor  # (3,3)
    translation: torch.Tensor  # (3,)


@dataclass
class FitData:
    """A clip's landmarks as the objective reads them (tensors of the fit's dtype and device)."""

    kp2d: torch.Tensor  # (T,33,2) pixels
    conf: torch.Tensor  # (T,33)
    dirs: torch.Tensor  # (T,S,3) unit segment directions from the world landmarks
    dir_w: torch.Tensor  # (T,S)
    dir_xy: torch.Tensor  # (T,S) weight of the in-image components (segments the image does not show)
    valid: np.ndarray  # (T,)
    scale_px: float  # person height in pixels (clip median)
    views: list[OtherView] = field(default_factory=list)  # more calibrated cameras (a multi-view fit)


def person_height_px(kp2d: np.ndarray, valid: np.ndarray, min_conf: float) -> float | None:
    """The person's height in the image (px): the clip median, over the valid frames with at least 4 landmarks
    at ``min_conf`` or more, of their vertical spread (the horizontal one where that is zero); None without
    such a frame."""
    kp2d = np.asarray(kp2d, dtype=np.float64)
    conf = np.where(np.isfinite(kp2d[..., 2]), kp2d[..., 2], 0.0)
    seen = (conf >= min_conf) & (conf > 0) & np.asarray(valid, dtype=bool)[:, None]
    xy = np.nan_to_num(kp2d[..., :2])
    heights = []
    for i in np.flatnonzero(seen.sum(1) >= 4):
        y_spread = np.ptp(xy[i, seen[i], 1])
        heights.append(y_spread if y_spread > 0 else np.ptp(xy[i, seen[i], 0]))
    return float(np.median(heights)) if heights else None


def prepare(track: Any, camera: Camera, options: FitOptions) -> FitData:
    """Check a landmark track (kp2d (T,33,3) px + confidence, kp3d (T,33,3), valid) and make its FitData."""
    kp2d = np.asarray(track.kp2d, dtype=np.float64)
    if kp2d.ndim != 3 or kp2d.shape[1:] != (N_LANDMARKS, 3):
        raise ValueError(f"track.kp2d must have shape (T, 33, 3) (x, y, confidence), got {kp2d.shape}")
    t = len(kp2d)
    if t == 0:
        raise ValueError("the landmark track holds no frames; nothing to fit")
    kp3d = np.asarray(getattr(track, "kp3d", np.zeros((t, N_LANDMARKS, 3))), dtype=np.float64)
    valid = np.asarray(getattr(track, "valid", np.ones(t, bool)), dtype=bool)
    conf = np.where(np.isfinite(kp2d[..., 2]), kp2d[..., 2], 0.0)
    conf = np.where(conf >= options.min_confidence, conf, 0.0) * valid[:, None]
    xy = np.nan_to_num(kp2d[..., :2])
    tt = lambda x: torch.as_tensor(x, dtype=options.dtype, device=options.device)  # noqa: E731
    extra = getattr(track, "extra_views", None)
    views, seen = ([], conf.sum(1) > 0) if extra is None else other_views(extra, conf, options, tt)
    if not seen.any():
        raise ValueError("no confident landmarks in the whole clip; check that the subject is visible")
    height_px = person_height_px(kp2d, valid, options.min_confidence)
    scale_px = max(height_px if height_px is not None else float(camera.height) / 2, 20.0)
    # segment directions from the world landmarks (zeros where lost)
    a, b = np.array(SEGMENTS).T
    seg = kp3d[:, b] - kp3d[:, a]
    n = np.linalg.norm(seg, axis=-1)
    ok = (n > 1e-3) & np.isfinite(n) & valid[:, None]
    dirs = np.where(ok[..., None], seg / np.maximum(n, 1e-9)[..., None], 0.0)
    # MediaPipe gives world landmarks for occluded points too (a plausible guess): they keep some weight
    raw = np.clip(np.nan_to_num(kp2d[..., 2]), 0.0, 1.0)
    cmin = np.minimum(raw[:, a], raw[:, b])
    dir_w = np.where(ok, 0.3 + 0.7 * cmin, 0.0) * foot_trust(kp3d)
    dir_xy = np.where(ok, 1.0 - cmin, 0.0)  # where the image does not show a segment, its full 3D direction counts
    return FitData(tt(xy), tt(conf), tt(dirs), tt(dir_w), tt(dir_xy), seen, scale_px, views)


def other_views(extra: ExtraViews, conf0: np.ndarray, options: FitOptions, tt: Callable[[Any], torch.Tensor]
                ) -> tuple[list[OtherView], np.ndarray]:
    """The other cameras' views as tensors, and (T,) the frames some view (the first included) sees the subject
    in."""
    kp = np.asarray(extra.kp2d, dtype=np.float64)
    if kp.ndim != 4 or kp.shape[1:] != (len(conf0), N_LANDMARKS, 3):
        raise ValueError(f"extra_views.kp2d must have shape (U, {len(conf0)}, 33, 3), got {kp.shape}")
    seen = conf0.sum(1) > 0
    views = []
    for u, k_u in enumerate(np.asarray(extra.K, dtype=np.float64)):
        c = np.where(np.isfinite(kp[u, ..., 2]) & (kp[u, ..., 2] >= options.min_confidence), kp[u, ..., 2], 0.0)
        scale = max(person_height_px(kp[u], np.ones(len(c), bool), options.min_confidence) or 1.0, 20.0)
        views.append(OtherView(tt([k_u[0, 0], k_u[1, 1], k_u[0, 2], k_u[1, 2]]), tt(np.nan_to_num(kp[u, ..., :2])),
                               tt(c * float(extra.weight[u])), scale, tt(extra.R[u]), tt(extra.t[u])))
        seen |= c.sum(1) > 0
    return views, seen


def facing(kp3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(…,3) unit forward and up directions of the torso from MediaPipe world landmarks (…,33,3) (x right,
    y down, z away from the camera); zero where the shoulders or hips are missing or degenerate."""
    k = np.asarray(kp3d, dtype=np.float64)
    right = k[..., R_SHOULDER, :] - k[..., L_SHOULDER, :] + k[..., R_HIP, :] - k[..., L_HIP, :]
    up = (k[..., L_SHOULDER, :] + k[..., R_SHOULDER, :] - k[..., L_HIP, :] - k[..., R_HIP, :]) / 2
    fwd = np.cross(up, right)
    nu, nf = np.linalg.norm(up, axis=-1, keepdims=True), np.linalg.norm(fwd, axis=-1, keepdims=True)
    good = (nu > 1e-3) & (nf > 1e-6)
    return (np.where(good, fwd / np.maximum(nf, 1e-12), 0.0), np.where(good, up / np.maximum(nu, 1e-12), 0.0))


def foot_trust(kp3d: np.ndarray) -> np.ndarray:
    """(T,S) weight of each segment's depth prior from how the world landmarks' foot points: 1 for
    segments that are not a foot, and for feet within ``FOOT_TRUST_DEG[0]`` of the torso's facing (in the
    horizontal plane of the torso), 0 beyond ``FOOT_TRUST_DEG[1]`` (a foot pointing backwards), linear
    between; 1 where the torso or the foot is not there to judge."""
    k = np.nan_to_num(np.asarray(kp3d, dtype=np.float64))  # lost points: no torso or foot to judge by
    fwd, up = facing(k)
    trust = np.ones(k.shape[:-2] + (len(SEGMENTS),))
    full, none = FOOT_TRUST_DEG
    for (heel, tip), segs in FEET:
        foot = k[..., tip, :] - k[..., heel, :]
        foot = foot - (foot * up).sum(-1, keepdims=True) * up  # horizontal part
        n = np.linalg.norm(foot, axis=-1)
        cos = np.where(n > 1e-3, (foot * fwd).sum(-1) / np.maximum(n, 1e-12), 1.0)
        cos = np.where(np.linalg.norm(fwd, axis=-1) > 0, cos, 1.0)
        angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        w = np.clip((none - angle) / (none - full), 0.0, 1.0)
        for seg in segs:
            trust[..., SEGMENTS.index(seg)] = w
    return trust


def fill_invalid(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Copy the nearest valid frame's value into invalid frames (any trailing shape)."""
    if valid.all() or not valid.any():
        return x
    idx = np.flatnonzero(valid)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(len(x))), 0, len(idx) - 1)]
    prev = idx[np.clip(np.searchsorted(idx, np.arange(len(x))) - 1, 0, len(idx) - 1)]
    pick = np.where(np.abs(prev - np.arange(len(x))) < np.abs(nearest - np.arange(len(x))), prev, nearest)
    out = x.copy()
    out[~valid] = x[pick[~valid]]
    return out


def initial_root(
    data: FitData, track: Any, lm_rest: np.ndarray, j0: np.ndarray, camera: Camera
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame root rotation (Kabsch of the rest torso onto the world landmarks), root position
    (weak perspective: distance from the ratio of 3D to 2D torso size), and which frames' rotation was
    measured (the others are copied from the nearest such frame, or upright facing the camera)."""
    t = len(data.valid)
    kp3d = np.asarray(getattr(track, "kp3d", np.zeros((t, N_LANDMARKS, 3))), dtype=np.float64)
    conf = data.conf.cpu().numpy().astype(np.float64)
    xy = data.kp2d.cpu().numpy().astype(np.float64)
    facing_camera = np.diag([1.0, -1.0, -1.0])  # upright, facing the camera: R_x(pi)
    rots = np.repeat(facing_camera[None], t, 0)
    have = np.zeros(t, bool)
    pts = list(TORSO)  # not the knees: they would tilt the pelvis towards the thighs' flexion
    for i in range(t):
        w = conf[i, pts] * (np.linalg.norm(kp3d[i, pts], axis=-1) > 1e-6)
        if (w > 0).sum() >= 3:
            rots[i] = rigid_points_registration(lm_rest[pts], kp3d[i, pts], w)[0]
            have[i] = True
    rots = fill_invalid(rots, have)
    pos = np.zeros((t, 3))
    have_p = np.zeros(t, bool)
    allpts = np.arange(N_LANDMARKS)
    for i in range(t):
        m = conf[i, allpts] > 0
        mt = conf[i, list(TORSO)] > 0
        if m.sum() < 4 or mt.sum() < 2:
            continue
        x3 = (rots[i] @ (lm_rest - j0).T).T  # rest landmarks relative to the root, rotated
        sel = np.array(TORSO)[mt]
        c3, c2 = x3[sel].mean(0), xy[i, sel].mean(0)
        d3 = np.linalg.norm(x3[sel][:, :2] - c3[:2], axis=-1).sum()
        d2 = np.linalg.norm(xy[i, sel] - c2, axis=-1).sum()
        if len(sel) < 3 or d2 < 1e-3 or d3 < 1e-3:  # fall back to the whole body's extent
            h3, h2 = np.ptp(x3[m][:, 1]), np.ptp(xy[i, m, 1])
            if h2 < 1e-3:
                continue
            z = camera.fy * h3 / h2
        else:
            z = camera.fx * d3 / d2
        z = float(np.clip(z, 0.3, 200.0))
        p_c = np.array([(c2[0] - camera.cx) * z / camera.fx, (c2[1] - camera.cy) * z / camera.fy, z])
        pos[i] = p_c - c3
        have_p[i] = True
    if not have_p.any():
        pos[:] = [0.0, 0.0, 3.0]
        have_p[:] = True
    return rots, fill_invalid(pos, have_p), have
