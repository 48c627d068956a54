"""rep_to_q / q_to_rep against scipy's Euler matrices, round trips over the limit ranges, gimbal lock."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hsmr_backend.hsmr import q_to_rep, rep_to_q
from hsmr_contract.dofs import DOFS

# Written from reference/hsmr.md §1 and skel.md §4, independently of the module's derivation from the DoF table.
DOF_COUNTS = [3, 3, 1, 1, 1, 1, 3, 1, 1, 1, 1, 3, 3, 3, 3, 3, 1, 1, 2, 3, 3, 1, 1, 2]
CONVENTION = {0: "YXZ", 1: "YXZ", 6: "YXZ", 11: "YZX", 12: "YZX", 13: "YZX", 14: "XZY", 19: "XZY", 15: "ZYX",
              20: "ZYX"}  # fmt: skip
FLIPS = {6: (1, -1, -1), 14: (1, -1, -1)}
Q_START = np.concatenate([[0], np.cumsum(DOF_COUNTS)[:-1]])
SHOULDER_Y = (30, 40)  # shoulder_r_y, shoulder_l_y: the middle Euler angle of the humeri, limits +-pi/2


def expected_rep(q: np.ndarray) -> np.ndarray:
    """Per joint: scipy matrix rows for 3 DoF, (cos, -sin) for 1 DoF, raw values for 2 DoF."""
    rep = np.zeros((24, 6))
    for j, n in enumerate(DOF_COUNTS):
        qj = q[Q_START[j] : Q_START[j] + n]
        if n == 3:
            f = np.array(FLIPS.get(j, (1, 1, 1)))
            m = Rotation.from_euler(CONVENTION[j], (f * qj)[::-1]).as_matrix()  # upper case = intrinsic
            rep[j] = m[:2].ravel()
        elif n == 1:
            rep[j, :2] = math.cos(qj[0]), -math.sin(qj[0])
        else:
            rep[j, :2] = qj
    return rep.ravel()


def sample_q(rng: np.random.Generator, n: int, margin: float = 1e-3) -> np.ndarray:
    """q uniform inside the limits (pelvis: any orientation with list away from +-pi/2)."""
    lo = np.array([d.lower if math.isfinite(d.lower) else -math.pi for d in DOFS])
    hi = np.array([d.upper if math.isfinite(d.upper) else math.pi for d in DOFS])
    lo[1], hi[1] = -math.pi / 2, math.pi / 2
    lo, hi = lo + margin, hi - margin
    q = rng.uniform(lo, hi, size=(n, 46))
    q[:4, :] = np.where(np.arange(4)[:, None] % 2 == 0, lo, hi)  # the limit corners themselves
    return q


def test_q_to_rep_matches_scipy_euler_rows():
    q = sample_q(np.random.default_rng(0), 50)
    got = q_to_rep(q)
    want = np.stack([expected_rep(v) for v in q])
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_round_trip_over_limit_ranges():
    q = sample_q(np.random.default_rng(1), 2000)
    back = rep_to_q(q_to_rep(q))
    np.testing.assert_allclose(back, q, atol=1e-9)
    back32 = rep_to_q(q_to_rep(torch.from_numpy(q).float()))
    assert back32.dtype == torch.float32
    np.testing.assert_allclose(back32.numpy(), q, atol=2e-3)  # float32 near the humerus' +-pi/2 edge


def test_rep_to_q_matches_scipy_on_random_rotations():
    rng = np.random.default_rng(2)
    rots = Rotation.random(24 * 100, random_state=3).as_matrix().reshape(100, 24, 3, 3)
    rep = rots[..., :2, :].reshape(100, 24, 6) * rng.uniform(0.5, 2.0, size=(100, 24, 1))  # unnormalised
    q = rep_to_q(rep)
    for j, conv in CONVENTION.items():
        f = np.array(FLIPS.get(j, (1, 1, 1)))
        want = Rotation.from_matrix(rots[:, j]).as_euler(conv)[:, ::-1] * f
        got = q[:, Q_START[j] : Q_START[j] + 3]
        np.testing.assert_allclose(got, want, atol=1e-9)


def test_one_dof_is_atan2_and_wrists_are_raw():
    rep = np.zeros((24, 6))
    rep[2, :2] = 3.0 * math.cos(0.7), -3.0 * math.sin(0.7)  # knee, scaled: only the angle counts
    rep[2, 2:] = 9.0  # ignored slots
    rep[18, :2] = 3.0, -5.0  # right wrist: raw numbers, far outside any angle range
    q = rep_to_q(rep[None])[0]
    assert q[6] == pytest.approx(0.7)
    assert (q[34], q[35]) == (3.0, -5.0)
    assert np.allclose(q_to_rep(q[None])[0].reshape(24, 6)[18], [3.0, -5.0, 0, 0, 0, 0])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_shoulder_at_gimbal_lock_is_finite_and_keeps_the_rotation(sign):
    rng = np.random.default_rng(4)
    q = sample_q(rng, 500)
    q[:, SHOULDER_Y[0]] = sign * math.pi / 2
    q[:, SHOULDER_Y[1]] = sign * math.pi / 2 + rng.normal(0, 1e-4, 500)
    rep = q_to_rep(q).astype(np.float32) + rng.normal(0, 1e-6, (500, 144)).astype(np.float32)
    back = rep_to_q(rep)
    assert np.isfinite(back).all()
    # the rotation is what matters at gimbal lock: rebuilding it from q gives the input rotation
    for j in (15, 20):
        m_in = _rows_to_matrix(rep.reshape(-1, 24, 6)[:, j].astype(np.float64))
        m_back = _rows_to_matrix(q_to_rep(back.astype(np.float64)).reshape(-1, 24, 6)[:, j])
        np.testing.assert_allclose(m_back, m_in, atol=1e-4)


def test_degenerate_rep_is_finite():
    assert np.isfinite(rep_to_q(np.zeros((3, 144)))).all()
    rep = np.tile([1.0, 0, 0, 1.0, 0, 0], (1, 24))  # parallel rows
    assert np.isfinite(rep_to_q(rep)).all()


def _rows_to_matrix(r6: np.ndarray) -> np.ndarray:
    b1 = r6[..., :3] / np.linalg.norm(r6[..., :3], axis=-1, keepdims=True)
    a2 = r6[..., 3:]
    b2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 /= np.linalg.norm(b2, axis=-1, keepdims=True)
    return np.stack([b1, b2, np.cross(b1, b2)], axis=-2)


def test_shapes_and_types():
    assert q_to_rep(torch.zeros(2, 3, 46)).shape == (2, 3, 144)
    assert rep_to_q(torch.zeros(5, 24, 6)).shape == (5, 46)
    assert isinstance(rep_to_q(np.zeros((1, 144), np.float32)), np.ndarray)
    with pytest.raises(ValueError, match="144"):
        rep_to_q(np.zeros((1, 100)))


def test_three_dof_rows_are_the_skel_models_joint_rotations(open_body):
    """Cross-check with the body model's own Rp = R_last ... R_first (hsmr_backend.skel)."""
    body = open_body[0]
    q = torch.from_numpy(sample_q(np.random.default_rng(5), 20))
    rp = body.dof_rotations(q.to(body.dtype)).double()
    rep = q_to_rep(q).reshape(20, 24, 6)
    for j in CONVENTION:
        torch.testing.assert_close(rep[:, j], rp[:, j, :2, :].reshape(20, 6), atol=1e-6, rtol=0)
