"""Retargeting speed onto a 62-bone character, and limb directions against SKEL's on real footage's results.

Speed: 1,000 frames of SKEL motion onto a Mixamo-style character (A-pose, other proportions, FBX transform). For
result files of real footage: how far the character's limb segments point from SKEL's with the feet planted.

    python build.py bench bench_retarget -- [--frames 1000] [--feet keep] [--results CLIP.npz ...]

Speed: ``hsmr_blender.api.retarget`` end to end (result file read, SKEL chain, plan with foot planting, whole
F-curves written), best of ``--repeat`` runs, each onto a fresh character. Footage: per segment (upper arm,
forearm, thigh, shin, foot, spine chord, head) the median and 95th percentile of the angle between the
character's segment and SKEL's over the clip, ``feet="keep"`` (the planting bends the legs a little: the
rotations alone match to within 0.04°). Prints the figures (saved by benchmarks.common.record).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import bpy
import numpy as np

from benchmarks.common import run_recorded
from hsmr_blender import api
from hsmr_blender.blender.keyframes import action_fcurves
from hsmr_contract import result_format
from synthetic import retarget_rigs
from synthetic.make_result import make_result


def footage_directions(path: Path) -> dict[str, list[float]]:
    """Per segment: [median, 95th percentile] in degrees, feet planted, onto the Mixamo-style character."""
    res = result_format.load(path)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    ob = retarget_rigs.mixamo_rig()
    report = api.retarget(path, ob, feet="keep")
    got = retarget_rigs.target_segments(ob, report, np.asarray(res["frame_index"]) + 1)
    want = retarget_rigs.source_segments(res)
    out = {}
    for key, ref in want.items():
        err = retarget_rigs.angle(got[key], ref)
        out[key] = [round(float(np.median(err)), 2), round(float(np.percentile(err, 95)), 2)]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--feet", default="keep", choices=("keep", "fk"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--results", nargs="*", default=[], help="result files of real footage to measure")
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
    if args.results:
        out["footage_directions_deg_median_p95"] = {}
    for clip in args.results:
        table = footage_directions(Path(clip))
        out["footage_directions_deg_median_p95"][Path(clip).stem] = table
        worst = max(table.items(), key=lambda kv: kv[1][1])
        print(f"{Path(clip).stem}: median ≤ {max(v[0] for v in table.values()):.2f}°, 95th percentile ≤ "
              f"{worst[1][1]:.2f}° ({worst[0]})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
