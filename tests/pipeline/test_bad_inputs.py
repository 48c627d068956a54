"""Issue 6, backend side: every kind of bad input through the real command line (``cli.main`` or a process).

Each case checks the exit code, the one line the user sees (what is wrong and what to do, no traceback) and that
nothing half-written is left. Inputs are made here from the shared clips (BSD-3, /work/shared/footage). Where the
fit is not what is tested, the fitter/world/body are the stand-ins of the ``standins`` fixture
(tests/pipeline/conftest.py, synthetic/standins.py; the real fitter is another part); everything before the fit
(decoding, people, landmarks, checks of the files) is the real code.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from hsmr_backend import cli
from hsmr_contract import result_format
from tests.support.video import tag_rotation, write_clip

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (ROOT / "backend", ROOT / "backend" / "contract", ROOT))),
       "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------- helpers


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("hsmr-backend: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    line = lines[0]
    assert len(line) < 700, line  # long paths and key lists; still one line
    return line


def _warnings(err: str) -> str:
    return "\n".join(err.splitlines())


def _nothing_left(out_dir: Path, stem: str = "r") -> None:
    """No result, no temporary file, no work folder of a failed run that never got going."""
    left = sorted(p.name for p in out_dir.iterdir() if p.name.startswith(stem + "."))
    assert left == [], left


def _convert(capsys, video: Path | str, out: Path, *extra: str) -> tuple[int, str, str]:
    return _cli(capsys, "convert", str(video), "-o", str(out), "--progress", "none", "--no-overlay", "--no-plot",
                *extra)


def _frames(path: Path, start: int, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    out = []
    while len(out) < n:
        ok, f = cap.read()
        assert ok
        out.append(f)
    cap.release()
    return out


@pytest.fixture(scope="module")
def cam01(shared_dir) -> Path:
    return shared_dir / "footage" / "single_person_cam01.mp4"


@pytest.fixture(scope="module")
def person_frames(cam01) -> list[np.ndarray]:
    return _frames(cam01, 0, 12)


@pytest.fixture(scope="module")
def person_clip(tmp_path_factory, person_frames) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "person.mp4", person_frames)


# ---------------------------------------------------------------- footage that cannot be used


def _make_bad(kind: str, tmp: Path, cam01: Path) -> Path:
    if kind == "missing":
        return tmp / "nope.mp4"
    if kind == "text_as_mp4":
        p = tmp / "notes.mp4"
        p.write_text("these are my notes, not a video\n" * 20)
        return p
    if kind == "zero_frames":
        p = tmp / "zero.mp4"
        cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48)).release()
        assert p.is_file()
        return p
    if kind == "cut_short":  # a copy that stopped part-way (the index at the end never arrived)
        p = tmp / "cut.mp4"
        data = cam01.read_bytes()
        p.write_bytes(data[: len(data) // 3])
        return p
    if kind == "empty_file":
        p = tmp / "empty.mov"
        p.write_bytes(b"")
        return p
    if kind == "empty_folder":
        p = tmp / "frames"
        p.mkdir()
        return p
    if kind == "bad_image":
        p = tmp / "photo.jpg"
        p.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        return p
    raise AssertionError(kind)


@pytest.mark.parametrize(("kind", "words"), [
    ("missing", "footage not found"),
    ("text_as_mp4", "cannot open video"),
    ("zero_frames", "cannot open video"),
    ("cut_short", "cannot open video"),
    ("empty_file", "cannot open video"),
    ("empty_folder", "no images found"),
    ("bad_image", "cannot read image"),
])
def test_unusable_footage_is_one_line(capsys, tmp_path, cam01, kind, words):
    video = _make_bad(kind, tmp_path, cam01)
    out_dir = tmp_path / "out"
    code, _, err = _convert(capsys, video, out_dir / "r.npz")
    line = _error_line(err)
    assert code == 1 and words in line, line
    if kind != "missing":
        assert any(w in line for w in ("re-export", "give a video", "damaged")), line  # says what to do
    _nothing_left(out_dir)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_footage(capsys, tmp_path, person_clip):
    p = tmp_path / "locked.mp4"
    p.write_bytes(person_clip.read_bytes())
    p.chmod(0)
    code, _, err = _convert(capsys, p, tmp_path / "r.npz")
    assert code == 1 and "not a readable file" in _error_line(err)


def test_video_damaged_in_the_middle_converts_the_first_part(capsys, standins, tmp_path, cam01):
    data = bytearray(cam01.read_bytes())
    n = len(data)
    data[n // 4 : n // 2] = bytes(n // 2 - n // 4)
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    code, _, err = _convert(capsys, bad, tmp_path / "r.npz", "--progress", "bar")
    assert code == 0, err
    res = result_format.load(tmp_path / "r.npz")
    t = len(res["frame_index"])
    assert 5 < t < 100
    assert f"could only be decoded up to frame {t - 1} of 100" in err and "re-export" in err


def test_still_image_is_a_one_frame_result(capsys, standins, tmp_path, person_frames):
    img = tmp_path / "still.png"
    cv2.imwrite(str(img), person_frames[3])
    code, _, err = _convert(capsys, img, tmp_path / "r.npz")
    assert code == 0, err
    res = result_format.load(tmp_path / "r.npz")
    assert list(res["frame_index"]) == [0] and bool(res["valid"][0])
    assert tuple(res["image_size"]) == (person_frames[3].shape[1], person_frames[3].shape[0])


# ---------------------------------------------------------------- people


def test_no_person_in_any_frame(capsys, tmp_path):
    grey = write_clip(tmp_path / "grey.mp4", [np.full((240, 320, 3), 90, np.uint8)] * 6)
    code, _, err = _convert(capsys, grey, tmp_path / "out" / "r.npz")
    line = _error_line(err)
    assert code == 1 and "no person" in line.lower()
    assert not (tmp_path / "out" / "r.npz").exists()


def test_no_person_in_some_frames(capsys, standins, tmp_path, person_frames):
    frames = [f.copy() for f in person_frames]
    for i in (4, 5, 6, 7):
        frames[i][:] = 90  # the camera was covered
    clip = write_clip(tmp_path / "gap.mp4", frames)
    code, _, err = _convert(capsys, clip, tmp_path / "r.npz", "--progress", "bar")
    assert code == 0, err
    res = result_format.load(tmp_path / "r.npz")
    valid = res["valid"].tolist()
    assert valid[4:8] == [False] * 4 and all(valid[:4]) and sum(valid[8:]) >= 3, valid
    assert "subject not found in 4 of 12 frames" in err
    assert np.all(res["keypoints_2d"][4:8] == 0)  # never filled with someone else


def test_no_person_in_some_frames_through_the_real_fit(capsys, tmp_path, person_frames):
    """The same gap with the real fitter: the lost frames are bridged, every frame of the result is finite."""
    pytest.importorskip("hsmr_backend.fit")
    frames = [f.copy() for f in person_frames[:10]]
    for i in (4, 5):
        frames[i][:] = 90
    clip = write_clip(tmp_path / "gap.mp4", frames)
    code, _, err = _convert(capsys, clip, tmp_path / "r.npz", "--mode", "keypoints", "--progress", "bar")
    assert code == 0, err
    res = result_format.load(tmp_path / "r.npz")  # the loader refuses NaN/inf
    assert res["valid"].tolist() == [True] * 4 + [False] * 2 + [True] * 4
    # bridged frames sit between their neighbours, not at some default pose
    j = res["joints_world"]
    gap = np.linalg.norm(j[4:6] - (j[3] + j[6]) / 2, axis=-1).max()
    step = np.linalg.norm(j[6] - j[3], axis=-1).max()
    assert gap < step + 0.05, (gap, step)


def test_person_partly_out_of_frame(capsys, standins, tmp_path, person_frames):
    """The bottom 40 % cut off: the feet leave the picture; the subject is still followed in every frame."""
    h = person_frames[0].shape[0]
    clip = write_clip(tmp_path / "cropped.mp4", [np.ascontiguousarray(f[: int(h * 0.6)]) for f in person_frames])
    code, _, err = _convert(capsys, clip, tmp_path / "r.npz")
    assert code == 0, err
    res = result_format.load(tmp_path / "r.npz")
    assert res["valid"].mean() >= 0.9
    assert standins["track"].kp2d.shape == (12, 33, 3)


def test_two_people_note_names_the_others_for_a_rerun(capsys, standins, tmp_path, shared_dir):
    """Identity through the crossing itself: tests/pipeline/test_landmarks.py::
    test_two_people_chosen_subject_kept_through_occlusion. Here: the command line says who was chosen and how to
    pick the other person."""
    clip = shared_dir / "footage" / "two_people_cam01.mp4"
    code, _, err = _convert(capsys, clip, tmp_path / "r.npz", "--frames", "0:4", "--progress", "bar")
    assert code == 0, err
    meta = json.loads(str(result_format.load(tmp_path / "r.npz")["meta_json"]))
    assert len(meta["candidates"]) >= 2 and "--subject" in meta["subject"]


# ---------------------------------------------------------------- odd but valid footage


def test_portrait_phone_video_with_rotation_tag(capsys, standins, tmp_path, person_frames):
    sideways = write_clip(tmp_path / "sensor.mp4",
                          [cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in person_frames])
    tagged = tag_rotation(sideways, tmp_path / "phone.mp4", 90)
    code, _, err = _convert(capsys, tagged, tmp_path / "r.npz", "--frames", "0:6")
    assert code == 0, err
    res = result_format.load(tmp_path / "r.npz")
    h, w = person_frames[0].shape[:2]
    assert tuple(res["image_size"]) == (w, h)  # upright, as a player shows it
    assert json.loads(str(res["meta_json"]))["rotation"] == 90
    assert res["valid"].all()
    kp = res["keypoints_2d"][0]
    assert kp[:, 0].max() <= w and kp[:, 1].max() <= h  # landmarks in the upright picture


def test_4k_input(capsys, standins, tmp_path, person_frames):
    big = [cv2.resize(f, (2160, 3840), interpolation=cv2.INTER_LINEAR) for f in person_frames[:4]]
    clip = write_clip(tmp_path / "uhd.mp4", big)
    code, _, err = _convert(capsys, clip, tmp_path / "r.npz")
    assert code == 0, err
    res = result_format.load(tmp_path / "r.npz")
    assert tuple(res["image_size"]) == (2160, 3840) and res["valid"].all()


def _make_vfr(src: Path, dst: Path, slow_from: int) -> None:
    """Rewrite an OpenCV mp4's single time-to-sample entry (n, d) as (slow_from, d) + (n - slow_from, 3d): the
    frames after ``slow_from`` come three times slower (what phones write when light drops)."""
    data = bytearray(src.read_bytes())
    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}

    def find(start: int, end: int, parents: list[int]):
        i = start
        while i < end:
            size, typ = struct.unpack(">I4s", data[i : i + 8])
            if typ == b"stts":
                return i, parents
            if typ in containers:
                hit = find(i + 8, i + size, [*parents, i])
                if hit:
                    return hit
            i += size
        return None

    at, parents = find(0, len(data), [])
    size, count, n, d = struct.unpack(">I8xIII", data[at : at + 24])
    assert count == 1
    data[at : at + size] = struct.pack(">I4sIIIIII", size + 8, b"stts", 0, 2, slow_from, d, n - slow_from, 3 * d)
    for p in parents:
        (s,) = struct.unpack(">I", data[p : p + 4])
        data[p : p + 4] = struct.pack(">I", s + 8)

    def durations(start: int, end: int) -> None:  # longer clip: scale the durations, drop the edit list
        i = start
        while i < end:
            size, typ = struct.unpack(">I4s", data[i : i + 8])
            if typ in (b"moov", b"trak", b"mdia"):
                durations(i + 8, i + size)
            elif typ == b"edts":
                data[i + 4 : i + 8] = b"free"
            elif typ in (b"mvhd", b"tkhd", b"mdhd") and data[i + 8] == 0:
                off = i + 20 + (8 if typ == b"tkhd" else 4)
                (dur,) = struct.unpack(">I", data[off : off + 4])
                data[off : off + 4] = struct.pack(">I", dur * (slow_from + 3 * (n - slow_from)) // n)
            i += size

    durations(0, len(data))
    dst.write_bytes(bytes(data))


def test_variable_frame_rate_is_reported_with_real_times(capsys, standins, tmp_path, person_frames):
    cfr = write_clip(tmp_path / "cfr.mp4", person_frames, fps=30.0)
    vfr = tmp_path / "vfr.mp4"
    _make_vfr(cfr, vfr, slow_from=6)
    code, _, err = _convert(capsys, vfr, tmp_path / "r.npz", "--progress", "bar")
    assert code == 0, err
    assert "variable frame rate" in err and "-vsync cfr" in err
    meta = json.loads(str(result_format.load(tmp_path / "r.npz")["meta_json"]))
    ts = np.array(meta["timestamps_ms"])
    np.testing.assert_allclose(np.diff(ts), [33.3] * 6 + [100.0] * 5, atol=1.0)
    # a constant-rate clip says nothing of the kind
    capsys.readouterr()
    code, _, err = _convert(capsys, cfr, tmp_path / "c.npz", "--progress", "bar")
    assert code == 0 and "variable frame rate" not in err
    assert "timestamps_ms" not in json.loads(str(result_format.load(tmp_path / "c.npz")["meta_json"]))


# ---------------------------------------------------------------- wrong model files


def test_wrong_body_files(capsys, tmp_path, person_clip):
    from synthetic.fake_skel import write_fake_skel_pkl, write_fake_smpl_pkl

    old_p = write_fake_skel_pkl(tmp_path / "skel_male.pkl", version="1.0")
    code_p = tmp_path / "skel_evil.pkl"
    code_p.write_bytes(_evil_pickle(tmp_path / "pwned"))
    rand_p = tmp_path / "model.pkl"
    rand_p.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    cases = [
        (write_fake_smpl_pkl(tmp_path / "SMPL_MALE.pkl"), ("SMPL", "skel.is.tue.mpg.de")),
        (old_p, ("'1.0'", "v1.1.1", "skel.is.tue.mpg.de")),
        (rand_p, ("not a SKEL model",)),
        (code_p, ("a pickle can run code",)),
        (tmp_path / "missing.pkl", ("no such file",)),
    ]
    for path, words in cases:
        t0 = time.monotonic()
        code, _, err = _convert(capsys, person_clip, tmp_path / "out" / "r.npz", "--body", str(path),
                                "--mode", "keypoints")
        line = _error_line(err)
        assert code == 1 and "cannot load body" in line and all(w in line for w in words), line
        assert time.monotonic() - t0 < 20  # refused before the landmark stage
        assert not (tmp_path / "out" / "r.npz").exists()
    assert not (tmp_path / "pwned").exists()


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _evil_pickle(target: Path) -> bytes:
    from synthetic.fake_skel import build_fake_skel_dict

    d = build_fake_skel_dict()
    d["version"] = _Evil(target)
    return pickle.dumps(d)


def test_truncated_or_wrong_hsmr_checkpoint(capsys, tmp_path, person_clip, monkeypatch):
    pytest.importorskip("torch")
    from hsmr_backend.hsmr.load import CKPT_REL
    from tests.support.hsmr_release import random_net, write_release

    monkeypatch.setenv("HSMR_CACHE", str(tmp_path / "cache"))
    rel = write_release(tmp_path / "w", random_net())
    ckpt = rel / CKPT_REL
    whole = ckpt.read_bytes()
    ckpt.write_bytes(whole[: len(whole) // 2])
    code, _, err = _convert(capsys, person_clip, tmp_path / "r.npz", "--mode", "hsmr", "--weights", str(rel))
    line = _error_line(err)
    assert code == 1 and "truncated or not a PyTorch checkpoint" in line and "download" in line
    # a checkpoint of another network: a whole, readable file whose tensors do not fit
    import torch

    torch.save({"state_dict": {"backbone.other.weight": torch.zeros(3, 3)}}, ckpt)
    code, _, err = _convert(capsys, person_clip, tmp_path / "r.npz", "--mode", "hsmr", "--weights", str(rel),
                            "--frames", "0:2")
    line = _error_line(err)
    assert code == 1 and "HSMR weights" in line and "do not match" in line and "--mode keypoints" in line
    # a folder that is not a release at all
    (tmp_path / "junk").mkdir()
    code, _, err = _convert(capsys, person_clip, tmp_path / "r.npz", "--mode", "hsmr", "--weights",
                            str(tmp_path / "junk"))
    assert code == 1 and "not an HSMR release folder" in _error_line(err)
    assert not (tmp_path / "r.npz").exists()


def test_hsmr_stage_resumes_after_a_crash(capsys, standins, tmp_path, person_clip, monkeypatch):
    """The network's predictions are saved per batch: after a crash in the HSMR stage the rerun predicts only the
    frames not done yet, and the fit gets the same start as an uninterrupted run."""
    pytest.importorskip("hsmr_backend.hsmr.predictor")
    from hsmr_backend.hsmr import predictor as P
    from tests.support.hsmr_release import random_net, write_release

    monkeypatch.setenv("HSMR_CACHE", str(tmp_path / "cache"))
    rel = write_release(tmp_path / "w", random_net())
    real_init, real_predict = P.HSMRPredictor.__init__, P.HSMRPredictor.predict
    calls: list[int] = []
    crash_at = {"n": 2}

    def init(self, *a, **kw):
        real_init(self, *a, **kw)
        self.batch_size = 4

    def predict(self, images, boxes, **kw):
        if len(calls) == crash_at["n"]:
            raise KeyboardInterrupt
        calls.append(len(images))
        return real_predict(self, images, boxes, **kw)

    monkeypatch.setattr(P.HSMRPredictor, "__init__", init)
    monkeypatch.setattr(P.HSMRPredictor, "predict", predict)
    args = ("--mode", "hsmr", "--weights", str(rel), "--progress", "bar")
    code, _, err = _convert(capsys, person_clip, tmp_path / "r.npz", *args)
    assert code == 130 and "cancelled" in _error_line(err)
    assert calls == [4, 4] and len(list((tmp_path / "r.npz.work").glob("hsmr_*.npz"))) == 2
    crash_at["n"] = -1
    calls.clear()
    code, _, err = _convert(capsys, person_clip, tmp_path / "r.npz", *args)
    assert code == 0, err
    assert "HSMR predictions for 8 frames already done" in err and calls == [4]
    resumed = standins["init"]["poses"].copy()
    calls.clear()
    code, _, err = _convert(capsys, person_clip, tmp_path / "fresh.npz", *args)
    assert code == 0 and calls == [4, 4, 4]
    np.testing.assert_allclose(resumed, standins["init"]["poses"], atol=1e-5)


# ---------------------------------------------------------------- bad result files read by the backend


@pytest.fixture(scope="module")
def good_result(tmp_path_factory) -> Path:
    from synthetic.make_result import make_result

    p = tmp_path_factory.mktemp("res") / "good.npz"
    make_result(p, n_frames=5, n_verts=200, body="synthetic")
    return p


@pytest.mark.parametrize(("kind", "words"), [("truncated", "truncated"), ("newer", "update the add-on"),
                                              ("nan", "NaN")])
def test_bad_result_file_for_export(capsys, tmp_path, good_result, kind, words):
    path = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        data = good_result.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
    else:
        with np.load(good_result, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if kind == "newer":
            arrays["format_version"] = np.int32(int(arrays["format_version"]) + 1)
        else:
            arrays["joints_world"] = arrays["joints_world"].copy()
            arrays["joints_world"][1, 2, 0] = np.nan
        np.savez(path, **arrays)
    code, out, err = _cli(capsys, "export", str(path), "--csv")
    text = out + err
    assert code != 0 and words in text and "Traceback" not in text
    assert not list(tmp_path.glob(f"{kind}.angles*"))


# ---------------------------------------------------------------- writing: full disk, crash, closed Blender


def test_full_disk_while_writing_the_result(capsys, standins, tmp_path, person_clip, monkeypatch):
    real = np.savez_compressed

    def full(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(result_format.np, "savez_compressed", full)
    out = tmp_path / "r.npz"
    code, _, err = _convert(capsys, person_clip, out)
    line = _error_line(err)
    assert code == 1 and "disk is full" in line and "run the same command again" in line
    assert not out.exists() and not list(tmp_path.glob("r.npz.*.tmp"))  # never half-written
    assert list((tmp_path / "r.npz.work").glob("chunk_*.npz"))  # finished frames kept
    monkeypatch.setattr(result_format.np, "savez_compressed", real)
    capsys.readouterr()
    code = cli.main(["convert", str(person_clip), "-o", str(out), "--progress", "bar", "--no-overlay", "--no-plot"])
    _, err = capsys.readouterr()
    assert code == 0 and "resuming: 12 frames already done" in err
    assert len(result_format.load(out)["frame_index"]) == 12 and not (tmp_path / "r.npz.work").exists()


def test_full_disk_while_saving_a_chunk(capsys, standins, tmp_path, person_clip, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # the work folder's chunks are written with it
    code, _, err = _convert(capsys, person_clip, tmp_path / "r.npz")
    assert code == 1 and "disk is full" in _error_line(err)
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "r.npz").exists()


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_terminated_backend_says_cancelled_and_keeps_frames(tmp_path, cam01, sig):
    """The add-on's Cancel and Blender closing send SIGTERM (a terminal sends SIGINT): one line, exit 130, the
    finished chunk stays. The whole clip (100 frames) is asked for and the signal goes at landmark frame 55.

    This once ended in SIGABRT (exit -6): the KeyboardInterrupt was raised inside MediaPipe's graph call and
    tearing the graph down aborted. The handler now only asks, and the work stops between frames."""
    out = tmp_path / "r.npz"
    cmd = [sys.executable, "-m", "hsmr_backend.cli", "convert", str(cam01), "-o", str(out), "--frames", "0:100",
           "--progress", "json", "--mode", "keypoints", "--no-overlay", "--no-plot"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    msgs = []
    for raw in proc.stdout:
        msgs.append(json.loads(raw))
        if msgs[-1]["type"] == "progress" and msgs[-1]["stage"] == "landmarks" and msgs[-1]["frame"] >= 55:
            proc.send_signal(getattr(signal, sig))
            break
    msgs += [json.loads(raw) for raw in proc.stdout]
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 130
    assert msgs[-1]["type"] == "error" and "resume" in msgs[-1]["message"]
    assert "cancelled" in _error_line(err)
    assert list((tmp_path / "r.npz.work").glob("chunk_*.npz")) and not out.exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_killed_backend_keeps_finished_frames_and_resumes(capsys, standins, tmp_path, cam01):
    """Blender closed or crashed: the backend process is killed outright (SIGKILL) in the middle of the landmark
    stage. Finished chunks stay, nothing half-written remains, and the same command resumes after them."""
    out = tmp_path / "r.npz"
    cmd = [sys.executable, "-m", "hsmr_backend.cli", "convert", str(cam01), "-o", str(out), "--frames", "0:70",
           "--progress", "json", "--mode", "keypoints", "--no-overlay", "--no-plot"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT)
    killed_at = None
    t0 = time.monotonic()
    assert proc.stdout is not None
    for raw in proc.stdout:
        msg = json.loads(raw)
        if msg["type"] == "progress" and msg["stage"] == "landmarks" and msg["frame"] >= 55:
            killed_at = msg["frame"]
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() - t0 < 120
    proc.wait(timeout=30)
    assert killed_at is not None
    work = tmp_path / "r.npz.work"
    chunks = sorted(work.glob("chunk_*.npz"))
    assert chunks and not out.exists() and not list(tmp_path.rglob("*.tmp"))
    code = cli.main(cmd[3:5] + ["-o", str(out), "--frames", "0:70", "--progress", "bar", "--mode", "keypoints",
                                "--no-overlay", "--no-plot"])
    _, err = capsys.readouterr()
    assert code == 0 and "resuming: 50 frames already done" in err
    res = result_format.load(out)
    assert res["frame_index"].tolist() == list(range(70)) and res["valid"].mean() > 0.9


def test_reader_gone_stops_with_a_line_and_keeps_frames(tmp_path, person_clip):
    """The add-on's end of the pipe closes (Blender quit): the backend stops cleanly, no traceback."""
    out = tmp_path / "r.npz"
    cmd = [sys.executable, "-m", "hsmr_backend.cli", "convert", str(person_clip), "-o", str(out),
           "--progress", "json", "--mode", "keypoints", "--no-overlay", "--no-plot"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    json.loads(proc.stdout.readline())  # hello
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (1, 130)
    line = _error_line(err)
    assert "run again" in line or "rerun" in line
    assert not out.exists() and not list(tmp_path.rglob("*.tmp"))


# ---------------------------------------------------------------- devices


def test_cuda_asked_for_but_absent_falls_back_to_cpu(capfd, standins, tmp_path, person_clip, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, out, err = _cli(capfd, "convert", str(person_clip), "-o", str(tmp_path / "r.npz"), "--device", "cuda",
                          "--progress", "json", "--no-overlay", "--no-plot", "--frames", "0:3")
    assert code == 0, err
    msgs = [json.loads(ln) for ln in out.splitlines()]
    warn = [m["message"] for m in msgs if m["type"] == "log" and m["level"] == "warning"]
    assert any("CUDA is not available here: running on the CPU instead" in w for w in warn), warn
    assert json.loads(str(result_format.load(tmp_path / "r.npz")["meta_json"]))["device"] == "cpu"


def test_keepalive_lines_only_around_a_silent_call():
    """Loading the network prints nothing for minutes: progress lines keep the add-on's hang detector quiet."""
    import io

    from hsmr_backend.convert import keepalive
    from hsmr_backend.progress import Reporter

    buf = io.StringIO()
    rep = Reporter("json", stream=buf)
    with keepalive(rep, "hsmr-load", every=0.05):
        time.sleep(0.4)
    n = buf.getvalue().count('"stage":"hsmr-load"')
    time.sleep(0.2)
    assert 3 <= n == buf.getvalue().count('"stage":"hsmr-load"')  # and none after the call
