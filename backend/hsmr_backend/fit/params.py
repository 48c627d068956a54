"""The fitted parameters: body DoFs through a sine map that keeps every limited DoF inside its limits, the
root rotation as an axis-angle step on a rotation matrix, and the checks on finished poses."""

from __future__ import annotations

import numpy as np
import torch

from hsmr_contract.dofs import DOFS, N_DOFS

LOWER = np.array([d.lower for d in DOFS])
UPPER = np.array([d.upper for d in DOFS])
LIMITED = np.array([d.limited for d in DOFS])
BODY = np.arange(3, N_DOFS)  # everything but the pelvis (root rotation is fitted as a matrix)


def _prior_scale() -> np.ndarray:
    """Relative pull towards q = 0 per body DoF. Landmarks barely see the spine and scapulae (a pelvis
    tilt can hide in lumbar extension), so those are held more firmly than the limbs."""
    w = np.ones(N_DOFS)
    for d in DOFS:
        if d.name.startswith(("lumbar", "thorax", "head", "scapula")):
            w[d.index] = 5.0
        elif d.name.startswith(("hip", "knee", "ankle", "shoulder", "elbow")):
            w[d.index] = 0.2
    return w[BODY]


PRIOR_SCALE = _prior_scale()

_Q_CONST: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def q_from_u(u: torch.Tensor) -> torch.Tensor:
    """(…,43) free parameters -> body DoFs q[3:], limited ones strictly inside their limits."""
    key = (u.dtype, str(u.device))
    if key not in _Q_CONST:  # constants built once per dtype/device (this runs in every objective call)
        lo = torch.as_tensor(LOWER[BODY], dtype=u.dtype, device=u.device)
        hi = torch.as_tensor(UPPER[BODY], dtype=u.dtype, device=u.device)
        lim = torch.as_tensor(LIMITED[BODY], device=u.device)
        half = torch.where(lim, (hi - lo) / 2, torch.ones_like(lo))
        mid = torch.where(lim, (hi + lo) / 2, torch.zeros_like(lo))
        _Q_CONST[key] = (lim, mid, half)
    lim, mid, half = _Q_CONST[key]
    return torch.where(lim, mid + half * torch.sin(u), u)


def u_from_q(q_body: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Inverse of :func:`q_from_u`; q is first pulled ``margin`` x range inside its limits."""
    lo, hi, lim = LOWER[BODY], UPPER[BODY], LIMITED[BODY]
    q = np.asarray(q_body, dtype=np.float64)
    out = q.copy()
    half = np.where(lim, (hi - lo) / 2, 1.0)
    x = np.clip((q - np.where(lim, (hi + lo) / 2, 0.0)) / half, -1.0 + margin, 1.0 - margin)
    out[..., lim] = np.arcsin(x)[..., lim]
    return out


def clip_to_limits(poses: np.ndarray) -> np.ndarray:
    """Clip every limited DoF into [lower, upper] (a safety step; the parametrisation already holds them)."""
    q = np.asarray(poses, dtype=np.float64).copy()
    q[..., LIMITED] = np.clip(q[..., LIMITED], LOWER[LIMITED], UPPER[LIMITED])
    return q


def limits_float32(poses: np.ndarray) -> np.ndarray:
    """float32 copy whose limited values stay inside [lower, upper] even after rounding to float32."""
    q = np.asarray(poses, dtype=np.float32).copy()
    lo, hi = LOWER.astype(np.float32), UPPER.astype(np.float32)
    lo = np.where(lo < LOWER, np.nextafter(lo, np.float32(np.inf)), lo)  # float32 limit inside the float64 one
    hi = np.where(hi > UPPER, np.nextafter(hi, np.float32(-np.inf)), hi)
    q[..., LIMITED] = np.clip(q[..., LIMITED], lo[LIMITED], hi[LIMITED])
    return q


def count_violations(poses: np.ndarray, tol: float = 0.0) -> int:
    """Number of (frame, DoF) values outside their limits by more than ``tol`` radians."""
    q = np.asarray(poses)
    bad = (q[..., LIMITED] < LOWER[LIMITED] - tol) | (q[..., LIMITED] > UPPER[LIMITED] + tol)
    return int(bad.sum())


def so3_exp(v: torch.Tensor) -> torch.Tensor:
    """Axis-angle (…,3) -> rotation (…,3,3); smooth at 0."""
    th2 = (v * v).sum(-1, keepdim=True)[..., None]
    th = torch.sqrt(th2 + 1e-12)
    small = th2 < 1e-8
    a = torch.where(small, 1 - th2 / 6, torch.sin(th) / th)
    b = torch.where(small, 0.5 - th2 / 24, (1 - torch.cos(th)) / (th2 + 1e-12))
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = torch.zeros_like(x)
    k = torch.stack([torch.stack([o, -z, y], -1), torch.stack([z, o, -x], -1), torch.stack([-y, x, o], -1)], -2)
    eye = torch.eye(3, dtype=v.dtype, device=v.device)
    return eye + a * k + b * (k @ k)
