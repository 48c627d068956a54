"""The fit's options (weights and schedule), its result, and the units its objective is measured in."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..camera import Camera

# Units of the objective: image residuals are measured in UNIT = 1 % of the person's height in pixels, and
# accelerations in 1 % of a nominal 1.7 m body, so data and temporal terms are of order 1 at noise level.
UNIT = 0.01
NOMINAL_HEIGHT_M = 1.7
Q_UNIT = 0.02  # radians counted as one unit in the q / root-rotation acceleration term
EARLY_SIGMA = 1.0  # first stages are nearly least squares: a robust kernel would ignore far-off limbs


@dataclass
class FitOptions:
    """Weights and schedule of the fit. Defaults suit 25-60 fps footage of one person."""

    # temporal smoothing: a cut-off frequency (Hz) for the joint-acceleration term, times a multiplier
    smoothing: float = 1.0  # 0 = independent per-frame fits (still batched)
    cutoff_hz: float = 6.0  # the biomechanics default for gait (Butterworth 6 Hz); raise it for fast motion
    acc_robust_mps2: float = 40.0  # accelerations above this are penalised linearly (fast events survive)
    w_q_acc: float = 0.05  # acceleration of q and the root rotation, relative to the joint term
    # data terms
    w_reproj: float = 1.0
    robust_sigma: float = 0.08  # Geman-McClure scale, fraction of the person's height in pixels
    min_confidence: float = 0.2  # landmarks below this confidence are ignored
    w_depth: float = 50.0  # depth component of segment directions from MediaPipe world landmarks
    # priors
    w_pose: float = 0.01  # pull of q (body DoFs, radians^2) towards zero
    w_init: float = 0.1  # pull towards the per-frame HSMR q (radians^2) when ``init`` is given
    w_shape: float = 0.1  # sum beta^2
    w_contact: float = 1.0  # resting feet on the ground, no foot below it (refine_with_contacts only)
    n_betas: int = 10
    fit_shape: bool = True
    shape_frames: int = 16  # frames sampled over the clip to fit the shape on
    # schedule (L-BFGS iterations per stage)
    root_iterations: int = 10  # per-frame, root position only
    pose_iterations: int = 20  # per-frame, 3D directions weighted up, nearly least squares
    iterations: int = 50  # per-frame, final weights
    temporal_rounds: int = 3  # alternations smoothing <-> per-frame fit
    temporal_iterations: int = 10  # per-frame iterations in each round
    shape_iterations: int = 20
    contact_iterations: int = 30  # per-frame iterations of refine_with_contacts before its temporal rounds
    window: int = 100
    overlap: int = 16
    pose_correctives: bool = True
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    # torch threads during a CPU fit (restored afterwards); None leaves them. Every op here is small, so
    # more threads only add synchronisation: 2 threads ran 1.3-6x slower than 1 on a 2-core machine.
    threads: int | None = 1


def per_frame_options(options: FitOptions | None = None) -> FitOptions:
    """The same fit without temporal terms (a per-frame baseline for benchmarks)."""
    return replace(options or FitOptions(), smoothing=0.0)


@dataclass
class FitResult:
    """Everything in the camera frame (OpenCV, metres). T frames, K shape coefficients."""

    poses: np.ndarray  # (T,46) SKEL q, every limited DoF inside its limits
    betas: np.ndarray  # (K,)
    trans: np.ndarray  # (T,3) SKEL trans: model(poses, betas, trans) is the camera-frame body
    joints_cam: np.ndarray  # (T,24,3)
    kp2d_pred: np.ndarray  # (T,33,2) fitted landmarks projected, pixels
    reprojection_error_px: np.ndarray  # (T,) confidence-weighted mean pixel error (0 where nothing was seen)
    fit_loss: np.ndarray  # (T,) final objective per frame
    camera: Camera
    landmarks_cam: np.ndarray  # (T,33,3) fitted landmarks in 3D
    valid: np.ndarray  # (T,) frames that had landmarks
    joint_offsets: np.ndarray | None = None  # (T,24,3) from the body model, when it reports them
    info: dict[str, Any] = field(default_factory=dict)  # timings, iterations, option values
