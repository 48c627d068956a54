#!/usr/bin/env python3
"""Build the Blender extension zip: ``python build.py extension`` (or run this with the venv's Python).

Stages ``hsmr_blender/`` + the top-level ``blender_manifest.toml`` + the backend source and its pinned
requirements (generated from build.py's REQUIREMENTS, the single source of versions) into a temporary folder,
builds the contract package (``backend/contract``, ``hsmr_contract``) as a wheel into the staged ``wheels/`` and
lists it in the staged manifest (``wheels = [...]``; Blender installs it with the extension), then builds
with Blender's own extension tool (``bl_pkg/cli/blender_ext.py build`` from the bpy wheel, the same code as
``blender --command extension build``). Without the bpy wheel it falls back to a plain zip and says so.

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


def contract_wheel(dest: Path) -> Path:
    """Build the hsmr-contract wheel (pure Python + numpy) into ``dest``; returns its path."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:  # a copy: setuptools writes build/ and *.egg-info into the source
        src = Path(tmp) / "contract"
        shutil.copytree(ROOT / "backend" / "contract", src, ignore=IGNORE)
        cp = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                             "--wheel-dir", str(dest), str(src)], capture_output=True, text=True, check=False)
    if cp.returncode != 0:
        raise SystemExit(f"build_extension: building the contract wheel failed: {cp.stdout}{cp.stderr}".strip())
    wheels = sorted(dest.glob("hsmr_contract-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"build_extension: expected one hsmr_contract wheel in {dest}, found {len(wheels)}")
    return wheels[0]


def write_manifest(src: Path, dest: Path, wheels: list[str]) -> None:
    """The top-level manifest plus the ``wheels`` list (relative to the extension), which only the build writes."""
    text = src.read_text()
    if any(line.startswith("wheels") for line in text.splitlines()):
        raise SystemExit(f"build_extension: {src} must not list wheels; the build writes them")
    line = "wheels = [" + ", ".join(f'"{w}"' for w in wheels) + "]\n"
    head, sep, tail = text.partition("\n[")  # top-level keys must precede the first table
    dest.write_text(head.rstrip("\n") + "\n" + line + (sep + tail if sep else ""))


def stage(dest: Path) -> Path:
    pkg = dest / "hsmr_blender"
    shutil.copytree(ROOT / "hsmr_blender", pkg, ignore=IGNORE)
    wheel = contract_wheel(pkg / "wheels")
    write_manifest(ROOT / "blender_manifest.toml", pkg / "blender_manifest.toml", [f"./wheels/{wheel.name}"])
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
