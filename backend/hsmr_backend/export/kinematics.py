"""Small numpy kinematics for the exports: SKEL joint rotations, chain composition, Euler extraction, frames.

Numpy only (the Blender add-on vendors this folder). Conventions follow ``hsmr_backend.skel.dofs`` and the
result file (``result_format.py``): each DoF rotates by ``flip * q`` about its (un-normalised) ``axis`` in the
joint's BSM frame, a joint composes ``R_last @ ... @ R_first``, and the model-frame local rotation is
``M_j @ Rp_j @ M_j.T`` with ``M_j = rest_frames[j]``.
"""

from __future__ import annotations

import numpy as np

# Blender world (z up) -> OpenSim ground (y up): X = x, Y = z, Z = -y (a proper rotation, -90 deg about x).
BLENDER_TO_OPENSIM = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def rotvec_to_matrix(v: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) rotation vectors -> (..., 3, 3) matrices."""
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


def rot_x(a: np.ndarray | float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return rotvec_to_matrix(np.stack([a, np.zeros_like(a), np.zeros_like(a)], -1))


def rot_y(a: np.ndarray | float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return rotvec_to_matrix(np.stack([np.zeros_like(a), a, np.zeros_like(a)], -1))


def rot_z(a: np.ndarray | float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return rotvec_to_matrix(np.stack([np.zeros_like(a), np.zeros_like(a), a], -1))


def joint_rotations_bsm(
    poses: np.ndarray, dof_joint: np.ndarray, dof_axis: np.ndarray, dof_flip: np.ndarray, n_joints: int = 24
) -> np.ndarray:
    """Rp_j per frame in each joint's own BSM frame: (T, 46) radians -> (T, 24, 3, 3)."""
    poses = np.asarray(poses, dtype=np.float64)
    out = np.tile(np.eye(3), (poses.shape[0], n_joints, 1, 1))
    for i in range(poses.shape[1]):  # DoFs are in composition order: later ones multiply on the left
        r = rotvec_to_matrix((dof_flip[i] * poses[:, i])[:, None] * np.asarray(dof_axis[i], dtype=np.float64))
        j = int(dof_joint[i])
        out[:, j] = r @ out[:, j]
    return out


def local_rotations_model(rp: np.ndarray, rest_frames: np.ndarray) -> np.ndarray:
    """M_j Rp_j M_j^T: each joint's rotation expressed in the model frame (T, 24, 3, 3)."""
    m = np.asarray(rest_frames, dtype=np.float64)
    return m @ rp @ np.swapaxes(m, -1, -2)


def global_rotations(local_model: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Compose the chain (parents precede children, as in SKEL): world-from-joint rotations in the model frame."""
    out = np.empty_like(local_model)
    for j, p in enumerate(parents):
        out[:, j] = local_model[:, j] if p < 0 else out[:, p] @ local_model[:, j]
    return out


def chain_transforms(local_rot: np.ndarray, local_trans: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Compose local ``[R | t]`` (T, J, 3, 3) / (T, J, 3) down the tree (parents precede children):
    world-from-joint transforms (T, J, 4, 4)."""
    local_rot = np.asarray(local_rot, dtype=np.float64)
    t_count, n_j = local_rot.shape[:2]
    local = np.zeros((t_count, n_j, 4, 4))
    local[..., :3, :3] = local_rot
    local[..., :3, 3] = local_trans
    local[..., 3, 3] = 1.0
    out = np.empty_like(local)
    for j, p in enumerate(parents):
        out[:, j] = local[:, j] if p < 0 else out[:, p] @ local[:, j]
    return out


def euler_zxy(r: np.ndarray, prev_c: np.ndarray | None = None) -> np.ndarray:
    """Angles (a, b, c) with R = R_z(a) R_x(b) R_y(c) (OpenSim body-fixed Z-X-Y), radians, (..., 3).

    At the singularity (|b| = 90 deg) only a + c (b > 0) or a - c (b < 0) is defined; c is then taken from
    ``prev_c`` (continuity) or 0.
    """
    r = np.asarray(r, dtype=np.float64)
    b = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    a = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    c = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
    locked = np.cos(b) < 1e-5
    if np.any(locked):
        c_l = np.zeros_like(c) if prev_c is None else np.broadcast_to(prev_c, c.shape)
        # with cos b = 0: R[1,0] = sin(a + s c), R[0,0] = cos(a + s c), s = sign(b)
        s = np.sign(b)
        total = np.arctan2(r[..., 1, 0], r[..., 0, 0])
        a = np.where(locked, total - s * c_l, a)
        c = np.where(locked, c_l, c)
    return np.stack([a, b, c], axis=-1)


def euler_zxy_sequence(r: np.ndarray) -> np.ndarray:
    """Euler Z-X-Y over time (T, 3, 3) -> (T, 3), continuous (unwrapped) and singularity-safe by continuity."""
    out = np.empty((r.shape[0], 3))
    prev_c = None
    for t in range(r.shape[0]):
        out[t] = euler_zxy(r[t], prev_c)
        prev_c = out[t, 2]
    return np.unwrap(out, axis=0)


def orthonormal(m: np.ndarray) -> np.ndarray:
    """Nearest rotation (drops any scale in a 4x4's upper-left block)."""
    u, _, vt = np.linalg.svd(np.asarray(m, dtype=np.float64)[:3, :3])
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def to_homogeneous_apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (..., 3) points."""
    m = np.asarray(m, dtype=np.float64)
    return np.asarray(pts, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]


def blender_to_opensim(pts: np.ndarray) -> np.ndarray:
    """Points (..., 3) in Blender's world (z up) -> OpenSim ground (y up), same origin and units."""
    return np.asarray(pts, dtype=np.float64) @ BLENDER_TO_OPENSIM.T
