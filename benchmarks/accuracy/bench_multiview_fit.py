"""The multi-view fit on the Pose2Sim demo take: 4 calibrated views of one subject (docs/multicamera.md).

The ``pose2sim`` 0.10.49 package (BSD-3-Clause, copyright 2022 perfanalytics) ships ``Demo_SinglePerson``: four
synchronised 100-frame videos and the lab's Qualisys calibration (``Calib.qca.txt``). No markers ship, so the
figures are about agreement: between the fit and each view, between a view and a fit that did not see it, and
between the joint angles from 2, 3 and 4 views.

    python build.py bench bench_multiview_fit -- [--wheel PATH] [--cache DIR] [--speed]
        [--reference benchmarks/results/pose2sim_4view_reference.npz]

Printed (and saved to benchmarks/results/bench_multiview_fit.json by ``benchmarks.common.record``):
1. 4 views: median reprojection error of the triangulated keypoints per view with the nominal calibration and
   after the principal-point refinement, and of the fitted body per view.
2. Leave one view out: a fit on the other 3 views reprojected into the 4th (with its nominal principal point and
   with the one the 4-view refinement found), median px.
3. The 46 DoFs from 3 views (each left-out view) and from 2 views (every pair) against the 4-view fit: mean
   absolute difference (degrees) for hip flexion, knee, ankle, elbow, pelvis tilt, hip flexion + pelvis tilt
   (the thigh's inclination, which the landmarks see even where the split into tilt and flexion is loose) and
   every DoF but the heading.
4. ``--speed``: the whole command line for the 4 views and for cam01 alone, wall time and peak memory.
The 4-view fit's DoFs are saved to ``--reference`` (the reference the monocular accuracy work measures against).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.accuracy.pose2sim_demo import DEFAULT_CACHE, DEMO, PACKAGE, VIEWS, fetch
from benchmarks.common import run_recorded, source_pythonpath

GROUPS = {"hip flexion": ["hip_flexion_r", "hip_flexion_l"], "knee": ["knee_angle_r", "knee_angle_l"],
          "ankle": ["ankle_angle_r", "ankle_angle_l"], "elbow": ["elbow_flexion_r", "elbow_flexion_l"]}


class Fits:
    """Landmarks of the four views once; fits on any subset of them."""

    def __init__(self, demo: Path) -> None:
        from hsmr_backend.multiview.convert import MultiViewOptions, detect_views, open_views
        from hsmr_backend.progress import Reporter
        from hsmr_backend.skel import load_body
        from hsmr_backend.skel.landmarks import load_landmark_regressor

        self.reporter = Reporter("none")
        videos = [str(demo / "videos" / f"{v}.mp4") for v in VIEWS]
        self.opts = MultiViewOptions(videos, str(demo / "calibration" / "Calib.qca.txt"), "unused.npz", resume=False)
        self.views = open_views(self.opts, self.reporter)
        self.nominal = [v.camera for v in self.views]
        detect_views(self.views, self.opts, self.reporter, Path("unused.npz.work"))  # nothing saved: no resume
        self.model, self.regressor = load_body("open"), load_landmark_regressor("open")

    def fit(self, subset: tuple[int, ...]) -> dict:
        from hsmr_backend.multiview.convert import prepare_views
        from hsmr_backend.multiview.fitting import calibration_up, fit_views

        views = [replace(self.views[i], camera=self.nominal[i]) for i in subset]
        t0 = time.perf_counter()
        track, found, points = prepare_views(views, self.opts, self.reporter)
        cams = [v.camera for v in views]
        up, _ = calibration_up(cams[0], points)
        fit, world, _, errors = fit_views(track, cams, points, self.model, self.regressor, up=up)
        return {"subset": subset, "track": track, "found": found, "cams": cams, "fit": fit, "world": world,
                "errors": errors, "seconds": time.perf_counter() - t0}


def held_out_error(run: dict, cam, kp: np.ndarray) -> float:
    """Median over frames of the fitted landmarks' confidence-weighted mean pixel error (T,33,3 keypoints ``kp``)
    in a camera the fit may not have used."""
    first = run["cams"][0]
    world_pts = (np.asarray(run["fit"].landmarks_cam, np.float64) - first.t) @ first.R
    err = np.linalg.norm(cam.project(world_pts) - kp[..., :2], axis=-1)
    conf = np.where(kp[..., 2] >= 0.2, kp[..., 2], 0.0)
    seen = conf.sum(1) > 0
    return float(np.median((conf * err).sum(1)[seen] / conf.sum(1)[seen]))


def dof_differences(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    from hsmr_contract.dofs import DOF_NAMES, dof_index

    d = np.degrees(np.abs(a - b))
    out = {g: float(d[:, [dof_index(n) for n in names]].mean()) for g, names in GROUPS.items()}
    tilt = dof_index("pelvis_tilt")
    out["pelvis tilt"] = float(d[:, tilt].mean())
    # the thigh's inclination from up: what the landmarks see, however the fit splits it into tilt and flexion
    hips = [dof_index(n) for n in GROUPS["hip flexion"]]
    thigh = (a[:, hips] + a[:, [tilt]]) - (b[:, hips] + b[:, [tilt]])
    out["hip flexion + pelvis tilt"] = float(np.degrees(np.abs(thigh)).mean())
    keep = [i for i, n in enumerate(DOF_NAMES) if n != "pelvis_rotation"]  # the heading depends on the first camera
    out["all but heading"] = float(d[:, keep].mean())
    return out


def speed(demo: Path, out: Path) -> dict:
    """The command line on cam01 alone, then on the 4 views: wall seconds and peak resident memory (MB, GNU time's
    maximum resident set size of the command; None where /usr/bin/time is missing)."""
    calib = demo / "calibration" / "Calib.qca.txt"
    runs = {"cam01 alone": [str(demo / "videos" / "cam01.mp4")],
            "4 views": [str(demo / "videos" / f"{v}.mp4") for v in VIEWS] + ["--calibration", str(calib)]}
    timer = ["/usr/bin/time", "-f", "maxrss_kb=%M"] if Path("/usr/bin/time").exists() else []
    figures: dict = {}
    for name, args in runs.items():
        t0 = time.perf_counter()
        done = subprocess.run([*timer, sys.executable, "-m", "hsmr_backend", "convert", *args, "-o",
                               str(out / "speed.npz"), "--progress", "none", "--no-resume"], check=True,
                              capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": source_pythonpath(), "OMP_NUM_THREADS": "1"})
        rss = [ln.split("=")[1] for ln in done.stderr.splitlines() if ln.startswith("maxrss_kb=")]
        figures[name] = {"seconds": time.perf_counter() - t0, "peak_mb": int(rss[-1]) / 1024 if rss else None}
    figures["ratio"] = figures["4 views"]["seconds"] / figures["cam01 alone"]["seconds"]
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, default=None, help="a downloaded pose2sim 0.10.49 wheel")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--speed", action="store_true", help="also time the command line (4 views and cam01 alone)")
    ap.add_argument("--reference", type=Path, default=Path("benchmarks/results/pose2sim_4view_reference.npz"))
    args = ap.parse_args()
    from hsmr_contract.dofs import DOF_NAMES

    demo = fetch(args.cache, args.wheel)
    fits = Fits(demo)
    full = fits.fit((0, 1, 2, 3))
    f4 = full["found"]
    figures: dict = {"take": f"{PACKAGE} {DEMO}", "frames": len(full["track"]), "views": list(VIEWS)}
    figures["triangulation_px"] = {v: {"nominal": a, "refined": b} for v, a, b in zip(
        VIEWS, f4["triangulation_error_before_px"], f4["triangulation_error_after_px"], strict=True)}
    figures["fit_px"] = {v: float(np.median(e[e > 0])) for v, e in zip(VIEWS, full["errors"], strict=True)}
    print(f"# {figures['take']}: 4 calibrated views, {figures['frames']} frames")
    for v in VIEWS:
        t = figures["triangulation_px"][v]
        print(f"{v}: triangulated keypoints {t['nominal']:.1f} px nominal -> {t['refined']:.1f} px refined; "
              f"fitted body {figures['fit_px'][v]:.1f} px (median per frame)")
    kp4 = full["track"].kp2d_views
    figures["leave_one_out_px"], figures["dofs_3_views"], figures["dofs_2_views"] = {}, {}, {}
    for out in range(4):
        run = fits.fit(tuple(i for i in range(4) if i != out))
        nominal = held_out_error(run, fits.nominal[out], kp4[out])
        refined = held_out_error(run, full["cams"][out], kp4[out])
        diffs = dof_differences(run["world"].poses, full["world"].poses)
        figures["leave_one_out_px"][VIEWS[out]] = {"nominal": nominal, "refined_pp": refined}
        figures["dofs_3_views"][f"without {VIEWS[out]}"] = diffs
        print(f"fit without {VIEWS[out]}: reprojected into it {nominal:.1f} px (nominal principal point), "
              f"{refined:.1f} px (refined); DoFs vs 4 views: " + ", ".join(f"{k} {x:.1f}°" for k, x in diffs.items()))
    for pair in itertools.combinations(range(4), 2):
        run = fits.fit(pair)
        diffs = dof_differences(run["world"].poses, full["world"].poses)
        figures["dofs_2_views"]["+".join(VIEWS[i] for i in pair)] = diffs
        print(f"fit on {'+'.join(VIEWS[i] for i in pair)}: DoFs vs 4 views: "
              + ", ".join(f"{k} {x:.1f}°" for k, x in diffs.items()))
    if args.speed:
        with tempfile.TemporaryDirectory() as tmp:
            figures["speed"] = speed(demo, Path(tmp))
        s = figures["speed"]
        print(f"speed: cam01 alone {s['cam01 alone']['seconds']:.0f} s, 4 views {s['4 views']['seconds']:.0f} s "
              f"({s['ratio']:.2f}x); peak memory {s['cam01 alone']['peak_mb']} MB and {s['4 views']['peak_mb']} MB")
    np.savez_compressed(args.reference, poses=full["world"].poses.astype(np.float32), dof_names=np.array(DOF_NAMES),
                        frame_index=full["track"].frame_index, betas=full["fit"].betas.astype(np.float32),
                        joints_world=full["world"].joints_world.astype(np.float32))
    print(f"wrote {args.reference}")
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
