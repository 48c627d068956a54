"""``blender --command hsmr convert VIDEO -o OUT.blend`` (and ``import RESULT.npz -o OUT.blend``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bpy

_handle = None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="blender --command hsmr", description="HSMR for Blender, batch use")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="footage -> backend -> .blend")
    c.add_argument("video")
    c.add_argument("-o", "--output", required=True, help="the .blend to write")
    c.add_argument("--python", default=None, help="the backend's Python (default: the preferences' one)")
    c.add_argument("--mode", default="auto", choices=("auto", "hsmr", "skelcf", "keypoints"))
    c.add_argument("--weights", default=None, help="HSMR release or SKEL-CF checkpoint (default: found by the backend)")
    c.add_argument("--body", default="open")
    c.add_argument("--device", default="auto")
    c.add_argument("--result", default=None, help="where the result .npz goes (default: beside the .blend)")
    i = sub.add_parser("import", help="result .npz -> .blend")
    i.add_argument("result")
    i.add_argument("-o", "--output", required=True)
    i.add_argument("--footage", default=None)
    r = sub.add_parser("retarget", help="result .npz -> a character's armature -> .blend (and FBX)")
    r.add_argument("result")
    r.add_argument("--target", required=True, help="the .blend holding the character")
    r.add_argument("--armature", default=None, help="its armature object (default: the one humanoid armature)")
    r.add_argument("-o", "--output", required=True, help="the .blend to write")
    r.add_argument("--fbx", default=None, help="also export the retargeted character as FBX")
    r.add_argument("--mapping", default="auto", help="auto, a preset name, or a mapping JSON")
    r.add_argument("--in-place", action="store_true", help="no root motion: the hips stay in place")
    r.add_argument("--feet", default="keep", choices=("keep", "fk"))
    return p


def run(argv: list[str]) -> int:
    from . import api, preferences
    from .io import backend

    args = _parser().parse_args(argv)
    out = Path(args.output)
    try:
        if args.cmd == "retarget":
            return _retarget(args, out)
        bpy.ops.wm.read_homefile(use_empty=True)  # keeps the preferences (and this extension) loaded
        if args.cmd == "convert":
            result = Path(args.result) if args.result else out.with_suffix(".npz")
            python = args.python or preferences.backend_python()
            api.convert(args.video, result, python=python,
                        options={"mode": args.mode, "body": args.body, "device": args.device, "weights": args.weights})
        else:
            api.import_result(args.result, footage=args.footage)
        api.save_blend(out)
    except (api.HsmrImportError, backend.BackendError, OSError, RuntimeError) as e:
        print(f"hsmr: error: {e}", file=sys.stderr)
        return 1
    print(f"hsmr: wrote {out}")
    return 0


def _retarget(args: argparse.Namespace, out: Path) -> int:
    from . import api

    target = Path(args.target)
    if not target.is_file():
        raise api.HsmrImportError(f"target file not found: {target}: pass the .blend that holds the character")
    bpy.ops.wm.open_mainfile(filepath=str(target))
    rig = api.find_target_armature(args.armature)
    report = api.retarget(args.result, rig, args.mapping, root_motion=not args.in_place, feet=args.feet)
    print(report.summary())
    api.save_blend(out)
    if args.fbx:
        api.export_retargeted_fbx(rig, args.fbx)
        print(f"hsmr: wrote {args.fbx}")
    print(f"hsmr: wrote {out}")
    return 0


def register() -> None:
    global _handle
    if hasattr(bpy.utils, "register_cli_command"):  # Blender 4.2+
        _handle = bpy.utils.register_cli_command("hsmr", run)


def unregister() -> None:
    global _handle
    if _handle is not None:
        bpy.utils.unregister_cli_command(_handle)
        _handle = None
