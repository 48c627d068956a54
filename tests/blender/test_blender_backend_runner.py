"""The bpy-free backend runner: non-blocking line reading, outcomes, cancel, clear errors."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from hsmr_blender.io import backend
from hsmr_contract import protocol

FAKE = """
import sys, time
mode = sys.argv[1]
print('{"type":"hello","protocol":%d,"backend_version":"test"}' % (1 if mode != 'oldproto' else 99), flush=True)
for i in range(3):
    print('{"type":"progress","stage":"fit","frame":%d,"total":3}' % (i + 1), flush=True)
    print('not json, a stray print', flush=True)
    time.sleep(0.05)
if mode == 'ok':
    print('{"type":"done","result":"/tmp/x.npz"}', flush=True)
elif mode == 'error':
    print('{"type":"error","message":"no person found in the footage: choose another clip"}', flush=True)
    sys.exit(2)
elif mode == 'crash':
    print('Traceback: boom', file=sys.stderr, flush=True)
    sys.exit(3)
elif mode == 'slow':
    time.sleep(30)
"""


def _run(tmp_path: Path, mode: str) -> backend.BackendProcess:
    script = tmp_path / "fake_backend.py"
    script.write_text(FAKE)
    return backend.BackendProcess([sys.executable, str(script), mode])


def _wait(p: backend.BackendProcess, limit: float = 10.0) -> list[backend.Event]:
    events, t0 = [], time.monotonic()
    while not p.finished():
        t = time.monotonic()
        events += p.poll()
        assert time.monotonic() - t < 0.05, "poll() must not block"
        assert time.monotonic() - t0 < limit
        time.sleep(0.01)
    return events + p.poll()


def test_success_progress_and_stray_lines(tmp_path: Path) -> None:
    p = _run(tmp_path, "ok")
    events = _wait(p)
    assert p.outcome() == "/tmp/x.npz"
    assert p.progress == ("fit", 3, 3) and p.fraction() == 1.0
    assert sum(e.message is None for e in events) == 3  # stray prints are kept as text, not errors


@pytest.mark.parametrize(("mode", "match"), [("error", "no person found"), ("crash", "exit code 3: Traceback"),
                                               ("oldproto", "protocol 99")])
def test_failures_are_one_clear_line(tmp_path: Path, mode: str, match: str) -> None:
    p = _run(tmp_path, mode)
    _wait(p)
    with pytest.raises(backend.BackendError, match=match):
        p.outcome()


def test_cancel_stops_the_process(tmp_path: Path) -> None:
    p = _run(tmp_path, "slow")
    time.sleep(0.3)
    p.cancel()
    _wait(p, limit=6)
    with pytest.raises(backend.BackendError, match="cancelled"):
        p.outcome()


def test_missing_python_is_a_clear_error() -> None:
    with pytest.raises(backend.BackendError, match="set up the backend"):
        backend.BackendProcess(["/nonexistent/python", "-m", "hsmr_backend.cli"])


def test_convert_command_line() -> None:
    cmd = backend.convert_command("a.mp4", "r.npz", python="py", start=5, end=9, smoothing=2.0)
    assert cmd[:8] == ["py", "-m", "hsmr_backend.cli", "convert", "a.mp4", "-o", "r.npz", "--progress"]
    assert cmd[8] == "json" and cmd[cmd.index("--frames") + 1] == "5:10" and cmd[cmd.index("--smoothing") + 1] == "2"
    assert "--up" not in cmd  # the default: a backend from before --up still runs
    cmd = backend.convert_command("a.mp4", "r.npz", python="py", up="body")
    assert cmd[cmd.index("--up") + 1] == "body"
    from hsmr_backend.cli import build_parser  # the backend's own parser takes what the add-on writes

    args = build_parser().parse_args(cmd[3:])
    assert args.up == "body" and args.video == ["a.mp4"]
    assert "--weights" not in cmd
    cmd = backend.convert_command("a.mp4", "r.npz", python="py", mode="skelcf", weights="/models/best.pth")
    args = build_parser().parse_args(cmd[3:])
    assert args.weights == "/models/best.pth" and args.mode == "skelcf"


def test_check_environment_reports_versions() -> None:
    info = backend.check_environment(sys.executable)
    assert info["python"] == sys.version.split()[0] and "cuda" in info
    assert protocol.PROTOCOL_VERSION == 1


def test_setup_commands_need_the_staged_backend(tmp_path: Path) -> None:
    with pytest.raises(backend.BackendError, match="no backend requirements"):
        backend.setup_commands(tmp_path / "env", "python3.11", tmp_path)
    (tmp_path / backend.REQUIREMENTS_FILE).write_text("numpy==1.26.4\n")
    (tmp_path / backend.BACKEND_SOURCE_DIR).mkdir()
    cmds = backend.setup_commands(tmp_path / "env", "python3.11", tmp_path)
    assert cmds[0] == ["python3.11", "-m", "venv", str(tmp_path / "env")]
    assert cmds[2][-2:] == ["-r", str(tmp_path / backend.REQUIREMENTS_FILE)]
    assert all(c[0] == str(backend.venv_python(tmp_path / "env")) for c in cmds[1:])
