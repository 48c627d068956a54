"""``convert CLIP1 CLIP2 --calibration CALIB`` through the real command line: the shared clips (the Pose2Sim demo's
cam01 and cam02, BSD-3) with the demo's calibration (tests/support/pose2sim_demo_calib.toml, written by our reader
from the package's Calib.qca.txt), and every bad input as one line with nothing written."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from hsmr_backend import cli
from hsmr_backend import landmarks as L
from hsmr_backend.multiview import read_calibration, write_toml
from hsmr_backend.multiview.convert import MultiViewOptions, convert_views
from hsmr_backend.progress import Reporter
from hsmr_contract import result_format
from synthetic.multiview_scene import ring_cameras
from tests.support.video import write_clip

CALIB = Path(__file__).resolve().parents[1] / "support" / "pose2sim_demo_calib.toml"


@pytest.fixture(scope="module")
def clips(shared_dir) -> list[str]:
    return [str(shared_dir / "footage" / f"single_person_cam0{i}.mp4") for i in (1, 2)]


def _convert(capsys, videos: list[str], out: Path, *extra: str) -> tuple[int, str]:
    code = cli.main(["convert", *videos, "-o", str(out), "--progress", "bar", "--no-overlay", "--no-plot", *extra])
    return code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("hsmr-backend: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _without_first_frames(clip: str, skip: int, out: Path) -> str:
    """A copy of ``clip`` that starts ``skip`` frames later (a camera started late)."""
    src = cv2.VideoCapture(clip)

    def frames():
        while (frame := src.read()[1]) is not None:
            yield frame

    return str(write_clip(out, itertools.islice(frames(), skip, None), src.get(cv2.CAP_PROP_FPS)))


def test_a_late_camera_is_found_to_the_frame_on_real_footage(capsys, tmp_path, clips):
    """cam02's clip started 9 frames late: frame i of cam01 is frame i - 9 of it, found from the footage alone."""
    late = _without_first_frames(clips[1], 9, tmp_path / "cam02.mp4")
    out = tmp_path / "r.npz"
    code, err = _convert(capsys, [clips[0], late], out, "--calibration", str(CALIB), "--frames", "0:50")
    assert code == 0, err
    assert "cam02 -9 (" in err and "override with --offsets" in err
    r = result_format.load(out)
    assert r["cameras_frame_offset"].tolist() == [0, -9]
    assert r["frame_index"].tolist() == list(range(9, 50))  # only the moments both clips show


def test_two_calibrated_views_of_real_footage(capsys, tmp_path, clips):
    out = tmp_path / "r.npz"
    code, err = _convert(capsys, [clips[1], clips[0]], out, "--calibration", str(CALIB), "--frames", "0:12")
    assert code == 0, err
    assert "by name: single_person_cam02.mp4 -> cam02, single_person_cam01.mp4 -> cam01" in err
    assert "the clip is 1080x1920 px, calibrated 1088x1920" in err and "start together" in err
    r = result_format.load(out)
    assert list(r["camera_names"]) == ["cam02", "cam01"]  # the first clip's camera is the first camera
    assert r["cameras_frame_offset"].tolist() == [0, 0]
    assert r["cameras_image_size"].tolist() == [[1080, 1920], [1080, 1920]]
    cams = read_calibration(CALIB)
    assert r["cameras_K"][0, 0, 0] == pytest.approx(cams[1].K[0, 0] * 1080 / 1088, rel=1e-5)
    np.testing.assert_allclose(r["cameras_to_world"][0], r["camera_to_world"], atol=1e-5)
    # joints_cam stays in the first camera's frame, and every camera's pose puts the body where the views saw it
    jw = r["joints_world"].reshape(-1, 3)
    jc = (jw - r["camera_to_world"][:3, 3]) @ r["camera_to_world"][:3, :3]
    np.testing.assert_allclose(jc.reshape(r["joints_cam"].shape), r["joints_cam"], atol=2e-3)
    err_views = r["reprojection_error_views_px"]
    assert err_views.shape == (2, 12) and 0 < np.median(err_views) < 25.0
    for v in range(2):  # the fitted landmarks' 2D error, recomputed from the stored camera of each view
        w2c = np.linalg.inv(r["cameras_to_world"][v])
        pc = jw @ w2c[:3, :3].T + w2c[:3, 3]
        uv = pc[:, :2] / pc[:, 2:] * np.diag(r["cameras_K"][v])[:2] + r["cameras_K"][v][:2, 2]
        kp = r["keypoints_2d_views"][v].reshape(12, 33, 3)
        assert (uv[:, 0] > 0).all() and (uv[:, 0] < 1080).all() and kp[..., 2].max() > 0.5
    assert r["format_version"] >= 2 and "fit reprojection error per view" in err


def _small_clip(path: Path, fps: float, frames: int = 3) -> str:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 64))
    for _ in range(frames):
        w.write(np.full((64, 64, 3), 127, np.uint8))
    w.release()
    return str(path)


def _away(tmp_path: Path) -> str:
    """The demo's calibration with cam02 turned round: it looks away from where the subject is."""
    cams = read_calibration(CALIB)
    flip = np.diag([-1.0, 1.0, -1.0])
    cams[1] = replace(cams[1], R=flip @ cams[1].R, t=flip @ cams[1].t)
    write_toml(cams, tmp_path / "away.toml")
    return str(tmp_path / "away.toml")


@pytest.mark.parametrize("case, words", [
    ("not a calibration", "calib.json is not a calibration file this tool reads"),
    ("camera count", "3 clips but the calibration has only 2 camera(s)"),
    ("cannot open", "cannot open video"),
    ("frame rates", "different frame rates"),
    ("no calibration", "2 clips given without --calibration"),
    ("camera cannot see", "camera 'cam02' (single_person_cam02.mp4) does not see the subject chosen in 'cam01'"),
])
def test_bad_multiview_input_is_one_line_and_writes_no_result(capsys, tmp_path, clips, case, words):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    ring = tmp_path / "ring.toml"
    write_toml(ring_cameras(2), ring)
    videos, calib = list(clips), str(CALIB)
    if case == "not a calibration":
        calib = str(tmp_path / "calib.json")
        Path(calib).write_text("{}")
    elif case == "camera count":
        videos, calib = clips + [clips[0]], str(ring)
    elif case == "cannot open":
        (tmp_path / "broken.mp4").write_bytes(b"not a video")
        videos = [clips[0], str(tmp_path / "broken.mp4")]
    elif case == "frame rates":
        videos = [_small_clip(tmp_path / "a.mp4", 30.0), _small_clip(tmp_path / "b.mp4", 25.0)]
        calib = str(ring)
        write_toml([replace(c, size=(64, 64)) for c in ring_cameras(2)], ring)
    elif case == "camera cannot see":
        calib = _away(tmp_path)
    extra = [] if case == "no calibration" else ["--calibration", calib]
    code, err = _convert(capsys, videos, out_dir / "r.npz", *extra, "--frames", "0:3")
    assert code != 0
    assert words in _one_error_line(err)
    if case == "camera cannot see":  # cam01's landmarks were done: kept for the rerun once the calibration is fixed
        assert sorted(p.name for p in out_dir.iterdir()) == ["r.npz.work"]
        assert list((out_dir / "r.npz.work" / "cam01").glob("chunk_*.npz"))
    else:
        assert sorted(p.name for p in out_dir.iterdir()) == []


def test_the_add_ons_command_line_for_several_cameras():
    from hsmr_blender.io import backend

    cmd = backend.convert_command("a.mp4", "r.npz", python="py", more_videos=["b.mp4", "c.mp4"], calibration="k.toml")
    args = cli.build_parser().parse_args(cmd[3:])
    assert args.video == ["a.mp4", "b.mp4", "c.mp4"] and args.calibration == "k.toml" and args.output == "r.npz"


def test_given_offsets_count_the_clips_own_frames_under_a_stride(capsys, tmp_path, clips):
    """--offsets are the clips' own frames: with --stride 2, an offset of 3 frames falls between kept frames and is
    refused (one line, nothing written); 0,2 is one kept frame and is stored as 2 of the clip's frames. A focal
length given beside a calibration is ignored, and the log says so."""
    out = tmp_path / "r.npz"
    code, err = _convert(capsys, list(clips), out, "--calibration", str(CALIB), "--frames", "0:12", "--stride", "2",
                         "--offsets", "0,3")
    assert code != 0 and "each offset must be a multiple of 2" in _one_error_line(err)
    assert not out.exists()
    code, err = _convert(capsys, list(clips), out, "--calibration", str(CALIB), "--frames", "0:12", "--stride", "2",
                         "--offsets", "0,2", "--focal-px", "1500")
    assert code == 0, err
    assert "with --calibration, --focal-px has no effect" in err  # the calibration's focal is used, and we say so
    assert result_format.load(out)["cameras_frame_offset"].tolist() == [0, 2]


class _Recorder(Reporter):
    """Keeps every progress report and note; ``stop_after`` landmark frames (over all views) it stops like Ctrl+C."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__("none")
        self.events: list[tuple[str, int, int]] = []
        self.notes: list[str] = []
        self.stop_after = stop_after

    def stage(self, stage: str, frame: int, total: int) -> None:
        self.events.append((stage, frame, total))
        if stage == "landmarks" and self.stop_after is not None and frame > self.stop_after:
            raise KeyboardInterrupt

    def info(self, message: str, level: str = "info") -> None:
        self.notes.append(message)


FRAMES = 12  # frames 0:12 of each shared clip


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, clips):
    """One conversion of cam01 + cam02 from start to end, with every camera's overlay."""
    out = tmp_path_factory.mktemp("uninterrupted") / "r.npz"
    rec = _Recorder()
    summary = convert_views(MultiViewOptions(list(clips), str(CALIB), str(out), frames=f"0:{FRAMES}", plot=False),
                            rec)
    return out, summary, rec


def _counting_tracker(monkeypatch) -> dict[str, int]:
    """Counts the frames the landmark stage tracks (``SubjectTracker.step``: one per frame detected)."""
    real, calls = L.SubjectTracker.step, {"n": 0}

    def step(self, frame):
        calls["n"] += 1
        return real(self, frame)

    monkeypatch.setattr(L.SubjectTracker, "step", step)
    return calls


def _same_result(a: Path, b: Path) -> None:
    ra, rb = result_format.load(a), result_format.load(b)
    assert sorted(ra) == sorted(rb)
    for k in ra:
        if k != "meta_json":
            np.testing.assert_array_equal(ra[k], rb[k], err_msg=k)
    ma, mb = json.loads(str(ra["meta_json"])), json.loads(str(rb["meta_json"]))
    assert {k: v for k, v in ma.items() if k != "options"} == {k: v for k, v in mb.items() if k != "options"}


def test_an_interrupted_conversion_resumes_every_view(tmp_path, clips, uninterrupted, monkeypatch):
    """Stopped in the second view's landmarks, the rerun takes the first view's frames from its work folder
    (tracked frames counted), detects the second's, writes the uninterrupted run's result array for array, and
    removes the work folders; --no-resume starts over."""
    out, work = tmp_path / "r.npz", tmp_path / "r.npz.work"
    opts = MultiViewOptions(list(clips), str(CALIB), str(out), frames=f"0:{FRAMES}", overlay=False, plot=False)
    tracked = _counting_tracker(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        convert_views(opts, _Recorder(stop_after=FRAMES + 2))
    assert not out.exists() and tracked["n"] > FRAMES
    assert list((work / "cam01").glob("chunk_*.npz")) and (work / "cam02").is_dir()
    tracked["n"] = 0
    rec = _Recorder()
    convert_views(opts, rec)
    assert tracked["n"] == FRAMES  # the second view only
    assert any(f"resuming: {FRAMES} frames already done in {work / 'cam01'}" in n for n in rec.notes)
    _same_result(uninterrupted[0], out)
    assert not work.exists() and not list(tmp_path.glob("*.part.*"))
    # one progress bar over both views, also when resuming
    assert {t for s, _f, t in rec.events if s == "landmarks"} == {2 * FRAMES}
    assert max(f for s, f, _t in rec.events if s == "landmarks") == 2 * FRAMES
    with pytest.raises(KeyboardInterrupt):
        convert_views(opts, _Recorder(stop_after=FRAMES + 2))
    tracked["n"] = 0
    rec = _Recorder()
    convert_views(replace(opts, resume=False), rec)
    assert tracked["n"] == 2 * FRAMES and not any("resuming" in n for n in rec.notes)
    _same_result(uninterrupted[0], out)


def test_no_resume_beside_a_calibration_is_taken_not_reported_as_ignored(capsys, tmp_path, clips):
    code, err = _convert(capsys, list(clips), tmp_path / "r.npz", "--calibration", str(CALIB), "--frames", "0:4",
                         "--no-resume")
    assert code == 0, err
    assert "has no effect" not in err and not (tmp_path / "r.npz.work").exists()


LIMB_KEYPOINTS = [11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]  # MediaPipe shoulders .. ankles


def _skeleton_pixels(overlay: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """(N,2) x,y of the pixels the overlay drew in the skeleton's colours (orange left, blue right; not the green
    keypoints) where the clip's own frame differs."""
    b, g, r = (overlay[..., i].astype(int) for i in range(3))
    changed = np.abs(overlay.astype(int) - raw.astype(int)).sum(-1) > 120
    orange = (r > 190) & (g > 90) & (g < 190) & (b < 90)
    blue = (b > 190) & (g > 100) & (g < 220) & (r < 90)
    ys, xs = np.nonzero(changed & (orange | blue))
    return np.stack([xs, ys], -1)


def _near_share(points: np.ndarray, drawn: np.ndarray, radius: float) -> float:
    """The share of ``points`` with a drawn pixel within ``radius``."""
    d = np.linalg.norm(points[:, None, :] - drawn[None, :, :], axis=-1).min(1)
    return float((d < radius).mean())


def test_every_camera_gets_its_own_overlay(uninterrupted, clips):
    """The second camera's overlay: its clip's picture at the overlay's size, one frame per fitted frame, the
    skeleton on that camera's keypoints (and not on the first camera's, at the same pixels)."""
    out, summary, rec = uninterrupted
    first, second = out.with_name("r.overlay.mp4"), out.with_name("r.overlay.cam02.mp4")
    assert summary.outputs == [str(out), str(first), str(second)]
    assert not out.with_name("r.npz.work").exists()
    assert {t for s, _f, t in rec.events if s == "overlay"} == {2 * FRAMES}  # one bar over both videos
    r = result_format.load(out)
    cap, raw = cv2.VideoCapture(str(second)), cv2.VideoCapture(clips[1])
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(r["frame_index"]) == FRAMES
    shares = []
    for k in (0, FRAMES // 2, FRAMES - 1):
        cap.set(cv2.CAP_PROP_POS_FRAMES, k)
        raw.set(cv2.CAP_PROP_POS_FRAMES, int(r["frame_index"][k] + r["cameras_frame_offset"][1]))
        (ok, img), (ok_raw, frame) = cap.read(), raw.read()
        assert ok and ok_raw and img.shape == (1280, 720, 3)  # 1080x1920 at most 1280 px on the long side
        drawn = _skeleton_pixels(img, cv2.resize(frame, (720, 1280), interpolation=cv2.INTER_LINEAR))
        scale = 720 / 1080
        own, other = (r["keypoints_2d_views"][v][k][LIMB_KEYPOINTS] for v in (1, 0))
        shares.append([_near_share(kp[kp[:, 2] > 0.5, :2] * scale, drawn, 15.0) for kp in (own, other)])
    own_share, other_share = np.mean(shares, axis=0)
    assert own_share > 0.9 and other_share < 0.6, shares


def test_a_cameras_overlay_sees_through_its_lens_at_its_frame_offset(tmp_path):
    """Camera 1 of a made-up calibrated result: its clip's frame k is grey level 20k, its frame offset 3, its lens
    k1 = 0.3. Result frames 2..4 are drawn over clip frames 5..7, and a joint at (0.5, 0.4, 1) m in that camera's
    frame lands where the lens puts it: (0.5, 0.4) * (1 + 0.3 * 0.41) in focal units (the pinhole alone would put
    it 7.7 px off)."""
    from hsmr_backend import video as V
    from hsmr_backend.overlay import write_overlay
    from hsmr_contract import dofs

    clip = tmp_path / "cam.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    for k in range(10):
        w.write(np.full((120, 160, 3), 20 * k, np.uint8))
    w.release()
    K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # a quarter turn and a shift: the camera is not the world
    cam_to_world[:3, 3] = [1.0, 2.0, 0.5]
    joint_world = cam_to_world[:3, :3] @ [0.5, 0.4, 1.0] + cam_to_world[:3, 3]
    result = {"frame_index": np.array([2, 3, 4]), "fps": np.float32(30.0), "joint_parents": np.array(dofs.PARENTS),
              "valid": np.ones(3, bool), "joints_world": np.tile(joint_world, (3, 24, 1)),
              "cameras_K": np.stack([K, K]), "cameras_distortion": np.array([[0.0] * 5, [0.3, 0, 0, 0, 0]]),
              "cameras_to_world": np.stack([np.eye(4), cam_to_world]), "cameras_frame_offset": np.array([0, 3]),
              "keypoints_2d_views": np.zeros((2, 3, 33, 3))}
    path = write_overlay(V.open_source(str(clip), None), 1, result, tmp_path / "o.mp4", camera=1)
    expected = np.array([80 + 100 * 0.5 * 1.123, 60 + 100 * 0.4 * 1.123])  # 1 + k1 * r², r² = 0.5² + 0.4²
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    for clip_frame in (5, 6, 7):
        ok, img = cap.read()
        assert ok and img.shape == (120, 160, 3)
        grey = float(np.median(img[:40, :40]))
        assert round(grey / 20) == clip_frame  # the clip's frame (the codec shifts the grey a little), not the result's
        ys, xs = np.nonzero(np.abs(img.astype(int) - grey).max(-1) > 60)
        assert len(xs) > 10
        np.testing.assert_allclose([xs.mean(), ys.mean()], expected, atol=1.5)
