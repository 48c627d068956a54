"""Numpy kinematics of SKEL's tree: joint rotations from q, chain composition, the pelvis Euler angles, frames.

Conventions follow the DoF table (``dofs.py``) and the result file (``result_format.py``): each DoF rotates
by ``flip * q`` about its (un-normalised) ``axis`` in the joint's BSM frame, a joint composes
``R_last @ ... @ R_first``, and the model-frame local rotation is ``M_j @ Rp_j @ M_j.T`` with
``M_j = rest_frames[j]``.
"""

from __future__ import annotations

import numpy as np

from .dofs import N_JOINTS
from .rotations import euler_to_rotmat, rotmat_to_euler, rotvec_to_rotmat

# Blender world (z up) -> OpenSim ground (y up): X = x, Y = z, Z = -y (a proper rotation, -90 deg about x).
BLENDER_TO_OPENSIM = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def joint_rotations_bsm(
    poses: np.ndarray, dof_joint: np.ndarray, dof_axis: np.ndarray, dof_flip: np.ndarray, n_joints: int = N_JOINTS
) -> np.ndarray:
    """Rp_j per frame in each joint's own BSM frame: (T, 46) radians -> (T, 24, 3, 3)."""
    poses = np.asarray(poses, dtype=np.float64)
    out = np.tile(np.eye(3), (poses.shape[0], n_joints, 1, 1))
    for i in range(poses.shape[1]):  # DoFs are in composition order: later ones multiply on the left
        r = rotvec_to_rotmat((dof_flip[i] * poses[:, i])[:, None] * np.asarray(dof_axis[i], dtype=np.float64))
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


def euler_zxy_sequence(r: np.ndarray) -> np.ndarray:
    """Intrinsic Euler Z-X-Y (OpenSim) over time (T, 3, 3) -> (T, 3), continuous (unwrapped) and singularity-safe
    by continuity."""
    out = np.empty((r.shape[0], 3))
    prev_c = None
    for t in range(r.shape[0]):
        out[t] = rotmat_to_euler("ZXY", r[t], prev_c)
        prev_c = out[t, 2]
    return np.unwrap(out, axis=0)


def to_homogeneous_apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (..., 3) points."""
    m = np.asarray(m, dtype=np.float64)
    return np.asarray(pts, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]


def blender_to_opensim(pts: np.ndarray) -> np.ndarray:
    """Points (..., 3) in Blender's world (z up) -> OpenSim ground (y up), same origin and units."""
    return np.asarray(pts, dtype=np.float64) @ BLENDER_TO_OPENSIM.T


def pelvis_matrix(q012: np.ndarray) -> np.ndarray:
    """(…,3) pelvis (tilt, list, rotation) -> (…,3,3) ``Rp0 = R_y(q2) R_x(q1) R_z(q0)`` in the pelvis' BSM frame.

    The global root rotation in the model frame is ``M_0 @ Rp0 @ M_0.T`` (``shared/reference/skel.md`` §4).
    """
    q = np.asarray(q012, dtype=np.float64)
    return euler_to_rotmat("YXZ", q[..., ::-1])


def pelvis_angles(rp0: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pelvis_matrix` (principal branch, q1 in [-pi/2, pi/2]); (…,3,3) -> (…,3)."""
    return rotmat_to_euler("YXZ", rp0)[..., ::-1]


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
