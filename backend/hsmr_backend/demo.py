"""``python -m hsmr_backend.demo [--out demo_output]``: convert the bundled sample clip with the defaults.

Prints where the outputs are and how long the whole conversion took (decode -> result file).
``python build.py demo`` runs this; the Blender import can be chained on the printed result path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SAMPLE = "sample_clip.mp4"


def find_sample() -> Path | None:
    """The bundled clip: ``assets/`` of the checkout (or of an installed tree beside the package)."""
    here = Path(__file__).resolve()
    for base in (here.parents[2], here.parents[1], Path.cwd()):
        p = base / "assets" / SAMPLE
        if p.is_file():
            return p
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hsmr_backend.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    parser.add_argument("--progress", choices=("json", "bar", "none"), default="bar")
    parser.add_argument("--mode", choices=("auto", "keypoints", "hsmr", "skelcf"), default="auto")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)
    sample = find_sample()
    if sample is None:
        print(f"demo: the bundled clip assets/{SAMPLE} is missing: restore it from the repository", file=sys.stderr)
        return 1
    out = Path(args.out) / "sample_clip.npz"
    from . import cli

    parsed = cli.build_parser().parse_args(["convert", str(sample), "-o", str(out), "--progress", args.progress,
                                            "--mode", args.mode, "--device", args.device])
    code, summary = cli.run_convert(parsed)
    if code != 0 or summary is None:
        return code
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.timings.items())
    rate = summary.frames / summary.result_seconds if summary.result_seconds else 0.0
    print(f"demo: {summary.frames} frames, decode -> result file {summary.result_seconds:.1f} s ({rate:.1f} frames/s), "
          f"with overlay + plot {summary.seconds:.1f} s ({summary.fps:.1f} frames/s); {stages}; "
          f"mode {summary.mode} on {summary.device}")
    for p in summary.outputs:
        print(f"demo: wrote {Path(p).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
