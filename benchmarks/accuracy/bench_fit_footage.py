"""Real-footage benchmark for the video fitter: reprojection error, temporal jitter against a per-frame fit
of the same clip, world-frame ground residual and fit speed. The temporal fit is the pipeline's
(``world.fit_in_world``: the fit, its world frame, and the fit again with resting feet held on the ground).

Landmarks come from the pipeline (``hsmr_backend.landmarks.detect_landmarks``, MediaPipe) or from a saved
track (``--track file.npz`` with the LandmarkTrack arrays: frame_index, fps, image_size, kp2d, kp3d, valid,
boxes). The shared clips are in ../shared/footage (BSD-3, see LICENSE-Pose2Sim.txt there). From a video the
scene's straight edges are found too, as convert does (``hsmr_backend.scene``), so "up" may come from its vertical
edges; a saved track has no frames, and "up" then comes from the body alone.

    python build.py bench bench_fit_footage -- [VIDEO ...] [--frames 100]
        [--track T.npz] [--save-track DIR] [--threads 2] [--body open]

The fit's time is printed per frame, wall and CPU (``time.process_time``) with the load average: the fit runs
on one thread (``FitOptions.threads``), so on a busy machine the CPU figure is the one to compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, run_recorded
from hsmr_backend import fit, scene, world
from hsmr_backend.skel import load_body
from hsmr_backend.skel.landmarks import load_landmark_regressor

FOOTAGE = ROOT.parent / "shared" / "footage"


@dataclass
class Track:
    frame_index: np.ndarray
    fps: float
    image_size: tuple[int, int]
    kp2d: np.ndarray
    kp3d: np.ndarray
    valid: np.ndarray
    boxes: np.ndarray


def track_from_npz(path: Path, frames: int) -> Track:
    z = np.load(path)
    n = min(frames, len(z["kp2d"]))
    return Track(z["frame_index"][:n], float(z["fps"]), tuple(int(v) for v in z["image_size"]), z["kp2d"][:n],
                 z["kp3d"][:n], z["valid"][:n].astype(bool), z["boxes"][:n])


def track_from_video(path: Path, frames: int) -> tuple[object, scene.SceneLines]:
    try:
        from hsmr_backend.landmarks import detect_landmarks
    except ImportError:
        sys.exit("hsmr_backend.landmarks is not in this checkout yet (pipeline branch); pass --track T.npz")
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def it():
        for i in range(frames):
            ok, frame = cap.read()
            if not ok:
                return
            yield i, frame

    t0 = time.perf_counter()
    sampler = scene.FrameSampler(min(frames, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or frames))
    tr = detect_landmarks(sampler.tap(it()), fps=fps, image_size=size, total=frames)
    print(f"  landmarks: {1000 * (time.perf_counter() - t0) / max(len(tr), 1):.0f} ms/frame")
    return tr, scene.scene_lines(sampler.samples, tr.image_size, tr.frame_index, tr.boxes)


def jitter_mm(j: np.ndarray, valid: np.ndarray) -> float:
    ok = valid[:-2] & valid[1:-1] & valid[2:]
    acc = np.linalg.norm(j[:-2] - 2 * j[1:-1] + j[2:], axis=-1)[ok]
    return float(1000 * acc.mean()) if len(acc) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("videos", nargs="*", type=Path)
    ap.add_argument("--track", type=Path, action="append", default=[])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--body", default="open")
    ap.add_argument("--save-track", type=Path, default=None, help="folder: write each detected track there as "
                    "NAME.npz, to rerun the fit with --track without MediaPipe")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_body(args.body)
    reg = load_landmark_regressor("open" if args.body == "open" else "skel")
    sources: list[tuple[str, object]] = [(p.name, p) for p in args.track]
    videos = args.videos or ([] if args.track else sorted(FOOTAGE.glob("single_person_*.mp4")))
    sources += [(v.name, v) for v in videos]
    print(f"# footage: body {args.body!r}, first {args.frames} frames, {args.threads} threads")
    for name, src in sources:
        src = Path(src)
        # a saved track has no frames, so no scene edges: "up" then comes from the body alone
        tr, lines = (track_from_npz(src, args.frames), None) if src.suffix == ".npz" else track_from_video(src,
                                                                                                        args.frames)
        if args.save_track and src.suffix != ".npz":
            args.save_track.mkdir(parents=True, exist_ok=True)
            np.savez(args.save_track / f"{src.stem}.npz", frame_index=tr.frame_index, fps=tr.fps,
                     image_size=np.asarray(tr.image_size), kp2d=tr.kp2d, kp3d=tr.kp3d, valid=tr.valid, boxes=tr.boxes)
        cam = fit.default_camera(*tr.image_size)
        row, worlds, resting = {}, {}, 0.0
        for mode, opts in (("temporal", fit.FitOptions()), ("per-frame", fit.per_frame_options())):
            t0, c0 = time.perf_counter(), time.process_time()
            if mode == "temporal":  # the pipeline's fit: with the resting feet held on the ground
                res, worlds[mode], feet = world.fit_in_world(tr, model, reg, cam, opts, scene=lines)
                resting = float(feet.any(axis=1).mean())
            else:  # the per-frame baseline, as research code fits
                res = fit.fit_sequence(tr, model, reg, cam, opts)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            row[mode] = res
            err = res.reprojection_error_px[res.valid]
            print(f"{name} {mode:9s}: reprojection {err.mean():.1f} px (median {np.median(err):.1f}), jitter "
                  f"{jitter_mm(res.joints_cam, res.valid):.1f} mm/frame², violations {fit.count_violations(res.poses)}"
                  f", fit {1000 * dt / len(tr.kp2d):.1f} ms/frame wall, {1000 * dc / len(tr.kp2d):.1f} CPU "
                  f"({len(tr.kp2d)} frames, focal {cam.focal_source}, load average {os.getloadavg()[0]:.1f})",
                  flush=True)
        ratio = jitter_mm(row["per-frame"].joints_cam, tr.valid) / jitter_mm(row["temporal"].joints_cam, tr.valid)
        w = worlds["temporal"]
        pitch, roll = scene.pitch_roll_deg(w.camera_to_world[2, :3])
        print(f"{name}: jitter per-frame / temporal = {ratio:.1f}x; feet resting in {resting:.0%} of the frames; "
              f"ground residual {100 * w.ground_residual_m:.1f} cm;"
              f" root path {np.linalg.norm(np.diff(w.joints_world[:, 0, :2], axis=0), axis=-1).sum():.2f} m; "
              f"median |pelvis tilt|, |list| in the world {np.degrees(np.median(np.abs(w.poses[:, 0]))):.1f}°, "
              f"{np.degrees(np.median(np.abs(w.poses[:, 1]))):.1f}°; lowest foot joint median z "
              f"{100 * np.median(w.joints_world[:, list(world.FOOT_JOINTS), 2].min(1)):.1f} cm; "
              f"up from {w.up_source}, camera pitch / roll {pitch:.1f}° / {roll:.1f}°; notes: {'; '.join(w.notes)}")


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
