"""Retargeting maths without Blender: rotations, name mapping, presets, JSON, foot IK, and a whole plan onto a
copy of SKEL's own skeleton (which must reproduce SKEL's joints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hsmr_blender.io import rig_math
from hsmr_blender.io.retarget import Plan, plan, rot
from hsmr_blender.io.retarget import mapping as mp
from hsmr_blender.io.retarget.feet import two_bone_ik
from hsmr_blender.io.retarget.presets import PRESETS
from hsmr_blender.io.retarget.solve import TargetRig
from hsmr_blender.io.retarget.source import resting_from_motion, source_from_result
from synthetic.make_result import synthetic_result

ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


@pytest.mark.parametrize("order", ORDERS)
def test_euler_channels_rebuild_the_matrix(order: str) -> None:
    rng = np.random.default_rng(1)
    angles = rng.uniform(-1.5, 1.5, size=(200, 3))
    m = rig_math.euler_matrix(angles, order)  # the rig's own Blender-convention Euler
    np.testing.assert_allclose(rig_math.euler_matrix(rot.euler_from_matrix(m, order), order), m, atol=1e-12)


def test_quaternions_round_trip_and_stay_continuous() -> None:
    rng = np.random.default_rng(2)
    m = rig_math.euler_matrix(np.cumsum(rng.normal(scale=0.3, size=(300, 3)), axis=0), "XYZ")
    q = rot.continuous_quats(rot.quat_from_matrix(m))
    np.testing.assert_allclose(rot.matrix_from_quat(q), m, atol=1e-12)
    assert np.all(np.sum(q[1:] * q[:-1], axis=1) > 0)


def test_min_rotation_takes_a_onto_b_including_opposites() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    b[:5] = -a[:5]
    r = rot.min_rotation(a, b)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", r, rot.unit(a)), rot.unit(b), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-9)


def _bones(preset: str, prefix: str = "") -> list[str]:
    return [prefix + n for names in PRESETS[preset].values() for n in names] + [prefix + "Extra", "misc"]


@pytest.mark.parametrize("preset,prefix", [("mixamo", "mixamorig:"), ("mixamo", "mixamorig2:"), ("ue5", ""),
                                           ("ue4", ""), ("vrm", ""), ("rigify_metarig", ""), ("rigify", ""),
                                           ("makehuman", "")])
def test_presets_are_recognised_by_their_names(preset: str, prefix: str) -> None:
    names = _bones(preset, prefix)
    found, share = mp.detect_preset(names)
    assert found == preset and share == 1.0
    m = mp.preset_mapping(found, names)
    mp.check_mapping(m, names)
    assert len(m.pairs) == sum(len(v) for v in PRESETS[preset].values())


def test_unknown_names_are_guessed_from_names_and_hierarchy() -> None:
    parents: dict[str, str | None] = {
        "Root_Pelvis": None, "Torso_A": "Root_Pelvis", "Torso_B": "Torso_A", "NeckBone": "Torso_B",
        "Skull_Head": "NeckBone"}
    for side in ("L", "R"):
        parents |= {f"Clavicle_{side}": "Torso_B", f"UpperArm_{side}": f"Clavicle_{side}",
                    f"LowerArm_{side}": f"UpperArm_{side}", f"{side}_Wrist": f"LowerArm_{side}",
                    f"{side}_Finger1": f"{side}_Wrist", f"Thigh.{side.lower()}": "Root_Pelvis",
                    f"Calf.{side.lower()}": f"Thigh.{side.lower()}", f"Foot.{side.lower()}": f"Calf.{side.lower()}",
                    f"calf_twist_01.{side.lower()}": f"Calf.{side.lower()}"}
    m = mp.auto_mapping(parents)
    mp.check_mapping(m, list(parents))
    assert m.bones("hips") == ["Root_Pelvis"] and m.bones("spine") == ["Torso_A", "Torso_B"]
    assert m.bones("upper_arm.L") == ["UpperArm_L"] and m.bones("hand.R") == ["R_Wrist"]
    assert m.bones("shin.L") == ["Calf.l"] and m.bones("foot.R") == ["Foot.r"]
    assert "calf_twist_01.l" not in {b for _, b in m.pairs} and "L_Finger1" not in {b for _, b in m.pairs}
    assert m.guessed == {b for _, b in m.pairs}


def test_a_non_humanoid_is_refused_naming_what_is_missing() -> None:
    parents = {"Bone": None, "Bone.001": "Bone", "Tail": "Bone.001"}
    with pytest.raises(mp.MappingError, match=r"could not map hips, upper_arm\.L.*pick a preset"):
        mp.check_mapping(mp.auto_mapping(parents), list(parents))


def test_mapping_json_round_trip_and_bad_file(tmp_path: Path) -> None:
    m = mp.preset_mapping("ue5", _bones("ue5"))
    back = mp.load_mapping(mp.save_mapping(m, tmp_path / "map.json"))
    assert back.pairs == m.pairs and back.preset == "ue5"
    (tmp_path / "bad.json").write_text('{"something": 1}')
    with pytest.raises(mp.MappingError, match="not a retarget mapping"):
        mp.load_mapping(tmp_path / "bad.json")


def test_two_bone_ik_reaches_keeps_lengths_and_the_knee_plane() -> None:
    rng = np.random.default_rng(4)
    n = 100
    hip = rng.normal(size=(n, 3))
    knee = hip + rot.unit(rng.normal(size=(n, 3))) * 0.45
    ankle = knee + rot.unit(rng.normal(size=(n, 3))) * 0.4
    goal = hip + rot.unit(rng.normal(size=(n, 3))) * rng.uniform(0.2, 0.8, size=(n, 1))
    r1, r2 = two_bone_ik(hip, knee, ankle, goal, np.tile([0.0, -1.0, 0.0], (n, 1)))
    knee_new = hip + np.einsum("nab,nb->na", r1, knee - hip)
    ankle_new = knee_new + np.einsum("nab,nb->na", r2, ankle - knee)
    np.testing.assert_allclose(ankle_new, goal, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(knee_new - hip, axis=1), 0.45, atol=1e-9)
    # the knee stays on the side it was: in the plane through the hip-goal line and the old knee
    normal = np.cross(goal - hip, knee - hip)
    assert np.abs(np.sum(normal * (knee_new - hip), axis=1)).max() < 1e-9


def test_resting_spells_from_speed_and_height() -> None:
    t = np.arange(60)
    joints = np.zeros((60, 24, 3))
    names = [f"j{i}" for i in range(24)]
    names[9], names[4], names[10], names[5] = "calcn_l", "calcn_r", "toes_l", "toes_r"
    joints[:, 4, 2] = np.where((t > 20) & (t < 40), 0.2 * np.sin(np.pi * (t - 20) / 20), 0.0)  # right heel lifts
    joints[:, 5, 1] = 0.01 * t  # right toe slides at 0.3 m/s
    rest = resting_from_motion(joints, names, 30.0)
    assert rest[:, 0].all() and rest[:, 2].all()  # left heel and toe rest throughout
    assert not rest[25:35, 1].any() and rest[:15, 1].all()
    assert not rest[:, 3].any()


def _skel_copy(res: dict) -> tuple[TargetRig, list[str]]:
    """A target that IS SKEL's T-pose skeleton with Mixamo names (T-pose, identity bone frames, y-forward
    roll irrelevant): retargeting onto it must give back SKEL's joint positions."""
    names = [str(n) for n in res["joint_names"]]
    m2w = np.asarray(res["model_to_world"])
    j = np.asarray(res["rest_joints"]) @ m2w[:3, :3].T + m2w[:3, 3]
    chain = {"pelvis": ("Hips", None, "lumbar_body"), "lumbar_body": ("Spine", "Hips", "thorax"),
             "thorax": ("Spine1", "Spine", "head"), "head": ("Neck", "Spine1", None)}
    for s, side in (("l", "Left"), ("r", "Right")):
        chain |= {f"scapula_{s}": (f"{side}Shoulder", "Spine1", f"humerus_{s}"),
                  f"humerus_{s}": (f"{side}Arm", f"{side}Shoulder", f"ulna_{s}"),
                  f"radius_{s}": (f"{side}ForeArm", f"{side}Arm", f"hand_{s}"),
                  f"hand_{s}": (f"{side}Hand", f"{side}ForeArm", None),
                  f"femur_{s}": (f"{side}UpLeg", "Hips", f"tibia_{s}"),
                  f"tibia_{s}": (f"{side}Leg", f"{side}UpLeg", f"talus_{s}"),
                  f"talus_{s}": (f"{side}Foot", f"{side}Leg", f"toes_{s}"),
                  f"toes_{s}": (f"{side}ToeBase", f"{side}Foot", None)}
    bone_names = [v[0] for v in chain.values()]
    heads, tails, parents = [], [], []
    for joint, (_, parent, end) in chain.items():
        head = j[names.index(joint)]
        tail = j[names.index(end)] if end else head + 0.6 * (head - heads[bone_names.index(parent)])
        heads.append(head)
        tails.append(tail)
        parents.append(bone_names.index(parent) if parent else -1)
    rest = np.tile(np.eye(4), (len(heads), 1, 1))
    for i, (h, t) in enumerate(zip(heads, tails, strict=True)):
        rest[i, :3, :3] = rot.min_rotation(np.array([0.0, 1.0, 0.0]), t - h)
        rest[i, :3, 3] = h
    return TargetRig(bone_names, np.array(parents), rest, np.array(tails), np.eye(4)), list(chain)


def _fk_heads(target: TargetRig, p: Plan) -> np.ndarray:
    """Blender's pose chain from the planned pose-bone channels, independently of the planner's own FK."""
    t_count = len(next(iter(p.rotations.values())))
    pose = np.zeros((t_count, len(target.names), 4, 4))
    for j, name in enumerate(target.names):
        basis = np.tile(np.eye(4), (t_count, 1, 1))
        if name in p.rotations:
            basis[:, :3, :3] = p.rotations[name]
        if name in p.locations:
            basis[:, :3, 3] = p.locations[name]
        par = int(target.parents[j])
        rel = target.rest[j] if par < 0 else np.linalg.inv(target.rest[par]) @ target.rest[j]
        pose[:, j] = (pose[:, par] if par >= 0 else np.eye(4)) @ rel @ basis
    return pose[:, :, :3, 3]


def test_retargeting_onto_skel_itself_gives_skels_joints() -> None:
    res = synthetic_result(n_frames=30, seed=7, n_verts=100, correctives=False)
    res["joint_offsets"] = np.zeros_like(res["joint_offsets"])  # a rigid copy cannot translate joints
    g = rig_math.fk_skel(res, res["poses"], res["trans"], res["joint_offsets"])
    m2w = np.asarray(res["model_to_world"])
    res["joints_world"] = g[:, :, :3, 3] @ m2w[:3, :3].T + m2w[:3, 3]
    target, joints = _skel_copy(res)
    mapping = mp.auto_mapping({n: (target.names[p] if p >= 0 else None) for n, p in
                               zip(target.names, target.parents, strict=True)})
    assert mapping.preset == "mixamo"
    p = plan(source_from_result(res), target, mapping, feet="fk")
    assert p.leg_ratio == pytest.approx(1.0)
    heads = _fk_heads(target, p)
    names = [str(n) for n in res["joint_names"]]
    want = res["joints_world"][:, [names.index(n) for n in joints]]
    shift = want[:, :1] - heads[:, :1]  # same path up to the start offset of the hips
    assert np.abs(shift - shift[0]).max() < 1e-9
    err = dict(zip(joints, np.linalg.norm(heads + shift - want, axis=2).max(axis=0), strict=True))
    # exact where the copy is rigid; the forearm hangs off the ulna in SKEL and the foot's length changes with the
    # subtalar angle, which one rigid bone cannot follow: there the segment directions are exact instead
    folded = {"radius_l", "radius_r", "hand_l", "hand_r", "toes_l", "toes_r"}
    assert max(e for j, e in err.items() if j not in folded) < 1e-6
    assert max(err[j] for j in folded) < 0.05
    for a, b in (("radius", "hand"), ("talus", "toes")):
        for s in "lr":
            ia, ib = joints.index(f"{a}_{s}"), joints.index(f"{b}_{s}")
            got = rot.unit(heads[:, ib] - heads[:, ia])
            ref = rot.unit(want[:, ib] - want[:, ia])
            assert np.abs(got - ref).max() < 1e-6
