"""Retargeting speed: 1,000 frames of SKEL motion onto a 62-bone Mixamo-style character (A-pose, FBX transform).

    PYTHONPATH=backend:.:tests .venv/bin/python benchmarks/bench_retarget.py [--frames 1000] [--feet keep]

Times ``hsmr_blender.api.retarget`` end to end (result file read, SKEL chain, plan with foot planting, whole
F-curves written), best of ``--repeat`` runs, each onto a fresh character. Prints the figures and writes them to
benchmarks/results/retarget.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import bpy
import retarget_rigs
from make_result import make_result

from hsmr_blender import api
from hsmr_blender.blender.keyframes import action_fcurves

RESULTS = Path(__file__).resolve().parent / "results" / "retarget.json"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--feet", default="keep", choices=("keep", "fk"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.npz"
        make_result(path, n_frames=args.frames, body="synthetic", n_verts=200, correctives=False)
        times, bones, curves = [], 0, 0
        for _ in range(args.repeat):
            bpy.ops.wm.read_factory_settings(use_empty=True)
            ob = retarget_rigs.mixamo_rig(fingers=4)
            t0 = time.perf_counter()
            report = api.retarget(path, ob, feet=args.feet)
            times.append(time.perf_counter() - t0)
            bones = len(ob.data.bones)
            curves = len(action_fcurves(ob.animation_data.action))
    out = {"frames": args.frames, "target_bones": bones, "mapped_bones": len(report.mapped), "fcurves": curves,
           "feet": args.feet, "seconds_best": round(min(times), 3), "seconds_all": [round(t, 3) for t in times],
           "blender": bpy.app.version_string}
    print(f"retarget {args.frames} frames onto a {bones}-bone character ({len(report.mapped)} mapped, {curves} "
          f"F-curves, feet={args.feet}): best {min(times):.2f} s of {args.repeat} (all: "
          f"{', '.join(f'{t:.2f}' for t in times)})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
