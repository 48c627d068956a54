"""HSMR's 144-D pose representation (24 joints x 6 numbers) <-> SKEL's 46 DoF values q.

Facts (reference/hsmr.md §1, "Pose representation"), with the per-joint axes and flips read from the DoF
table (``hsmr_contract.dofs``):

- 3-DoF joints: the 6 numbers are the first two ROWS of the joint rotation ``Rp = R_last ... R_first``
  (Gram-Schmidt on rows; third row = row1 x row2). ``Rp`` is a Tait-Bryan product whose Euler convention is
  the joint's axes in reverse order, on the flipped angles ``flip_i * q_i``.
- 1-DoF joints: the rep stores ``(cos q, -sin q, 0, 0, 0, 0)``; q = atan2(-r1, r0).
- 2-DoF joints (wrists): the rep stores the raw values ``(q0, q1, 0, 0, 0, 0)``.

The official float32 extraction takes ``asin`` of a matrix entry, which is NaN when rounding pushes it past 1
(the shoulder at shoulder_y = +-pi/2, which is inside its limits). Here the middle angle is an ``atan2`` of
the entry and the norm of its row/column (same value where ``asin`` is defined, never NaN), the extraction
runs in float64, and exact gimbal lock puts the whole coupled rotation into the first angle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hsmr_contract.dofs import DOFS, JOINTS, dofs_of_joint

_AXIS_LETTER = {(1.0, 0.0, 0.0): "X", (0.0, 1.0, 0.0): "Y", (0.0, 0.0, 1.0): "Z"}
_GIMBAL_EPS = 1e-9  # cos(middle angle) below this is treated as exact gimbal lock (float64)


@dataclass(frozen=True)
class _Joint3:
    joint: int
    q_index: tuple[int, int, int]  # DoF indices in composition order (first applied first)
    convention: str  # Euler letters of Rp = R_a(e0) R_b(e1) R_c(e2): the axes in reverse order
    flips: tuple[float, float, float]  # per DoF, composition order


def _build_tables() -> tuple[list[_Joint3], list[tuple[int, int]], list[tuple[int, tuple[int, int]]]]:
    three, one, two = [], [], []
    for j in JOINTS:
        ds = dofs_of_joint(j.index)
        if j.n_dofs == 3:
            letters = []
            for d in ds:
                if d.axis not in _AXIS_LETTER:
                    raise ValueError(f"3-DoF joint {j.name} has a non-canonical axis {d.axis}")
                letters.append(_AXIS_LETTER[d.axis])
            conv = "".join(reversed(letters))
            three.append(_Joint3(j.index, tuple(d.index for d in ds), conv, tuple(d.flip for d in ds)))
        elif j.n_dofs == 1:
            one.append((j.index, ds[0].index))
        elif j.n_dofs == 2:
            two.append((j.index, (ds[0].index, ds[1].index)))
        else:  # pragma: no cover - the DoF table only has 1, 2 and 3
            raise ValueError(f"joint {j.name} has {j.n_dofs} DoFs")
    return three, one, two


JOINTS_3DOF, JOINTS_1DOF, JOINTS_2DOF = _build_tables()
N_REP = 24 * 6


def _axis_rotation(letter: str, angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) about a coordinate axis (right-handed)."""
    c, s = torch.cos(angle), torch.sin(angle)
    o, z = torch.ones_like(angle), torch.zeros_like(angle)
    if letter == "X":
        rows = (o, z, z, z, c, -s, z, s, c)
    elif letter == "Y":
        rows = (c, z, s, z, o, z, -s, z, c)
    else:
        rows = (c, -s, z, s, c, z, z, z, o)
    return torch.stack(rows, dim=-1).reshape(*angle.shape, 3, 3)


def euler_to_matrix(angles: torch.Tensor, convention: str) -> torch.Tensor:
    """``R_a(e0) @ R_b(e1) @ R_c(e2)`` for convention ``abc`` (intrinsic order, pytorch3d's meaning)."""
    mats = [_axis_rotation(c, angles[..., i]) for i, c in enumerate(convention)]
    return mats[0] @ mats[1] @ mats[2]


def matrix_to_euler(m: torch.Tensor, convention: str) -> torch.Tensor:
    """Inverse of :func:`euler_to_matrix` for Tait-Bryan conventions, middle angle in [-pi/2, pi/2].

    For ``R = R_i(a) R_j(b) R_k(c)`` with parity e (+1 for cyclic ijk): ``R[i,k] = e sin b``,
    ``(R[j,k], R[k,k]) = cos b (-e sin a, cos a)``, ``(R[i,j], R[i,i]) = cos b (-e sin c, cos c)``.
    """
    i, j, k = ("XYZ".index(c) for c in convention)
    if len({i, j, k}) != 3:
        raise ValueError(f"only Tait-Bryan conventions are supported, not {convention!r}")
    e = 1.0 if (j - i) % 3 == 1 else -1.0
    sin_b = e * m[..., i, k]
    cos_b = torch.sqrt(m[..., i, i] ** 2 + m[..., i, j] ** 2)
    b = torch.atan2(sin_b, cos_b)
    a = torch.atan2(-e * m[..., j, k], m[..., k, k])
    c = torch.atan2(-e * m[..., i, j], m[..., i, i])
    # Gimbal lock: only a +- c is defined; put it all in a (c = 0), read from R_i(a) = R @ R_j(b)^T.
    lock = cos_b < _GIMBAL_EPS
    if bool(lock.any()):
        ri = m @ _axis_rotation(convention[1], b).transpose(-1, -2)
        j2, k2 = (i + 1) % 3, (i + 2) % 3
        a_lock = torch.atan2(ri[..., k2, j2], ri[..., j2, j2])
        a = torch.where(lock, a_lock, a)
        c = torch.where(lock, torch.zeros_like(c), c)
    return torch.stack((a, b, c), dim=-1)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """6 numbers = first two ROWS; Gram-Schmidt, third row = b1 x b2 (pytorch3d's convention)."""
    a1, a2 = d6[..., :3], d6[..., 3:6]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


def matrix_to_rotation_6d(m: torch.Tensor) -> torch.Tensor:
    return m[..., :2, :].reshape(*m.shape[:-2], 6)


def _as_tensor(x: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x), True
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}")
    return x, False


def rep_to_q(rep: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(..., 144) or (..., 24, 6) HSMR pose representation -> (..., 46) SKEL q (radians; wrists raw).

    Returns the same array type and dtype as given. Finite for every finite input.
    """
    t, was_np = _as_tensor(rep)
    if t.shape[-1] == N_REP:
        t = t.reshape(*t.shape[:-1], 24, 6)
    if t.shape[-2:] != (24, 6):
        raise ValueError(f"rep_to_q expects (..., 144) or (..., 24, 6), got {tuple(t.shape)}")
    dtype = t.dtype
    t64 = t.to(torch.float64)
    q = t64.new_zeros(*t.shape[:-2], len(DOFS))
    for joint, qi in JOINTS_1DOF:
        q[..., qi] = torch.atan2(-t64[..., joint, 1], t64[..., joint, 0])
    for joint, (q0, q1) in JOINTS_2DOF:
        q[..., q0] = t64[..., joint, 0]
        q[..., q1] = t64[..., joint, 1]
    if JOINTS_3DOF:
        jids = [j.joint for j in JOINTS_3DOF]
        mats = rotation_6d_to_matrix(t64[..., jids, :])
        for n, j in enumerate(JOINTS_3DOF):
            e = matrix_to_euler(mats[..., n, :, :], j.convention)  # (e0,e1,e2) = flipped (q2,q1,q0)
            for slot, (qi, flip) in enumerate(zip(j.q_index, j.flips, strict=True)):
                q[..., qi] = e[..., 2 - slot] * flip
    q = q.to(dtype)
    return q.numpy() if was_np else q


def q_to_rep(q: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(..., 46) SKEL q -> (..., 144) HSMR pose representation (zeros in the unused slots)."""
    t, was_np = _as_tensor(q)
    if t.shape[-1] != len(DOFS):
        raise ValueError(f"q_to_rep expects (..., 46), got {tuple(t.shape)}")
    dtype = t.dtype
    t64 = t.to(torch.float64)
    rep = t64.new_zeros(*t.shape[:-1], 24, 6)
    for joint, qi in JOINTS_1DOF:
        rep[..., joint, 0] = torch.cos(t64[..., qi])
        rep[..., joint, 1] = -torch.sin(t64[..., qi])
    for joint, (q0, q1) in JOINTS_2DOF:
        rep[..., joint, 0] = t64[..., q0]
        rep[..., joint, 1] = t64[..., q1]
    for j in JOINTS_3DOF:
        flipped = torch.stack([t64[..., qi] * f for qi, f in zip(j.q_index, j.flips, strict=True)], dim=-1)
        mat = euler_to_matrix(flipped.flip(-1), j.convention)
        rep[..., j.joint, :] = matrix_to_rotation_6d(mat)
    rep = rep.reshape(*t.shape[:-1], N_REP).to(dtype)
    return rep.numpy() if was_np else rep
