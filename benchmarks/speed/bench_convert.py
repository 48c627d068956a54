"""Speed of the main job on the bundled 100-frame 1080x1920 clip: whole convert and per-stage breakdown.

    python build.py bench bench_convert -- [--clip PATH] [--threads N]

Prints decode-only speed, the landmark stage (decode + subject tracking + MediaPipe), and the whole `convert`
(decode -> result file, then overlay + plot).
Target (issue 4): the whole convert at >= 10 frames/s on a 2-core CPU. Reprojection error and jitter on real
footage come from the fitter's benchmark.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, add_threads_option, run_recorded, set_threads


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default=str(ROOT / "assets" / "sample_clip.mp4"))
    add_threads_option(ap, default=None)
    args = ap.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    set_threads(args.threads)
    from hsmr_backend import landmarks as L
    from hsmr_backend import video as V

    clip = Path(args.clip).resolve()
    shown = clip.relative_to(ROOT) if clip.is_relative_to(ROOT) else clip
    print(f"clip {shown}; cpu cores visible: {len(os.sched_getaffinity(0))}; torch threads "
          f"{torch.get_num_threads()}")
    src = V.open_source(args.clip)
    n = src.selected_count(V.FrameRange())
    t0 = time.perf_counter()
    count = sum(1 for _ in src.frames())
    dt = time.perf_counter() - t0
    print(f"decode only:        {count} frames {src.size[0]}x{src.size[1]} in {dt:.2f} s = {count / dt:.1f} frames/s")

    t0 = time.perf_counter()
    track = L.detect_landmarks(V.prefetch(src.frames()), "largest", fps=src.fps, image_size=src.size, total=n)
    dt = time.perf_counter() - t0
    print(f"landmark stage:     {len(track)} frames in {dt:.2f} s = {len(track) / dt:.1f} frames/s "
          f"(valid {int(track.valid.sum())}; {track.stats})")

    from hsmr_backend.convert import ConvertOptions, convert
    from hsmr_backend.progress import Reporter

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "bench.npz"
        s = convert(ConvertOptions(args.clip, str(out), mode="keypoints", resume=False), Reporter("none"))
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in s.timings.items())
        print(f"whole convert:      {s.frames} frames, decode -> result file {s.result_seconds:.2f} s = "
              f"{s.frames / s.result_seconds:.1f} frames/s; with overlay + plot {s.seconds:.2f} s = "
              f"{s.fps:.1f} frames/s")
        print(f"stages:             {stages}")
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
