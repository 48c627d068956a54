"""The bpy-free rig maths: Blender-style evaluation of the channel layout equals SKEL's chain."""

from __future__ import annotations

import numpy as np
import pytest

from hsmr_blender.io import rig_math
from hsmr_contract.rotations import rotvec_to_rotmat as rotvec_to_matrix
from synthetic.make_result import dofs, synthetic_result


@pytest.fixture(scope="module")
def res() -> dict:
    return synthetic_result(n_frames=25, seed=3, n_verts=300)


def test_euler_matrix_matches_blender_convention() -> None:
    # 'XYZ' = Rz·Ry·Rx; a 90° X turn then 90° Z turn sends +Y to -X... check against explicit products
    a = np.array([0.3, -0.7, 1.1])
    rx = rotvec_to_matrix(np.array([a[0], 0, 0]))
    ry = rotvec_to_matrix(np.array([0, a[1], 0]))
    rz = rotvec_to_matrix(np.array([0, 0, a[2]]))
    np.testing.assert_allclose(rig_math.euler_matrix(a, "XYZ"), rz @ ry @ rx, atol=1e-12)
    np.testing.assert_allclose(rig_math.euler_matrix(a, "ZXY"), ry @ rx @ rz, atol=1e-12)
    # right-handed: +90° about Z takes X to Y
    np.testing.assert_allclose(rz @ rz.T, np.eye(3), atol=1e-12)
    r90 = rotvec_to_matrix(np.array([0, 0, np.pi / 2]))
    np.testing.assert_allclose(r90 @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_every_dof_is_one_channel_of_its_joint_bone(res: dict) -> None:
    layout = rig_math.build_layout(res)
    seen = []
    for b in layout:
        assert len(set(b.channels)) == len(b.channels)
        assert sorted(b.euler_order) == ["X", "Y", "Z"]
        # Euler order lists the DoF channels in composition order
        assert b.euler_order[: len(b.channels)] == "".join("XYZ"[c] for c in b.channels)
        np.testing.assert_allclose(b.A @ b.A.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(b.A) > 0.99
        for dof, ch in zip(b.dofs, b.channels, strict=True):
            d = dofs.DOFS[dof]
            axis = np.asarray(d.axis) / np.linalg.norm(d.axis)
            # the bone-local channel axis is the DoF axis with its flip (SKEL's sign)
            np.testing.assert_allclose(b.A[:, ch], d.flip * axis, atol=1e-9)
            seen.append(dof)
    assert sorted(seen) == list(range(46))


def test_blender_evaluation_reproduces_skel_joints(res: dict) -> None:
    layout = rig_math.build_layout(res)
    ch = rig_math.channels_from_result(layout, res)
    pose = rig_math.fk_blender(layout, ch)
    g = rig_math.fk_skel(res, res["poses"], res["trans"], res["joint_offsets"])
    np.testing.assert_allclose(pose[..., :3, 3], g[..., :3, 3], atol=1e-9)
    # skinning matrices equal SKEL's G_j [I | -J_j]
    np.testing.assert_allclose(rig_math.skinning_matrices(layout, pose), res["_skin_mats"], atol=1e-9)
    # and the joints that the result carries in the world frame
    m2w = res["model_to_world"]
    world = pose[..., :3, 3] @ m2w[:3, :3].T + m2w[:3, 3]
    np.testing.assert_allclose(world, res["joints_world"], atol=1e-9)


def test_knee_channel_flexes_the_shank_backwards() -> None:
    # independent physical check: with the anatomical BSM frame (x anterior, y up, z right) mapped to the model
    # frame (x left, y up, z forward), a positive knee angle swings the ankle backwards (-z)
    res = synthetic_result(n_frames=2, seed=1, n_verts=100)
    bsm_to_model = np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]])
    res["rest_frames"] = np.broadcast_to(bsm_to_model, (24, 3, 3)).copy()
    layout = rig_math.build_layout(res)
    poses = np.zeros((2, 46))
    poses[1, dofs.dof_index("knee_angle_r")] = np.pi / 2
    res = {**res, "poses": poses, "trans": np.zeros((2, 3)), "joint_offsets": np.zeros((2, 24, 3))}
    pose = rig_math.fk_blender(layout, rig_math.channels_from_result(layout, res))
    ankle0, ankle1 = pose[0, 3, :3, 3], pose[1, 3, :3, 3]
    knee = pose[0, 2, :3, 3]
    assert ankle1[2] < knee[2] - 0.3  # the shank now points backwards
    np.testing.assert_allclose(np.linalg.norm(ankle1 - knee), np.linalg.norm(ankle0 - knee), atol=1e-9)


def test_limit_table_equals_dof_table(res: dict) -> None:
    layout = rig_math.build_layout(res)
    table = rig_math.limit_table(layout, res)
    assert list(table) != [] and set(table) == set(dofs.DOF_NAMES)
    for d in dofs.DOFS:
        bone, _, lo, hi = table[d.name]
        assert bone == dofs.JOINT_NAMES[d.joint]
        assert (lo, hi) == (d.lower, d.upper)


def test_skel_chain_rotation_about_joint_centre() -> None:
    # analytic: rotating only the pelvis leaves the pelvis joint fixed and moves the rest rigidly
    res = synthetic_result(n_frames=2, seed=2, n_verts=100)
    poses = np.zeros((2, 46))
    poses[1, 2] = 0.8  # pelvis_rotation about the vertical
    g = rig_math.fk_skel(res, poses, np.zeros((2, 3)), np.zeros((2, 24, 3)))
    np.testing.assert_allclose(g[1, 0, :3, 3], g[0, 0, :3, 3], atol=1e-12)
    d0 = np.linalg.norm(g[0, :, :3, 3][:, None] - g[0, :, :3, 3][None], axis=2)
    d1 = np.linalg.norm(g[1, :, :3, 3][:, None] - g[1, :, :3, 3][None], axis=2)
    np.testing.assert_allclose(d0, d1, atol=1e-12)


def test_channel_letters_do_not_depend_on_the_body() -> None:
    # two bodies with different (random) rest frames and joints: same rotation modes and channels
    a = rig_math.build_layout(synthetic_result(n_frames=2, seed=11, n_verts=100))
    b = rig_math.build_layout(synthetic_result(n_frames=2, seed=12, n_verts=100))
    assert [(x.euler_order, x.channels) for x in a] == [(y.euler_order, y.channels) for y in b]
    knee = a[dofs.JOINT_NAMES.index("tibia_r")]
    assert knee.euler_order == "XYZ" and knee.channels == (0,)  # a hinge on X
    femur = a[dofs.JOINT_NAMES.index("femur_r")]
    assert femur.channels[2] == 1  # hip rotation (about the femur's long axis) on Y
