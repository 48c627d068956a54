"""Real footage against a calibrated lab: the four synchronised views of the Pose2Sim demo take.

The ``pose2sim`` 0.10.49 package (BSD-3-Clause, copyright 2022 perfanalytics) ships a demo take filmed by four
calibrated cameras (Qualisys calibration, ``Demo_SinglePerson``); two of those views are the shared clips, the
two others show the subject from behind. A single-view method cannot be checked against the lab's markers
(none ship), but the calibration gives every camera's true focal length and "up", and all four views show the
same motion, so a perfect method would give the same joint angles from each. The package's second take
(``Demo_MultiPerson``: the same four cameras and calibration, two people walking) adds four views for "up".

    python build.py bench bench_multiview_pose2sim -- [--wheel PATH] [--cache DIR]

1. The package wheel (~51 MB) comes from the package index once (``pip download``) or from ``--wheel``; the
   four videos and ``Calib.qca.txt`` are extracted into ``--cache``.
2. ``pose2sim_demo.read_qca`` reads the calibration: per camera the focal length and principal point in pixels, the
   world -> OpenCV-camera rotation, the camera centre, and the lab's up in camera axes. The reading is checked
   here by triangulating MediaPipe's landmarks from three or more views and reprojecting them.
3. Each view is converted (keypoints mode) with the default focal, with the calibrated one, and with the
   default focal and ``up="body"`` (``convert --up body``: "up" from the body alone, as before the scene's
   edges were used).
4. Printed per view: facing, share of frames with resting feet, reprojection error, world-up error against the
   calibration, what decided "up" (the scene's vertical edges, or the body) and the camera pitch and roll
   (estimated / true); then the disagreement of sagittal hip/knee/ankle angles between every pair of views
   (mean absolute difference over the 100 frames).
5. The second take's four views are converted with the default focal (and ``up="body"``), for their world-up
   error only (the
   largest person is followed, who need not be the same one in every view).
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.accuracy.pose2sim_demo import (
    DEFAULT_CACHE,
    DEMO,
    PACKAGE,
    SECOND_TAKE,
    VIEWS,
    fetch,
    projection,
    read_qca,
)
from benchmarks.common import run_recorded

SAGITTAL = ("hip_flexion_r", "hip_flexion_l", "knee_angle_r", "knee_angle_l", "ankle_angle_r", "ankle_angle_l")
def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1.0, 1.0))))


def triangulation_px(results: dict, cams: dict) -> tuple[float, int]:
    """Median reprojection error (px) of shoulders, hips and ankles triangulated from >= 3 confident views."""
    errs = []
    t_all = len(next(iter(results.values()))["keypoints_2d"])
    for t in range(0, t_all, 10):
        for lm in (11, 12, 23, 24, 27, 28):
            rows, seen = [], []
            for v, r in results.items():
                kp = r["keypoints_2d"][t, lm]
                if kp[2] < 0.7:
                    continue
                p = projection(cams[v], int(r["image_size"][0]))
                rows += [kp[0] * p[2] - p[0], kp[1] * p[2] - p[1]]
                seen.append((p, kp[:2]))
            if len(seen) < 3:
                continue
            x = np.linalg.svd(np.array(rows))[2][-1]
            for p, uv in seen:
                q = p @ x
                errs.append(float(np.linalg.norm(q[:2] / q[2] - uv)))
    return (float(np.median(errs)) if errs else float("nan")), len(errs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, default=None, help="a downloaded pose2sim 0.10.49 wheel")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()

    from hsmr_backend.convert import ConvertOptions, convert
    from hsmr_backend.progress import Reporter
    from hsmr_backend.scene import pitch_roll_deg
    from hsmr_contract import result_format
    from hsmr_contract.dofs import dof_index

    demo = fetch(args.cache, args.wheel)
    cams = read_qca((demo / "calibration" / "Calib.qca.txt").read_text())
    focals = ", ".join(f"{v} {cams[v]['f']:.0f} px" for v in VIEWS)
    print(f"# Pose2Sim demo take ({PACKAGE}, BSD-3-Clause), 4 calibrated views, 100 frames at 60 fps; "
          f"calibrated focal {focals}")
    out = Path(tempfile.mkdtemp(prefix="multiview_"))
    sag = [dof_index(n) for n in SAGITTAL]
    if (args.cache / SECOND_TAKE / "calibration" / "Calib.qca.txt").read_text() != \
            (demo / "calibration" / "Calib.qca.txt").read_text():
        raise SystemExit("the second take's calibration differs from the first's")

    def run(take: str, v: str, mode: str) -> dict:
        """mode: default / calibrated focal, or body-up (default focal, ``up="body"``: no scene edges)."""
        path = out / f"{take.split('_')[-1]}_{v}_{mode}.npz"
        focal = cams[v]["f"] if mode == "calibrated" else None
        convert(ConvertOptions(str(args.cache / take / "videos" / f"{v}.mp4"), str(path), mode="keypoints",
                               focal_px=focal, overlay=False, plot=False, resume=False,
                               up="body" if mode == "body-up" else "auto"), Reporter("none"))
        r = result_format.load(path)
        meta = json.loads(str(r["meta_json"]))
        up = np.asarray(r["camera_to_world"], dtype=np.float64)[2, :3]
        (pitch, roll), (pitch_true, roll_true) = pitch_roll_deg(up), pitch_roll_deg(cams[v]["up"])
        told = meta.get("scene_focal_px")
        print(f"{mode:10s} {v}: focal {float(r['camera_K'][0, 0]):.0f} px ({meta.get('focal_source')}; the scene told "
              f"{'nothing' if told is None else f'{told:.0f} px'}), views {meta.get('views')}, feet "
              f"resting {meta.get('feet_resting_share', 0.0):.0%}, reprojection "
              f"{float(np.mean(r['reprojection_error_px'])):.1f} px, world-up error "
              f"{angle_deg(up, cams[v]['up']):.1f}° (up from {meta.get('up_source')}; camera pitch {pitch:.1f}° / "
              f"{pitch_true:.1f}° true, roll {roll:.1f}° / {roll_true:.1f}° true)", flush=True)
        return r

    for mode in ("default", "calibrated", "body-up"):
        results = {v: run(DEMO, v, mode) for v in VIEWS}
        pairs = {}
        for a, b in itertools.combinations(VIEWS, 2):
            d = np.degrees(np.abs(results[a]["poses"][:, sag] - results[b]["poses"][:, sag]))
            pairs[f"{a}-{b}"] = float(d.mean())
        print(f"{mode:10s} sagittal hip/knee/ankle disagreement between views (deg): "
              + ", ".join(f"{k} {x:.1f}" for k, x in pairs.items()) + f"; mean {np.mean(list(pairs.values())):.1f}")
        if mode == "calibrated":
            px, n = triangulation_px(results, cams)
            print(f"calibration check: MediaPipe landmarks triangulated from >= 3 views reproject within {px:.1f} px "
                  f"(median of {n})")
    print(f"# second take ({SECOND_TAKE}), default focal: world-up only")
    for mode in ("default", "body-up"):
        for v in VIEWS:
            run(SECOND_TAKE, v, mode)
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
