"""Synthetic recovery benchmark for the video fitter (``hsmr_backend.fit``).

Random plausible in-limit motions of the body (smooth sequences, so the temporal terms matter) are projected
with a known camera; 2D landmarks get Gaussian noise (sigma px) and randomly dropped points; the metric 3D
landmarks (hip-centred, as MediaPipe gives them) get 3 cm noise. The clip is fitted back, with the temporal
terms and per frame, and we print MPJPE / PA-MPJPE (mm, 24 joints, root-relative), joint-angle errors
(degrees), limit violations, jitter (mean joint acceleration, mm/frame^2) and fit time.

    python build.py bench bench_fit_synthetic -- [--body open|toy|PATH]
        [--frames 100] [--seqs 3] [--sigmas 2 3 5] [--threads 2] [--views 0 90 180]
        [--leg-swaps 0.1 [--no-relabel]] [--figure docs/figures/fit_synthetic.png]

``--leg-swaps F`` labels the legs the other way round (2D and 3D, as MediaPipe does where they cross) in runs
of 2-7 frames covering about F of each clip; the tracks then go through ``landmarks.leg_swapped_frames`` and
``swap_legs`` as convert's do (``--no-relabel``: fitted as they are), and the frames found are counted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.interpolate import CubicSpline

from benchmarks.common import run_recorded
from hsmr_backend import fit
from hsmr_backend.landmarks import LandmarkTrack
from hsmr_contract.dofs import DOF_NAMES, DOFS, dof_index

# plausible sub-ranges for random key poses (radians), intersected with the limits
PLAUSIBLE = {
    "hip_flexion": (-0.3, 1.3), "hip_adduction": (-0.3, 0.3), "hip_rotation": (-0.4, 0.4), "knee_angle": (0.0, 1.7),
    "ankle_angle": (-0.4, 0.4), "subtalar_angle": (-0.15, 0.15), "mtp_angle": (-0.2, 0.2),
    "lumbar": (-0.2, 0.2), "thorax": (-0.15, 0.15), "head": (-0.3, 0.3),
    "shoulder_r_x": (-1.3, 0.3), "shoulder_l_x": (-0.3, 1.3), "shoulder": (-0.6, 0.6),
    "elbow_flexion": (0.0, 2.0), "pro_sup": (-0.6, 0.6), "wrist": (-0.3, 0.3),
}
ANGLES = {
    "hip flexion": ["hip_flexion_r", "hip_flexion_l"],
    "hip add/rot": ["hip_adduction_r", "hip_adduction_l", "hip_rotation_r", "hip_rotation_l"],
    "knee": ["knee_angle_r", "knee_angle_l"],
    "ankle": ["ankle_angle_r", "ankle_angle_l"],
    "shoulder": ["shoulder_r_x", "shoulder_r_y", "shoulder_r_z", "shoulder_l_x", "shoulder_l_y", "shoulder_l_z"],
    "elbow": ["elbow_flexion_r", "elbow_flexion_l"],
}


def load(body: str):
    if body == "toy":
        from synthetic.fit_toy import ToyBody, ToyRegressor

        return ToyBody(), ToyRegressor(), "toy stand-in body (synthetic/fit_toy.py)"
    from hsmr_backend.skel import load_body
    from hsmr_backend.skel.landmarks import load_landmark_regressor

    model = load_body(body)
    reg_name = "open" if body == "open" else "skel"
    return model, load_landmark_regressor(reg_name), f"body {body!r}"


def _range(name: str) -> tuple[float, float]:
    d = DOFS[dof_index(name)]
    for key, (a, b) in PLAUSIBLE.items():
        if name.startswith(key) or name == key:
            return max(a, d.lower), min(b, d.upper)
    lo, hi = d.lower, d.upper
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return mid - 0.3 * half, mid + 0.3 * half


def random_motion(rng: np.random.Generator, t: int, fps: float,
                  view_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(T,46) camera-frame q (upright, facing ``view_deg`` away from the camera within ±60°: 0 = front,
    90 = side, 180 = back) and (T,3) trans, smooth in time."""
    n_keys = max(2, int(t / fps * 2) + 2)  # a key pose every ~0.5 s
    keys_t = np.linspace(0, t - 1, n_keys)
    q_keys = np.zeros((n_keys, 46))
    for i, name in enumerate(DOF_NAMES[3:], start=3):
        lo, hi = _range(name)
        q_keys[:, i] = rng.uniform(lo, hi, n_keys)
    q = CubicSpline(keys_t, q_keys, bc_type="clamped")(np.arange(t))
    q = fit.clip_to_limits(q)
    heading = rng.uniform(-1.0, 1.0) + 0.3 * np.sin(np.arange(t) / fps * rng.uniform(0.5, 1.5))
    heading = heading + np.radians(view_deg)
    q[:, 0], q[:, 1], q[:, 2] = np.pi, rng.normal(0, 0.05), heading
    start = np.array([rng.uniform(-0.5, 0.5), -0.9, rng.uniform(3.5, 5.0)])
    vel = np.array([rng.uniform(-0.6, 0.6), 0.0, rng.uniform(-0.3, 0.3)])
    trans = start + np.arange(t)[:, None] / fps * vel
    return q, trans


def synthetic_camera() -> fit.Camera:
    """The 1280x720 camera that projects and fits the synthetic clips: focal = the image diagonal (53°), as in
    every run since the first, whatever the pipeline's default focal."""
    return fit.default_camera(1280, 720, focal_px=float(np.hypot(1280, 720)))


def swapped_runs(rng: np.random.Generator, t: int, share: float, lengths: tuple[int, int] = (2, 7)) -> np.ndarray:
    """(t,) bool: random runs of ``lengths`` frames (inclusive) until they cover ``share`` of the clip."""
    swapped = np.zeros(t, bool)
    while swapped.mean() < share:
        a = rng.integers(0, t - lengths[1])
        swapped[a:a + rng.integers(lengths[0], lengths[1] + 1)] = True
    return swapped


def swap_some_legs(rng: np.random.Generator, kp2d: np.ndarray, kp3d: np.ndarray, share: float,
                   relabel: bool) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """The legs' labels swapped in random runs of 2-7 frames covering ``share`` of the clip, then (``relabel``)
    found and undone as convert does; returns the tracks and the frames swapped / found / wrongly found."""
    from hsmr_backend import landmarks

    t = len(kp2d)
    swapped = swapped_runs(rng, t, share)
    kp2d, kp3d = kp2d.copy(), kp3d.copy()
    kp2d[swapped] = kp2d[swapped][:, landmarks.LEG_SWAP]
    kp3d[swapped] = kp3d[swapped][:, landmarks.LEG_SWAP]
    found = landmarks.leg_swapped_frames(kp2d, np.ones(t, bool)) if relabel else np.zeros(t, bool)
    kp2d, kp3d = landmarks.swap_legs(kp2d, kp3d, found)
    return kp2d, kp3d, {"legs_swapped": float(swapped.sum()), "legs_found": float((found & swapped).sum()),
                        "legs_wrong": float((found & ~swapped).sum())}


def procrustes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Align a (N,3) to b with a similarity transform."""
    ma, mb = a.mean(0), b.mean(0)
    a0, b0 = a - ma, b - mb
    u, s, vt = np.linalg.svd(a0.T @ b0)
    d = np.sign(np.linalg.det(u @ vt))
    s[-1] *= d
    u[:, -1] *= d
    r = u @ vt
    scale = s.sum() / (a0**2).sum()
    return scale * a0 @ r + mb


def metrics(res: fit.FitResult, q: np.ndarray, joints: np.ndarray) -> dict[str, float]:
    rel_p = res.joints_cam - res.joints_cam[:, :1]
    rel_g = joints - joints[:, :1]
    out = {
        "MPJPE": 1000 * np.linalg.norm(rel_p - rel_g, axis=-1).mean(),
        "PA-MPJPE": 1000 * np.mean([np.linalg.norm(procrustes(p, g) - g, axis=-1).mean()
                                    for p, g in zip(res.joints_cam, joints, strict=True)]),
    }
    for label, names in ANGLES.items():
        idx = [dof_index(n) for n in names]
        out[label] = float(np.degrees(np.abs(res.poses[:, idx] - q[:, idx])).mean())
    out["violations"] = fit.count_violations(res.poses)
    acc = res.joints_cam[:-2] - 2 * res.joints_cam[1:-1] + res.joints_cam[2:]
    acc_g = joints[:-2] - 2 * joints[1:-1] + joints[2:]
    out["jitter"] = 1000 * np.linalg.norm(acc, axis=-1).mean()
    out["jitter_gt"] = 1000 * np.linalg.norm(acc_g, axis=-1).mean()
    out["reproj_px"] = float(res.reprojection_error_px.mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--body", default="open")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--seqs", type=int, default=3)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[2.0, 3.0, 5.0])
    ap.add_argument("--drop", type=float, default=0.1, help="fraction of 2D landmarks dropped")
    ap.add_argument("--views", type=float, nargs="+", default=[0.0],
                    help="subject headings away from the camera, degrees (0 front, 90 side, 180 back); "
                         "every sequence is fitted once per view")
    ap.add_argument("--leg-swaps", type=float, default=0.0, help="share of frames with the legs' labels swapped")
    ap.add_argument("--no-relabel", action="store_true", help="fit leg-swapped tracks without relabelling")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-per-frame", action="store_true", help="skip the per-frame baseline")
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="FitOptions overrides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        model, reg, label = load(args.body)
    except (ImportError, AttributeError, FileNotFoundError) as e:
        print(f"body {args.body!r} unavailable ({e}); using the toy stand-in body")
        model, reg, label = load("toy")
    print(f"# synthetic recovery: {label}, {args.seqs} sequences x {args.frames} frames at 30 fps, "
          f"views {', '.join(f'{v:g}' for v in args.views)} deg, "
          f"{args.drop:.0%} points dropped, 3D landmark noise 3 cm, {args.threads} threads")
    cam = synthetic_camera()
    rows = []
    for sigma in args.sigmas:
        for mode in ("temporal",) + (() if args.no_per_frame else ("per-frame",)):
            over = {k: type(getattr(fit.FitOptions(), k))(v) for k, v in (x.split("=", 1) for x in args.set)}
            base = fit.FitOptions(**over)
            opts = base if mode == "temporal" else fit.per_frame_options(base)
            acc: dict[str, list[float]] = {}
            t_fit = c_fit = 0.0
            for s, view in ((s, v) for s in range(args.seqs) for v in args.views):
                rng = np.random.default_rng(1000 + s)
                q, trans = random_motion(rng, args.frames, 30.0, view)
                betas = np.zeros(getattr(model, "num_betas", 10) if isinstance(getattr(model, "num_betas", 10), int)
                                 else 10)
                betas[:2] = rng.normal(0, 0.7, 2)
                with torch.no_grad():
                    f32 = torch.float32
                    out = model(torch.tensor(q, dtype=f32), torch.tensor(betas, dtype=f32)[None].expand(len(q), -1),
                                torch.tensor(trans, dtype=f32))
                    lm = reg.apply(out.skin_verts, out.joints).double().numpy()
                joints = out.joints.double().numpy()
                kp = cam.project(lm) + rng.normal(0, sigma, lm.shape[:2] + (2,))
                conf = rng.uniform(0.5, 1.0, lm.shape[:2]) * (rng.uniform(size=lm.shape[:2]) > args.drop)
                hip = (lm[:, 23] + lm[:, 24]) / 2
                kp3d = lm - hip[:, None] + rng.normal(0, 0.03, lm.shape)
                kp2d = np.concatenate([kp, conf[..., None]], -1)
                if args.leg_swaps > 0:
                    kp2d, kp3d, found = swap_some_legs(rng, kp2d, kp3d, args.leg_swaps, not args.no_relabel)
                    for k, v in found.items():
                        acc.setdefault(k, []).append(v)
                track = LandmarkTrack(np.arange(len(q)), 30.0, (1280, 720), kp2d,
                                      kp3d, np.ones(len(q), bool), np.zeros((len(q), 4), np.float32))
                t0, c0 = time.perf_counter(), time.process_time()
                res = fit.fit_sequence(track, model, reg, cam, opts)
                t_fit += time.perf_counter() - t0
                c_fit += time.process_time() - c0
                for k, v in metrics(res, q, joints).items():
                    acc.setdefault(k, []).append(v)
            row = {k: float(np.mean(v)) for k, v in acc.items()}
            n_frames = args.seqs * len(args.views) * args.frames
            row.update(sigma=sigma, mode=mode, ms_per_frame=1000 * t_fit / n_frames,
                       cpu_ms_per_frame=1000 * c_fit / n_frames)
            rows.append(row)
            print(f"sigma={sigma:.0f}px {mode:9s} MPJPE {row['MPJPE']:6.1f} mm  PA-MPJPE {row['PA-MPJPE']:6.1f} mm  "
                  + "  ".join(f"{k} {row[k]:.1f}°" for k in ANGLES)
                  + f"  violations {row['violations']:.0f}  jitter {row['jitter']:.1f} (gt {row['jitter_gt']:.1f})"
                  f" mm/f²  reproj {row['reproj_px']:.2f} px  {row['ms_per_frame']:.0f} ms/frame "
                  f"({row['cpu_ms_per_frame']:.0f} CPU)"
                  + (f"  leg swaps per clip: {row['legs_swapped']:.1f} frames, found {row['legs_found']:.1f}, "
                     f"wrongly {row['legs_wrong']:.1f}" if args.leg_swaps > 0 else ""), flush=True)
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axs = plt.subplots(1, 2, figsize=(9, 3.2))
        for mode, style in (("temporal", "o-"), ("per-frame", "s--")):
            rr = [r for r in rows if r["mode"] == mode]
            if not rr:
                continue
            axs[0].plot([r["sigma"] for r in rr], [r["PA-MPJPE"] for r in rr], style, label=f"{mode} PA-MPJPE")
            axs[1].plot([r["sigma"] for r in rr], [r["knee"] for r in rr], style, label=f"{mode} knee")
            axs[1].plot([r["sigma"] for r in rr], [r["hip flexion"] for r in rr], style, alpha=0.5,
                        label=f"{mode} hip flexion")
        axs[0].set(xlabel="2D noise σ (px)", ylabel="mm")
        axs[1].set(xlabel="2D noise σ (px)", ylabel="degrees")
        for a in axs:
            a.legend(fontsize=7)
            a.grid(alpha=0.3)
        fig.suptitle(f"Synthetic recovery ({label})", fontsize=9)
        fig.tight_layout()
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=120)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
