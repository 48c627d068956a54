"""``convert CLIP1 CLIP2 --calibration CALIB`` through the real command line: the shared clips (the Pose2Sim demo's
cam01 and cam02, BSD-3) with the demo's calibration (tests/support/pose2sim_demo_calib.toml, written by our reader
from the package's Calib.qca.txt), and every bad input as one line with nothing written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from hsmr_backend import cli
from hsmr_backend.multiview import read_calibration, write_toml
from hsmr_contract import result_format
from synthetic.multiview_scene import ring_cameras

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
def test_bad_multiview_input_is_one_line_and_writes_nothing(capsys, tmp_path, clips, case, words):
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
