"""The monocular-accuracy benchmark's own geometry (benchmarks/accuracy/bench_monocular_pose2sim.py): the triangulated
reference, the angles and the aligned error it reports, on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.accuracy.bench_monocular_pose2sim import dlt, flexion_deg, pa_error, reproject, robust_points


def look_at(centre: np.ndarray, target: np.ndarray, f: float = 1500.0, c: tuple = (540.0, 960.0)) -> np.ndarray:
    """(3,4) projection of a pinhole camera at ``centre`` looking at ``target`` (OpenCV axes, world z up)."""
    z = (target - centre) / np.linalg.norm(target - centre)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    r = np.stack([x, np.cross(z, x), z])
    k = np.array([[f, 0.0, c[0]], [0.0, f, c[1]], [0.0, 0.0, 1.0]])
    return k @ np.hstack([r, -(r @ centre)[:, None]])


@pytest.fixture
def rig() -> tuple[np.ndarray, np.ndarray]:
    """Four cameras 4 m around a 1 m cloud of points at hip height; points (N,3) and projections (4,3,4)."""
    rng = np.random.default_rng(3)
    points = rng.uniform(-0.5, 0.5, (50, 3)) + [0.0, 0.0, 1.0]
    ps = np.stack([look_at(np.array([4 * np.cos(a), 4 * np.sin(a), 1.9]), np.array([0.0, 0.0, 1.0]))
                   for a in np.radians([0.0, 80.0, 170.0, 260.0])])
    return points, ps


def observe(points: np.ndarray, ps: np.ndarray, conf: float = 0.9) -> np.ndarray:
    uv = reproject(points, ps)
    return np.concatenate([uv, np.full(uv.shape[:2] + (1,), conf)], -1)


def test_dlt_recovers_points_seen_exactly(rig):
    points, ps = rig
    kp = observe(points, ps)
    np.testing.assert_allclose(dlt(kp, ps, np.ones(kp.shape[:2], bool)), points, atol=1e-6)


def test_robust_points_drop_a_view_that_is_off(rig):
    points, ps = rig
    kp = observe(points, ps)
    kp[2, :10, :2] += 60.0  # one view wrong by 60 px on ten points (a swapped label, say)
    x, used = robust_points(kp, ps)
    np.testing.assert_allclose(x, points, atol=1e-6)
    assert not used[2, :10].any() and used[:, 10:].all()


def test_points_seen_once_are_not_placed(rig):
    points, ps = rig
    kp = observe(points, ps)
    kp[1:, 0, 2] = 0.0  # only the first camera is confident about point 0
    x, _ = robust_points(kp, ps)
    assert np.isnan(x[0]).all() and np.isfinite(x[1:]).all()


def test_flexion_is_zero_straight_and_ninety_at_a_right_angle():
    lm = np.zeros((2, 33, 3))
    lm[:, 23], lm[:, 25] = [0.0, 0.0, 1.0], [0.0, 0.0, 0.5]
    lm[0, 27] = [0.0, 0.0, 0.0]  # hip, knee, ankle on a line
    lm[1, 27] = [0.0, -0.4, 0.5]  # shank at a right angle to the thigh
    np.testing.assert_allclose(flexion_deg(lm, 23, 25, 27), [0.0, 90.0], atol=1e-9)


def test_pa_error_ignores_rotation_scale_and_shift_only():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3, 22, 3))
    a = np.radians(40.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    moved = 1.3 * ref @ rot.T + [0.2, -1.0, 3.0]
    np.testing.assert_allclose(pa_error(moved, ref), 0.0, atol=1e-9)
    bent = ref.copy()
    bent[:, 0] += [0.1, 0.0, 0.0]  # one point 10 cm off cannot be aligned away
    assert np.all(pa_error(bent, ref) > 0.002)
