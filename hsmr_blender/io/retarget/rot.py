"""Batched rotation helpers (numpy, float64, column vectors): quaternions (w, x, y, z), Blender Euler orders."""

from __future__ import annotations

import numpy as np

_EVEN = {(0, 1, 2), (1, 2, 0), (2, 0, 1)}


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def skew(v: np.ndarray) -> np.ndarray:
    out = np.zeros((*v.shape[:-1], 3, 3))
    out[..., 0, 1], out[..., 0, 2], out[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    out[..., 1, 0], out[..., 2, 0], out[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    return out


def min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction ``a`` onto direction ``b`` (batched, (..., 3) -> (..., 3, 3))."""
    a, b = np.broadcast_arrays(unit(np.asarray(a, dtype=np.float64)), unit(np.asarray(b, dtype=np.float64)))
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    k = skew(v)
    out = np.eye(3) + k + (k @ k) / np.maximum(1.0 + c, 1e-12)[..., None, None]
    opposite = c < -1.0 + 1e-9
    if np.any(opposite):  # half turn about any axis perpendicular to a
        ref = np.where(np.abs(a[..., :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
        axis = unit(np.cross(a, ref))
        half = 2.0 * axis[..., :, None] * axis[..., None, :] - np.eye(3)
        out = np.where(opposite[..., None, None], half, out)
    return out


def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) of rotation matrices, largest-component branch per matrix."""
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    tr = m00 + m11 + m22
    s = 2.0 * np.sqrt(np.maximum(np.stack([1 + tr, 1 + m00 - m11 - m22, 1 + m11 - m00 - m22,
                                           1 + m22 - m00 - m11], axis=1), 1e-12))
    d21, d02, d10 = m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]
    s01, s02, s12 = m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1]
    cands = np.stack([
        np.stack([s[:, 0] / 4, d21 / s[:, 0], d02 / s[:, 0], d10 / s[:, 0]], axis=1),
        np.stack([d21 / s[:, 1], s[:, 1] / 4, s01 / s[:, 1], s02 / s[:, 1]], axis=1),
        np.stack([d02 / s[:, 2], s01 / s[:, 2], s[:, 2] / 4, s12 / s[:, 2]], axis=1),
        np.stack([d10 / s[:, 3], s02 / s[:, 3], s12 / s[:, 3], s[:, 3] / 4], axis=1),
    ], axis=1)
    pick = np.argmax(np.stack([tr, m00, m11, m22], axis=1), axis=1)
    q = cands[np.arange(len(m)), pick]
    q = q * np.where(q[:, :1] < 0, -1.0, 1.0)
    return unit(q).reshape(*shape, 4)


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    q = unit(np.asarray(q, dtype=np.float64))
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=-2)


def continuous_quats(q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 (time) so neighbouring quaternions lie in the same hemisphere."""
    q = np.array(q, dtype=np.float64)
    if len(q) < 2:
        return q
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)
    q[1:] *= flips[..., None]
    return q


def slerp(r0: np.ndarray, r1: np.ndarray, w: float | np.ndarray) -> np.ndarray:
    """Rotation matrices between ``r0`` (w=0) and ``r1`` (w=1) along the shorter arc."""
    q0, q1 = quat_from_matrix(r0), quat_from_matrix(r1)
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot).clip(max=1.0)
    w = np.asarray(w, dtype=np.float64)[..., None] if np.ndim(w) else float(w)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    small = sin < 1e-6
    a = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / np.where(small, 1.0, sin))
    b = np.where(small, w, np.sin(w * theta) / np.where(small, 1.0, sin))
    return matrix_from_quat(a * q0 + b * q1)


def euler_from_matrix(m: np.ndarray, order: str) -> np.ndarray:
    """Blender Euler angles (x, y, z channels) for mode ``order`` ('XYZ' = Rz·Ry·Rx), unwrapped over axis 0."""
    i, j, k = ("XYZ".index(c) for c in order)
    sgn = 1.0 if (i, j, k) in _EVEN else -1.0
    m = np.asarray(m, dtype=np.float64)
    b = np.arcsin(np.clip(-sgn * m[..., k, i], -1.0, 1.0))
    a = np.arctan2(sgn * m[..., k, j], m[..., k, k])
    c = np.arctan2(sgn * m[..., j, i], m[..., i, i])
    out = np.empty((*m.shape[:-2], 3))
    out[..., i], out[..., j], out[..., k] = a, b, c
    return np.unwrap(out, axis=0) if out.ndim > 1 and len(out) > 1 else out


def axis_angle_from_matrix(m: np.ndarray) -> np.ndarray:
    """(angle, x, y, z) as Blender's AXIS_ANGLE channels."""
    q = continuous_quats(quat_from_matrix(m))
    s = np.linalg.norm(q[..., 1:], axis=-1)
    angle = 2.0 * np.arctan2(s, q[..., 0])
    axis = np.where(s[..., None] > 1e-9, q[..., 1:] / np.maximum(s, 1e-12)[..., None], np.array([0.0, 1.0, 0.0]))
    return np.concatenate([angle[..., None], axis], axis=-1)


def channels_for_mode(m: np.ndarray, mode: str) -> tuple[str, np.ndarray]:
    """The rotation property and its per-frame values (T, n) for a bone's ``rotation_mode``."""
    if mode == "QUATERNION":
        return "rotation_quaternion", continuous_quats(quat_from_matrix(m))
    if mode == "AXIS_ANGLE":
        return "rotation_axis_angle", axis_angle_from_matrix(m)
    return "rotation_euler", euler_from_matrix(m, mode)
