"""Rotation helpers against scipy and closed forms, including their small-angle branches and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hsmr_backend.skel.kinematics import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    euler_to_matrix,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rigid,
    rot_align,
    skew,
)


def test_axis_angle_matches_scipy_any_batch_shape():
    rv = np.random.default_rng(0).normal(0, 1.5, (4, 5, 3))
    R = axis_angle_to_matrix(torch.as_tensor(rv))
    assert R.shape == (4, 5, 3, 3)
    np.testing.assert_allclose(R.numpy(), Rotation.from_rotvec(rv.reshape(-1, 3)).as_matrix().reshape(4, 5, 3, 3),
                               atol=1e-12)  # fmt: skip


def test_unnormalised_axis_rotates_by_its_length():
    """SKEL's DoF axes are not re-normalised: exp(q * a) turns by q |a| about a / |a|."""
    a = torch.tensor([0.3, 0.4, 1.2], dtype=torch.float64)  # |a| = 1.3
    q = 0.7
    R = axis_angle_to_matrix(q * a)
    expect = Rotation.from_rotvec((q * a).numpy()).as_matrix()
    np.testing.assert_allclose(R.numpy(), expect, atol=1e-14)
    angle = np.arccos((np.trace(R.numpy()) - 1) / 2)
    assert angle == pytest.approx(q * 1.3, abs=1e-12)


def test_small_angle_branch_is_continuous_and_exact_at_zero():
    for t in (0.0, 1e-9, 9.9e-7, 1.01e-6, 1e-4):
        rv = torch.tensor([t, -0.5 * t, 0.25 * t], dtype=torch.float64)
        q = axis_angle_to_quaternion(rv)
        np.testing.assert_allclose(quaternion_to_matrix(q).numpy(), Rotation.from_rotvec(rv.numpy()).as_matrix(),
                                   atol=1e-15)  # fmt: skip
    assert torch.equal(axis_angle_to_matrix(torch.zeros(3)), torch.eye(3))


def test_gradients_at_zero_and_gradcheck():
    rv = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    axis_angle_to_matrix(rv).sum().backward()
    assert torch.isfinite(rv.grad).all()
    # d/d(rv) of R @ x at 0 is -skew(x): check one column numerically against that
    x = torch.tensor([0.3, -0.2, 0.9], dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda r: axis_angle_to_matrix(r) @ x, torch.zeros(3, dtype=torch.float64))
    np.testing.assert_allclose(J.numpy(), -skew(x).numpy(), atol=1e-12)
    for start in (torch.zeros(3), torch.tensor([0.4, -1.0, 2.0]), torch.tensor([1e-7, 0.0, 0.0])):
        r = start.double().requires_grad_()
        assert torch.autograd.gradcheck(axis_angle_to_matrix, (r,), eps=1e-6, atol=1e-6)


def test_matrix_axis_angle_round_trip_including_near_pi():
    rng = np.random.default_rng(1)
    rv = rng.normal(size=(200, 3))
    rv = rv / np.linalg.norm(rv, axis=1, keepdims=True) * rng.uniform(0, np.pi - 1e-3, (200, 1))
    rv[0] = 0
    rv[1] = [np.pi - 1e-7, 0, 0]
    back = matrix_to_axis_angle(torch.as_tensor(Rotation.from_rotvec(rv).as_matrix()))
    np.testing.assert_allclose(Rotation.from_rotvec(back.numpy()).as_matrix(), Rotation.from_rotvec(rv).as_matrix(),
                               atol=1e-9)  # fmt: skip
    q = matrix_to_quaternion(torch.as_tensor(Rotation.from_rotvec(rv[2:]).as_matrix()))
    assert (q[:, 0] >= 0).all()
    np.testing.assert_allclose(np.abs(q.numpy()), np.abs(Rotation.from_rotvec(rv[2:]).as_quat()[:, [3, 0, 1, 2]]),
                               atol=1e-9)  # fmt: skip


def test_rot_align():
    rng = np.random.default_rng(2)
    a, b = torch.as_tensor(rng.normal(size=(50, 3))), torch.as_tensor(rng.normal(size=(50, 3)))
    R = rot_align(a, b)
    np.testing.assert_allclose((R @ a[..., None])[..., 0].numpy() / a.norm(dim=-1, keepdim=True).numpy(),
                               (b / b.norm(dim=-1, keepdim=True)).numpy(), atol=1e-12)  # fmt: skip
    np.testing.assert_allclose((R @ R.transpose(-1, -2)).numpy(), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    # the smallest rotation: its axis is a x b (so it fixes a x b)
    n = torch.cross(a, b, dim=-1)
    np.testing.assert_allclose((R @ n[..., None])[..., 0].numpy(), n.numpy(), atol=1e-12)
    # parallel vectors: identity, with finite gradients (the case SKEL's eps guards)
    v = torch.tensor([0.2, 1.0, -0.3], dtype=torch.float64, requires_grad=True)
    R = rot_align(v, 2.5 * v.detach())
    np.testing.assert_allclose(R.detach().numpy(), np.eye(3), atol=1e-12)
    R.sum().backward()
    assert torch.isfinite(v.grad).all()
    assert torch.autograd.gradcheck(lambda x: rot_align(x, torch.tensor([0.2, 1.0, -0.3], dtype=torch.float64)),
                                    (v.detach().clone().requires_grad_(),), eps=1e-7, atol=1e-5)  # fmt: skip


def test_euler_and_rigid():
    e = torch.tensor([0.175895, -0.105208, 0.0186622], dtype=torch.float64)
    R = euler_to_matrix(e, "XYZ")
    np.testing.assert_allclose(R.numpy(), Rotation.from_euler("XYZ", e.numpy()).as_matrix(), atol=1e-14)
    # the talus pin axis of skel.md §4: R_X R_Y R_Z (0, 0, 1)
    np.testing.assert_allclose(R[:, 2].numpy(), [-0.10501, -0.17402, 0.97913], atol=1e-5)
    T = rigid(R, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert T.shape == (4, 4) and T[3].tolist() == [0, 0, 0, 1] and T[:3, 3].tolist() == [1, 2, 3]
