"""The multi-view building blocks on a synthetic calibrated studio (synthetic/multiview_scene.py) and on calibration
files written here: readers, clip matching, size changes, triangulation, the subject across views, left/right
labels, principal-point refinement and synchronisation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hsmr_backend import multiview as M
from hsmr_backend.landmarks import MIRROR
from hsmr_backend.multiview.refine import per_view_error
from synthetic.multiview_scene import SIZE, observe, person, ring_cameras


def test_toml_round_trip(tmp_path):
    cams = ring_cameras(3)
    cams[1] = replace(cams[1], dist=np.array([-0.05, 0.1, 0.001, -0.002]))
    M.write_toml(cams, tmp_path / "calib.toml")
    back = M.read_calibration(tmp_path / "calib.toml")
    assert [c.name for c in back] == ["cam01", "cam02", "cam03"]
    for a, b in zip(cams, back, strict=True):
        np.testing.assert_allclose(b.R, a.R, atol=1e-12)
        np.testing.assert_allclose(b.t, a.t, atol=1e-12)
        np.testing.assert_allclose(b.K, a.K)
        np.testing.assert_allclose(b.dist, a.dist)
        assert b.size == SIZE


def _qca_entry(serial: str, cam: M.CalibratedCamera, left: int = 0, model: str = "none") -> str:
    """A camera in Qualisys' layout: transform rows = the camera's axes in the lab for a camera looking along -z
    (y up), position in mm, intrinsics in 1/64 px of the sensor (whose fov_video starts at ``left``)."""
    r_q = np.diag([1.0, -1.0, -1.0]) @ cam.R
    rot = " ".join(f'r{i + 1}{j + 1}="{r_q[i, j]!r}"' for i in range(3) for j in range(3))
    x, y, z = (1000.0 * cam.centre).tolist()
    w, h = cam.size
    k = cam.K * 64
    return (f'<camera active="1" avg-residual="0.4" model="{model}" serial="{serial}" viewrotation="0">'
            f'<fov_video bottom="{h - 1}" left="{left}" right="{left + w - 1}" top="0"/>'
            f'<transform {rot} x="{x}" y="{y}" z="{z}"/>'
            f'<intrinsic centerPointU="{k[0, 2] + 64 * left}" centerPointV="{k[1, 2]}" focalLengthU="{k[0, 0]}" '
            f'focalLengthV="{k[1, 1]}" radialDistortion1="-3.2" radialDistortion2="6.4" tangentalDistortion1="0" '
            f'tangentalDistortion2="0"/></camera>')


def test_qualisys_calibration_read_by_pose2sims_rules(tmp_path):
    cams = ring_cameras(3)
    body = [_qca_entry("cam10", cams[2]), _qca_entry("cam2", cams[1], left=16),
            _qca_entry("marker", cams[0], model="oqus"), _qca_entry("cam1", cams[0])]
    path = tmp_path / "Calib.qca.txt"
    path.write_text("<?xml version='1.0'?><calibration><cameras>" + "".join(body) + "</cameras></calibration>")
    back = M.read_calibration(path)
    assert [c.name for c in back] == ["cam1", "cam2", "cam10"]  # natural order, the marker camera left out
    pts = person(5).reshape(-1, 3)
    for want, got in zip(cams, back, strict=True):
        np.testing.assert_allclose(got.project(pts), want.project(pts), atol=1e-6)
        np.testing.assert_allclose(got.dist, [-0.05, 0.1, 0.0, 0.0])  # divided by 64, as Pose2Sim does


@pytest.mark.parametrize("name, text, why", [
    ("calib.json", "{}", "not a calibration file"),
    ("calib.toml", "this is = = not toml", "not a readable TOML"),
    ("calib.toml", "[metadata]\nadjusted = false\n", "holds no camera"),
    ("calib.toml", '[cam_1]\nname = "cam_1"\nmatrix = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n', "lacks or garbles"),
    ("x.qca.txt", "<calibration><cameras>", "not a readable Qualisys"),
])
def test_bad_calibration_files_say_what_is_wrong(tmp_path, name, text, why):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(M.CalibrationError, match=why) as e:
        M.read_calibration(path)
    assert "\n" not in str(e.value)


def test_clips_matched_by_name_else_by_order():
    cams = ring_cameras(3)
    idx, line = M.match_clips(["/data/take_cam03.mp4", "/data/take_cam01.mp4"], cams)
    assert idx == [2, 0] and "by name" in line and "take_cam03.mp4 -> cam03" in line
    idx, line = M.match_clips(["front.mp4", "side.mp4", "back.mp4"], cams)
    assert idx == [0, 1, 2] and "by order" in line
    with pytest.raises(M.CalibrationError, match="4 clips but the calibration has only 3"):
        M.match_clips(["a", "b", "c", "d"], cams)


def test_a_slightly_resized_clip_gets_rescaled_intrinsics_and_a_large_change_is_refused():
    cam = replace(ring_cameras(1)[0], size=(1088, 1920))
    resized, warning = M.fit_to_image(cam, 1080, 1920)
    assert warning and "scaled by 0.9926" in warning
    s = 1080 / 1088  # the calibrated image scaled to 1080 wide, centred vertically (7 px above and below)
    pts = person(3).reshape(-1, 3)
    want = cam.project(pts) * s + [0.0, (1920 - 1920 * s) / 2]
    np.testing.assert_allclose(resized.project(pts), want, atol=1e-6)
    assert M.fit_to_image(cam, 1088, 1920) == (cam, None)
    with pytest.raises(M.CalibrationError, match="calibrated for 1088x1920 px images but its clip is 1920x1080"):
        M.fit_to_image(cam, 1920, 1080)


def test_triangulation_is_exact_without_noise_and_drops_a_wrong_view():
    cams = ring_cameras(4)
    pts = person(4).reshape(-1, 3)
    kp = observe(pts[None], cams)[:, 0]
    p = np.stack([c.projection for c in cams])
    got, used, err = M.triangulate(kp[..., :2], kp[..., 2], p)
    np.testing.assert_allclose(got, pts, atol=1e-6)
    kp[2, :10, :2] += 80.0  # one view badly wrong for ten points
    got, used, err = M.triangulate(kp[..., :2], kp[..., 2], p)
    np.testing.assert_allclose(got, pts, atol=1e-6)
    assert not used[2, :10].any() and used[2, 10:].all()


def test_the_subject_is_found_in_another_view_and_a_lone_bystander_is_refused():
    cams = ring_cameras(2)
    subject, bystander = person(1, seed=0), person(1, seed=5, start=(1.0, -0.8))
    ref = observe(subject, cams[:1])[0, 0]
    cands = [observe(bystander, cams[1:])[0, 0], observe(subject, cams[1:], noise_px=3.0)[0, 0]]
    k, res = M.consistent_candidate(ref, cams[0], cands, cams[1])
    assert k == 1 and res[1] < 5 < 50 < res[0]
    k, _ = M.consistent_candidate(ref, cams[0], cands[:1], cams[1])
    assert k == -1


def test_left_right_made_consistent_across_views_and_a_wrong_view_drops_out():
    cams = ring_cameras(3)
    kp = observe(person(30), cams, noise_px=2.0)
    wrong = kp.copy()
    wrong[1, 5:15] = wrong[1, 5:15][:, MIRROR]  # view 2 mirrored for ten frames
    fixed, applied = M.consistent_labels(wrong, cams)
    np.testing.assert_allclose(fixed, kp)
    assert np.flatnonzero(applied[1]).tolist() == list(range(5, 15)) and not applied[[0, 2]].any()
    other = observe(person(30, seed=5, start=(1.0, -0.8)), cams)
    mixed = kp.copy()
    mixed[2, 20:] = other[2, 20:]  # view 3 follows a bystander from frame 20
    drop = M.disagreeing_frames(mixed, cams)
    assert drop[2, 20:].all() and not drop[2, :20].any() and not drop[:2].any()


def test_principal_points_refined_from_the_subject():
    cams = ring_cameras(4)
    kp = observe(person(40), cams, noise_px=1.0)
    bias = np.array([[12.0, -8.0], [-15.0, 5.0], [20.0, 10.0], [-6.0, -18.0]])
    biased = [c.with_principal_point(c.K[0, 2] + b[0], c.K[1, 2] + b[1]) for c, b in zip(cams, bias, strict=True)]
    r = M.refine_principal_points(kp, biased)
    assert (r.error_before_px > 5).all() and (r.error_after_px < 1.5).all()
    # what is left of the bias is a move of the whole subject, up to the 3 D translation the views cannot tell
    fixed = np.array([c.K[:2, 2] for c in r.cameras])
    left = fixed - np.array([c.K[:2, 2] for c in cams])
    assert np.abs(left).max() < 6.0 < np.abs(bias).max()
    np.testing.assert_array_less(per_view_error(kp, r.cameras), 1.5)


def test_offsets_found_where_clips_start_apart_and_by_index_where_they_start_together():
    cams = ring_cameras(3)
    kp = observe(person(90), cams, noise_px=1.0)
    offsets, line = M.estimate_offsets(list(kp), cams, fps=30.0)
    assert offsets == [0, 0, 0] and "start together" in line
    late = [kp[0], kp[1][6:], np.concatenate([np.zeros((4, 33, 3)), kp[2]])]  # clip 2 starts 6 frames later ...
    offsets, line = M.estimate_offsets(late, cams, fps=30.0)
    assert offsets == [0, -6, 4] and "override with --offsets" in line
    assert M.parse_offsets("auto", 3) is None and M.parse_offsets("0", 3) == [0, 0, 0]
    assert M.parse_offsets("0,-6,4", 3) == [0, -6, 4]
    with pytest.raises(M.SyncError, match="give 3 whole numbers"):
        M.parse_offsets("3,1", 3)


def test_the_labs_up_is_a_calibration_axis_only_when_the_body_stands_along_it():
    from hsmr_backend.multiview.fitting import calibration_up, view_weights

    cams = ring_cameras(2)
    pts = np.full((3, 33, 3), np.nan)
    pts[:, [11, 12]] = [0.0, 0.0, 1.5]  # shoulders above ...
    pts[:, [27, 28]] = [0.0, 0.0, 0.1]  # ... the ankles, along the lab's z
    up, note = calibration_up(cams[0], cams[0].to_camera(pts))
    np.testing.assert_allclose(up, cams[0].R[:, 2])
    assert "+z" in note
    pts[:, [11, 12]] = [0.0, 1.0, 1.1]  # a body leaning 45° from every axis of the lab: no axis is up
    up, note = calibration_up(cams[0], cams[0].to_camera(pts))
    assert up is None and "no calibration axis is vertical" in note
    # against the median error (9 px): better views count fully, worse ones by (9 / error)², at least 0.25
    np.testing.assert_allclose(view_weights(np.array([6.0, 6.0, 12.0, 30.0])), [1.0, 1.0, 0.5625, 0.25])
