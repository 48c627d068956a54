"""The command line: exit codes and one clear line for every expected failure, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from hsmr_backend import cli
from hsmr_contract import protocol

ROOT = Path(__file__).resolve().parents[2]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("hsmr-backend: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("c") / "grey.mp4"
    wr = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for _ in range(5):
        wr.write(np.full((48, 64, 3), 100, np.uint8))
    wr.release()
    return p


def test_missing_video(capsys, tmp_path):
    code, _, err = _run(capsys, "convert", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "r.npz"),
                        "--progress", "none")
    assert code == 1 and "not found" in _one_error_line(err)


def test_unreadable_video(capsys, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 1000)
    code, _, err = _run(capsys, "convert", str(bad), "-o", str(tmp_path / "r.npz"), "--progress", "none")
    assert code == 1 and "cannot open video" in _one_error_line(err)


@pytest.mark.parametrize("args, words", [
    (["--frames", "10-20"], "--frames"),
    (["--frames", "50:60"], "selects no frames"),
    (["--subject", "tallest"], "--subject"),
    (["--stride", "0"], "--stride"),
    (["--focal-px", "-5"], "--focal-px"),
])
def test_bad_options(capsys, tiny_clip, tmp_path, args, words):
    code, _, err = _run(capsys, "convert", str(tiny_clip), "-o", str(tmp_path / "r.npz"), "--progress", "none",
                        *args)
    assert code in (1, 2) and words in _one_error_line(err)
    assert not (tmp_path / "r.npz").exists()


def test_output_must_be_npz(capsys, tiny_clip, tmp_path):
    code, _, err = _run(capsys, "convert", str(tiny_clip), "-o", str(tmp_path / "r.txt"), "--progress", "none")
    assert code == 1 and ".npz" in _one_error_line(err)


def test_no_person_found(capsys, tiny_clip, tmp_path):
    code, _, err = _run(capsys, "convert", str(tiny_clip), "-o", str(tmp_path / "r.npz"), "--progress", "none",
                        "--mode", "keypoints")
    assert code == 1 and "no person" in _one_error_line(err)
    assert not (tmp_path / "r.npz").exists()


def test_hsmr_mode_without_weights(capsys, tiny_clip, tmp_path, monkeypatch):
    monkeypatch.delenv("HSMR_WEIGHTS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = _run(capsys, "convert", str(tiny_clip), "-o", str(tmp_path / "r.npz"), "--progress", "none",
                        "--mode", "hsmr")
    assert code == 1
    line = _one_error_line(err)
    assert "HSMR" in line and ("--mode keypoints" in line or "not available" in line or "missing" in line)


def test_usage_errors_exit_2(capsys):
    assert cli.main([]) == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["convert"])  # no video, no -o: argparse's own usage message
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["convert", "x.mp4", "-o", "r.npz", "--mode", "magic"])
    assert e.value.code == 2


def test_delegated_subcommands_fail_cleanly_when_their_part_is_missing(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "hsmr_backend.export.cli", None)  # None in sys.modules: ImportError
    code, _, err = _run(capsys, "export", "--help")
    assert code == 2 and "'export' is not available" in err and "Traceback" not in err


def test_json_error_stream_from_a_real_process(tiny_clip, tmp_path):
    src = os.pathsep.join(map(str, (ROOT / "backend", ROOT / "backend" / "contract", ROOT)))
    env = dict(os.environ, PYTHONPATH=src)
    p = subprocess.run([sys.executable, "-m", "hsmr_backend", "convert", str(tmp_path / "missing.mp4"), "-o",
                        str(tmp_path / "r.npz"), "--progress", "json"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    msgs = [protocol.parse_line(ln) for ln in lines]
    assert msgs[0].type == "hello" and msgs[-1].type == "error"
    last = json.loads(lines[-1])
    assert last["stage"] == "error" and "not found" in last["message"]
    assert "Traceback" not in p.stderr


def test_output_folder_that_cannot_be_created(capsys, tiny_clip, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    code, _, err = _run(capsys, "convert", str(tiny_clip), "-o", str(blocker / "sub" / "r.npz"), "--progress",
                        "none")
    assert code == 1 and "output folder" in _one_error_line(err)
