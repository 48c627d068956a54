"""The demo's Blender end: ``python -m hsmr_blender.demo RESULT.npz --out DIR`` (the .venv's Python + bpy wheel).

Builds the scene (rig, motion, skin, camera with the footage behind it), saves ``DIR/demo.blend``, and renders
a preview of the body and bones over the footage (Workbench, headless): ``DIR/preview/frame_####.png`` and
``DIR/preview.mp4``. Open ``demo.blend`` in Blender and look through the camera (Numpad 0) to check the overlay.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bpy


def _strips(scene: bpy.types.Scene) -> bpy.types.bpy_prop_collection:
    ed = scene.sequence_editor or scene.sequence_editor_create()
    return ed.strips if hasattr(ed, "strips") else ed.sequences  # 5.0 renamed sequences -> strips


def _workbench(scene: bpy.types.Scene) -> None:
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "OBJECT"
    scene.render.film_transparent = True


def _bones_scene(main: bpy.types.Scene, sticks: bpy.types.Object, rig: bpy.types.Object) -> bpy.types.Scene:
    """A second scene that renders only the bones (the main one renders the body); both share the objects."""
    layer = bpy.data.collections.new("HSMR render bones")
    for coll in list(sticks.users_collection):
        coll.objects.unlink(sticks)
    layer.objects.link(sticks)
    main.collection.children.link(layer)
    main.view_layers[0].layer_collection.children[layer.name].exclude = True
    bones = bpy.data.scenes.new("HSMR bones")
    bones.collection.children.link(layer)
    bones.collection.objects.link(rig)
    bones.collection.objects.link(main.camera)
    bones.camera = main.camera
    for attr in ("resolution_x", "resolution_y", "fps", "fps_base"):
        setattr(bones.render, attr, getattr(main.render, attr))
    bones.frame_start, bones.frame_end = main.frame_start, main.frame_end
    _workbench(bones)
    return bones


def render_preview(main: bpy.types.Scene, footage: Path | None, out_dir: Path, max_frames: int, scale: int,
                   sticks: bpy.types.Object | None, rig: bpy.types.Object) -> list[Path]:
    """Workbench renders of the body (half transparent) and the bones laid over the footage in the sequencer."""
    _workbench(main)
    comp = bpy.data.scenes.new("HSMR preview")
    comp.render.resolution_x = main.render.resolution_x
    comp.render.resolution_y = main.render.resolution_y
    comp.render.resolution_percentage = scale
    comp.render.fps, comp.render.fps_base = main.render.fps, main.render.fps_base
    strips = _strips(comp)
    if footage is not None and footage.is_file():
        strips.new_movie("footage", str(footage), channel=1, frame_start=1)
    elif footage is not None and footage.is_dir():  # an image sequence: one element per file
        files = sorted(p for p in footage.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if files:
            seq = strips.new_image("footage", str(files[0]), channel=1, frame_start=1)
            for f in files[1:]:
                seq.elements.append(f.name)
    body = strips.new_scene("HSMR body", main, channel=2, frame_start=main.frame_start)
    body.blend_type = "ALPHA_OVER"
    body.blend_alpha = 0.6
    if sticks is not None:
        bones = strips.new_scene("HSMR bones", _bones_scene(main, sticks, rig), channel=3,
                                 frame_start=main.frame_start)
        bones.blend_type = "ALPHA_OVER"
    n = main.frame_end - main.frame_start + 1
    step = max(1, -(-n // max_frames))
    comp.frame_start, comp.frame_end, comp.frame_step = main.frame_start, main.frame_end, step
    frames_dir = out_dir / "preview"
    frames_dir.mkdir(parents=True, exist_ok=True)
    comp.render.image_settings.file_format = "PNG"
    comp.render.filepath = str(frames_dir / "frame_")
    bpy.ops.render.render(animation=True, scene=comp.name)
    pngs = sorted(frames_dir.glob("frame_*.png"))

    # the same frames as a short MP4 (no second 3-D render: an image strip of the PNGs)
    if pngs:
        movie_scene = bpy.data.scenes.new("HSMR preview mp4")
        movie_scene.render.resolution_x = comp.render.resolution_x * scale // 100 // 2 * 2
        movie_scene.render.resolution_y = comp.render.resolution_y * scale // 100 // 2 * 2
        movie_scene.render.fps = max(1, round(main.render.fps / main.render.fps_base / step))
        s = _strips(movie_scene).new_image("frames", str(pngs[0]), channel=1, frame_start=1)
        for p in pngs[1:]:
            s.elements.append(p.name)
        movie_scene.frame_start, movie_scene.frame_end = 1, len(pngs)
        r = movie_scene.render
        if hasattr(r.image_settings, "media_type"):  # 5.0: video output is a media type
            r.image_settings.media_type = "VIDEO"
        r.image_settings.file_format = "FFMPEG"
        r.ffmpeg.format = "MPEG4"
        r.ffmpeg.codec = "H264"
        r.filepath = str(out_dir / "preview.mp4")
        try:
            bpy.ops.render.render(animation=True, scene=movie_scene.name)
            produced = sorted(out_dir.glob("preview*.mp4"))
            if produced and produced[0].name != "preview.mp4":
                produced[0].replace(out_dir / "preview.mp4")
        except (RuntimeError, TypeError) as e:
            print(f"hsmr demo: note: no MP4 ({e}); the PNG frames are there", file=sys.stderr)
        bpy.data.scenes.remove(movie_scene)
    if bpy.context.window is not None:
        bpy.context.window.scene = main
    return pngs


def main(argv: list[str] | None = None) -> int:
    from . import api

    ap = argparse.ArgumentParser(prog="python -m hsmr_blender.demo", description=__doc__.splitlines()[0])
    ap.add_argument("result", help="result .npz from the backend")
    ap.add_argument("--out", required=True, help="output folder (demo.blend, preview/)")
    ap.add_argument("--footage", default=None, help="the video (default: the one the result names)")
    ap.add_argument("--frames", type=int, default=12, help="at most this many preview frames (default 12)")
    ap.add_argument("--scale", type=int, default=40, help="preview size in percent of the footage (default 40)")
    ap.add_argument("--no-render", action="store_true", help="only build and save demo.blend")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0  # no demo.blend1 beside the file
    try:
        sc = api.import_result(args.result, footage=args.footage, sticks=True)
    except api.HsmrImportError as e:
        print(f"hsmr demo: error: {e}", file=sys.stderr)
        return 1
    for note in sc.notes:
        print(f"hsmr demo: note: {note}")
    if sc.skin is not None:
        sc.skin.color = (0.85, 0.85, 0.95, 1.0)
    if sc.sticks is not None:
        sc.sticks.color = (1.0, 0.35, 0.05, 1.0)
    scene = bpy.context.scene
    footage = sc.footage
    blend = api.save_blend(out / "demo.blend")
    print(f"hsmr demo: wrote {blend} ({len(sc.frames)} frames, {sc.n_correctives} corrective shape keys)")
    if not args.no_render:
        pngs = render_preview(scene, footage, out, args.frames, args.scale, sc.sticks, sc.armature)
        api.save_blend(out / "demo.blend")  # keep the render settings (and the preview scenes) in the file
        print(f"hsmr demo: rendered {len(pngs)} preview frames into {out / 'preview'}"
              + (f" and {out / 'preview.mp4'}" if (out / "preview.mp4").exists() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
