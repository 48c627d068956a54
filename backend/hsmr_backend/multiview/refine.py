"""What the subject itself tells about the calibration: a per-camera principal-point correction.

Calibrations drift (docs/multicamera.md shows the Pose2Sim demo's). Alternately, the subject's keypoints are
triangulated with the current cameras and every camera's principal point moves by the median of its residuals.
A shift shared by all cameras that a move of the whole subject explains is left out (it is a move of the subject,
not an error of the cameras), so the world stays the calibration's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cameras import CalibratedCamera
from .geometry import triangulate_track

MAX_SHIFT_PX = 60.0  # a calibration off by more than this is wrong, not drifted: it is not corrected


@dataclass
class Refinement:
    """The refined cameras and what the refinement changed."""

    cameras: list[CalibratedCamera]
    shifts_px: np.ndarray  # (V,2) principal-point change per camera
    error_before_px: np.ndarray  # (V,) median reprojection error of the triangulated keypoints
    error_after_px: np.ndarray


def per_view_error(kp2d: np.ndarray, cameras: list[CalibratedCamera], min_conf: float = 0.5) -> np.ndarray:
    """(V,) median reprojection error (px) of every view's keypoints triangulated from all views (NaN where none)."""
    _, err = triangulate_track(kp2d, cameras, min_conf)
    return np.array([np.nanmedian(e) if np.isfinite(e).any() else np.nan for e in err])


def _translation_jacobian(cam: CalibratedCamera, point: np.ndarray) -> np.ndarray:
    """(2,3) pixel change in ``cam`` per metre of world translation of a point at ``point``."""
    x, y, z = cam.to_camera(point)
    f = cam.K[[0, 1], [0, 1]]
    return (f[:, None] / z) * np.array([[1.0, 0.0, -x / z], [0.0, 1.0, -y / z]]) @ cam.R


def refine_principal_points(kp2d: np.ndarray, cameras: list[CalibratedCamera], iterations: int = 6,
                            min_conf: float = 0.5) -> Refinement:
    """kp2d (V,T,J,3) undistorted pixels + confidence of the subject in every view (labels consistent)."""
    kp2d = np.asarray(kp2d, dtype=np.float64)
    cams = list(cameras)
    before = per_view_error(kp2d, cams, min_conf)
    total = np.zeros((len(cams), 2))
    for _ in range(iterations):
        pts, _ = triangulate_track(kp2d, cams, min_conf)
        if not np.isfinite(pts).any():
            break
        centre = np.nanmedian(pts.reshape(-1, 3), axis=0)
        step, jac = np.zeros((len(cams), 2)), np.zeros((len(cams), 2, 3))
        for v, cam in enumerate(cams):
            r = kp2d[v, ..., :2] - cam.project(pts)
            ok = (kp2d[v, ..., 2] >= min_conf) & np.isfinite(r).all(-1)
            if ok.sum() >= 10:
                step[v] = np.median(r[ok], axis=0)
            jac[v] = _translation_jacobian(cam, centre)
        delta = np.linalg.lstsq(jac.reshape(-1, 3), step.reshape(-1), rcond=None)[0]
        step = step - jac @ delta  # a shared move of the subject is not a camera error
        step = np.clip(total + step, -MAX_SHIFT_PX, MAX_SHIFT_PX) - total
        total += step
        cams = [c.with_principal_point(c.K[0, 2] + s[0], c.K[1, 2] + s[1]) for c, s in zip(cams, step, strict=True)]
        if np.abs(step).max() < 0.1:
            break
    return Refinement(cams, total, before, per_view_error(kp2d, cams, min_conf))
