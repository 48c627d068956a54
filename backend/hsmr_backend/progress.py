"""Progress reporting: JSON lines on stdout (for the add-on), a bar on stderr (for people), or nothing.

JSON mode speaks ``protocol.py`` (every line validated by ``protocol.encode``): a ``hello`` first, then
``{"type": "progress", "stage": ..., "frame": i, "total": n, "fps": x}`` while working, ``log`` lines for notes,
and exactly one of ``{"type": "done", "stage": "done", "result": path, "outputs": [...]}`` or
``{"type": "error", "stage": "error", "message": ...}`` (the ``stage`` key repeats the type for readers that
only look at ``stage``). Native libraries (MediaPipe, TFLite) sometimes print to the process's
stdout; ``Reporter.protect_stdout`` moves file descriptor 1 onto stderr so that only our lines reach the
real stdout.

Cancelling (SIGTERM from the add-on, Ctrl+C) is cooperative: the signal handler only calls
:func:`request_cancel`, and the next progress report on the main thread raises ``KeyboardInterrupt`` there, at
a safe point between frames. An exception raised asynchronously inside MediaPipe's graph call made the
process abort (SIGABRT) while the graph was torn down, instead of stopping with one line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import IO, Any

from hsmr_contract import protocol

from . import __version__

MODES = ("json", "bar", "none")

_CANCEL = threading.Event()


def request_cancel() -> None:
    """Ask the running work to stop at its next progress report (safe to call from a signal handler)."""
    _CANCEL.set()


def cancel_requested() -> bool:
    return _CANCEL.is_set()


def reset_cancel() -> None:
    """Forget an earlier request (for callers that run work again in the same process)."""
    _CANCEL.clear()


def check_cancel() -> None:
    """Raise ``KeyboardInterrupt`` here if a cancel was requested (main thread only: a helper thread's
    progress report must not end that thread instead of the work)."""
    if _CANCEL.is_set() and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt


class Reporter:
    def __init__(self, mode: str = "bar", stream: IO[str] | None = None, err: IO[str] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"--progress must be one of {', '.join(MODES)} (got {mode!r})")
        self.mode = mode
        self.out = stream or sys.stdout
        self.err = err or sys.stderr
        self._stage = ""
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._bar_open = False

    def protect_stdout(self) -> None:
        """Keep native-library prints out of the JSON stream: our lines go to a private copy of stdout."""
        if self.mode != "json":
            return
        try:
            self.out.flush()
            sys.stdout.flush()
            saved = os.dup(1)
            os.dup2(2, 1)
        except (OSError, ValueError, AttributeError):
            return  # no real stdout (embedded): nothing native can write to it anyway
        self._restore = (saved, sys.stdout)
        self.out = os.fdopen(os.dup(saved), "w", buffering=1)
        sys.stdout = sys.stderr  # stray Python prints too

    def restore_stdout(self) -> None:
        """Undo ``protect_stdout`` (for callers that stay in the same process)."""
        if getattr(self, "_restore", None) is None:
            return
        saved, py_stdout = self._restore
        self._restore = None
        with contextlib.suppress(OSError, ValueError):  # a reader that is gone must not turn into a traceback
            self.out.flush()
        with contextlib.suppress(OSError, ValueError):
            self.out.close()
        os.dup2(saved, 1)
        os.close(saved)
        sys.stdout = py_stdout
        self.out = py_stdout

    def _emit(self, type_: str, **fields: Any) -> None:
        self.out.write(protocol.encode(type_, **fields) + "\n")
        self.out.flush()

    def hello(self, device: str | None = None) -> None:
        if self.mode == "json":
            extra = {"device": device} if device else {}
            self._emit("hello", protocol=protocol.PROTOCOL_VERSION, backend_version=__version__, **extra)

    def stage(self, stage: str, frame: int, total: int) -> None:
        """Frame ``frame`` of ``total`` done in ``stage`` (throttled to ~10 updates a second). A requested
        cancel stops the work here (:func:`check_cancel`)."""
        check_cancel()
        now = time.perf_counter()
        if stage != self._stage:
            self._stage, self._t0, self._last = stage, now, 0.0
            self._close_bar()
        final = total > 0 and frame >= total
        if not final and now - self._last < 0.1:
            return
        self._last = now
        fps = frame / (now - self._t0) if now > self._t0 and frame else 0.0
        if self.mode == "json":
            self._emit("progress", stage=stage, frame=int(frame), total=int(total), fps=round(fps, 2))
        elif self.mode == "bar":
            if total > 0:
                n = 30
                k = min(n, int(n * frame / total))
                rate = f" {fps:5.1f}/s" if total >= 5 else ""  # a few big steps (fit windows): no rate
                line = f"\r{stage:>10} [{'#' * k}{'.' * (n - k)}] {frame}/{total}{rate}"
            else:
                line = f"\r{stage:>10} {frame} {fps:5.1f}/s"
            self.err.write(line)
            self.err.flush()
            self._bar_open = True

    def __call__(self, stage: str, frame: int, total: int) -> None:
        self.stage(stage, frame, total)

    def _close_bar(self) -> None:
        if self._bar_open:
            self.err.write("\n")
            self._bar_open = False

    def info(self, message: str, level: str = "info") -> None:
        """A note for the user (which mode ran, which subject was chosen, the focal length used...)."""
        self._close_bar()
        if self.mode == "json":
            self._emit("log", level=level, message=message, stage="info")
        elif self.mode == "bar":
            self.err.write(message + "\n")
            self.err.flush()

    def done(self, result: str, outputs: list[str] | None = None) -> None:
        self._close_bar()
        if self.mode == "json":
            self._emit("done", stage="done", result=result, outputs=list(outputs or []))

    def error(self, message: str) -> None:
        self._close_bar()
        if self.mode == "json":
            # the reader may be gone (broken pipe, closed stream): stderr below still has the line
            with contextlib.suppress(OSError, ValueError):
                self._emit("error", stage="error", message=message)
        self.err.write(f"hsmr-backend: error: {message}\n")
        self.err.flush()
