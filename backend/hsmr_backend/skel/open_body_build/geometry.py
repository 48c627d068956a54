"""Small numpy geometry helpers for the open-body generator (build time only)."""

from __future__ import annotations

import numpy as np

from hsmr_contract.kinematics import to_homogeneous_apply as apply
from hsmr_contract.rotations import rot_x, rot_y, rot_z, rotvec_to_rotmat

__all__ = ["about", "apply", "axis_angle", "ellipsoid", "rot_align", "rot_x", "rot_y", "rot_z", "skew"]


def rot_align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The minimal rotation taking direction ``a`` to direction ``b`` (Rodrigues)."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    s = float(np.linalg.norm(v))
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        # 180 degrees: any axis perpendicular to a
        p = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return axis_angle(p, np.pi)
    k = skew(v)
    return np.eye(3) + k + k @ k * ((1.0 - c) / s**2)


def skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation by ``angle`` about ``axis`` (any length)."""
    axis = np.asarray(axis, dtype=float)
    return rotvec_to_rotmat(axis / np.linalg.norm(axis) * angle)


def about(pivot: np.ndarray, r: np.ndarray) -> np.ndarray:
    """4x4 rotation by ``r`` about ``pivot``."""
    t = np.eye(4)
    t[:3, :3] = r
    t[:3, 3] = pivot - r @ pivot
    return t


def ellipsoid(n_u: int = 10, n_v: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere as a closed UV mesh (poles included): vertices (N,3), faces (F,3)."""
    verts = [np.array([0.0, -1.0, 0.0])]
    for i in range(1, n_v):
        th = np.pi * i / n_v - np.pi / 2
        for j in range(n_u):
            ph = 2 * np.pi * j / n_u
            verts.append(np.array([np.cos(th) * np.cos(ph), np.sin(th), np.cos(th) * np.sin(ph)]))
    verts.append(np.array([0.0, 1.0, 0.0]))
    faces = []
    top = len(verts) - 1
    for j in range(n_u):
        faces.append((0, 1 + (j + 1) % n_u, 1 + j))
    for i in range(n_v - 2):
        r0, r1 = 1 + i * n_u, 1 + (i + 1) * n_u
        for j in range(n_u):
            a, b = r0 + j, r0 + (j + 1) % n_u
            c, d = r1 + j, r1 + (j + 1) % n_u
            faces += [(a, b, d), (a, d, c)]
    r = 1 + (n_v - 2) * n_u
    for j in range(n_u):
        faces.append((top, r + j, r + (j + 1) % n_u))
    return np.array(verts), np.array(faces, dtype=np.int64)
