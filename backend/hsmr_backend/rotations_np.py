"""Small numpy rotation helpers shared by the fitter and the world-frame code.

SKEL's pelvis composes its three DoFs as ``Rp0 = R_y(q2) @ R_x(q1) @ R_z(q0)`` in the pelvis' BSM frame
(``shared/reference/skel.md`` §4); the global root rotation in the model frame is ``M_0 @ Rp0 @ M_0.T``.
"""

from __future__ import annotations

import numpy as np


def rot_x(a: np.ndarray | float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a: np.ndarray | float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a: np.ndarray | float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def pelvis_matrix(q012: np.ndarray) -> np.ndarray:
    """(…,3) pelvis (tilt, list, rotation) -> (…,3,3) ``Rp0 = R_y(q2) R_x(q1) R_z(q0)`` (BSM frame)."""
    q = np.asarray(q012, dtype=np.float64)
    return rot_y(q[..., 2]) @ rot_x(q[..., 1]) @ rot_z(q[..., 0])


def pelvis_angles(rp0: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pelvis_matrix` (principal branch, q1 in [-pi/2, pi/2]); (…,3,3) -> (…,3)."""
    r = np.asarray(rp0, dtype=np.float64)
    q1 = np.arcsin(np.clip(-r[..., 1, 2], -1.0, 1.0))
    q2 = np.arctan2(r[..., 0, 2], r[..., 2, 2])
    q0 = np.arctan2(r[..., 1, 0], r[..., 1, 1])
    # gimbal lock (|q1| = pi/2): only q2 - q0 or q2 + q0 is defined; put it all into q2
    lock = np.abs(r[..., 1, 2]) > 1.0 - 1e-9
    if np.any(lock):
        q0 = np.where(lock, 0.0, q0)
        q2 = np.where(lock, np.arctan2(-r[..., 2, 0], r[..., 0, 0]), q2)
    return np.stack([q0, q1, q2], -1)


def pelvis_angles_sequence(rp0: np.ndarray) -> np.ndarray:
    """(T,3,3) -> (T,3) pelvis angles that change continuously over time.

    Each rotation has two Euler solutions, (q0, q1, q2) and (q0+pi, pi-q1, q2+pi); per frame the one
    closest to the previous frame is kept, then angles are unwrapped so they never jump by 2 pi.
    """
    q = pelvis_angles(rp0)
    if len(q) == 0:
        return q
    alt = np.stack([q[:, 0] + np.pi, np.pi - q[:, 1], q[:, 2] + np.pi], -1)
    out = q.copy()
    for t in range(1, len(q)):
        prev = out[t - 1]
        best = None
        for cand in (q[t], alt[t]):
            c = prev + (cand - prev + np.pi) % (2 * np.pi) - np.pi  # nearest 2pi-equivalent
            d = float(np.sum((c - prev) ** 2))
            if best is None or d < best[0]:
                best = (d, c)
        out[t] = best[1]
    # keep the first frame in (-pi, pi] for tilt/rotation and shift the rest by the same multiple
    shift = np.round(out[0] / (2 * np.pi)) * 2 * np.pi
    shift[1] = 0.0 if abs(out[0, 1]) <= np.pi else shift[1]
    return out - shift


def axis_angle_to_matrix(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    th = np.linalg.norm(v, axis=-1, keepdims=True)
    k = v / np.maximum(th, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    z = np.zeros_like(kx)
    kk = np.stack([np.stack([z, -kz, ky], -1), np.stack([kz, z, -kx], -1), np.stack([-ky, kx, z], -1)], -2)
    s, c = np.sin(th)[..., None], np.cos(th)[..., None]
    return np.eye(3) + s * kk + (1 - c) * (kk @ kk)


def kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Rotation R (3,3) minimising sum w |R (src - mean) - (dst - mean)|^2 (no reflection)."""
    w = np.ones(len(src)) if w is None else np.asarray(w, dtype=np.float64)
    ws = max(float(w.sum()), 1e-12)
    a = src - (w[:, None] * src).sum(0) / ws
    b = dst - (w[:, None] * dst).sum(0) / ws
    h = (w[:, None] * a).T @ b
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def orthonormalize(m: np.ndarray) -> np.ndarray:
    """Nearest rotation to each (…,3,3) matrix (SVD), used after blending rotations linearly."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= d[..., None]
    return u @ vt
