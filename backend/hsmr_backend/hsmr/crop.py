"""HSMR's crop preprocessing (reference/hsmr.md §2) and the full-image camera (§3).

Box (x0, y0, x1, y1) -> enlarge the short side to aspect 192:256 (w:h) -> square of side max(w, h) centred
on the box -> crop with zeros outside the image -> bilinear resize to 256 x 256 -> normalise with the
ImageNet mean/std (x 255) -> CHW float32.
"""

from __future__ import annotations

import cv2
import numpy as np

ASPECT_WH = 192.0 / 256.0
IMG_MEAN = (0.485, 0.456, 0.406)
IMG_STD = (0.229, 0.224, 0.225)


def box_to_square(boxes_xyxy: np.ndarray, aspect_wh: float = ASPECT_WH) -> np.ndarray:
    """(N,4) boxes -> (N,3) (cx, cy, side): short side enlarged to the aspect, then the square around it."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if np.any(w <= 0) or np.any(h <= 0):
        raise ValueError("every box needs x1 > x0 and y1 > y0 (boxes are x0, y0, x1, y1 in pixels)")
    w2 = np.where(w / h < aspect_wh, h * aspect_wh, w)
    h2 = np.where(w / h < aspect_wh, h, w / aspect_wh)
    side = np.maximum(w2, h2)
    return np.stack(((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, side), axis=1)


def box_from_keypoints(
    xy: np.ndarray, conf: np.ndarray | None = None, *, min_conf: float = 0.3, margin: float = 1.2
) -> np.ndarray | None:
    """(x0,y0,x1,y1) around the confident 2D landmarks of one subject, scaled by ``margin`` about its centre.

    Landmarks sit inside the body outline (no head top, no hand/foot surfaces), so a detector-like person box
    is somewhat larger than their extent; 1.2 covers that. None when fewer than 2 landmarks are confident.
    """
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(p).all(axis=1)
    if conf is not None:
        ok &= np.asarray(conf, dtype=np.float64).reshape(-1) >= min_conf
    if ok.sum() < 2:
        return None
    lo, hi = p[ok].min(axis=0), p[ok].max(axis=0)
    c, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1.0) * margin
    return np.concatenate((c - half, c + half))


def crop_affine(cx: float, cy: float, side: float, out: int = 256) -> np.ndarray:
    """2x3 matrix taking image pixel coords to patch pixel coords (pixel centres at integers, as cv2)."""
    s = out / side
    return np.array([[s, 0.0, out / 2 - 0.5 - s * (cx - 0.5)], [0.0, s, out / 2 - 0.5 - s * (cy - 0.5)]])


def crop_patch(image_rgb: np.ndarray, cx: float, cy: float, side: float, out: int = 256) -> np.ndarray:
    """(out, out, 3) uint8 crop: square (cx, cy, side) of the image, zeros outside, bilinear resampling."""
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {image_rgb.shape}")
    m = crop_affine(cx, cy, side, out)
    return cv2.warpAffine(image_rgb, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))  # fmt: skip


def normalise(patches_uint8: np.ndarray, mean=IMG_MEAN, std=IMG_STD) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 ``(x - 255 mean) / (255 std)``."""
    x = np.asarray(patches_uint8, dtype=np.float32)
    x = (x - 255.0 * np.asarray(mean, np.float32)) / (255.0 * np.asarray(std, np.float32))
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def patch_cam_t(cam: np.ndarray, focal: float = 5000.0, patch: int = 256) -> np.ndarray:
    """(N,3) (s, tx, ty) -> (N,3) translation in the patch camera: (tx, ty, 2 f / (patch s))."""
    cam = np.asarray(cam, dtype=np.float64).reshape(-1, 3)
    return np.stack((cam[:, 1], cam[:, 2], 2.0 * focal / (patch * cam[:, 0] + 1e-9)), axis=1)


def principal_points(image_wh: np.ndarray, n: int, principal: np.ndarray | None = None) -> np.ndarray:
    """(n,2) principal points in pixels: ``principal`` (one, or one per crop), else each image's centre."""
    wh = np.broadcast_to(np.asarray(image_wh, np.float64).reshape(-1, 2), (n, 2))
    return wh / 2.0 if principal is None else np.broadcast_to(np.asarray(principal, np.float64).reshape(-1, 2), (n, 2))


def full_cam_t(
    cam: np.ndarray,
    squares: np.ndarray,
    image_wh: np.ndarray,
    *,
    focal_px: float | np.ndarray | None = None,
    principal: np.ndarray | None = None,
    net_focal: float = 5000.0,
    patch: int = 256,
) -> np.ndarray:
    """Translation in the full-image camera (reference/hsmr.md §3), per crop.

    With image focal F (default the release's 5000 px) and principal point (default the image centre):
    ``z = 2 F / (s * side)``, ``x = tx + (cx - px) z / F``, ``y = ty + (cy - py) z / F``. For F = 5000 this is
    the official ``z_full = z_patch * 256 / side`` form.
    """
    cam = np.asarray(cam, dtype=np.float64).reshape(-1, 3)
    sq = np.asarray(squares, dtype=np.float64).reshape(-1, 3)
    f = np.broadcast_to(np.asarray(net_focal if focal_px is None else focal_px, dtype=np.float64), (len(cam),))
    pp = principal_points(image_wh, len(cam), principal)
    z_patch = 2.0 * net_focal / (patch * cam[:, 0] + 1e-9)
    z = z_patch * (f / net_focal) * (patch / sq[:, 2])
    x = cam[:, 1] + (sq[:, 0] - pp[:, 0]) * z / f
    y = cam[:, 2] + (sq[:, 1] - pp[:, 1]) * z / f
    return np.stack((x, y, z), axis=1)
