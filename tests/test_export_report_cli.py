"""CSV, the HTML report, the CLI entry points, and the numpy-only rule for the modules the add-on vendors."""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from test_export_synthetic import save_synthetic

from hsmr_backend import result_format as rf
from hsmr_backend.export import cli, report
from hsmr_backend.export import csv as csv_export
from hsmr_backend.skel import dofs

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "backend" / "hsmr_backend" / "export"


def test_csv_degrees_and_radians(tmp_path: Path):
    res = rf.load(save_synthetic(tmp_path))
    names, data = csv_export.read_csv(csv_export.write_angles_csv(res, tmp_path / "a.csv"))
    assert names == ["time_s", *(f"{n}_deg" for n in dofs.DOF_NAMES)]
    np.testing.assert_allclose(data[:, 1:], np.degrees(res["poses"].astype(np.float64)), atol=1e-6)
    names, data = csv_export.read_csv(csv_export.write_angles_csv(res, tmp_path / "r.csv", radians=True))
    assert names[1] == "pelvis_tilt_rad"
    np.testing.assert_allclose(data[:, 1:], res["poses"], atol=1e-7)


def test_uncertain_frames_rules(tmp_path: Path):
    res = rf.load(save_synthetic(tmp_path))
    u = report.uncertain_frames(res)
    assert np.flatnonzero(u.lost).tolist() == [10, 11, 12]
    assert np.flatnonzero(u.low_confidence).tolist() == [5]
    assert np.flatnonzero(u.high_error).tolist() == [20]


def test_report_has_every_dof_and_its_plots(tmp_path: Path):
    path = save_synthetic(tmp_path)
    html_path = report.write_report(rf.load(path), path.with_suffix(""))
    assert html_path == tmp_path / "clip.report.html"
    text = html_path.read_text()
    for name in dofs.DOF_NAMES:
        assert f"<td>{name}</td>" in text, name  # ROM table row
    for name in ("arm_add_r", "lumbar_extension", "hip_flexion_l"):
        assert f"<td>{name}</td>" in text
    pngs = sorted((tmp_path / "clip.report").glob("*.png"))
    assert len(pngs) == 24 + 2
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"clip.report/{p.name}" in text
    for frame in ("<td>5</td>", "<td>11</td>", "<td>20</td>"):
        assert frame in text  # the flagged frames are listed
    assert "Uncertain frames (5 of 40)" in text


def test_cli_writes_everything_and_fails_in_one_line(tmp_path: Path, capsys):
    path = save_synthetic(tmp_path)
    parser = cli.add_cli_arguments(argparse.ArgumentParser())
    assert cli.run_cli(parser.parse_args([str(path), "--mot", "--csv", "-o", str(tmp_path / "out" / "x")])) == 0
    written = capsys.readouterr().out.split()
    assert [Path(p).name for p in written] == ["x.skel.mot", "x.rajagopal.mot", "x.angles.csv"]
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert cli.run_cli(parser.parse_args([str(bad)])) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hsmr-backend export: error: ") and "bad.npz" in err
    assert cli.run_cli(parser.parse_args([str(tmp_path / "missing.npz")])) == 1
    assert "result file not found" in capsys.readouterr().err


def test_python_dash_m_runs(tmp_path: Path):
    path = save_synthetic(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "backend"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "hsmr_backend.export", str(path), "--trc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "clip.markers.trc").is_file() and not (tmp_path / "clip.skel.mot").exists()


def test_vendored_modules_import_numpy_only():
    allowed = {"__future__", "numpy", "os", "pathlib", "dataclasses", "collections", "math", "typing"}
    for name in ("mot", "trc", "csv", "opensim_map", "kinematics", "markers", "__init__"):
        tree = ast.parse((EXPORT / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative imports stay inside the vendored folder
                    assert node.module in {"mot", "trc", "csv", "opensim_map", "kinematics", "markers"}, node.module
                    continue
                mods = [node.module.split(".")[0]]
            else:
                continue
            assert set(mods) <= allowed, f"{name}.py imports {mods}"
