"""Time the biomechanics exports on a 30 s clip (900 frames) of the synthetic test body.

    python build.py bench bench_export -- [--frames 900]

Prints seconds for each writer (.mot SKEL, .mot Rajagopal, .trc with skin landmarks, .csv) and the report.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import run_recorded
from hsmr_backend.export import write_angles_csv, write_markers_trc, write_rajagopal_mot, write_skel_mot
from hsmr_backend.export.report import write_report
from synthetic.export_clip import synthetic_result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=900)
    args = ap.parse_args()
    res = synthetic_result(T=args.frames, fps=30.0)
    with tempfile.TemporaryDirectory() as d:
        stem = Path(d) / "clip"
        for name, fn in (
            ("skel .mot", lambda: write_skel_mot(res, f"{stem}.skel.mot")),
            ("rajagopal .mot", lambda: write_rajagopal_mot(res, f"{stem}.rajagopal.mot")),
            ("trc (24 joint centres + 29 landmarks)", lambda: write_markers_trc(res, f"{stem}.markers.trc")),
            ("csv", lambda: write_angles_csv(res, f"{stem}.angles.csv")),
            ("report (26 PNGs + HTML)", lambda: write_report(res, stem)),
        ):
            t0 = time.perf_counter()
            fn()
            print(f"{name:40s} {time.perf_counter() - t0:6.2f} s for {args.frames} frames")
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
