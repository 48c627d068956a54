"""Packaging and batch entry points: the extension zip installs and enables; the CLI command works."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from synthetic.make_result import make_result

bpy = pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(map(str, (ROOT / "backend", ROOT / "backend" / "contract", ROOT)))


def _load_build_extension():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("build_extension", ROOT / "tools" / "build_extension.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _load_build_extension().build(tmp_path_factory.mktemp("dist"))


# Runs in a fresh bpy process whose Blender user folder is a temporary one (BLENDER_USER_RESOURCES), so the
# extension and its wheel install there. The contract package must then come from the extension's own
# site-packages: source checkouts and editable installs of it are taken off the path first.
INSTALL_SCRIPT = r"""
import json, sys
from pathlib import Path
zip_path, repo_dir, result, out_csv = sys.argv[1:5]
sys.path[:] = [p for p in sys.path if not (Path(p) / "hsmr_contract").is_dir()]
sys.meta_path[:] = [f for f in sys.meta_path if "hsmr_contract" not in repr(f)]
import bpy
import addon_utils
repo = bpy.context.preferences.extensions.repos.new(name="hsmr_test", module="hsmr_test", custom_directory=repo_dir,
                                                    source="USER")
rc = bpy.ops.extensions.package_install_files(filepath=zip_path, repo=repo.module, enable_on_install=True)
import hsmr_contract
report = {"install": sorted(rc), "enabled": list(addon_utils.check("bl_ext.hsmr_test.hsmr_blender")),
          "contract_file": hsmr_contract.__file__, "user_site": bpy.utils.user_resource("EXTENSIONS", path=".local"),
          "panel": "HSMR_PT_main" in dir(bpy.types), "ops": hasattr(bpy.ops.hsmr, "run")}
bpy.ops.wm.read_homefile(use_empty=True)
report["import"] = sorted(bpy.ops.hsmr.import_result(filepath=result))
bpy.context.view_layer.objects.active = next(o for o in bpy.data.objects if o.type == "ARMATURE")
report["export"] = sorted(bpy.ops.hsmr.export(format="csv", filepath=out_csv))
try:
    bpy.ops.hsmr.import_result(filepath=result + ".missing")
except RuntimeError as e:
    report["missing"] = str(e)
addon_utils.disable("bl_ext.hsmr_test.hsmr_blender")
report["disabled"] = not hasattr(bpy.types.Scene, "hsmr")
print("REPORT " + json.dumps(report))
"""


def test_zip_carries_the_contract_wheel_listed_in_its_manifest(extension_zip: Path) -> None:
    import tomllib

    with zipfile.ZipFile(extension_zip) as zf:
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
        wheels = [n for n in zf.namelist() if n.endswith(".whl")]
        assert [w.removeprefix("./") for w in manifest["wheels"]] == wheels
        assert len(wheels) == 1 and Path(wheels[0]).name.startswith("hsmr_contract-")
        assert not any(n.startswith(("io/export/", "io/protocol")) for n in zf.namelist())
    tool = _load_build_extension().blender_ext_tool()
    assert tool is not None  # bpy is installed (importorskip above), so Blender's extension tool is there
    check = subprocess.run([sys.executable, str(tool), "validate", str(extension_zip)], capture_output=True, text=True,
                           timeout=120, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_zip_installs_into_a_temporary_repository_and_enables(extension_zip: Path, tmp_path: Path) -> None:
    repo_dir, user = tmp_path / "repo", tmp_path / "user"
    result = tmp_path / "op.npz"
    make_result(result, n_frames=4, n_verts=200, body="synthetic")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BLENDER_USER_RESOURCES": str(user),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(extension_zip), str(repo_dir), str(result),
                           str(tmp_path / "op.csv")], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(lines[-1].removeprefix("REPORT "))
    assert report["install"] == ["FINISHED"] and report["enabled"] == [True, True]
    assert (repo_dir / "hsmr_blender" / "blender_manifest.toml").is_file()
    assert (repo_dir / "hsmr_blender" / "backend_requirements.txt").read_text().count("==") >= 5
    assert (repo_dir / "hsmr_blender" / "backend_src" / "contract" / "pyproject.toml").is_file()
    assert (repo_dir / "hsmr_blender" / "assets" / "open_body.npz").is_file()
    # the contract came from the wheel Blender installed into the (temporary) user folder, not from the checkout
    contract = Path(report["contract_file"]).resolve()
    assert contract.is_relative_to(Path(report["user_site"]).resolve()), contract
    assert contract.is_relative_to(user.resolve()) and not contract.is_relative_to(ROOT.resolve())
    assert report["panel"] and report["ops"]
    assert report["import"] == ["FINISHED"] and report["export"] == ["FINISHED"]
    assert (tmp_path / "op.csv").read_text().startswith("time_s,pelvis_tilt_deg")
    assert "result file not found" in report["missing"] and report["disabled"]


def test_manifest_declares_what_blender_needs() -> None:
    import tomllib

    m = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    assert m["blender_version_min"] == "4.2.0" and m["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(m["permissions"]) == {"files", "network"}


def test_cli_command_imports_and_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cli = importlib.import_module("hsmr_blender.cli_command")
    res = tmp_path / "r.npz"
    make_result(res, n_frames=5, n_verts=200, body="synthetic")
    out = tmp_path / "o.blend"
    assert cli.run(["import", str(res), "-o", str(out)]) == 0
    assert out.is_file() and out.stat().st_size > 10000
    assert cli.run(["import", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "x.blend")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "result file not found" in err[0]


def test_batch_script_exit_code(tmp_path: Path) -> None:
    # the bpy wheel stands in for `blender --background --python-exit-code 1 --python script.py`
    res = tmp_path / "r.npz"
    make_result(res, n_frames=5, n_verts=200, body="synthetic")
    script = ("import sys; import hsmr_blender.api as api\n"
              "sc = api.import_result(sys.argv[1]); api.save_blend(sys.argv[2])\n")
    env = {"PYTHONPATH": PYTHONPATH, "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-c", script, str(res), str(tmp_path / "a.blend")], env=env,
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-c", script, str(tmp_path / "nope.npz"), str(tmp_path / "b.blend")],
                         env=env, capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "result file not found" in bad.stderr


def test_cli_convert_runs_the_backend_and_saves(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`blender --command hsmr convert` with a stand-in backend Python that speaks the protocol."""
    cli = importlib.import_module("hsmr_blender.cli_command")
    prepared = tmp_path / "prepared.npz"
    make_result(prepared, n_frames=4, n_verts=200, body="synthetic")
    fake = tmp_path / "fakepy"
    fake.write_text(
        "#!/bin/sh\n"
        '[ "$3" = convert ] || exit 9\n'
        f'cp "{prepared}" "$6"\n'
        "echo '{\"type\":\"hello\",\"protocol\":1,\"backend_version\":\"fake\"}'\n"
        "echo '{\"type\":\"progress\",\"stage\":\"fit\",\"frame\":1,\"total\":1}'\n"
        'echo "{\\"type\\":\\"done\\",\\"result\\":\\"$6\\"}"\n'
    )
    fake.chmod(0o755)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    out = tmp_path / "conv.blend"
    assert cli.run(["convert", str(video), "-o", str(out), "--python", str(fake)]) == 0
    assert out.is_file() and (tmp_path / "conv.npz").is_file()
    failing = tmp_path / "failpy"
    failing.write_text("#!/bin/sh\necho '{\"type\":\"error\",\"message\":\"no person found: choose another clip\"}'\n"
                       "exit 2\n")
    failing.chmod(0o755)
    capsys.readouterr()
    assert cli.run(["convert", str(video), "-o", str(tmp_path / "f.blend"), "--python", str(failing)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hsmr: error: no person found: choose another clip"]
