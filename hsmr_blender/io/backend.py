"""Running the backend as a child process and reading its JSON lines without blocking (bpy-free).

The add-on never imports torch: it starts ``python -m hsmr_backend.cli convert VIDEO -o RESULT --progress json``
in the backend's own environment and reads one protocol message per stdout line (``protocol.py``). A reader
thread moves lines into a queue, so a Blender modal timer can ``poll()`` without ever waiting.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsmr_contract import protocol

REQUIREMENTS_FILE = "backend_requirements.txt"  # written into the extension by tools/build_extension.py
BACKEND_SOURCE_DIR = "backend_src"  # the backend package staged beside it (pip-installable)
CONTRACT_SOURCE_DIR = "contract"  # inside BACKEND_SOURCE_DIR: the hsmr-contract distribution


class BackendError(RuntimeError):
    """The backend failed; the message is one line saying what is wrong and what to do."""


def venv_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def convert_command(
    video: str | os.PathLike,
    result: str | os.PathLike,
    *,
    python: str | os.PathLike | None = None,
    mode: str = "auto",
    body: str = "open",
    device: str = "auto",
    start: int | None = None,
    end: int | None = None,
    smoothing: float | None = None,
    up: str = "auto",
    weights: str | os.PathLike | None = None,
    extra: Sequence[str] = (),
    more_videos: Sequence[str | os.PathLike] = (),
    calibration: str | os.PathLike | None = None,
) -> list[str]:
    """The backend command line (DESIGN: ``hsmr-backend convert VIDEO -o RESULT --progress json``); with
    ``calibration``, ``video`` and ``more_videos`` are the calibrated cameras' clips (the first camera first)."""
    videos = [str(video), *(str(v) for v in more_videos)]
    cmd = [str(python or sys.executable), "-m", "hsmr_backend.cli", "convert", *videos, "-o", str(result),
           "--progress", "json", "--mode", mode, "--body", body, "--device", device]
    if calibration:
        cmd += ["--calibration", str(calibration)]
    if start is not None or end is not None:  # the backend takes START:END with END exclusive; ours is inclusive
        cmd += ["--frames", f"{int(start or 0)}:{'' if end is None else int(end) + 1}"]
    if smoothing is not None:
        cmd += ["--smoothing", f"{float(smoothing):g}"]
    if up != "auto":  # only when asked: a backend from before --up still runs the default
        cmd += ["--up", up]
    if weights:  # an HSMR release / .onnx or a SKEL-CF checkpoint; the backend tells them apart
        cmd += ["--weights", str(weights)]
    return cmd + list(extra)


@dataclass
class Event:
    """What the UI needs from one line: the message, or a log line that was not protocol."""

    message: protocol.Message | None
    text: str = ""


KILL_AFTER_S = 5.0  # after a cancel, how long the backend gets to stop by itself
DEFAULT_STALL_S = 120.0  # generous: loading the HSMR network on a slow disk takes a while
LOG_NAME = "hsmr_backend.log"


def default_log_path() -> Path:
    """Where the backend's stderr goes when the caller names no file (the panel shows the path)."""
    import tempfile

    return Path(tempfile.gettempdir()) / LOG_NAME


class BackendProcess:
    """A running backend. ``poll()`` never blocks; ``cancel()`` stops it.

    Its stderr is copied to ``log_path`` (a file the user can open). A backend that sends no line for
    ``stall_s`` seconds while alive is stopped and reported as hung; one that exits without ``done`` is
    reported with its exit code and the last stderr line; the first message must be a ``hello`` of our
    protocol version.
    """

    def __init__(self, cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None,
                 *, stall_s: float | None = DEFAULT_STALL_S, log_path: str | os.PathLike | None = None) -> None:
        self.cmd = list(cmd)
        self._q: queue.Queue[Event | None] = queue.Queue()
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.result: str | None = None
        self.error: str | None = None
        self.progress: tuple[str, int, int] = ("starting", 0, 0)
        self.stall_s = stall_s
        self.log_path = Path(log_path) if log_path else default_log_path()
        self._hello = False
        self._cancelled = False
        self._kill_at: float | None = None
        self._last_line = time.monotonic()
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError:
            self._log = None  # a log we cannot write must not stop the run; the tail is still kept
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own backend, argv list, no shell
                self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
                cwd=cwd, bufsize=0,
            )
        except OSError as e:
            self._close_log()
            raise BackendError(
                f"could not start the backend ({e.strerror}: {self.cmd[0]}): set up the backend in the add-on "
                "preferences"
            ) from None
        _LIVE.add(self)
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._last_line = time.monotonic()
            if raw.strip():
                self._q.put(line_event(raw))
        self._q.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        try:
            for raw in self.proc.stderr:
                text = raw.decode("utf-8", "replace").rstrip()
                self.stderr_tail.append(text)
                if self._log is not None:
                    try:
                        self._log.write(text + "\n")
                        self._log.flush()
                    except (OSError, ValueError):  # full disk or closed: keep reading so the child never blocks
                        pass
        finally:
            self._close_log()

    def _close_log(self) -> None:
        log, self._log = self._log, None
        if log is not None:
            with contextlib.suppress(OSError):
                log.close()

    def poll(self) -> list[Event]:
        """Events that arrived since the last call (never waits); also notices a hung backend."""
        out: list[Event] = []
        while True:
            try:
                ev = self._q.get_nowait()
            except queue.Empty:
                break
            if ev is None:
                continue
            self._apply(ev)
            out.append(ev)
        self._check_stall()
        return out

    def _check_stall(self) -> None:
        if self._kill_at is not None and time.monotonic() > self._kill_at and self.running:
            self.proc.kill()  # it did not stop when asked
        if self.stall_s is None or self.error is not None or self._cancelled or not self.running:
            return
        quiet = time.monotonic() - self._last_line
        if quiet > self.stall_s:
            stage = self.progress[0]
            self._fail(f"the backend sent nothing for {quiet:.0f} s during '{stage}' and was stopped as hung: "
                       f"see the log {self.log_path}, then run again (or raise the time-out in the preferences)")

    def _fail(self, message: str) -> None:
        """Record the first failure and stop the process (it is not waited on any further)."""
        if self.error is None:
            self.error = message
        self.cancel()

    def _apply(self, ev: Event) -> None:
        msg = ev.message
        if msg is None:
            return
        if not self._hello:
            if msg.type == "error":  # a failure before the handshake is still worth showing; it grants nothing
                self.error = self.error or msg["message"]
                return
            self._hello = True
            try:
                protocol.check_hello(msg)
            except protocol.ProtocolError as e:
                self._fail(f"{e}: the backend environment does not match this add-on; set it up again in the "
                           "preferences" if msg.type != "hello" else str(e))
            return
        if msg.type == "progress":
            self.progress = (msg["stage"], msg["frame"], msg["total"])
        elif msg.type == "done":
            self.result = msg["result"]
        elif msg.type == "error":
            self.error = msg["message"]

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def finished(self) -> bool:
        """True once the process ended and every line was read."""
        return not self.running and not any(t.is_alive() for t in self._threads) and self._q.empty()

    def fraction(self) -> float:
        _, frame, total = self.progress
        return min(1.0, frame / total) if total else 0.0

    def cancel(self) -> None:
        """Ask the backend to stop (SIGTERM: it keeps its finished frames); never waits. ``poll()`` kills it if
        it is still there ``KILL_AFTER_S`` later."""
        self._cancelled = True
        if self.running and self._kill_at is None:
            self.proc.terminate()
            self._kill_at = time.monotonic() + KILL_AFTER_S

    def outcome(self) -> str:
        """After ``finished()``: the result path; raises BackendError with one clear line otherwise."""
        if self._cancelled and self.error is None:
            raise BackendError("cancelled")
        if self.error:
            raise BackendError(self.error)
        rc = self.proc.returncode
        if rc != 0 or self.result is None:
            last = next((s for s in reversed(self.stderr_tail) if s.strip()), "")
            why = f": {last[:200]}" if last else ""
            if not self._hello:  # never got as far as the handshake: the environment, not the footage
                raise BackendError(f"the backend did not start (exit code {rc}{why}): set up the backend in the "
                                   f"add-on preferences; full log: {self.log_path}")
            if rc == 0:
                raise BackendError(f"the backend ended without a result{why}: run again; full log: {self.log_path}")
            raise BackendError(f"the backend stopped with exit code {rc}{why}: run again to resume from the "
                               f"finished frames; full log: {self.log_path}")
        return self.result


_LIVE: weakref.WeakSet[BackendProcess] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Blender is closing: stop running backends (they keep their finished frames; a rerun resumes)."""
    for p in list(_LIVE):
        p.cancel()


def line_event(raw: bytes) -> Event:
    """One stdout line -> a protocol message, or a text event for anything else (never raises)."""
    line = raw.rstrip(b"\r\n")
    try:
        return Event(protocol.parse_line(line))
    except protocol.ProtocolError:
        return Event(None, line.decode("utf-8", "replace")[:500])


def run_blocking(cmd: Sequence[str], on_event: Callable[[Event], Any] | None = None, poll_s: float = 0.1,
                 env: dict[str, str] | None = None, stall_s: float | None = DEFAULT_STALL_S,
                 log_path: str | os.PathLike | None = None) -> str:
    """Run to the end (batch use): prints progress lines when no callback is given; returns the result path."""
    p = BackendProcess(cmd, env=env, stall_s=stall_s, log_path=log_path)
    while not p.finished():
        for ev in p.poll():
            if on_event is not None:
                on_event(ev)
            elif ev.message is not None and ev.message.type == "progress":
                print(f"hsmr: {ev.message['stage']} {ev.message['frame']}/{ev.message['total']}", flush=True)
        time.sleep(poll_s)
    for ev in p.poll():
        if on_event is not None:
            on_event(ev)
    return p.outcome()


CHECK_CODE = (
    "import json, sys\n"
    "out = {'python': sys.version.split()[0]}\n"
    "for m in ('hsmr_backend', 'torch', 'onnxruntime', 'numpy', 'cv2', 'mediapipe'):\n"
    "    try:\n"
    "        mod = __import__(m)\n"
    "        out[m] = getattr(mod, '__version__', 'installed')\n"
    "    except Exception as e:\n"
    "        out[m] = None\n"
    "try:\n"
    "    import torch\n"
    "    out['cuda'] = bool(torch.cuda.is_available())\n"
    "    out['cuda_device'] = torch.cuda.get_device_name(0) if out['cuda'] else ''\n"
    "except Exception:\n"
    "    out['cuda'] = False\n"
    "try:\n"
    "    import onnxruntime as ort\n"
    "    out['onnx_providers'] = ort.get_available_providers()\n"
    "except Exception:\n"
    "    pass\n"
    "print(json.dumps(out))\n"
)


def check_environment(python: str | os.PathLike, timeout: float = 120.0) -> dict[str, Any]:
    """Versions of the backend's packages and whether CUDA is used, from the backend's own Python."""
    try:
        cp = subprocess.run([str(python), "-c", CHECK_CODE], capture_output=True, text=True, timeout=timeout,
                            check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BackendError(f"could not run {python} ({e}): choose a Python 3.11 in the preferences") from None
    if cp.returncode != 0:
        last = (cp.stderr.strip().splitlines() or [""])[-1]
        raise BackendError(f"{python} failed ({last}): choose a working Python 3.11 in the preferences")
    return json.loads(cp.stdout.strip().splitlines()[-1])


def setup_commands(env_dir: Path, base_python: str | os.PathLike, package_dir: Path) -> list[list[str]]:
    """Commands that create the backend environment with the pinned packages (run one by one, in order)."""
    req = package_dir / REQUIREMENTS_FILE
    src = package_dir / BACKEND_SOURCE_DIR
    if not req.is_file() or not src.is_dir():
        raise BackendError(
            "this add-on build carries no backend requirements/source: install the released extension zip, or "
            "point the preferences at an existing backend Python"
        )
    py = str(venv_python(env_dir))
    return [
        [str(base_python), "-m", "venv", str(env_dir)],
        [py, "-m", "pip", "install", "--upgrade", "pip"],
        [py, "-m", "pip", "install", "-r", str(req)],
        # the contract first (the backend depends on it), then the backend, editable: the backend then finds the
        # open body in <extension>/assets, as in a source checkout
        [py, "-m", "pip", "install", "--no-deps", "-e", str(src / CONTRACT_SOURCE_DIR)],
        [py, "-m", "pip", "install", "--no-deps", "-e", str(src)],
    ]
