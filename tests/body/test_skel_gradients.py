"""The model is differentiable with finite gradients at q = 0, at the joint limits and for betas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hsmr_backend.skel import SKEL
from hsmr_contract import dofs
from synthetic.fake_skel import write_fake_skel_pkl

IDS = torch.tensor([0, 410, 3027, 5000, 6179, 6889])


@pytest.fixture(scope="module")
def model64(tmp_path_factory):
    m = SKEL.from_file(write_fake_skel_pkl(tmp_path_factory.mktemp("skel") / "skel_male.pkl", bone_verts_per_bone=12))
    return m.double()


def _limits_pose() -> torch.Tensor:
    q = torch.zeros(1, 46, dtype=torch.float64)
    for d in dofs.DOFS:
        if d.limited:
            q[0, d.index] = d.upper if d.index % 2 else d.lower
    return q


def _fn(model, with_bones=False):
    def f(q, b, t):
        out = model(q, b, t, bone_mesh=with_bones, skin_vertex_ids=IDS)
        parts = [out.skin_verts, out.joints, out.joints_ori]
        if with_bones:
            parts.append(out.bone_verts[:, ::7])
        return torch.cat([p.reshape(-1) for p in parts])

    return f


@pytest.mark.parametrize("where", ["zero", "limits", "random"])
def test_gradcheck_float64(model64, where):
    q = {
        "zero": torch.zeros(1, 46, dtype=torch.float64),
        "limits": _limits_pose(),
        "random": torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (1, 46))),
    }[where].requires_grad_()
    b = torch.as_tensor(np.random.default_rng(1).normal(0, 1, (1, 10))).requires_grad_()
    t = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        _fn(model64, with_bones=where == "random"), (q, b, t), eps=1e-6, atol=1e-5, fast_mode=True
    )


def test_gradients_finite_at_exact_zero_float32(tmp_path):
    """Exactly q = 0 hits every small-angle branch (quaternion, spine arc) and RotAlign of parallel vectors."""
    m = SKEL.from_file(write_fake_skel_pkl(tmp_path / "skel_male.pkl", bone_verts_per_bone=12))
    q = torch.zeros(2, 46, requires_grad=True)
    b = torch.zeros(2, 10, requires_grad=True)
    out = m(q, b, torch.zeros(2, 3), bone_mesh=True)
    loss = out.skin_verts.square().sum() + out.bone_verts.square().sum() + out.joints_ori.sum()
    loss.backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(b.grad).all()
    assert q.grad.abs().sum() > 0 and b.grad.abs().sum() > 0
    # spine bending's first-order effect at 0 is the arc's x = l*theta/2 plus the rotation: non-zero
    assert q.grad[0, dofs.dof_index("lumbar_bending")].abs() > 0


def test_spine_arc_is_smooth_across_its_small_angle_branch(model64):
    """x(theta) and y(theta) on both sides of the 1e-5 switch agree to second order."""
    qs = torch.tensor([-2e-5, -1e-5 + 1e-9, -1e-5 - 1e-9, 0.0, 1e-5 - 1e-9, 1e-5 + 1e-9], dtype=torch.float64)
    q = torch.zeros(len(qs), 46, dtype=torch.float64)
    q[:, dofs.dof_index("thorax_extension")] = qs
    off = model64(q, torch.zeros(len(qs), 10, dtype=torch.float64)).joint_offsets[:, 12]
    l = float(model64.rest_state(torch.zeros(1, 10, dtype=torch.float64)).spine_lengths[0, 1])
    expect_z = -l * (1 - torch.cos(qs)) / torch.where(qs == 0, torch.ones_like(qs), qs)
    assert math.isclose(float(off[3, 2]), 0.0, abs_tol=1e-15)
    torch.testing.assert_close(off[:, 2], expect_z, atol=1e-12, rtol=0)
