"""Packaging and batch entry points: the extension zip installs and enables; the CLI command works."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from make_result import make_result

bpy = pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_extension  # noqa: E402


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_extension.build(tmp_path_factory.mktemp("dist"))


def test_zip_installs_into_a_temporary_repository_and_enables(extension_zip: Path, tmp_path: Path) -> None:
    import addon_utils

    repos = bpy.context.preferences.extensions.repos
    repo = repos.new(name="hsmr_test", module="hsmr_test", custom_directory=str(tmp_path), source="USER")
    try:
        rc = bpy.ops.extensions.package_install_files(filepath=str(extension_zip), repo=repo.module,
                                                      enable_on_install=True)
        assert rc == {"FINISHED"}
        assert (tmp_path / "hsmr_blender" / "blender_manifest.toml").is_file()
        assert (tmp_path / "hsmr_blender" / "backend_requirements.txt").read_text().count("==") >= 5
        assert (tmp_path / "hsmr_blender" / "backend_src" / "hsmr_backend" / "cli.py").is_file() or not (
            ROOT / "backend" / "hsmr_backend" / "cli.py").is_file()
        assert (tmp_path / "hsmr_blender" / "assets" / "open_body.npz").is_file()
        assert addon_utils.check("bl_ext.hsmr_test.hsmr_blender") == (True, True)
        assert hasattr(bpy.types.Scene, "hsmr") and "HSMR_PT_main" in dir(bpy.types)
        assert hasattr(bpy.ops.hsmr, "run") and hasattr(bpy.ops.hsmr, "check_backend")
        _operators_work(tmp_path)
        addon_utils.disable("bl_ext.hsmr_test.hsmr_blender")
        assert not hasattr(bpy.types.Scene, "hsmr")
    finally:
        repos.remove(repo)


def _operators_work(tmp_path: Path) -> None:
    """The installed extension's operators: import, export, clear errors (Run is modal: needs a window)."""
    bpy.ops.wm.read_homefile(use_empty=True)
    res = tmp_path / "op.npz"
    make_result(res, n_frames=4, n_verts=200, body="synthetic")
    assert bpy.ops.hsmr.import_result(filepath=str(res)) == {"FINISHED"}
    rig = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    bpy.context.view_layer.objects.active = rig
    out = tmp_path / "op.csv"
    assert bpy.ops.hsmr.export(format="csv", filepath=str(out)) == {"FINISHED"}
    assert out.read_text().startswith("time_s,pelvis_tilt_deg")
    with pytest.raises(RuntimeError, match="result file not found"):
        bpy.ops.hsmr.import_result(filepath=str(tmp_path / "none.npz"))


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
    env = {"PYTHONPATH": f"{ROOT / 'backend'}:{ROOT}", "PATH": "/usr/bin:/bin"}
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
