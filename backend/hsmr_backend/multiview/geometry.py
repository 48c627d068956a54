"""Robust triangulation of 2D keypoints from several calibrated views, and reprojection errors.

The fit does not use these points as its data (it fits the body to every view's 2D keypoints); they start
it, judge which person and which left/right labelling agree across views, and refine the calibration."""

from __future__ import annotations

import numpy as np

from .cameras import CalibratedCamera

DROP_PX = 15.0  # a view whose reprojection error exceeds this is dropped from a point while >= 2 others remain


def projections(cameras: list[CalibratedCamera]) -> np.ndarray:
    """(V,3,4) every camera's projection matrix."""
    return np.stack([c.projection for c in cameras])


def _dlt(xy: np.ndarray, w: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Weighted DLT for N points: xy (V,N,2), w (V,N) weights (0 = unused), p (V,3,4) -> (N,3) (NaN where fewer
    than two views carry weight)."""
    rows_x = xy[..., 0:1] * p[:, None, 2] - p[:, None, 0]  # (V,N,4)
    rows_y = xy[..., 1:2] * p[:, None, 2] - p[:, None, 1]
    a = np.concatenate([rows_x * w[..., None], rows_y * w[..., None]], 0).transpose(1, 0, 2)  # (N,2V,4)
    scale = np.linalg.norm(a, axis=-1, keepdims=True).mean(1, keepdims=True)
    a = a / np.maximum(scale, 1e-12)  # row scaling keeps the SVD well conditioned
    x = np.linalg.svd(a)[2][:, -1]  # (N,4)
    out = x[:, :3] / np.where(np.abs(x[:, 3:]) > 1e-12, x[:, 3:], 1e-12)
    out[(w > 0).sum(0) < 2] = np.nan
    return out


def reproject(points: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(N,3) world points into every view: (V,N,2) pixels (NaN where a point is NaN or behind a camera)."""
    h = np.einsum("vij,nj->vni", p[:, :, :3], points) + p[:, None, :, 3]
    z = np.where(h[..., 2] > 1e-9, h[..., 2], np.nan)
    return h[..., :2] / z[..., None]


def triangulate(xy: np.ndarray, conf: np.ndarray, p: np.ndarray, drop_px: float = DROP_PX
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points seen in several views: xy (V,N,2) undistorted pixels, conf (V,N) (0 = not seen), p (V,3,4).

    Confidence-weighted DLT; then, while a point's worst used view reprojects farther than ``drop_px`` and more
    than two views remain, that view is dropped and the point solved again. Returns points (N,3) (NaN where
    fewer than two views see it), the views used (V,N) and every view's reprojection error (V,N) px (NaN where
    not seen)."""
    xy = np.nan_to_num(np.asarray(xy, dtype=np.float64))
    used = np.asarray(conf, dtype=np.float64) > 0
    w = np.where(used, conf, 0.0)
    for _ in range(max(len(p) - 2, 1)):
        pts = _dlt(xy, np.where(used, w, 0.0), p)
        err = np.linalg.norm(reproject(pts, p) - xy, axis=-1)
        err_used = np.where(used, np.nan_to_num(err, nan=np.inf), -1.0)
        worst = np.argmax(err_used, 0)
        n = np.arange(xy.shape[1])
        drop = (err_used[worst, n] > drop_px) & (used.sum(0) > 2)
        if not drop.any():
            break
        used[worst[drop], n[drop]] = False
    pts = _dlt(xy, np.where(used, w, 0.0), p)
    err = np.linalg.norm(reproject(pts, p) - xy, axis=-1)
    return pts, used, np.where(conf > 0, err, np.nan)


def triangulate_track(kp2d: np.ndarray, cameras: list[CalibratedCamera], min_conf: float = 0.3,
                      drop_px: float = DROP_PX) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's keypoints: kp2d (V,T,J,3) undistorted pixels + confidence -> points (T,J,3) world (NaN
    where fewer than two views see a point) and reprojection errors (V,T,J) px."""
    v, t, j, _ = kp2d.shape
    conf = np.where(kp2d[..., 2] >= min_conf, kp2d[..., 2], 0.0).reshape(v, t * j)
    pts, _, err = triangulate(kp2d[..., :2].reshape(v, t * j, 2), conf, projections(cameras), drop_px)
    return pts.reshape(t, j, 3), err.reshape(v, t, j)


def view_residual(kp2d: np.ndarray, points: np.ndarray, view: CalibratedCamera, min_conf: float = 0.3) -> np.ndarray:
    """How well one view's keypoints agree with the others': kp2d (T,J,3) of the view, points (T,J,3) triangulated
    from the other views (:func:`triangulate_track`) are projected into the view; returns the median pixel distance
    per frame (T,) over the points both sides see (NaN where none)."""
    proj = view.project(points)
    err = np.linalg.norm(proj - kp2d[..., :2], axis=-1)
    err = np.where((kp2d[..., 2] >= min_conf) & np.isfinite(err), err, np.nan)
    out = np.full(len(err), np.nan)
    seen = np.isfinite(err).sum(1) >= 3
    out[seen] = np.nanmedian(err[seen], axis=1)
    return out


def pair_residual(kp_a: np.ndarray, cam_a: CalibratedCamera, kp_b: np.ndarray, cam_b: CalibratedCamera,
                  min_conf: float = 0.3) -> float:
    """Median two-view triangulation residual (px) of one person's keypoints (J,3) in two views: small for
    the same person, large for two different people. NaN with fewer than 4 points seen in both."""
    conf = np.stack([kp_a[:, 2], kp_b[:, 2]])
    both = (conf >= min_conf).all(0)
    if both.sum() < 4:
        return float("nan")
    xy = np.stack([kp_a[both, :2], kp_b[both, :2]])
    _, _, err = triangulate(xy, np.ones((2, int(both.sum()))), projections([cam_a, cam_b]))
    return float(np.nanmedian(err))
