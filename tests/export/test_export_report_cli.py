"""CSV, the HTML report and the CLI entry points of the exports."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from hsmr_backend.export import cli, report
from hsmr_contract import dofs
from hsmr_contract import result_format as rf
from hsmr_contract.export import csv as csv_export
from synthetic.export_clip import save_synthetic

ROOT = Path(__file__).resolve().parents[2]


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
    assert not u.from_behind.any()  # the synthetic subject faces the camera


def _trunk(heading_deg: np.ndarray, lean_deg: float = 0.0) -> np.ndarray:
    """(T,24,3) world joints (z up) of a trunk 4 m in front of a camera at the origin that looks along +y: the
    hips, shoulders and pelvis only, turned ``heading_deg`` away from facing the camera, the shoulders leaning
    ``lean_deg`` forward."""
    h = np.radians(np.asarray(heading_deg, dtype=np.float64))
    lean = np.radians(lean_deg)
    # facing the camera (-y) with z up, the subject's left is +x; the shoulders lean towards the facing
    sy, sz = -0.5 * np.sin(lean), 0.5 * np.cos(lean)
    local = {0: (0.0, 0.0, 0.0), 1: (-0.1, 0.0, -0.08), 6: (0.1, 0.0, -0.08), 15: (-0.18, sy, sz), 20: (0.18, sy, sz)}
    j = np.zeros((len(h), 24, 3))
    c, s = np.cos(h), np.sin(h)
    for k, (x, y, z) in local.items():
        j[:, k] = np.stack([c * x - s * y, s * x + c * y, np.full_like(h, z)], -1)
    j += np.array([0.3, 4.0, 1.0])
    return j


def test_facing_angle_is_the_heading_away_from_the_camera():
    heading = np.array([0.0, 30.0, -70.0, 90.0, 135.0, -150.0, 180.0])
    cam = np.eye(4)
    got = report.facing_angle_deg(_trunk(heading), cam)
    # the pelvis is 0.3 m right of the optical axis: the direction to the camera is turned by atan(0.3 / 4)
    off = np.degrees(np.arctan2(0.3, 4.0))
    expected = np.abs((heading + off + 180.0) % 360.0 - 180.0)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(report.facing_angle_deg(_trunk(heading, lean_deg=40.0), cam), expected, atol=1e-6)
    res = {"joints_world": _trunk(heading), "camera_to_world": cam, "valid": np.ones(len(heading), bool)}
    assert report.view_counts(res) == {"front": 2, "side": 2, "back": 3}
    res["valid"][-1] = False
    assert report.view_counts(res)["back"] == 2


def test_frames_seen_from_behind_are_flagged(tmp_path: Path):
    res = dict(rf.load(save_synthetic(tmp_path)))
    t = len(res["valid"])
    turn = np.linspace(0.0, 180.0, t)
    res["joints_world"] = _trunk(turn).astype(np.float32)
    res["camera_to_world"] = np.eye(4)
    u = report.uncertain_frames(res)
    off = np.degrees(np.arctan2(0.3, 4.0))
    behind = (np.abs((turn + off + 180.0) % 360.0 - 180.0) > report.BACK_VIEW_DEG) & res["valid"]
    assert behind.sum() > 5
    np.testing.assert_array_equal(u.from_behind, behind)
    assert (u.any >= u.from_behind).all()


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
    src = os.pathsep.join(map(str, (ROOT / "backend", ROOT / "backend" / "contract", ROOT)))
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(
        [sys.executable, "-m", "hsmr_backend.export", str(path), "--trc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "clip.markers.trc").is_file() and not (tmp_path / "clip.skel.mot").exists()

