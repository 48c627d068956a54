"""The .trc writer/reader and the virtual markers (joint centres and skinned landmarks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hsmr_contract import result_format as rf
from hsmr_contract.export import markers, trc
from synthetic.export_clip import rest_joints, save_synthetic, synthetic_result


def test_trc_header_and_round_trip(tmp_path: Path):
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(4, 3, 3))
    xyz[2, 1] = np.nan  # a gap
    path = trc.write_trc(tmp_path / "m.trc", np.arange(4) / 50.0, ["a", "b", "c"], xyz, rate=50.0)
    lines = path.read_text().split("\n")
    assert lines[0] == "PathFileType\t4\t(X/Y/Z)\tm.trc"
    assert lines[1].split("\t") == [
        "DataRate",
        "CameraRate",
        "NumFrames",
        "NumMarkers",
        "Units",
        "OrigDataRate",
        "OrigDataStartFrame",
        "OrigNumFrames",
    ]
    assert lines[2].split("\t") == ["50", "50", "4", "3", "m", "50", "1", "4"]
    assert lines[3].split("\t") == ["Frame#", "Time", "a", "", "", "b", "", "", "c"]  # each name spans 3 columns
    assert lines[4].split("\t") == ["", "", "X1", "Y1", "Z1", "X2", "Y2", "Z2", "X3", "Y3", "Z3"]
    assert lines[5] == ""
    back = trc.read_trc(path)
    assert back.markers == ["a", "b", "c"] and back.units == "m"
    np.testing.assert_array_equal(back.frame, [1, 2, 3, 4])
    np.testing.assert_allclose(back.xyz, xyz, atol=1e-6)  # NaN gaps compare equal


def test_trc_reader_refuses_a_broken_marker_span(tmp_path: Path):
    path = trc.write_trc(tmp_path / "m.trc", np.arange(2.0), ["a", "b"], np.zeros((2, 2, 3)), rate=1.0)
    lines = path.read_text().split("\n")
    lines[3] = "Frame#\tTime\ta\tb\t\t"
    path.write_text("\n".join(lines))
    with pytest.raises(trc.TrcFormatError, match="3-column"):
        trc.read_trc(path)


def test_joint_centre_markers_are_joints_world_in_y_up(tmp_path: Path):
    res = rf.load(save_synthetic(tmp_path))
    back = trc.read_trc(trc.write_markers_trc(res, tmp_path / "m.trc", skin=False))
    assert back.markers[:3] == ["pelvis_jc", "hip_r_jc", "knee_r_jc"] and len(back.markers) == 24
    jw = res["joints_world"].astype(np.float64)
    want = np.stack([jw[..., 0], jw[..., 2], -jw[..., 1]], -1)
    np.testing.assert_allclose(back.xyz, want, atol=2e-6)
    assert np.all(back.xyz[:, :, 1] > -0.1), "y-up: the body stands above the floor"


def test_skin_landmarks_follow_a_rigid_pelvis_motion():
    # only the pelvis turns: every skin point must move rigidly with it about the pelvis centre
    q = np.zeros((3, 46))
    q[:, :3] = np.radians([[0, 0, 0], [20, -10, 35], [-15, 25, 80]])
    res = synthetic_result(poses=q)
    names, ids = markers.choose_landmark_vertices(res)
    assert {"asis_r", "psis_l", "knee_r_lat", "heel_l", "toe_r", "head_top", "acromion_l"} <= set(names)
    posed = markers.pose_vertices(res, ids)  # Blender world
    m2w = res["model_to_world"].astype(np.float64)
    v = res["skin_rest_verts"][ids].astype(np.float64)
    j0 = rest_joints()[0]
    m0 = res["rest_frames"][0].astype(np.float64)
    for t in range(3):
        rp = Rotation.from_euler("zxy", np.degrees(q[t, :3]), degrees=True).as_matrix()
        r_model = m0 @ rp @ m0.T
        want_model = (v - j0) @ r_model.T + j0 + res["trans"][t].astype(np.float64)
        np.testing.assert_allclose(posed[t], want_model @ m2w[:3, :3].T + m2w[:3, 3], atol=1e-5)


def test_landmarks_sit_where_their_rule_says():
    res = synthetic_result(poses=np.zeros((1, 46)))
    names, ids = markers.choose_landmark_vertices(res)
    v = dict(zip(names, res["skin_rest_verts"][ids].astype(np.float64), strict=True))
    assert v["knee_r_lat"][0] < v["knee_r_med"][0]  # right is -x in the model frame
    assert v["knee_l_lat"][0] > v["knee_l_med"][0]
    assert v["toe_r"][2] > v["heel_r"][2]  # toes anterior (+z) of the heel
    # head_top: the highest head vertex within 2 cm (height-scaled) of the mid-sagittal plane
    verts = res["skin_rest_verts"]
    scale = np.ptp(verts[:, 1]) / 1.7
    head = np.argmax(res["skin_weights"], 1) == 13
    mid = head & (np.abs(verts[:, 0]) <= 0.02 * scale)
    assert v["head_top"][1] == pytest.approx(verts[mid, 1].max())
    assert abs(v["c7"][0]) <= 0.02 and v["c7"][2] < 0  # on the midline, at the back


def test_full_trc_has_joint_centres_and_landmarks(tmp_path: Path):
    res = rf.load(save_synthetic(tmp_path))
    back = trc.read_trc(trc.write_markers_trc(res, tmp_path / "m.trc"))
    assert len(back.markers) == 24 + 29
    assert back.header["NumMarkers"] == "53" and back.xyz.shape == (res["poses"].shape[0], 53, 3)
    assert np.all(np.isfinite(back.xyz))
