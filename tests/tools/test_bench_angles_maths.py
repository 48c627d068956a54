"""The comparison maths of benchmarks/accuracy/bench_angles_synthetic.py (benchmarks/accuracy/angles_synth.py)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")  # hsmr_backend.skel imports torch
syn = pytest.importorskip("benchmarks.accuracy.angles_synth")
from hsmr_contract import dofs  # noqa: E402
from synthetic.make_result import synthetic_result  # noqa: E402


@pytest.fixture(scope="module")
def res() -> dict:
    return synthetic_result(n_frames=12, seed=3)


def _gt(res: dict, poses: np.ndarray) -> dict:
    return syn.gt_result(res, poses, res["rest_frames"])


def test_result_against_itself_is_zero(res: dict) -> None:
    q = np.asarray(res["poses"], np.float64)
    skel = syn.dof_errors_deg(q, q)
    raj = syn.raj_errors_deg(_gt(res, q), res)
    assert "pelvis_rotation" not in skel and "pelvis_tilt" in skel
    assert max(e.max() for e in skel.values()) == 0.0
    assert max(e.max() for e in raj.values()) < 1e-9
    assert set(raj) == set(syn.RAJ_ALL)


def test_known_offsets_show_where_expected(res: dict) -> None:
    q = np.asarray(res["poses"], np.float64)
    est = q.copy()
    est[:, dofs.dof_index("knee_angle_r")] += np.radians(10.0)
    est[:, dofs.dof_index("pelvis_tilt")] += np.radians(-7.0)
    est[:, dofs.dof_index("pelvis_rotation")] += np.radians(40.0)  # the heading: not compared
    skel = syn.dof_errors_deg(q, est)
    assert np.allclose(skel["knee_angle_r"], 10.0) and np.allclose(skel["pelvis_tilt"], 7.0)
    others = [n for n in skel if n not in ("knee_angle_r", "pelvis_tilt")]
    assert max(skel[n].max() for n in others) < 1e-9
    gt = _gt(res, q)
    e = dict(res, poses=est)
    raj = syn.raj_errors_deg(gt, e)
    assert np.allclose(raj["knee_angle_r"], 10.0)
    # the pelvis (tilt and heading) does not move any joint relative to its parent
    assert max(raj[n].max() for n in raj if n != "knee_angle_r") < 1e-6


def test_unbounded_pelvis_angles_wrap() -> None:
    gt = np.zeros((2, dofs.N_DOFS))
    est = gt.copy()
    est[:, 1] = np.radians([359.0, -361.0])
    assert np.allclose(syn.dof_errors_deg(gt, est)["pelvis_list"], 1.0)


@pytest.mark.parametrize("motion", syn.MOTIONS)
def test_motions_in_limits_and_moving(motion: str) -> None:
    q = syn.motion(motion, 40, 30.0)
    lim = np.array([(d.lower, d.upper) for d in dofs.DOFS])
    assert np.all(q >= lim[:, 0]) and np.all(q <= lim[:, 1])
    knee = np.degrees(q[:, dofs.dof_index("knee_angle_r")])
    assert knee.max() - knee.min() > 40.0  # every motion bends the knees well beyond noise
