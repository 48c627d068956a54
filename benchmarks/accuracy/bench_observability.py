"""What the landmarks can and cannot decide: move one DoF of a known pose by a few degrees and hold it, let other
DoFs and the root translation make up for it as well as they can (L-BFGS, within the joint limits), and print
how far the measurements still move.

    python -m benchmarks.accuracy.bench_observability

1. **Pelvis tilt, against the exact 3D landmarks** (what infinitely many noise-free calibrated views would give),
   every other DoF free: if the landmarks hardly move, the split of the trunk-to-thigh angle into pelvis tilt,
   spine and hip flexion is not decided by the views, whatever their number (docs/multicamera.md).
2. **Knee flexion, against one camera's 2D landmarks** (a 1500 px focal, 3.5 m from the pelvis and 0.6 m above
   it, in front, at 45° and at the side), only the same leg's hip and ankle, the pelvis and the translation free:
   if the image hardly moves, a single view's knee angle is decided by its depth source (MediaPipe's 3D, a
   network), not by the 2D landmarks (docs/fitting.md, "One view against four").

The poses are frames of ``bench_multiview_synthetic``'s motions (the open body, average shape). For scale: at
3.5 m a 1500 px camera sees 1 px as 2.3 mm; the synthetic benchmarks add 3 px of noise, and MediaPipe's 2D
landmarks on the Pose2Sim lab take agree across its four calibrated views to about 7 px.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from benchmarks.accuracy.angles_synth import betas_vector, motion
from benchmarks.accuracy.bench_multiview_synthetic import POSTURES, in_posture
from benchmarks.common import run_recorded

TILT_POSES = (("walk", 0), ("squat", 30), ("sit-to-stand", 0), ("sit-to-stand", 30))  # (motion, frame of 60)
KNEE_POSES = (("walk", 0), ("walk", 15), ("walk", 40))  # standing and walking: knees 5-40°
TILTS_DEG = (5.0, 10.0)
KNEE_DEG = (10.0, 20.0)
VIEW_YAWS_DEG = (0.0, 45.0, 90.0)  # 0: in front of the subject
FOCAL_PX, DISTANCE_M, HEIGHT_M = 1500.0, 3.5, 0.6
MM_PER_PX = DISTANCE_M * 1000.0 / FOCAL_PX
KNEE_FREE = ("hip_flexion_l", "hip_adduction_l", "hip_rotation_l", "ankle_angle_l", "subtalar_angle_l",
             "pelvis_tilt", "pelvis_list", "pelvis_rotation")


def posed(name: str, frame: int, posture: str = "neutral") -> np.ndarray:
    """(46,) one frame of a synthetic motion in a posture."""
    return in_posture(motion(name, 60, 30.0)[frame], posture)


def landmark_function(model, regressor) -> Callable:
    """(1,46) poses, (1,3) translation -> (33,3) landmarks (torch, differentiable), average shape."""
    import torch

    betas = torch.as_tensor(betas_vector("average"), dtype=torch.float32)[None]

    def landmarks(q, trans):
        out = model(q, betas, trans)
        return regressor.apply(out.skin_verts, out.joints)[0]

    return landmarks


def compensate(landmarks: Callable, q0: np.ndarray, dof: str, delta_deg: float, free: list[str] | None,
               measure: Callable) -> tuple[np.ndarray, np.ndarray]:
    """``dof`` moved by ``delta_deg`` and held; the ``free`` DoFs (None: all others) and the translation fitted so
    that ``measure(landmarks)`` matches the original pose's. Returns each measurement's remaining displacement
    (its own units) and the DoF changes (46,) in degrees."""
    import torch

    from hsmr_contract.dofs import DOFS, dof_index

    start = torch.as_tensor(q0, dtype=torch.float32)[None]
    with torch.no_grad():
        target = measure(landmarks(start, torch.zeros(1, 3)))
    held = dof_index(dof)
    mask = torch.zeros(len(DOFS), dtype=torch.bool)
    mask[[dof_index(n) for n in free] if free else list(range(len(DOFS)))] = True
    mask[held] = False
    lower, upper = (torch.tensor([getattr(d, k) for d in DOFS], dtype=torch.float32)[mask] for k in ("lower", "upper"))
    moved = start.clone()
    moved[0, held] += np.radians(delta_deg)
    x, trans = start[0, mask].clone().requires_grad_(True), torch.zeros(1, 3, requires_grad=True)
    opt = torch.optim.LBFGS([x, trans], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-10,
                            tolerance_change=1e-14)

    def pose():
        q = moved.clone()
        q[0, mask] = x
        return q

    def closure():
        opt.zero_grad()
        outside = torch.relu(x - upper) + torch.relu(lower - x)
        loss = ((measure(landmarks(pose(), trans)) - target) ** 2).sum() + 1e3 * (outside ** 2).sum()
        loss.backward()
        return loss

    for _ in range(4):
        opt.step(closure)
    with torch.no_grad():
        q = pose()
        residual = (measure(landmarks(q, trans)) - target).norm(dim=-1).numpy()
    return residual, np.degrees((q - start)[0].numpy())


def camera_projection(centre, yaw_deg: float) -> Callable:
    """(33,3) model points (y up, facing +z) -> (33,2) pixels, for a camera ``DISTANCE_M`` from ``centre`` at
    ``yaw_deg`` around it (0: in front), ``HEIGHT_M`` above it, looking at it."""
    import torch

    a = np.radians(yaw_deg)
    eye = centre + torch.tensor([DISTANCE_M * np.sin(a), HEIGHT_M, DISTANCE_M * np.cos(a)], dtype=torch.float32)
    fwd = (centre - eye) / (centre - eye).norm()
    right = torch.linalg.cross(fwd, torch.tensor([0.0, 1.0, 0.0]))
    right = right / right.norm()
    rot = torch.stack([right, torch.linalg.cross(fwd, right), fwd])

    def project(points):
        y = (points - eye) @ rot.T
        return FOCAL_PX * y[:, :2] / y[:, 2:3]

    return project


def largest_changes(change_deg: np.ndarray, held: str, count: int = 4) -> str:
    from hsmr_contract.dofs import DOFS

    order = [i for i in np.argsort(-np.abs(change_deg)) if DOFS[i].name != held][:count]
    return ", ".join(f"{DOFS[i].name} {change_deg[i]:+.1f}" for i in order)


def pelvis_tilt_part(landmarks: Callable) -> float:
    """Part 1; returns the largest landmark displacement left by 10° of tilt, mm."""
    from hsmr_contract.dofs import dof_index

    print("# 1. the pelvis tilted and held; every other DoF and the translation fitted to the exact 3D landmarks")
    worst = {d: 0.0 for d in TILTS_DEG}
    for posture in POSTURES:
        for name, frame in TILT_POSES:
            for delta in TILTS_DEG:
                res, change = compensate(landmarks, posed(name, frame, posture), "pelvis_tilt", delta, None,
                                         lambda x: x)
                res_mm = res * 1000.0
                thigh = [change[dof_index(f"hip_flexion_{s}")] + change[dof_index("pelvis_tilt")] for s in "lr"]
                worst[delta] = max(worst[delta], float(res_mm.max()))
                print(f"{posture:8s} {name:12s} frame {frame:2d}, tilt {delta:+.0f}°: landmarks move RMS "
                      f"{np.sqrt((res_mm ** 2).mean()):.1f} mm, at most {res_mm.max():.1f} mm "
                      f"({res_mm.max() / MM_PER_PX:.1f} px); thighs' lean {thigh[0]:+.1f} / {thigh[1]:+.1f}°; "
                      f"{largest_changes(change, 'pelvis_tilt')}", flush=True)
    for delta, mm in worst.items():
        print(f"{delta:.0f}° of pelvis tilt (and of hip flexion) moves no landmark more than {mm:.1f} mm "
              f"({mm / MM_PER_PX:.1f} px at {DISTANCE_M} m)")
    return worst[max(TILTS_DEG)]


def knee_part(landmarks: Callable) -> dict[float, float]:
    """Part 2; returns the largest image displacement left by 20° of knee flexion, px, per view."""
    import torch

    from hsmr_contract.dofs import dof_index

    knee = dof_index("knee_angle_l")
    print("# 2. the left knee bent further and held; that leg's hip and ankle, the pelvis and the translation "
          "fitted to one camera's 2D landmarks")
    worst = dict.fromkeys(VIEW_YAWS_DEG, 0.0)
    for yaw in VIEW_YAWS_DEG:
        for name, frame in KNEE_POSES:
            q0 = posed(name, frame)
            with torch.no_grad():
                centre = landmarks(torch.as_tensor(q0, dtype=torch.float32)[None], torch.zeros(1, 3))[[23, 24]].mean(0)
            project = camera_projection(centre, yaw)
            for delta in KNEE_DEG:
                res, change = compensate(landmarks, q0, "knee_angle_l", delta, list(KNEE_FREE), project)
                if delta == max(KNEE_DEG):
                    worst[yaw] = max(worst[yaw], float(res.max()))
                print(f"view {yaw:3.0f}° {name:5s} frame {frame:2d} (knee {np.degrees(q0[knee]):3.0f}°), "
                      f"knee {delta:+.0f}°: 2D landmarks move RMS {np.sqrt((res ** 2).mean()):.1f} px, at most "
                      f"{res.max():.1f} px; {largest_changes(change, 'knee_angle_l')}", flush=True)
    for yaw, px in worst.items():
        print(f"one camera at {yaw:.0f}°: {max(KNEE_DEG):.0f}° more knee flexion moves no 2D landmark more than "
              f"{px:.1f} px")
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.parse_args()
    from hsmr_backend.skel import load_body
    from hsmr_backend.skel.landmarks import load_landmark_regressor

    landmarks = landmark_function(load_body("open"), load_landmark_regressor("open"))
    pelvis_tilt_part(landmarks)
    knee_part(landmarks)
    return 0


if __name__ == "__main__":
    run_recorded(main, __spec__.name)
