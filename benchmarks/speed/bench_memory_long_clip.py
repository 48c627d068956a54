"""Resident memory of the backend converting a long 1080p clip (issue 6: under 3 GB for a 10-minute clip).

    python build.py bench bench_memory_long_clip      # 1 min, extrapolated
    python build.py bench bench_memory_long_clip -- --minutes 10  # real (slow)

A long clip is made by looping a shared clip (written frame by frame, never held in memory), then
``hsmr-backend convert`` runs in a child process whose RSS (``/proc/<pid>/status`` VmRSS / VmHWM, or psutil) is
sampled with its progress lines. Two lengths are run (``--minutes`` and ``--short-minutes``); printed: peak RSS
per stage for each, the growth per 1,000 frames of each stage's peak, and the peak extrapolated linearly to 10
minutes (18,000 frames at 30 fps) -- labelled as an extrapolation unless ``--minutes 10`` was run.

The fit: ``--fit auto`` (default) runs the fitter in the source tree when it is there, else the stand-in fit of
synthetic/standins.py (same per-frame arrays, no optimisation); ``--fit standin`` forces the stand-in to measure
the pipeline alone. The output says which ran.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import ROOT, run_recorded, source_pythonpath

MB = 1 / 2**20
DEFAULT_CLIP = ROOT.parent / "shared" / "footage" / "single_person_cam01.mp4"
RUNNER = """
import sys
if {standin}:
    from synthetic.standins import install_standins
    install_standins()
from hsmr_backend import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def make_long_clip(src: Path, dst: Path, frames: int, fps: float) -> tuple[int, int]:
    """Loop ``src`` (forward, then backward, so the motion stays continuous) until ``frames`` are written."""
    cap = cv2.VideoCapture(str(src))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    n_src = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    wr = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    written, forward = 0, True
    while written < frames:
        cap = cv2.VideoCapture(str(src))
        buf: list[np.ndarray] = []  # one pass of the short source (100 frames) is reversed in memory, not the clip
        while True:
            ok, f = cap.read()
            if not ok:
                break
            buf.append(f)
        cap.release()
        for f in buf if forward else reversed(buf):
            if written >= frames:
                break
            wr.write(f)
            written += 1
        forward = not forward
    wr.release()
    return (w, h) if n_src else (0, 0)


def _status(pid: int) -> dict[str, int]:
    try:
        import psutil  # type: ignore[import-not-found]

        mi = psutil.Process(pid).memory_info()
        return {"rss": mi.rss, "hwm": getattr(mi, "peak_wset", 0) or mi.rss}
    except ImportError:
        pass
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out["rss" if line.startswith("VmRSS") else "hwm"] = int(line.split()[1]) * 1024
    return out


def measure(args: argparse.Namespace, minutes: float, work: Path, standin: bool) -> dict:
    """Convert a looped clip of ``minutes`` in a child process; its RSS per stage and the landmark-stage slope."""
    fps = args.fps
    n = int(round(minutes * 60 * fps))
    clip = work / f"long_{n}.mp4"
    t0 = time.perf_counter()
    size = make_long_clip(args.clip, clip, n, fps)
    print(f"clip: {n} frames ({minutes:g} min at {fps:g} fps), {size[0]}x{size[1]}, "
          f"{clip.stat().st_size / 1e6:.0f} MB, written in {time.perf_counter() - t0:.0f} s")
    code = RUNNER.format(standin=standin)
    cmd = [sys.executable, "-c", code, "convert", str(clip), "-o", str(work / f"long_{n}.npz"), "--progress",
           "json", "--mode", args.mode, "--no-resume"] + ([] if args.overlay else ["--no-overlay", "--no-plot"])
    env = {**os.environ, "PYTHONPATH": source_pythonpath(),
           "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    stage = {"name": "start", "frame": 0}
    samples: list[tuple[float, str, int, int]] = []  # (t, stage, frame, rss)
    peak = {"hwm": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set() and proc.poll() is None:
            try:
                st = _status(proc.pid)
            except (OSError, ValueError):
                break
            samples.append((time.perf_counter(), stage["name"], stage["frame"], st.get("rss", 0)))
            peak["hwm"] = max(peak["hwm"], st.get("hwm", 0), st.get("rss", 0))
            stop.wait(0.25)

    t0 = time.perf_counter()
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    last_msg = None
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("type") == "progress":
            stage["name"], stage["frame"] = msg["stage"], msg["frame"]
        elif msg.get("type") in ("done", "error"):
            last_msg = msg
    rc = proc.wait()
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    print(f"convert: exit {rc} in {wall:.0f} s ({n / wall:.1f} frames/s); "
          + (last_msg.get("message", "done") if last_msg else "no final line"))
    if not samples:
        sys.exit("no memory samples")
    print(f"  peak RSS (VmHWM): {peak['hwm'] * MB:.0f} MB")
    stages = {}
    for name in dict.fromkeys(s[1] for s in samples):
        rss = [s[3] for s in samples if s[1] == name]
        stages[name] = max(rss)
        print(f"  stage {name:10s} peak {max(rss) * MB:6.0f} MB  ({len(rss)} samples)")
    lm = np.array([(s[2], s[3]) for s in samples if s[1] == "landmarks" and s[2] > 200], dtype=np.float64)
    slope = None
    if len(lm) > 10 and np.ptp(lm[:, 0]) > 0:
        slope = float(np.polyfit(lm[:, 0], lm[:, 1], 1)[0])
        print(f"  landmark stage: RSS growth {slope * 1000 * MB:+.2f} MB per 1,000 frames (least squares, frames "
              f"200-{int(lm[:, 0].max())})")
    if not args.keep:
        for p in work.glob(f"long_{n}*"):
            if p.is_file():
                p.unlink()
            else:
                for q in p.iterdir():
                    q.unlink()
                p.rmdir()
    return {"n": n, "peak": peak["hwm"], "stages": stages, "landmark_slope": slope, "rc": rc}


def run(args: argparse.Namespace) -> None:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hsmr_mem_"))
    work.mkdir(parents=True, exist_ok=True)
    have_fit = True
    try:
        import hsmr_backend.fit  # noqa: F401
        import hsmr_backend.world  # noqa: F401
    except ImportError:
        have_fit = False
    standin = args.fit == "standin" or (args.fit == "auto" and not have_fit)
    if args.fit == "real" and not have_fit:
        sys.exit("--fit real: the fitter (hsmr_backend.fit/world) is not in this source tree")
    print("fit: " + ("STAND-IN (synthetic/standins.py; no optimisation, same per-frame arrays)" if standin
                     else "the real fitter"))
    runs = [measure(args, args.minutes, work, standin)]
    ten = int(10 * 60 * args.fps)
    if runs[0]["n"] >= ten:
        print(f"10-minute clip measured directly: peak {runs[0]['peak'] * MB:.0f} MB")
    elif args.short_minutes > 0:
        runs.insert(0, measure(args, args.short_minutes, work, standin))
        a, b = runs
        print(f"per-stage peak growth between {a['n']} and {b['n']} frames, and the EXTRAPOLATION (linear) to "
              f"10 minutes = {ten} frames:")
        worst = 0.0
        for name in b["stages"]:
            if name not in a["stages"]:
                continue
            per = (b["stages"][name] - a["stages"][name]) / (b["n"] - a["n"])
            at_ten = b["stages"][name] + max(per, 0.0) * (ten - b["n"])
            worst = max(worst, at_ten)
            print(f"  stage {name:10s} {per * 1000 * MB:+8.1f} MB per 1,000 frames -> ~{at_ten * MB:6.0f} MB")
        print(f"EXTRAPOLATED peak for a 10-minute clip: ~{worst * MB:.0f} MB (target < 3072 MB)")
    if not args.workdir:
        with contextlib.suppress(OSError):
            work.rmdir()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0, help="clip length (default 1; 10 = the issue's target)")
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="source clip to loop (default: shared cam01)")
    ap.add_argument("--fps", type=float, default=30.0, help="frame rate of the long clip (default 30, a phone's)")
    ap.add_argument("--short-minutes", type=float, default=0.25,
                    help="a second, shorter run for the growth with length (0: skip)")
    ap.add_argument("--mode", default="keypoints", choices=("keypoints", "auto", "hsmr"))
    ap.add_argument("--fit", default="auto", choices=("auto", "real", "standin"))
    ap.add_argument("--overlay", action="store_true", help="also write the overlay video and the plot")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true")
    run(ap.parse_args())


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
