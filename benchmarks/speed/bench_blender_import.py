"""Import speed: 10,000 frames (rig + keys + skin) with whole-F-curve writes vs keyframe_insert per bone per frame.

    python build.py bench bench_blender_import -- [--frames 10000] [--slow-frames 300]

The slow path is what existing SMPL add-ons do (set each pose bone's channels, ``keyframe_insert`` per bone per
frame); it runs on fewer frames and is extrapolated per frame (stated in the output). Prints the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import bpy

from benchmarks.common import run_recorded
from hsmr_blender import api
from hsmr_blender.io import rig_math
from hsmr_contract import result_format
from synthetic.make_result import make_result


def slow_import(path: Path, n_frames: int) -> float:
    """keyframe_insert per bone per frame on the same rig (no skin), first ``n_frames`` frames."""
    res = result_format.load(path)
    sc = api.import_result(path, skin=False, camera=False, name="slow")
    arm = sc.armature
    arm.animation_data_clear()
    layout = rig_math.build_layout(res)
    ch = rig_math.channels_from_result(layout, res)
    moving = {0} | {b.index for b in layout if abs(res["joint_offsets"][:, b.index]).max() > 0}
    t0 = time.perf_counter()
    for t in range(n_frames):
        f = float(sc.frames[t])
        for b in layout:
            pb = arm.pose.bones[b.name]
            pb.rotation_euler = ch.rotation[t, b.index].tolist()
            pb.keyframe_insert("rotation_euler", frame=f, group=b.name)
            if b.index in moving:
                pb.location = ch.location[t, b.index].tolist()
                pb.keyframe_insert("location", frame=f, group=b.name)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--slow-frames", type=int, default=300)
    ap.add_argument("--verts", type=int, default=6890)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.npz"
        make_result(path, n_frames=args.frames, n_verts=args.verts, correctives=False)
        path_c = Path(tmp) / "bench_c.npz"
        make_result(path_c, n_frames=args.frames, n_verts=args.verts, correctives=True)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        api.import_result(path, camera=False, name="warm-up")  # first-call costs (operators, RNA caches)
        bpy.ops.wm.read_factory_settings(use_empty=True)

        t0 = time.perf_counter()
        sc = api.import_result(path, camera=False)
        fast = time.perf_counter() - t0
        n_vert = len(sc.skin.data.vertices)
        bpy.ops.wm.read_factory_settings(use_empty=True)

        t0 = time.perf_counter()
        sc = api.import_result(path, skin=False, camera=False)
        fast_rig = time.perf_counter() - t0
        bpy.ops.wm.read_factory_settings(use_empty=True)

        t0 = time.perf_counter()
        sc = api.import_result(path_c, camera=False)
        fast_corr = time.perf_counter() - t0
        ncorr = sc.n_correctives
        bpy.ops.wm.read_factory_settings(use_empty=True)

        slow = slow_import(path, args.slow_frames)
    slow_per_frame = slow / args.slow_frames
    fast_rig_per_frame = fast_rig / args.frames
    print(f"bpy {bpy.app.version_string}, {args.frames} frames, skin {n_vert} vertices")
    print(f"fast import, rig + keys + skin:             {fast:.2f} s  ({fast / args.frames * 1e6:.0f} us/frame)")
    print(f"fast import, rig + keys only:               {fast_rig:.2f} s  ({fast_rig_per_frame * 1e6:.0f} us/frame)")
    print(f"fast import, + {ncorr} corrective shape keys (keyed): {fast_corr:.2f} s")
    print(f"keyframe_insert per bone per frame:         {slow:.2f} s for {args.slow_frames} frames "
          f"({slow_per_frame * 1e6:.0f} us/frame) -> {slow_per_frame * args.frames:.1f} s extrapolated to "
          f"{args.frames} frames")
    print(f"speed-up (rig + keys, per frame): {slow_per_frame / fast_rig_per_frame:.0f}x; "
          f"(whole import incl. skin vs slow keys alone): {slow_per_frame * args.frames / fast:.0f}x")
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
