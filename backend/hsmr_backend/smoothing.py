"""Robust acceleration-penalised smoothing of trajectories (numpy/scipy), the temporal step of the fitter.

``smooth(x, lam, weight)`` solves, per column d,

    min_s  sum_t weight_t (s_td - x_td)^2  +  lam * sum_t rho(s_{t-1,d} - 2 s_td + s_{t+1,d})

with rho quadratic (Whittaker-Henderson, 2nd order) or, with ``delta``, a Charbonnier penalty by iteratively
reweighted least squares, so large genuine accelerations (a clap, a kick) cost linearly and survive. Frames
with weight 0 are bridged by the smoother alone. Each solve is a banded (pentadiagonal) system: linear time.
The equivalent low-pass cut-off of the quadratic version is f_c with lam = 1 / (2 - 2 cos(2 pi f_c / fps))^2.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solveh_banded


def lam_for_cutoff(cutoff_hz: float, fps: float) -> float:
    """Smoothing weight whose quadratic smoother halves the power at ``cutoff_hz``."""
    w = 2 * math.pi * min(cutoff_hz / fps, 0.45)
    return 1.0 / (2 - 2 * math.cos(w)) ** 2


def _banded(weight: np.ndarray, acc_w: np.ndarray, lam: float) -> np.ndarray:
    """Upper banded form (3, T) of diag(weight) + lam * D^T diag(acc_w) D, D the (T-2, T) 2nd difference."""
    t = len(weight)
    ab = np.zeros((3, t))
    c = lam * np.asarray(acc_w, dtype=np.float64)  # row k of D touches k, k+1, k+2 with (1, -2, 1)
    ab[2] = weight
    ab[2, :-2] += c
    ab[2, 1:-1] += 4 * c
    ab[2, 2:] += c
    ab[1, 1:-1] -= 2 * c
    ab[1, 2:] -= 2 * c
    ab[0, 2:] += c
    return ab


def smooth(x: np.ndarray, lam: float, weight: np.ndarray | None = None, delta: float | None = None,
           iterations: int = 4) -> np.ndarray:
    """Smooth (T, ...) along time. ``weight`` (T,) >= 0 per frame; ``delta`` turns on the robust penalty
    (same units as x); columns are smoothed independently (robust weights per column)."""
    x = np.asarray(x, dtype=np.float64)
    t = x.shape[0]
    if t < 3 or lam <= 0:
        return x.copy()
    flat = x.reshape(t, -1)
    w = np.ones(t) if weight is None else np.asarray(weight, dtype=np.float64)
    if not np.any(w > 0):
        return x.copy()
    w = w + 1e-9 * max(w.max(), 1e-9)  # keeps the system definite where frames are missing
    out = np.empty_like(flat)
    if delta is None:
        ab = _banded(w, np.ones(t - 2), lam)
        out[:] = solveh_banded(ab, w[:, None] * flat)
        return out.reshape(x.shape)
    for d in range(flat.shape[1]):
        col = flat[:, d]
        aw = np.ones(t - 2)
        s = col
        for _ in range(iterations):
            s = solveh_banded(_banded(w, aw, lam), w * col)
            a = s[:-2] - 2 * s[1:-1] + s[2:]
            aw = 1.0 / np.sqrt(1.0 + (a / delta) ** 2)  # IRLS weights of the Charbonnier penalty
        out[:, d] = s
    return out.reshape(x.shape)


def smooth_points(p: np.ndarray, lam: float, weight: np.ndarray | None = None, delta: float | None = None,
                  iterations: int = 4) -> np.ndarray:
    """Like :func:`smooth` for (T, N, 3) points, the robust weight taken on each point's 3D acceleration."""
    p = np.asarray(p, dtype=np.float64)
    if delta is None or p.shape[0] < 3 or lam <= 0:
        return smooth(p, lam, weight)
    t, n, _ = p.shape
    w = np.ones(t) if weight is None else np.asarray(weight, dtype=np.float64)
    if not np.any(w > 0):
        return p.copy()
    w = w + 1e-9 * max(w.max(), 1e-9)
    out = p.copy()
    for j in range(n):
        aw = np.ones(t - 2)
        s = p[:, j]
        for _ in range(iterations):
            s = solveh_banded(_banded(w, aw, lam), w[:, None] * p[:, j])
            a = np.linalg.norm(s[:-2] - 2 * s[1:-1] + s[2:], axis=-1)
            aw = 1.0 / np.sqrt(1.0 + (a / delta) ** 2)
        out[:, j] = s
    return out
