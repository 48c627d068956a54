"""The temporal smoother of the fitter: exact banded solve, robust penalty keeps fast events, gaps bridged."""

from __future__ import annotations

import numpy as np

from hsmr_backend import smoothing


def test_banded_solve_matches_the_dense_normal_equations():
    rng = np.random.default_rng(0)
    t, lam = 40, 2.5
    x = rng.normal(size=(t, 3))
    w = rng.uniform(0.2, 1.0, t)
    d = np.diff(np.eye(t), 2, axis=0)
    ref = np.linalg.solve(np.diag(w) + lam * d.T @ d, w[:, None] * x)
    np.testing.assert_allclose(smoothing.smooth(x, lam, w), ref, atol=1e-6)


def test_cutoff_weight_halves_power_at_the_cutoff():
    lam = smoothing.lam_for_cutoff(6.0, 30.0)
    w = 2 * np.pi * 6.0 / 30.0
    gain = 1.0 / (1.0 + lam * (2 - 2 * np.cos(w)) ** 2)  # transfer function of the quadratic smoother
    assert abs(gain - 0.5) < 1e-12


def test_robust_penalty_keeps_a_fast_event_that_the_quadratic_one_blunts():
    t = 60
    clean = np.where(np.arange(t) < 30, 0.0, 1.0)  # a sudden stop / clap: one large acceleration
    rng = np.random.default_rng(1)
    x = clean + rng.normal(0, 0.01, t)
    lam = smoothing.lam_for_cutoff(4.0, 30.0)
    quad = smoothing.smooth(x[:, None], lam)[:, 0]
    robust = smoothing.smooth(x[:, None], lam, delta=0.02)[:, 0]
    err_q, err_r = np.abs(quad - clean).max(), np.abs(robust - clean).max()
    assert err_r < 0.5 * err_q
    # and both still remove the jitter away from the event
    jit = lambda s: np.abs(np.diff(s[:25], 2)).mean()  # noqa: E731
    assert jit(robust) < 0.3 * jit(x) and jit(quad) < 0.3 * jit(x)


def test_frames_without_data_are_bridged():
    t = 30
    x = np.linspace(0, 1, t)[:, None] ** 2
    w = np.ones(t)
    w[10:15] = 0.0
    x_bad = x.copy()
    x_bad[10:15] = 5.0  # garbage where nothing was seen
    s = smoothing.smooth(x_bad, 1.0, w)
    np.testing.assert_allclose(s[10:15], x[10:15], atol=0.02)
    pts = np.repeat(x_bad[:, None, :], 3, axis=2)  # (T,1,3)
    sp = smoothing.smooth_points(pts, 1.0, w, delta=0.5)
    np.testing.assert_allclose(sp[10:15, 0, 0], x[10:15, 0], atol=0.05)
