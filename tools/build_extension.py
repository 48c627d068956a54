#!/usr/bin/env python3
"""Build the Blender extension zip: ``python build.py extension`` (or run this with the venv's Python).

Stages ``hsmr_blender/`` + the top-level ``blender_manifest.toml`` + the backend source and its pinned
requirements (generated from build.py's REQUIREMENTS, the single source of versions) into a temporary folder,
then builds with Blender's own extension tool (``bl_pkg/cli/blender_ext.py build`` from the bpy wheel, the same
code as ``blender --command extension build``). Without the bpy wheel it falls back to a plain zip and says so.

    python tools/build_extension.py [--output-dir dist]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# what the backend environment must not get (Blender-side and development-only packages)
NOT_FOR_BACKEND = ("bpy", "pytest", "hypothesis", "ruff")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "*.egg-info")


def backend_requirements() -> list[str]:
    spec = importlib.util.spec_from_file_location("hsmr_build", ROOT / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [r for r in mod.REQUIREMENTS if r.split("==")[0].lower() not in NOT_FOR_BACKEND]


def blender_ext_tool() -> Path | None:
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        hits = sorted(Path(base).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if hits:
            return hits[-1]
    return None


def stage(dest: Path) -> Path:
    pkg = dest / "hsmr_blender"
    shutil.copytree(ROOT / "hsmr_blender", pkg, ignore=IGNORE)
    shutil.copy2(ROOT / "blender_manifest.toml", pkg / "blender_manifest.toml")
    shutil.copytree(ROOT / "backend", pkg / "backend_src", ignore=IGNORE)
    # the open default body + landmark tables (and their licence): the backend, installed editable from
    # backend_src, finds them at <extension>/assets (its source-checkout location)
    if (ROOT / "assets").is_dir():
        shutil.copytree(ROOT / "assets", pkg / "assets", ignore=shutil.ignore_patterns("*.mp4", "*.README.md", ".*"))
    (pkg / "backend_requirements.txt").write_text("\n".join(backend_requirements()) + "\n")
    return pkg


def manifest_id_version(manifest: Path) -> tuple[str, str]:
    import tomllib

    data = tomllib.loads(manifest.read_text())
    return data["id"], data["version"]


def build(output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pkg = stage(Path(tmp))
        ext_id, version = manifest_id_version(pkg / "blender_manifest.toml")
        out = output_dir / f"{ext_id}-{version}.zip"
        out.unlink(missing_ok=True)
        tool = blender_ext_tool()
        if tool is not None:
            cp = subprocess.run([sys.executable, str(tool), "build", "--source-dir", str(pkg), "--output-filepath",
                                 str(out)], capture_output=True, text=True, check=False)
            if cp.returncode != 0:
                raise SystemExit(f"build_extension: Blender's extension build failed: {cp.stdout}{cp.stderr}".strip())
            print(f"build_extension: built {out} with Blender's extension tool ({tool.parent.parent.name})")
        else:
            print("build_extension: note: the bpy wheel (Blender's extension tool) is not installed; writing a plain "
                  "zip without Blender's manifest validation")
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(pkg.rglob("*")):
                    if f.is_file():
                        zf.write(f, f.relative_to(pkg).as_posix())
            print(f"build_extension: built {out}")
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output-dir", default=str(ROOT / "dist"))
    args = ap.parse_args(argv)
    build(Path(args.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
