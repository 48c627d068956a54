"""The add-on side of issue 6: a hung, dead, garbled, wrong-version or missing backend, and bad result files.

The runner (``hsmr_blender/io/backend.py``, bpy-free) is driven against small fake backend scripts; the
imports run in the bpy wheel and must leave nothing half-built in the scene.
"""

from __future__ import annotations

import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hsmr_blender.io import backend
from hsmr_contract import protocol, result_format

HELLO = '{"type":"hello","protocol":1,"backend_version":"test"}'

FAKES = {
    # a backend that says hello, reports one frame and then hangs while alive
    "hang": f"import sys, time\nprint({HELLO!r}, flush=True)\n"
            "print('{\"type\":\"progress\",\"stage\":\"load\",\"frame\":0,\"total\":1}', flush=True)\n"
            "print('loading weights', file=sys.stderr, flush=True)\ntime.sleep(60)\n",
    # dies mid-run without a done or error message
    "crash": f"import sys, os\nprint({HELLO!r}, flush=True)\n"
             "print('{\"type\":\"progress\",\"stage\":\"fit\",\"frame\":3,\"total\":9}', flush=True)\n"
             "print('Segmentation fault in libtorch', file=sys.stderr, flush=True)\nos._exit(139)\n",
    # exits 0 without ever saying done
    "silent": f"print({HELLO!r}, flush=True)\n",
    # garbage on stdout, then a proper run
    "garbage": f"import sys\nprint({HELLO!r}, flush=True)\n"
               "sys.stdout.buffer.write(b'\\xff\\xfe not utf8\\n{\"type\":\"progress\"}\\n[1,2]\\n'"
               " + b'x' * 70000 + b'\\n')\n"
               "print('{\"type\":\"done\",\"result\":\"/tmp/r.npz\"}', flush=True)\n",
    # a newer backend speaking protocol 2
    "newproto": "print('{\"type\":\"hello\",\"protocol\":2,\"backend_version\":\"9.0\"}', flush=True)\n"
                "import time\ntime.sleep(30)\n",
    # something that is not our backend at all: protocol-looking lines but no hello
    "nohello": "print('{\"type\":\"done\",\"result\":\"/tmp/evil.npz\"}', flush=True)\n",
    # the backend environment lacks the package (what a broken environment looks like)
    "broken_env": "import hsmr_backend_that_is_not_installed\n",
}


def _start(tmp_path: Path, name: str, **kw) -> backend.BackendProcess:
    script = tmp_path / f"fake_{name}.py"
    script.write_text(FAKES[name])
    return backend.BackendProcess([sys.executable, str(script)], log_path=tmp_path / "backend.log", **kw)


def _run_to_end(p: backend.BackendProcess, limit: float = 15.0) -> list[backend.Event]:
    events, t0 = [], time.monotonic()
    while not p.finished():
        events += p.poll()
        assert time.monotonic() - t0 < limit, "the runner waited on the backend too long"
        time.sleep(0.02)
    return events + p.poll()


def _one_line(p: backend.BackendProcess) -> str:
    with pytest.raises(backend.BackendError) as ei:
        p.outcome()
    msg = str(ei.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_hung_backend_is_stopped_and_reported(tmp_path: Path) -> None:
    t0 = time.monotonic()
    p = _start(tmp_path, "hang", stall_s=1.0)
    _run_to_end(p, limit=10)
    assert time.monotonic() - t0 < 8 and not p.running
    msg = _one_line(p)
    assert "sent nothing for" in msg and "'load'" in msg and "hung" in msg and str(p.log_path) in msg
    assert "loading weights" in p.log_path.read_text()  # stderr went to the log the panel opens


def test_cancel_never_waits_and_kills_a_backend_that_ignores_it(tmp_path: Path, monkeypatch) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(f"import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint({HELLO!r}, "
                      "flush=True)\ntime.sleep(60)\n")
    monkeypatch.setattr(backend, "KILL_AFTER_S", 0.5)
    p = backend.BackendProcess([sys.executable, str(script)], log_path=tmp_path / "l.log")
    while not p._hello:
        p.poll()
        time.sleep(0.02)
    t0 = time.monotonic()
    p.cancel()
    assert time.monotonic() - t0 < 0.2  # the UI thread is never held
    _run_to_end(p, limit=6)
    assert "cancelled" in _one_line(p)


def test_default_stall_time_is_generous() -> None:
    assert backend.DEFAULT_STALL_S >= 120


def test_dead_backend_is_reported_with_its_exit_code_and_log(tmp_path: Path) -> None:
    p = _start(tmp_path, "crash")
    _run_to_end(p)
    msg = _one_line(p)
    assert "exit code 139" in msg and "Segmentation fault" in msg and "resume" in msg and "log" in msg
    assert "Segmentation fault in libtorch" in p.log_path.read_text()


def test_backend_that_ends_without_done(tmp_path: Path) -> None:
    p = _start(tmp_path, "silent")
    _run_to_end(p)
    assert "ended without a result" in _one_line(p)


def test_garbage_lines_are_kept_as_text_not_trusted(tmp_path: Path) -> None:
    p = _start(tmp_path, "garbage")
    events = _run_to_end(p)
    assert p.outcome() == "/tmp/r.npz"
    text = [e.text for e in events if e.message is None]
    assert len(text) == 4 and all(len(t) <= 500 for t in text)


def test_wrong_protocol_version_stops_the_backend(tmp_path: Path) -> None:
    p = _start(tmp_path, "newproto")
    _run_to_end(p, limit=8)
    msg = _one_line(p)
    assert "protocol 2" in msg and "update the backend environment" in msg


def test_first_message_must_be_hello(tmp_path: Path) -> None:
    p = _start(tmp_path, "nohello")
    _run_to_end(p)
    assert p.result is None
    msg = _one_line(p)
    assert "did not start with a hello" in msg and "set it up again" in msg


def test_broken_backend_environment(tmp_path: Path) -> None:
    p = _start(tmp_path, "broken_env")
    _run_to_end(p)
    msg = _one_line(p)
    assert "did not start" in msg and "ModuleNotFoundError" in msg and "preferences" in msg


def test_missing_backend_python(tmp_path: Path) -> None:
    with pytest.raises(backend.BackendError, match="set up the backend in the add-on preferences"):
        backend.BackendProcess([str(tmp_path / "no" / "python"), "-m", "hsmr_backend.cli"],
                               log_path=tmp_path / "l.log")


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
                 st.dictionaries(st.sampled_from(["type", "protocol", "stage", "frame", "total", "result",
                                                  "message", "level", "outputs", "fps"]),
                                 st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=10),
                                           st.sampled_from(list(protocol._REQUIRED)), st.lists(st.integers())),
                                 ).map(lambda d: json.dumps(d).encode())))
def test_runner_line_handling_never_raises(raw: bytes) -> None:
    """The runner's own line handling (line_event + _apply) on arbitrary bytes: an event, never an exception."""
    ev = backend.line_event(raw + b"\n")
    assert isinstance(ev, backend.Event)
    p = backend.BackendProcess.__new__(backend.BackendProcess)  # state only, no process
    p.error, p.result, p.progress, p._hello, p._cancelled = None, None, ("starting", 0, 0), True, False
    p._apply(ev)
    assert p.error is None or isinstance(p.error, str)


def test_no_network_sockets_between_add_on_and_backend() -> None:
    """The two talk over the child's stdin/stdout only: no module of either opens or listens on a socket."""
    import re

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"^\s*(import socket|from socket |import socketserver|from socketserver |"
                         r"from http\.server |import http\.server|from multiprocessing\.connection )|\.listen\(",
                         re.M)
    hits = [str(f.relative_to(root)) for d in ("backend/hsmr_backend", "hsmr_blender") for f in (root / d).rglob("*.py")
            if pattern.search(f.read_text(encoding="utf-8"))]
    assert hits == []
    assert "stdout=subprocess.PIPE" in (root / "hsmr_blender/io/backend.py").read_text()


# ---------------------------------------------------------------- bad result files into Blender

bpy = pytest.importorskip("bpy")
from hsmr_blender import api  # noqa: E402
from synthetic.make_result import make_result  # noqa: E402


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("res") / "clip.npz"
    make_result(path, n_frames=6, seed=2, n_verts=300)
    return path


def _rewrite(src: Path, dst: Path, **changes) -> Path:
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


def _bad_results(good: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    data = good.read_bytes()
    trunc = tmp / "truncated.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with np.load(good, allow_pickle=False) as z:
        poses = np.array(z["poses"])
        version = int(z["format_version"])
    poses[2, 5] = np.nan
    text = tmp / "notes.npz"
    text.write_text("this is a text file, not a result")
    no_zip_member = tmp / "empty_zip.npz"
    with zipfile.ZipFile(no_zip_member, "w"):
        pass
    return {
        "truncated": (trunc, "truncated"),
        "newer": (_rewrite(good, tmp / "newer.npz", format_version=np.int32(version + 1)), "newer"),
        "nan": (_rewrite(good, tmp / "nan.npz", poses=poses), "NaN"),
        "text": (text, "not an .npz"),
        "empty_zip": (no_zip_member, "convert the footage again"),
        "missing": (tmp / "missing.npz", "not found"),
    }


@pytest.mark.parametrize("kind", ["truncated", "newer", "nan", "text", "empty_zip", "missing"])
def test_bad_result_file_builds_nothing(good: Path, tmp_path: Path, kind: str) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    path, words = _bad_results(good, tmp_path)[kind]
    before = {k: len(getattr(bpy.data, k)) for k in ("objects", "meshes", "armatures", "actions", "collections")}
    scene = bpy.context.scene
    frame_range = (scene.frame_start, scene.frame_end, scene.render.fps)
    with pytest.raises(api.HsmrImportError) as ei:
        api.import_result(path)
    msg = str(ei.value)
    assert words.lower() in msg.lower(), msg
    assert "\n" not in msg and len(msg) < 300
    after = {k: len(getattr(bpy.data, k)) for k in before}
    assert after == before and (scene.frame_start, scene.frame_end, scene.render.fps) == frame_range


def test_result_reader_agrees_between_backend_and_addon(good: Path) -> None:
    res = result_format.load(good)
    assert res["poses"].shape == (6, 46) and np.isfinite(res["poses"]).all()


def test_open_log_operator_and_hang_time_out_setting(tmp_path: Path) -> None:
    import hsmr_blender
    from hsmr_blender import preferences

    bpy.ops.wm.read_factory_settings(use_empty=True)
    hsmr_blender.register()
    try:
        s = bpy.context.scene.hsmr
        assert not bpy.ops.hsmr.open_log.poll()  # nothing run yet: the button is greyed out
        s.log_path = str(tmp_path / "gone.log")
        assert bpy.ops.hsmr.open_log.poll()
        with pytest.raises(RuntimeError, match="no log at .*run a conversion first"):
            bpy.ops.hsmr.open_log()
        assert preferences.stall_seconds(bpy.context) == backend.DEFAULT_STALL_S
        assert "stall_seconds" in preferences.HsmrPreferences.__annotations__
    finally:
        hsmr_blender.unregister()
