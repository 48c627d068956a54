"""SKELify for video: fit SKEL's 46 DoFs, one shape and a root path to a clip's 2D/3D landmarks.

What is fitted, per clip: shape ``betas`` (K,) shared by every frame; per frame: the 43 body DoFs, the root
rotation and the root position, all in the camera frame (OpenCV: x right, y down, z forward, metres; the
model frame IS the camera frame, like HSMR, whose mean pose has pelvis_tilt = pi).

Objective (per frame, then averaged; weights in :class:`FitOptions`, method in ``docs/fitting.md``):
- robust reprojection of the 33 MediaPipe landmarks, Geman-McClure on residuals in units of the person's
  height in pixels, weighted by landmark confidence;
- a depth prior: 3D directions of limb/torso segments from MediaPipe's metric world landmarks (hip-centred,
  roughly camera-aligned), which fixes what one view cannot (which way a limb points in depth);
- temporal terms: acceleration of the 24 joint centres (Charbonnier: quadratic for jitter, linear for real
  fast events so they are not flattened) and of q / the root rotation; the strength is set as a cut-off
  frequency so it means the same at any frame rate;
- priors: betas (sum beta^2), a weak pull of q to zero, and, when given, to the per-frame HSMR predictions.

Joint limits hold by construction: each limited DoF is ``q = lo + (hi - lo) * sigmoid(u)`` and the optimiser
works on u; the final q are clipped into [lo, hi] exactly and checked. The root rotation is a rotation
matrix (no Euler singularity while fitting), turned into pelvis tilt/list/rotation only at the end.

Cost grows linearly with clip length: shape is fitted once on a sample of frames, then the clip is fitted in
overlapping windows, each warm-started from the previous one; overlaps are blended linearly.

Modules: options (FitOptions, FitResult, units), params (the sine map, limits), body (BodyModel, Body),
inputs (the landmark track as tensors, the root's start), terms (one function per objective term), problem
(a window's parameters and objective), lbfgs (the batched optimiser), stages, contacts, sequence (the driver).
``Camera`` lives in :mod:`hsmr_backend.camera`.
"""

from ..camera import DEFAULT_DIAGONAL_FOV_DEG, Camera, default_camera
from .body import Body, BodyModel, LandmarkRegressor
from .contacts import (
    CONTACT_DELTA_M,
    FLOOR_SLACK_M,
    FOOT_CONTACT_LANDMARKS,
    FOOT_JOINTS,
    FootContacts,
    rest_foot_heights,
)
from .inputs import (
    FOOT_LANDMARKS,
    N_LANDMARKS,
    SEGMENTS,
    TORSO,
    ExtraViews,
    facing,
    foot_trust,
    person_height_px,
)
from .lbfgs import batched_lbfgs
from .options import NOMINAL_HEIGHT_M, Q_UNIT, UNIT, FitOptions, FitResult, per_frame_options
from .params import BODY, LIMITED, LOWER, UPPER, clip_to_limits, count_violations, limits_float32, q_from_u, u_from_q
from .sequence import _windows, fit_sequence, refine_with_contacts

__all__ = [
    "BODY", "CONTACT_DELTA_M", "DEFAULT_DIAGONAL_FOV_DEG", "FLOOR_SLACK_M", "FOOT_CONTACT_LANDMARKS", "FOOT_JOINTS",
    "FOOT_LANDMARKS", "LIMITED", "LOWER", "N_LANDMARKS", "NOMINAL_HEIGHT_M", "Q_UNIT", "SEGMENTS", "TORSO", "UNIT",
    "UPPER", "Body", "BodyModel", "Camera", "ExtraViews", "FitOptions", "FitResult", "FootContacts",
    "LandmarkRegressor", "_windows", "batched_lbfgs", "clip_to_limits", "count_violations", "default_camera", "facing",
    "fit_sequence", "foot_trust", "limits_float32", "per_frame_options", "person_height_px", "q_from_u",
    "refine_with_contacts", "rest_foot_heights", "u_from_q",
]  # fmt: skip
