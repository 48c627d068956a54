#!/usr/bin/env python3
"""How far one view's fit is from a 4-view reference: the Pose2Sim demo take, each calibrated view alone.

The ``pose2sim`` 0.10.49 package (BSD-3-Clause, copyright 2022 perfanalytics) ships ``Demo_SinglePerson``: four
synchronised 100-frame views and the lab's Qualisys calibration (``bench_multiview_pose2sim.py`` fetches them).
The reference is a robust triangulation of MediaPipe's 2D landmarks from the four views: each view's left/right
swaps fixed against the other views first, a per-camera principal-point correction (the nominal calibration is
off by 10-25 px), a confidence-weighted DLT per point with the worst view dropped while it is more than 15 px off.
Each view is then fitted alone with today's defaults (as convert does: its landmarks, its scene edges, its focal),
and the fitted body's MediaPipe-equivalent landmarks (the body's landmark regressor on the posed body, so the
definitions match the triangulated ones) are compared with the reference:

- PA-MPJPE of the 22 body landmarks (11-32; similarity Procrustes per frame), mm;
- knee and elbow flexion from landmark triplets (180° minus the hip-knee-ankle / shoulder-elbow-wrist angle, the
  same on both sides): signed bias L / R (negative: less bent than the reference) and the RMSE of the four;
- limb segment lengths (median over the clip) against the triangulated ones, %;
- the same for MediaPipe's own world landmarks (``pose_world_landmarks``), which the fit's depth prior reads.

    PYTHONPATH=backend:backend/contract:. .venv/bin/python -m benchmarks.accuracy.bench_monocular_pose2sim \
        [--views cam01 cam02] [--take Demo_SinglePerson] [--json benchmarks/results/data/monocular_pose2sim.json]

What it prints goes to benchmarks/results/bench_monocular_pose2sim.json (``benchmarks.common.record``; the results
page), the figures themselves to ``--json`` (default benchmarks/results/data/monocular_pose2sim.json).

The landmarks, the scene's edges and the focal of every view are cached (``--cache``/monocular/) so that reruns
only fit; ``--refresh`` detects again. ``--set NAME=VALUE`` overrides FitOptions; ``--reference-depth`` fits
with the reference's 3D in place of MediaPipe's world landmarks (how much of the gap is MediaPipe's depth);
``--pose-model heavy`` fits views whose landmarks come from MediaPipe's heavy model (the reference stays the
full model's triangulation).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.accuracy.pose2sim_demo import DEFAULT_CACHE, VIEWS, fetch, projection, read_qca
from benchmarks.common import RESULTS, run_recorded

TAKES = ("Demo_SinglePerson", "Demo_MultiPerson")
BODY = np.arange(11, 33)  # MediaPipe's 22 body landmarks (0-10 are the face)
ANGLES = {"knee_l": (23, 25, 27), "knee_r": (24, 26, 28), "elbow_l": (11, 13, 15), "elbow_r": (12, 14, 16)}
SEGMENTS = {"torso": ((11, 23), (12, 24)), "hip_width": ((23, 24),), "shoulder_width": ((11, 12),),
            "thigh": ((23, 25), (24, 26)), "shank": ((25, 27), (26, 28)), "upper_arm": ((11, 13), (12, 14)),
            "forearm": ((13, 15), (14, 16))}
# DoFs compared with the multi-view SKEL fit (pelvis tilt depends on each fit's own "up"; heading is left out)
DOFS = ("knee_angle_l", "knee_angle_r", "hip_flexion_l", "hip_flexion_r", "hip_adduction_l", "hip_adduction_r",
        "hip_rotation_l", "hip_rotation_r", "ankle_angle_l", "ankle_angle_r", "elbow_flexion_l", "elbow_flexion_r",
        "shoulder_l_x", "shoulder_l_y", "shoulder_l_z", "shoulder_r_x", "shoulder_r_y", "shoulder_r_z", "pelvis_tilt",
        "lumbar_extension", "lumbar_bending", "lumbar_twist")
DOF_REFERENCE = RESULTS / "pose2sim_4view_reference.npz"  # the multi-view fit's (branch multicam)
MIN_CONF = 0.5  # 2D landmarks below this confidence are not triangulated
DROP_PX = 15.0  # the worst view is dropped while its reprojection error is above this
SWAP_GAIN = 0.7  # a view's frame is relabelled when swapping left/right cuts its error to this share


# --- inputs: each view's landmarks, scene and camera exactly as convert computes them (cached)
class _Captured(Exception):
    pass


HEAVY_HINT = ("MediaPipe's heavy pose model is not in the mediapipe wheel: `npm pack @mediapipe/pose` (Apache-2.0) "
              "and copy its pose_landmark_heavy.tflite to {}")


def use_pose_model(name: str) -> str:
    """Make convert's landmark stage run MediaPipe's ``full`` (the product's) or ``heavy`` model; returns the
    cache folder's name for that model's landmarks. The heavy file must be in MediaPipe's own folder."""
    import mediapipe

    from hsmr_backend.landmarks import pose

    if name == "heavy":
        path = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_heavy.tflite"
        if not path.is_file():
            raise SystemExit(HEAVY_HINT.format(path))
    pose.MODEL_COMPLEXITY = {"full": 1, "heavy": 2}[name]
    return "monocular" if name == "full" else f"monocular_{name}"


def view_inputs(video: Path, cache: Path, refresh: bool) -> dict[str, Any]:
    """The track, camera and scene edges convert would fit, captured from convert itself (it stops there)."""
    path = cache / f"{video.parent.parent.name}_{video.stem}.pkl"
    if path.is_file() and not refresh:
        try:
            with path.open("rb") as f:
                return pickle.load(f)
        except (pickle.UnpicklingError, AttributeError, ImportError, EOFError):
            pass  # written by older code: detect again
    from hsmr_backend import world
    from hsmr_backend.convert import ConvertOptions, convert
    from hsmr_backend.progress import Reporter

    got: dict[str, Any] = {}
    real = world.fit_in_world

    def capture(track: Any, model: Any, regressor: Any, camera: Any, options: Any = None, init: Any = None,
                progress: Any = None, scene: Any = None) -> Any:
        got.update(track=track, camera=camera, scene=scene)
        raise _Captured

    world.fit_in_world = capture
    try:
        convert(ConvertOptions(str(video), str(cache / "capture.npz"), mode="keypoints", overlay=False, plot=False,
                               resume=False), Reporter("none"))
    except _Captured:
        pass
    finally:
        world.fit_in_world = real
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(got, f)
    return got


def fit_view(inputs: dict[str, Any], options: Any = None) -> tuple[Any, Any, float]:
    """convert's fit of one view (defaults unless ``options``); returns the fit, its world and the seconds."""
    from hsmr_backend.fit import FitOptions
    from hsmr_backend.skel import load_body
    from hsmr_backend.skel.landmarks import load_landmark_regressor
    from hsmr_backend.world import fit_in_world

    model, reg = load_body("open"), load_landmark_regressor("open")
    t0 = time.perf_counter()
    fit, wld, _ = fit_in_world(inputs["track"], model, reg, inputs["camera"], options or FitOptions(),
                               scene=inputs["scene"])
    return fit, wld, time.perf_counter() - t0


# --- the reference: robust triangulation of the four views' 2D landmarks
def dlt(kp: np.ndarray, ps: np.ndarray, use: np.ndarray) -> np.ndarray:
    """(N,3) points from (V,N,3) pixels+confidence, (V,3,4) projections, (V,N) views to use (weighted DLT)."""
    w = np.where(use, kp[..., 2], 0.0)  # (V,N)
    rows_u = kp[..., 0, None] * ps[:, None, 2] - ps[:, None, 0]  # (V,N,4)
    rows_v = kp[..., 1, None] * ps[:, None, 2] - ps[:, None, 1]
    a = np.concatenate([rows_u * w[..., None], rows_v * w[..., None]], 0).transpose(1, 0, 2)  # (N,2V,4)
    x = np.linalg.svd(a)[2][:, -1]
    return x[:, :3] / np.where(np.abs(x[:, 3:]) < 1e-12, 1e-12, x[:, 3:])


def reproject(x: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """(V,N,2) pixels of (N,3) points."""
    h = np.einsum("vij,nj->vni", ps, np.concatenate([x, np.ones((len(x), 1))], 1))
    return h[..., :2] / h[..., 2:]


def robust_points(kp: np.ndarray, ps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted DLT, dropping the worst view while it is over ``DROP_PX`` and 3+ views remain; (N,3) points and
    (V,N) which views were used (points seen by fewer than 2 views are NaN)."""
    use = kp[..., 2] >= MIN_CONF
    for _ in range(len(ps) - 2):
        x = dlt(kp, ps, use)
        err = np.where(use, np.linalg.norm(reproject(x, ps) - kp[..., :2], axis=-1), -1.0)
        worst = err.argmax(0)
        drop = (err.max(0) > DROP_PX) & (use.sum(0) > 2)
        if not drop.any():
            break
        use[worst[drop], np.flatnonzero(drop)] = False
    x = dlt(kp, ps, use)
    x[use.sum(0) < 2] = np.nan
    return x, use


def triangulate(kp2d: dict[str, np.ndarray], cams: dict, sizes: dict[str, int]) -> dict[str, Any]:
    """(T,33,3) reference landmarks in the lab frame, after fixing each view's left/right swaps and principal point."""
    from hsmr_backend.landmarks.names import MIRROR

    views = list(kp2d)
    kp = np.stack([kp2d[v].astype(np.float64) for v in views])  # (V,T,33,3)
    n_v, n_t = kp.shape[:2]
    offset = np.zeros((n_v, 2))
    swapped = np.zeros((n_v, n_t), bool)
    for _ in range(3):
        ps = np.stack([projection(cams[v], sizes[v]) for v in views])
        ps[:, :2] += offset[:, :, None] * ps[:, 2:3]  # shift each principal point
        x, use = robust_points(kp.reshape(n_v, -1, 3), ps)
        proj = reproject(np.nan_to_num(x), ps).reshape(n_v, n_t, 33, 2)
        seen = (kp[..., 2] >= MIN_CONF) & np.isfinite(x.reshape(n_t, 33, 3)[None, ..., 0])
        err = np.where(seen, np.linalg.norm(proj - kp[..., :2], axis=-1), 0.0)
        err_sw = np.where(seen[:, :, MIRROR], np.linalg.norm(proj - kp[:, :, MIRROR, :2], axis=-1), 0.0)
        flip = err_sw[:, :, BODY].sum(-1) < SWAP_GAIN * err[:, :, BODY].sum(-1)
        kp[flip] = kp[flip][:, MIRROR]
        swapped ^= flip
        res = np.where((use.reshape(n_v, n_t, 33) & seen)[..., None], kp[..., :2] - proj, np.nan)
        offset += np.nanmedian(res.reshape(n_v, -1, 2), axis=1)
    ps = np.stack([projection(cams[v], sizes[v]) for v in views])
    ps[:, :2] += offset[:, :, None] * ps[:, 2:3]
    x, use = robust_points(kp.reshape(n_v, -1, 3), ps)
    err = np.linalg.norm(reproject(np.nan_to_num(x), ps) - kp.reshape(n_v, -1, 3)[..., :2], axis=-1)
    return {"points": x.reshape(n_t, 33, 3), "rmse_px": float(np.sqrt(np.mean(err[use] ** 2))),
            "offset_px": {v: offset[i].round(1).tolist() for i, v in enumerate(views)},
            "swapped_frames": {v: int(swapped[i].sum()) for i, v in enumerate(views)}}


# --- comparison through the same landmark definitions
def flexion_deg(lm: np.ndarray, a: int, b: int, c: int) -> np.ndarray:
    """(T,) 180° minus the angle at b of the landmark triplet a-b-c."""
    u, w = lm[:, a] - lm[:, b], lm[:, c] - lm[:, b]
    cos = (u * w).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(w, axis=-1)
    return 180.0 - np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pa_error(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(T,) mean distance after the best similarity transform per frame (pred onto ref)."""
    out = np.empty(len(pred))
    for t, (p, r) in enumerate(zip(pred, ref, strict=True)):
        pc, rc = p - p.mean(0), r - r.mean(0)
        u, s, vt = np.linalg.svd(pc.T @ rc)
        d = np.sign(np.linalg.det(u @ vt))
        s[-1] *= d
        u[:, -1] *= d
        scale = s.sum() / (pc**2).sum()
        out[t] = np.linalg.norm(scale * pc @ (u @ vt) - rc, axis=-1).mean()
    return out


def compare(pred: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """Figures of one view's fitted landmarks (T,33,3) against the reference's (frames where both are finite)."""
    ok = np.isfinite(ref[:, BODY]).all(axis=(1, 2)) & np.isfinite(pred[:, BODY]).all(axis=(1, 2))
    pred, ref = pred[ok], ref[ok]
    out: dict[str, Any] = {"frames": int(ok.sum()), "pa_mpjpe_mm": float(pa_error(pred[:, BODY], ref[:, BODY]).mean()
                                                                          * 1000)}
    errs = []
    for name, (a, b, c) in ANGLES.items():
        d = flexion_deg(pred, a, b, c) - flexion_deg(ref, a, b, c)
        out[f"{name}_bias_deg"] = float(d.mean())
        out[f"{name}_rmse_deg"] = float(np.sqrt((d**2).mean()))
        errs.append(d)
    out["knee_elbow_rmse_deg"] = float(np.sqrt((np.concatenate(errs) ** 2).mean()))
    for name, sides in SEGMENTS.items():
        lp = np.mean([np.median(np.linalg.norm(pred[:, a] - pred[:, b], axis=-1)) for a, b in sides])
        lr = np.mean([np.median(np.linalg.norm(ref[:, a] - ref[:, b], axis=-1)) for a, b in sides])
        out[f"{name}_length_pct"] = float(100.0 * (lp / lr - 1.0))
    return out


def compare_dofs(poses: np.ndarray, reference: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Signed bias and RMSE (degrees) of each of ``DOFS`` against the multi-view fit's, over their common frames."""
    from hsmr_contract.dofs import dof_index

    names = [str(n) for n in reference["dof_names"]]
    n = min(len(poses), len(reference["poses"]))
    out = {}
    for name in DOFS:
        d = np.degrees(poses[:n, dof_index(name)] - reference["poses"][:n, names.index(name)])
        out[name] = {"bias_deg": float(d.mean()), "rmse_deg": float(np.sqrt((d**2).mean()))}
    return out


def dof_line(view: str, dofs: dict[str, dict[str, float]]) -> str:
    mean = float(np.mean([d["rmse_deg"] for d in dofs.values()]))
    return f"{view} DoFs, bias/RMSE (deg): " + ", ".join(
        f"{k} {d['bias_deg']:+.1f}/{d['rmse_deg']:.1f}" for k, d in dofs.items()) + f"; mean RMSE {mean:.1f}"


def reference_landmarks(reference: dict[str, np.ndarray]) -> np.ndarray:
    """(T,33,3) landmarks of the multi-view fit's body (its trans is not saved: translation does not matter here)."""
    import torch

    from hsmr_backend.skel import load_body
    from hsmr_backend.skel.landmarks import load_landmark_regressor

    poses = torch.as_tensor(reference["poses"], dtype=torch.float32)
    betas = torch.as_tensor(reference["betas"], dtype=torch.float32).expand(len(poses), -1)
    out = load_body("open")(poses, betas, torch.zeros(len(poses), 3))
    return load_landmark_regressor("open")(out).detach().numpy().astype(np.float64)


FEET = (4, 5, 9, 10)  # calcaneus and toes joints, right and left


def side_figures(fit: Any, wld: Any) -> dict[str, float]:
    """What must not get worse: limit violations, jitter (mean |second difference| of the joints, mm per frame²),
    foot skating (mean horizontal speed of a foot joint within 3 cm of its lowest height, mm per frame) and the
    mean reprojection error (px)."""
    from hsmr_backend.fit.params import count_violations

    j = np.asarray(wld.joints_world, dtype=np.float64)
    jitter = float(np.linalg.norm(np.diff(j, 2, axis=0), axis=-1).mean() * 1000)
    feet = j[:, FEET]
    low = feet[..., 2] < feet[..., 2].min(0) + 0.03
    step = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1)
    both = low[1:] & low[:-1]
    return {"violations": count_violations(np.asarray(wld.poses)), "jitter_mm": jitter,
            "foot_skate_mm": float(step[both].mean() * 1000) if both.any() else float("nan"),
            "reprojection_px": float(np.mean(fit.reprojection_error_px))}


def summary_line(view: str, f: dict[str, Any]) -> str:
    f = {"violations": 0, "jitter_mm": np.nan, "foot_skate_mm": np.nan, "reprojection_px": np.nan, "fit_s": 0.0, **f}
    return (f"{view}: PA-MPJPE {f['pa_mpjpe_mm']:.0f} mm, knee bias L/R {f['knee_l_bias_deg']:+.1f}/"
            f"{f['knee_r_bias_deg']:+.1f}°, elbow bias L/R {f['elbow_l_bias_deg']:+.1f}/{f['elbow_r_bias_deg']:+.1f}°,"
            f" knee+elbow RMSE {f['knee_elbow_rmse_deg']:.1f}°; lengths thigh {f['thigh_length_pct']:+.0f} %, shank "
            f"{f['shank_length_pct']:+.0f} %, upper arm {f['upper_arm_length_pct']:+.0f} %, forearm "
            f"{f['forearm_length_pct']:+.0f} %, torso {f['torso_length_pct']:+.0f} %, hip width "
            f"{f['hip_width_length_pct']:+.0f} %; violations {f['violations']}, jitter {f['jitter_mm']:.2f} mm/f², "
            f"foot skate {f['foot_skate_mm']:.2f} mm/f, reprojection {f['reprojection_px']:.1f} px; fit "
            f"{f['fit_s']:.1f} s")


def evaluate_take(take: str, views: list[str], args: argparse.Namespace) -> dict[str, Any]:
    root = args.cache / f"Pose2Sim/{take}"
    cams = read_qca((root / "calibration" / "Calib.qca.txt").read_text())
    inputs = {v: view_inputs(root / "videos" / f"{v}.mp4", args.cache / "monocular", args.refresh) for v in VIEWS}
    n = min(len(i["track"]) for i in inputs.values())
    ref = triangulate({v: inputs[v]["track"].kp2d[:n] for v in VIEWS}, cams,
                      {v: int(inputs[v]["track"].image_size[0]) for v in VIEWS})
    if args.pose_model != "full":  # the reference stays the product's model's triangulation
        folder = use_pose_model(args.pose_model)
        inputs = {v: view_inputs(root / "videos" / f"{v}.mp4", args.cache / folder, args.refresh) for v in VIEWS}
        use_pose_model("full")
    print(f"# {take}: reference = 4-view triangulation, RMSE {ref['rmse_px']:.1f} px; principal-point offsets "
          f"{ref['offset_px']}; left/right relabelled frames {ref['swapped_frames']}", flush=True)
    out: dict[str, Any] = {"reference": {k: v for k, v in ref.items() if k != "points"}, "views": {}}
    dof_ref = None
    if take == TAKES[0] and args.dof_reference.is_file():
        dof_ref = dict(np.load(args.dof_reference))
        out["multiview_fit"] = compare(reference_landmarks(dof_ref)[:n], ref["points"])
        print("multi-view fit against the triangulation: " + summary_line("4 views", out["multiview_fit"]).split(
            ": ", 1)[1].split("; violations", 1)[0], flush=True)
    for v in views:
        view = inputs[v]
        if args.reference_depth:
            view = dict(view, track=with_reference_depth(view["track"], ref["points"], cams[v]["R"]))
        fit, wld, seconds = fit_view(view, fit_options(args.set))
        figures = compare(fit.landmarks_cam[:n], ref["points"])
        figures.update(side_figures(fit, wld), fit_s=seconds)
        out["views"][v] = figures
        print(summary_line(v, figures), flush=True)
        track = view["track"]
        seen = np.where(track.valid[:n, None, None], track.kp3d[:n].astype(np.float64), np.nan)  # 0 where lost
        mediapipe = compare(seen, ref["points"])
        out.setdefault("mediapipe_3d", {})[v] = mediapipe
        print("  MediaPipe's own world landmarks: " + summary_line(v, mediapipe).split(": ", 1)[1].split(
            "; violations", 1)[0], flush=True)
        if dof_ref is not None:
            figures["dofs"] = compare_dofs(wld.poses, dof_ref)  # the pelvis in the world, as the reference
            print(dof_line(v, figures["dofs"]), flush=True)
    return out


def with_reference_depth(track: Any, points: np.ndarray, rotation: np.ndarray) -> Any:
    """A copy of ``track`` whose MediaPipe world landmarks are the reference's (hip-centred, in the view's camera
    axes): what the fit would give if MediaPipe's 3D were right."""
    x = points - points[:, [23, 24]].mean(1, keepdims=True)
    x = np.einsum("ij,tkj->tki", rotation, x)
    n = len(x)
    kp3d = track.kp3d.copy()
    kp3d[:n] = np.where(np.isfinite(x), x, kp3d[:n])
    return dataclasses.replace(track, kp3d=kp3d.astype(np.float32))


def fit_options(pairs: list[str]) -> Any:
    """FitOptions with ``NAME=VALUE`` overrides (numbers)."""
    from hsmr_backend.fit import FitOptions

    return FitOptions(**{k: float(v) for k, v in (p.split("=", 1) for p in pairs)})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--wheel", type=Path, default=None, help="a downloaded pose2sim 0.10.49 wheel")
    ap.add_argument("--views", nargs="+", default=list(VIEWS), choices=VIEWS)
    ap.add_argument("--take", nargs="+", default=[TAKES[0]], choices=TAKES)
    ap.add_argument("--refresh", action="store_true", help="detect the landmarks again")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="FitOptions overrides")
    ap.add_argument("--dof-reference", type=Path, default=DOF_REFERENCE,
                    help="the multi-view fit's DoFs (bench_multiview_fit.py --reference); skipped when missing")
    ap.add_argument("--reference-depth", action="store_true",
                    help="fit with the reference's 3D in place of MediaPipe's world landmarks (a diagnostic)")
    ap.add_argument("--pose-model", choices=("full", "heavy"), default="full",
                    help="MediaPipe's landmark model for the fitted views (a diagnostic; heavy is not in the wheel)")
    ap.add_argument("--json", type=Path, default=RESULTS / "data" / "monocular_pose2sim.json",
                    help="save the figures here")
    args = ap.parse_args()
    fetch(args.cache, args.wheel)
    figures = {take: evaluate_take(take, args.views, args) for take in args.take}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"wrote {args.json.name}")
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
