"""What every benchmark shares: the repository's paths, the threads option, and where its figures go.

Every script runs as a module from the repository root with the packages importable
(``python build.py bench NAME``, or ``PYTHONPATH=backend:. .venv/bin/python -m benchmarks.speed.bench_convert``).
Inside ``with record(__spec__.name):`` everything the script prints is still printed, and is also written to
``benchmarks/results/NAME.json`` under the command that printed it, with the machine and the date;
``python build.py results`` turns those files into docs/results.md. ``--no-record`` skips the file (smoke runs).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FOOTAGE = ROOT.parent / "shared" / "footage"
# where a child process finds this checkout's packages (hsmr_backend, hsmr_contract; from the root hsmr_blender,
# benchmarks, synthetic)
SOURCE_PATHS = (ROOT / "backend", ROOT / "backend" / "contract", ROOT)


def source_pythonpath() -> str:
    """PYTHONPATH for a child process: this checkout's packages first, as ``python build.py`` sets it."""
    return os.pathsep.join(str(p) for p in SOURCE_PATHS)


def add_threads_option(ap: argparse.ArgumentParser, default: int | None = 1) -> None:
    """``--threads N``: torch / OpenCV intra-op threads (None: the libraries' default, all cores)."""
    helptext = "torch/OpenCV threads" + (" (default: all cores)" if default is None else f" (default {default})")
    ap.add_argument("--threads", type=int, default=default, help=helptext)


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` to torch and OpenCV (whichever the script has imported or can import)."""
    if not threads:
        return
    with contextlib.suppress(ImportError):
        import torch  # noqa: PLC0415

        torch.set_num_threads(threads)
    with contextlib.suppress(ImportError):
        import cv2  # noqa: PLC0415

        cv2.setNumThreads(threads)


def machine() -> dict[str, object]:
    """What the figures were measured on: CPU, cores, load, Python and the main libraries' versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, object] = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}
    with contextlib.suppress(OSError):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    with contextlib.suppress(ImportError):
        import torch  # noqa: PLC0415

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def command_line(module: str, argv: list[str]) -> str:
    """The command that reproduces this run, as the results page shows it."""
    return " ".join(["python -m", module, *(shlex.quote(a) for a in argv)])


class _Tee(io.TextIOBase):
    """Passes writes on to the real stream and keeps a copy."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def save_run(name: str, command: str, output: str, seconds: float, results: Path = RESULTS) -> Path:
    """Store one run in ``results/NAME.json`` (runs keyed by command: the same command again replaces it)."""
    path = results / f"{name}.json"
    data = json.loads(path.read_text()) if path.exists() else {"benchmark": name, "runs": {}}
    data["runs"][command] = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(seconds, 1),
        "machine": machine(),
        "output": [line.rstrip() for line in output.splitlines() if line.strip()],
    }
    data["runs"] = dict(sorted(data["runs"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


@contextlib.contextmanager
def record(module: str, argv: list[str] | None = None) -> Iterator[None]:
    """Print as usual; when the block finishes without an error, store what was printed (see ``save_run``)."""
    if "--no-record" in sys.argv:  # taken out before the script parses its own arguments
        sys.argv.remove("--no-record")
        yield
        return
    argv = sys.argv[1:] if argv is None else argv
    tee = _Tee(sys.stdout)
    start = time.perf_counter()
    with contextlib.redirect_stdout(tee):
        yield
    path = save_run(module.rsplit(".", 1)[-1], command_line(module, argv), tee.copy.getvalue(),
                    time.perf_counter() - start)
    print(f"figures written to {path.relative_to(ROOT)}")


def run_recorded(main: Callable[[], int | None], module: str) -> None:
    """Run a benchmark's ``main`` inside ``record``; a non-zero return is its exit status and stores nothing."""
    with record(module):
        status = main()
        if status:
            raise SystemExit(status)
