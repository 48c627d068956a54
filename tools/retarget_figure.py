"""The picture in docs/retargeting.md: a result's motion on the SKEL rig, a generated Rigify rig and a
Mixamo-style character side by side, seen from the footage's camera, at a few frames.

    PYTHONPATH=backend:backend/contract:. .venv/bin/python -m tools.retarget_figure RESULT.npz \
        [--out docs/figures/retargeting.png]

Draws the evaluated bones with matplotlib (the SKEL rig: joint centre to joint centre; Rigify: its deform bones;
Mixamo-style: every bone), so it needs no GPU or render engine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bpy
import matplotlib
import numpy as np

from hsmr_blender import api
from hsmr_blender.io import result_format
from synthetic import retarget_rigs

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_BODY = ("DEF-spine", "DEF-pelvis", "DEF-shoulder", "DEF-upper_arm", "DEF-forearm", "DEF-hand", "DEF-thigh",
         "DEF-shin", "DEF-foot", "DEF-toe")  # a generated Rigify rig's body deform bones (not the face's)
COLOURS = {"SKEL rig": "0.35", "Rigify (generated, FK)": "tab:blue", "Mixamo-style": "tab:orange"}


def _segments(ob: bpy.types.Object, skel: bool) -> np.ndarray:
    mw = ob.matrix_world
    out = []
    for pb in ob.pose.bones:
        if skel:
            if pb.parent is not None:
                out.append((mw @ pb.parent.head, mw @ pb.head))
        elif not ob.data.bones.get("DEF-spine") or pb.name.startswith(_BODY):
            out.append((mw @ pb.head, mw @ pb.tail))
    return np.array([[tuple(a), tuple(b)] for a, b in out])


def _place(ob: bpy.types.Object, hips_bone: str, where: np.ndarray) -> None:
    """Move the character's object (its own choice of place, before retargeting) so its hips stand at ``where``."""
    hips = np.array(ob.matrix_world @ ob.data.bones[hips_bone].head_local)
    ob.location = tuple(np.array(ob.location) + np.append(where[:2] - hips[:2], 0.0))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("--out", default="docs/figures/retargeting.png")
    ap.add_argument("--panels", type=int, default=4)
    args = ap.parse_args()
    res = result_format.load(args.result)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    skel = api.import_result(args.result, skin=False, camera=False, bone_meshes=False).armature
    c2w = np.asarray(res["camera_to_world"])
    right = c2w[:3, 0] * np.array([1.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    start = np.asarray(res["joints_world"])[0, 0]
    rigify = retarget_rigs.rigify_rig()
    _place(rigify, "torso", start + 0.9 * right)
    mixamo = retarget_rigs.mixamo_rig()
    _place(mixamo, "mixamorig:Hips", start + 1.8 * right)
    bpy.context.view_layer.update()
    for ob in (rigify, mixamo):
        print(api.retarget(skel, ob).summary().splitlines()[0])
    frames = np.linspace(0, len(res["frame_index"]) - 1, args.panels).round().astype(int)
    fig, axes = plt.subplots(1, args.panels, figsize=(3.2 * args.panels, 3.6), dpi=90)
    up = np.array([0.0, 0.0, 1.0])
    for ax, t in zip(np.atleast_1d(axes), frames, strict=True):
        bpy.context.scene.frame_set(int(res["frame_index"][t]) + 1)
        for (label, colour), ob in zip(COLOURS.items(), (skel, rigify, mixamo), strict=True):
            seg = _segments(ob, ob is skel)
            x, z = seg @ right, seg @ up
            for xs, zs in zip(x, z, strict=True):
                ax.plot(xs, zs, color=colour, lw=1.6, solid_capstyle="round", label=label)
                label = None
        ax.axhline(0.0, color="0.75", lw=0.8)
        ax.set_aspect("equal")
        ax.set_title(f"frame {int(res['frame_index'][t])}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="upper left", frameon=False)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
