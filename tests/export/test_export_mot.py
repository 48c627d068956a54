"""The .mot writer/reader, the SKEL motion, and the SKEL -> Rajagopal mapping against independent expectations."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hsmr_contract import dofs
from hsmr_contract import result_format as rf
from hsmr_contract.export import mot, opensim_map
from synthetic.export_clip import save_synthetic, synthetic_result

ROOT = Path(__file__).resolve().parents[2]


def test_mot_header_and_round_trip(tmp_path: Path):
    t = np.arange(5) / 25.0
    vals = np.column_stack([np.linspace(-30, 30, 5), np.linspace(0, 1, 5)])
    path = mot.write_mot(tmp_path / "a.mot", t, ["knee_angle_r", "pelvis_ty"], vals, comments=["free text"])
    lines = path.read_text().splitlines()
    assert lines[:5] == ["Coordinates", "version=1", "nRows=5", "nColumns=3", "inDegrees=yes"]
    assert lines[6] == "endheader" and lines[7] == "time\tknee_angle_r\tpelvis_ty"
    back = mot.read_mot(path)
    assert back.in_degrees and back.columns == ["knee_angle_r", "pelvis_ty"] and back.comments == ["free text"]
    np.testing.assert_allclose(back.time, t, atol=1e-8)
    np.testing.assert_allclose(back.values, vals, atol=1e-7)


def test_mot_reader_refuses_inconsistent_counts(tmp_path: Path):
    path = mot.write_mot(tmp_path / "a.mot", np.arange(3.0), ["x"], np.zeros((3, 1)))
    path.write_text(path.read_text().replace("nRows=3", "nRows=4"))
    with pytest.raises(mot.MotFormatError, match="nRows=4"):
        mot.read_mot(path)
    with pytest.raises(ValueError, match="whitespace"):
        mot.write_mot(tmp_path / "b.mot", np.arange(3.0), ["a b"], np.zeros((3, 1)))


def test_skel_mot_values_are_poses_in_degrees(tmp_path: Path):
    res = rf.load(save_synthetic(tmp_path, stride=2, fps=15.0))
    back = mot.read_mot(mot.write_skel_mot(res, tmp_path / "s.mot"))
    assert back.columns == [*dofs.DOF_NAMES, "pelvis_tx", "pelvis_ty", "pelvis_tz"]
    assert back.header["nColumns"] == str(46 + 3 + 1) and back.header["nRows"] == str(res["poses"].shape[0])
    np.testing.assert_allclose(back.values[:, :46], np.degrees(res["poses"].astype(np.float64)), atol=1e-6)
    # source frames 0, 2, 4 ... at 15 fitted fps = 30 source fps: t = frame / 30
    np.testing.assert_allclose(back.time, res["frame_index"] / 30.0, atol=1e-8)
    # pelvis translation: Blender world (x, y, z) -> OpenSim (x, z, -y)
    jw = res["joints_world"][:, 0].astype(np.float64)
    np.testing.assert_allclose(back.values[:, 46:], np.column_stack([jw[:, 0], jw[:, 2], -jw[:, 1]]), atol=1e-6)


def _one(name_values: dict[str, float], T: int = 2, **kw) -> dict[str, float]:
    """Rajagopal coordinates (degrees) of a constant pose given in SKEL DoF degrees."""
    q = np.zeros((T, 46))
    for n, v in name_values.items():
        q[:, dofs.dof_index(n)] = np.radians(v)
    names, vals = opensim_map.rajagopal_motion(synthetic_result(poses=q, **kw))
    return dict(zip(names, vals[0], strict=True))


def _upright_world() -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("x", 90, degrees=True).as_matrix()  # model y up -> world z up
    return m


def test_rajagopal_at_skel_zero_is_the_documented_offsets():
    r = _one({}, model_to_world=_upright_world())
    for n in opensim_map.RAJAGOPAL_COORDINATES:
        if n in ("arm_add_r", "arm_add_l"):
            assert r[n] == pytest.approx(opensim_map.ARM_REST_ADD_DEG, abs=1e-4), n
        elif n == "pelvis_rotation":  # SKEL's subject faces model +z = OpenSim ground +Z: -90 deg about Y
            assert r[n] == pytest.approx(-90.0, abs=1e-4)
        elif n not in opensim_map.TRANSLATIONS:  # float32 result arrays: 1e-4 deg
            assert r[n] == pytest.approx(0.0, abs=1e-4), n


def test_arms_down_in_skel_is_rajagopal_zero():
    # right arm along BSM +z; +90 deg about x lowers it; the left arm (along -z) needs -90 deg
    r = _one({"shoulder_r_x": 90.0, "shoulder_l_x": -90.0})
    for n in ("arm_flex_r", "arm_add_r", "arm_rot_r", "arm_flex_l", "arm_add_l", "arm_rot_l"):
        assert r[n] == pytest.approx(0.0, abs=1e-4), n
    # lowering only to 60 deg leaves 30 deg of abduction
    r = _one({"shoulder_r_x": 60.0, "shoulder_l_x": -60.0})
    assert r["arm_add_r"] == pytest.approx(-30.0, abs=1e-4) and r["arm_add_l"] == pytest.approx(-30.0, abs=1e-4)


def test_arm_forward_from_t_pose_is_flexion():
    # the T-pose humerus z axis is vertical (up on the right, down on the left): +90 deg about it swings
    # either arm forward: 90 deg flexion, no adduction
    r = _one({"shoulder_r_z": 90.0, "shoulder_l_z": 90.0})
    for s in "rl":
        assert r[f"arm_flex_{s}"] == pytest.approx(90.0, abs=1e-4) and r[f"arm_add_{s}"] == pytest.approx(0.0, abs=1e-4)


def test_humerus_rest_frame_sets_the_arm_offset():
    # a body whose humerus rest frame had no abduction would be at arm_add = 0 at q = 0: the offset is read
    # from rest_frames, not assumed
    res = synthetic_result(poses=np.zeros((2, 46)))
    res["rest_frames"][15] = res["rest_frames"][12]
    names, vals = opensim_map.rajagopal_motion(res)
    assert vals[0, names.index("arm_add_r")] == pytest.approx(0.0, abs=1e-4)
    assert vals[0, names.index("arm_add_l")] == pytest.approx(-90.0, abs=1e-4)


def test_copied_dofs_are_identical():
    q = synthetic_result()["poses"].astype(np.float64)
    names, vals = opensim_map.rajagopal_motion(synthetic_result(poses=q))
    for raj, sk in opensim_map.COPIED.items():
        np.testing.assert_allclose(vals[:, names.index(raj)], np.degrees(q[:, dofs.dof_index(sk)]), atol=1e-9)


def _zxy(r: Rotation, left: bool = False) -> np.ndarray:
    """OpenSim body-fixed Z-X-Y angles of r (scipy's intrinsic 'ZXY'), left side's x/y axes negated."""
    e = r.as_euler("ZXY", degrees=True)
    return e * np.array([1, -1, -1]) if left else e


@pytest.mark.parametrize("side", ["r", "l"])
def test_hip_is_resequenced_to_opensim_order(side: str):
    f, a, rot = 70.0, 20.0, -25.0
    r = _one({f"hip_flexion_{side}": f, f"hip_adduction_{side}": a, f"hip_rotation_{side}": rot})
    s = 1.0 if side == "r" else -1.0
    # SKEL: first DoF applied first about the fixed axes (R = R_y R_x R_z), left x/y flipped
    skel = Rotation.from_euler("zxy", [f, s * a, s * rot], degrees=True)  # scipy lower case = extrinsic
    want = _zxy(skel, left=side == "l")
    got = [r[f"hip_flexion_{side}"], r[f"hip_adduction_{side}"], r[f"hip_rotation_{side}"]]
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.max(np.abs(np.subtract(got, [f, a, rot]))) > 2.0, "large combined angles must differ from a plain copy"


def test_trunk_is_lumbar_and_thorax_together():
    vals = {
        "lumbar_bending": 10.0,
        "lumbar_extension": -20.0,
        "lumbar_twist": 15.0,
        "thorax_bending": 5.0,
        "thorax_extension": -10.0,
        "thorax_twist": 5.0,
    }
    r = _one(vals)
    lumbar = Rotation.from_euler("xzy", [10, -20, 15], degrees=True)
    thorax = Rotation.from_euler("xzy", [5, -10, 5], degrees=True)
    want = _zxy(lumbar * thorax)
    np.testing.assert_allclose([r["lumbar_extension"], r["lumbar_bending"], r["lumbar_rotation"]], want, atol=1e-4)
    small = _one({"lumbar_extension": 1.0, "thorax_extension": 2.0})
    assert small["lumbar_extension"] == pytest.approx(3.0, abs=1e-4)


def test_pelvis_angles_rebuild_its_ground_orientation():
    q = {"pelvis_tilt": 12.0, "pelvis_list": -8.0, "pelvis_rotation": 40.0}
    res = synthetic_result(poses=np.tile(np.radians([[12.0, -8.0, 40.0] + [0.0] * 43]), (2, 1)))
    r = _one(q)
    a = res["model_to_world"][:3, :3].astype(np.float64)
    c = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    m0 = res["rest_frames"][0].astype(np.float64)
    rp = Rotation.from_euler("zxy", [12, -8, 40], degrees=True).as_matrix()  # SKEL pelvis, extrinsic
    want = _zxy(Rotation.from_matrix(c @ a @ m0 @ rp))
    np.testing.assert_allclose([r["pelvis_tilt"], r["pelvis_list"], r["pelvis_rotation"]], want, atol=1e-4)


def test_docs_table_matches_the_offsets():
    text = (ROOT / "docs" / "biomechanics-export.md").read_text()
    for off in opensim_map.OFFSETS:
        row = next((ln for ln in text.splitlines() if ln.startswith(f"| {off.coordinate} |")), None)
        assert row is not None, f"docs/biomechanics-export.md lacks a row for {off.coordinate}"
        assert re.search(rf"\|\s*{off.offset_deg:g}\s*\|", row), row
