"""Leg-swap detection benchmark for ``hsmr_backend.landmarks.leg_swapped_frames``.

Random plausible motions of the open body (as in ``bench_fit_synthetic.py``) seen from several headings are
projected with a known camera, with Gaussian 2D noise (sigma px) and 10 % of points dropped; in runs of
2-7 frames (``--run-lengths``) covering a share of each clip the legs' labels are swapped (knees, ankles,
heels, foot tips), as MediaPipe does where the legs cross. We count the swapped frames found, those found
wrongly and those missed, per noise level, for clean clips and clips with swaps, optionally for several
switch-cost scales.

    python build.py bench bench_leg_swaps -- [--clips 8] [--frames 150]
        [--views 0 45 90 135 180] [--sigmas 3 6 10] [--share 0.1] [--run-lengths 2 7]
        [--switch-scales 0.4 0.7 1.0]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.accuracy.bench_fit_synthetic import random_motion, swapped_runs, synthetic_camera
from benchmarks.common import run_recorded
from hsmr_backend.landmarks import relabel as landmarks  # (SWITCH_SCALE is set on it)


def projected_clips(n_clips: int, frames: int, views: list[float]) -> list[tuple[float, np.ndarray]]:
    """(view, (T,33,2) noise-free pixel landmarks) of ``n_clips`` random motions per view."""
    from hsmr_backend.skel import load_body
    from hsmr_backend.skel.landmarks import load_landmark_regressor

    body, reg = load_body("open"), load_landmark_regressor("open")
    cam = synthetic_camera()
    clips = []
    for s in range(n_clips):
        for view in views:
            rng = np.random.default_rng(2000 + s)
            q, trans = random_motion(rng, frames, 30.0, view)
            betas = np.zeros(body.num_betas)
            betas[:2] = rng.normal(0, 0.7, 2)
            f32 = torch.float32
            with torch.no_grad():
                out = body(torch.tensor(q, dtype=f32), torch.tensor(betas, dtype=f32)[None].expand(frames, -1),
                           torch.tensor(trans, dtype=f32))
                lm = reg.apply(out.skin_verts, out.joints).double().numpy()
            clips.append((view, cam.project(lm)))
    return clips


def count(clips: list[tuple[float, np.ndarray]], sigma: float, share: float,
          run_lengths: tuple[int, int] = (2, 7)) -> dict[str, int]:
    """Frames swapped, found, found wrongly and missed over all clips (the same noise and swaps per clip)."""
    tot = {"swapped": 0, "found": 0, "wrongly": 0, "missed": 0}
    for k, (view, px) in enumerate(clips):
        rng = np.random.default_rng(7 * k + int(view))
        t = len(px)
        conf = rng.uniform(0.5, 1.0, px.shape[:2]) * (rng.uniform(size=px.shape[:2]) > 0.1)
        kp = np.concatenate([px + rng.normal(0, sigma, px.shape), conf[..., None]], -1)
        swapped = swapped_runs(rng, t, share, run_lengths)
        kp[swapped] = kp[swapped][:, landmarks.LEG_SWAP]
        found = landmarks.leg_swapped_frames(kp, np.ones(t, bool))
        tot["swapped"] += int(swapped.sum())
        tot["found"] += int((found & swapped).sum())
        tot["wrongly"] += int((found & ~swapped).sum())
        tot["missed"] += int((~found & swapped).sum())
    return tot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=8, help="random motions per view")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--views", type=float, nargs="+", default=[0.0, 45.0, 90.0, 135.0, 180.0])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[3.0, 6.0, 10.0])
    ap.add_argument("--share", type=float, default=0.1, help="share of frames with the legs swapped")
    ap.add_argument("--run-lengths", type=int, nargs=2, default=[2, 7], metavar=("MIN", "MAX"),
                    help="length of each swapped run, frames")
    ap.add_argument("--switch-scales", type=float, nargs="+", default=[landmarks.SWITCH_SCALE],
                    help="multiples of the clip's median leg acceleration charged per change of labelling")
    args = ap.parse_args()
    torch.set_num_threads(1)
    clips = projected_clips(args.clips, args.frames, args.views)
    print(f"# leg swaps: open body, {args.clips} motions x {len(args.views)} views "
          f"({', '.join(f'{v:g}' for v in args.views)} deg) x {args.frames} frames, 10% points dropped; "
          f"swapped runs of {args.run_lengths[0]}-{args.run_lengths[1]} frames over {args.share:.0%} of each clip")
    default = landmarks.SWITCH_SCALE
    try:
        for scale in args.switch_scales:
            landmarks.SWITCH_SCALE = scale
            for sigma in args.sigmas:
                clean = count(clips, sigma, 0.0)
                swaps = count(clips, sigma, args.share, tuple(args.run_lengths))
                print(f"switch x{scale:g}  sigma={sigma:g}px  clean clips: {clean['wrongly']} frames found wrongly"
                      f"  |  with swaps: {swaps['swapped']} swapped, {swaps['found']} found, "
                      f"{swaps['wrongly']} wrongly, {swaps['missed']} missed", flush=True)
    finally:
        landmarks.SWITCH_SCALE = default


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
