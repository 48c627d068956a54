"""Numpy rotation maps: one function per map, named for its convention as ``roma`` names them.

Matrices act on column vectors (``p' = R @ p``) and batch over leading dimensions. Euler conventions are
three letters: upper case intrinsic (``"ZXY"``: ``R = R_z(a) @ R_x(b) @ R_y(c)``), lower case extrinsic
(``"xyz"``: x applied first, ``R = R_z(c) @ R_y(b) @ R_x(a)``, Blender's Euler mode ``'XYZ'``); the angles are
given in the order of the letters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rot_x(a: np.ndarray | float) -> np.ndarray:
    """Rotation by ``a`` radians about x: (...) -> (..., 3, 3)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a: np.ndarray | float) -> np.ndarray:
    """Rotation by ``a`` radians about y: (...) -> (..., 3, 3)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a: np.ndarray | float) -> np.ndarray:
    """Rotation by ``a`` radians about z: (...) -> (..., 3, 3)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


_AXIS_ROTATION: dict[str, Callable[[np.ndarray | float], np.ndarray]] = {"x": rot_x, "y": rot_y, "z": rot_z}


def rotvec_to_rotmat(v: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) rotation vectors (axis times angle) -> (..., 3, 3) matrices."""
    v = np.asarray(v, dtype=np.float64)
    theta = np.linalg.norm(v, axis=-1)[..., None, None]
    k = np.zeros(v.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2] = -v[..., 2], v[..., 1]
    k[..., 1, 0], k[..., 1, 2] = v[..., 2], -v[..., 0]
    k[..., 2, 0], k[..., 2, 1] = -v[..., 1], v[..., 0]
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0, np.sin(safe) / safe)
    b = np.where(small, 0.5, (1.0 - np.cos(safe)) / safe**2)
    return np.eye(3) + a * k + b * (k @ k)


def euler_to_rotmat(convention: str, angles: np.ndarray) -> np.ndarray:
    """(..., 3) angles in radians, in the order of ``convention``'s letters -> (..., 3, 3)."""
    if len(convention) != 3 or not (convention.isupper() or convention.islower()):
        raise ValueError(f"Euler convention {convention!r}: expected three letters, all upper or all lower case")
    angles = np.asarray(angles, dtype=np.float64)
    mats = [_AXIS_ROTATION[letter.lower()](angles[..., i]) for i, letter in enumerate(convention)]
    if convention.islower():  # extrinsic: the first letter is applied first, so it multiplies last
        mats.reverse()
    return mats[0] @ mats[1] @ mats[2]


def _rotmat_to_euler_zxy(r: np.ndarray, prev_last: np.ndarray | None) -> np.ndarray:
    b = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    a = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    c = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
    locked = np.cos(b) < 1e-5
    if np.any(locked):
        c_l = np.zeros_like(c) if prev_last is None else np.broadcast_to(prev_last, c.shape)
        # with cos b = 0: R[1,0] = sin(a + s c), R[0,0] = cos(a + s c), s = sign(b)
        s = np.sign(b)
        total = np.arctan2(r[..., 1, 0], r[..., 0, 0])
        a = np.where(locked, total - s * c_l, a)
        c = np.where(locked, c_l, c)
    return np.stack([a, b, c], axis=-1)


def _rotmat_to_euler_yxz(r: np.ndarray, prev_last: np.ndarray | None) -> np.ndarray:
    b = np.arcsin(np.clip(-r[..., 1, 2], -1.0, 1.0))
    a = np.arctan2(r[..., 0, 2], r[..., 2, 2])
    c = np.arctan2(r[..., 1, 0], r[..., 1, 1])
    lock = np.abs(r[..., 1, 2]) > 1.0 - 1e-9
    if np.any(lock):
        if prev_last is not None:
            raise ValueError("rotmat_to_euler('YXZ') takes no prev_last: at the singularity c is 0")
        # only a - c or a + c is defined; put it all into a
        c = np.where(lock, 0.0, c)
        a = np.where(lock, np.arctan2(-r[..., 2, 0], r[..., 0, 0]), a)
    return np.stack([a, b, c], -1)


_TO_EULER = {"ZXY": _rotmat_to_euler_zxy, "YXZ": _rotmat_to_euler_yxz}


def rotmat_to_euler(convention: str, rotmat: np.ndarray, prev_last: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`euler_to_rotmat` (principal branch, middle angle in [-pi/2, pi/2]): (..., 3, 3) -> (..., 3).

    Intrinsic ``"ZXY"`` (OpenSim's body-fixed Z-X-Y) and ``"YXZ"`` (SKEL's pelvis). At the singularity only the
    sum or difference of the first and last angles is defined: the last angle is then ``prev_last`` (continuity
    over time, ``"ZXY"`` only) or 0, and the first angle takes the rest.
    """
    if convention not in _TO_EULER:
        raise ValueError(f"rotmat_to_euler: convention {convention!r} not supported (one of {', '.join(_TO_EULER)})")
    return _TO_EULER[convention](np.asarray(rotmat, dtype=np.float64), prev_last)


def special_procrustes(m: np.ndarray) -> np.ndarray:
    """Nearest rotation to each (..., 3, 3) matrix (SVD, no reflection)."""
    u, _, vt = np.linalg.svd(np.asarray(m, dtype=np.float64))
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= d[..., None]
    return u @ vt


def rigid_points_registration(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R (3,3) and translation t (3,) minimising sum w |R x + t - y|^2 over (N, 3) points (Kabsch)."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    ws = max(float(w.sum()), 1e-12)
    x_mean = (w[:, None] * x).sum(0) / ws
    y_mean = (w[:, None] * y).sum(0) / ws
    h = (w[:, None] * (x - x_mean)).T @ (y - y_mean)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, y_mean - r @ x_mean
