"""A batched L-BFGS: every row of the unknowns is its own problem (a frame), with its own curvature history
and step length, and all rows are evaluated in one call (torch.optim is avoided: its first use imports
torch._dynamo, ~2 s, and one shared line search is slow when frames differ in curvature)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def batched_lbfgs(fun: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, iterations: int, history: int = 40,
                  mask: torch.Tensor | None = None, rel_tol: float = 1e-6,
                  memory: dict | None = None) -> torch.Tensor:
    """Minimise ``sum_t fun(x)[t]`` where row t of ``x`` (T,n) only affects ``fun(x)[t]``.

    Each row gets its own L-BFGS two-loop recursion and its own step length. One batched value-and-gradient
    call per iteration: every row tries its step; a row whose step fails the Armijo test keeps its point and
    tries a shorter one at the next iteration (backtracking spread over iterations, so one failing frame
    never costs the whole batch extra evaluations). ``memory`` (a dict) carries the curvature pairs from one
    call to the next on a similar objective (the next stage of the same frames): its first steps are then
    already well scaled instead of cautious.
    """
    x = x0.detach().clone()
    t, n = x.shape
    history = min(history, 2 * n)  # far more pairs than unknowns only go stale (tiny problems)
    m = torch.ones(n, dtype=x.dtype, device=x.device) if mask is None else mask.to(x)
    s_hist: list[torch.Tensor] = [] if memory is None else memory.setdefault("s", [])
    y_hist: list[torch.Tensor] = [] if memory is None else memory.setdefault("y", [])
    r_hist: list[torch.Tensor] = [] if memory is None else memory.setdefault("rho", [])
    if s_hist and s_hist[0].shape != x.shape:
        s_hist.clear()
        y_hist.clear()
        r_hist.clear()
    while len(s_hist) > history:  # a shorter history than the call that filled the memory
        s_hist.pop(0)
        y_hist.pop(0)
        r_hist.pop(0)
    scale = torch.ones(t, dtype=x.dtype, device=x.device)  # per-row step multiplier (halved on failure)

    def value_grad(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = z.detach().requires_grad_(True)
        f = fun(z)
        (g,) = torch.autograd.grad(f.sum(), z)
        return f.detach(), g * m

    f, g = value_grad(x)
    for _ in range(iterations):
        d = _two_loop(g, s_hist, y_hist, r_hist)
        slope = (g * d).sum(1)
        bad = slope >= 0  # not a descent direction: fall back to steepest descent for that row
        if bad.any():
            d[bad] = -g[bad] * (0.1 / g[bad].abs().amax(1, keepdim=True).clamp(min=1e-12))
            slope = (g * d).sum(1)
        d = d * scale[:, None]
        slope = slope * scale
        ft, gt = value_grad(x + d)
        ok = torch.isfinite(ft) & (ft <= f + 1e-4 * slope)
        x_new = torch.where(ok[:, None], x + d, x)
        f_new = torch.where(ok, ft, f)
        g_new = torch.where(ok[:, None], gt, g)
        # failed rows: the trial still measured the curvature along d (kept as a pair), and the step is cut
        # to the minimiser of the quadratic through f, slope and ft (clamped to [0.1, 0.5] of it)
        curv = ft - f - slope
        cut = (-slope / (2 * curv.clamp(min=1e-30))).nan_to_num(0.5).clamp(0.1, 0.5)
        scale = torch.where(ok, torch.ones_like(scale), scale * cut)
        s_k = torch.where(ok[:, None], x_new - x, d)
        y_k = torch.where(ok[:, None], g_new - g, gt.nan_to_num(0.0) - g)
        sy = (s_k * y_k).sum(1, keepdim=True)
        good = (sy > 1e-12).to(x.dtype)  # rows whose curvature pair is usable; others store an inert pair
        s_hist.append(s_k * good)
        y_hist.append(y_k * good + (1 - good) * 1.0)  # y=1,s=0 keeps rho finite and the pair inert
        r_hist.append(1.0 / torch.linalg.vecdot(s_hist[-1], y_hist[-1])[:, None].clamp(min=1e-20))
        if len(s_hist) > history:
            s_hist.pop(0)
            y_hist.pop(0)
            r_hist.pop(0)
        gain = float((f - f_new).sum())
        # rows still backtracking with a decrease worth having keep the loop going
        pending = float((-slope * 0.5).clamp(min=0)[~ok].sum())
        x, f, g = x_new, f_new, g_new
        if max(gain, pending) <= rel_tol * float(f.abs().sum()):
            break  # converged: the whole batch improved (or could improve) by less than rel_tol
    return x


def _two_loop(g: torch.Tensor, s_hist: list[torch.Tensor], y_hist: list[torch.Tensor],
              r_hist: list[torch.Tensor]) -> torch.Tensor:
    """The L-BFGS direction of every row from its gradient and curvature pairs (two-loop recursion, 1/rho
    stored with each pair; fused ops: this runs 2 x history times)."""
    q = -g
    alphas = []
    for s_i, y_i, rho in zip(reversed(s_hist), reversed(y_hist), reversed(r_hist), strict=True):
        a = rho * torch.linalg.vecdot(s_i, q)[:, None]
        q = torch.addcmul(q, a, y_i, value=-1.0)
        alphas.append(a)
    if s_hist:
        s_l, y_l = s_hist[-1], y_hist[-1]
        gamma = torch.linalg.vecdot(s_l, y_l)[:, None] / torch.linalg.vecdot(y_l, y_l)[:, None].clamp(min=1e-20)
        # rows without a usable pair yet (inert pairs: s = 0) take the cautious first step
        first = torch.linalg.vecdot(s_l, s_l)[:, None] == 0
        cautious = (0.1 / g.abs().amax(1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)
        q = q * torch.where(first, cautious, gamma)
    else:  # first step: at most 0.1 in any coordinate
        q = q * (0.1 / g.abs().amax(1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)
    for s_i, y_i, rho, a in zip(s_hist, y_hist, r_hist, reversed(alphas), strict=True):
        q = torch.addcmul(q, a - rho * torch.linalg.vecdot(y_i, q)[:, None], s_i)
    return q
