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
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .rotations_np import kabsch, orthonormalize, pelvis_angles_sequence, pelvis_matrix
from .skel.dofs import DOFS, N_DOFS
from .smoothing import smooth, smooth_points

N_LANDMARKS = 33
LOWER = np.array([d.lower for d in DOFS])
UPPER = np.array([d.upper for d in DOFS])
LIMITED = np.array([d.limited for d in DOFS])
BODY = np.arange(3, N_DOFS)  # everything but the pelvis (root rotation is fitted as a matrix)


def _prior_scale() -> np.ndarray:
    """Relative pull towards q = 0 per body DoF. Landmarks barely see the spine and scapulae (a pelvis
    tilt can hide in lumbar extension), so those are held more firmly than the limbs."""
    w = np.ones(N_DOFS)
    for d in DOFS:
        if d.name.startswith(("lumbar", "thorax", "head", "scapula")):
            w[d.index] = 5.0
        elif d.name.startswith(("hip", "knee", "ankle", "shoulder", "elbow")):
            w[d.index] = 0.2
    return w[BODY]


PRIOR_SCALE = _prior_scale()

# MediaPipe pose landmark indices used below
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 11, 12, 23, 24
TORSO = (L_SHOULDER, R_SHOULDER, L_HIP, R_HIP)
FOOT_LANDMARKS = (27, 28, 29, 30, 31, 32)  # ankles, heels, foot tips
FOOT_JOINTS = (3, 4, 5, 8, 9, 10)  # SKEL talus, calcaneus, toes on both sides
# Segments whose 3D direction MediaPipe's world landmarks tell us (face and fingers are too noisy)
SEGMENTS = (
    (11, 12), (23, 24), (11, 23), (12, 24),
    (11, 13), (13, 15), (12, 14), (14, 16),
    (23, 25), (25, 27), (24, 26), (26, 28),
    (27, 31), (28, 32), (29, 31), (30, 32),
)
# heel -> foot tip of each side and the segments that carry that foot's direction
FEET = (((29, 31), ((27, 31), (29, 31))), ((30, 32), ((28, 32), (30, 32))))
# MediaPipe's world feet lean towards pointing at the camera (seen from behind they point backwards, from
# the side ~35° towards the lens): a foot further than this from the torso's facing has no depth prior
FOOT_TRUST_DEG = (60.0, 90.0)  # full weight within the first, none beyond the second, linear between
# Units of the objective: image residuals are measured in UNIT = 1 % of the person's height in pixels, and
# accelerations in 1 % of a nominal 1.7 m body, so data and temporal terms are of order 1 at noise level.
UNIT = 0.01
NOMINAL_HEIGHT_M = 1.7
Q_UNIT = 0.02  # radians counted as one unit in the q / root-rotation acceleration term
EARLY_SIGMA = 1.0  # first stages are nearly least squares: a robust kernel would ignore far-off limbs


@dataclass(frozen=True)
class Camera:
    """Pinhole camera (no distortion) of the full frame. ``focal_source`` says where the focal came from."""

    K: np.ndarray  # (3,3) pixels
    width: int
    height: int
    focal_source: str  # "user" | "exif" | "default" | "scene" (convert: from the scene's edges) | ...

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(…,3) camera-frame points -> (…,2) pixels."""
        p = np.asarray(points, dtype=np.float64)
        z = np.maximum(p[..., 2], 1e-6)
        return np.stack([self.fx * p[..., 0] / z + self.cx, self.fy * p[..., 1] / z + self.cy], -1)


DEFAULT_DIAGONAL_FOV_DEG = 70.0  # about a 31 mm lens on full frame


def default_camera(width: int, height: int, focal_px: float | None = None) -> Camera:
    """Camera for a ``width`` x ``height`` frame, principal point at the centre.

    Without a known focal the diagonal field of view is ``DEFAULT_DIAGONAL_FOV_DEG`` (70°): between a phone's
    main camera (24-28 mm, 75-84°) and the calibrated lab cameras of the Pose2Sim demo (66°). Once the resting
    feet are held, a focal that is too long costs more than one too short: on the renders of a 26 mm phone
    lens, squat and sit-to-stand lost 3.5-4.5° with the image diagonal as the focal (53°, the CLIFF/WHAM
    habit), 0-2° at 0.6x the true focal (docs/fitting.md, "Resting feet"). Give the real focal when known.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if focal_px is not None:
        if not (np.isfinite(focal_px) and focal_px > 0):
            raise ValueError(f"focal length must be a positive number of pixels, got {focal_px!r}")
        f, source = float(focal_px), "user"
    else:
        f = math.hypot(width, height) / (2.0 * math.tan(math.radians(DEFAULT_DIAGONAL_FOV_DEG) / 2.0))
        source = "default"
    k = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    return Camera(K=k, width=int(width), height=int(height), focal_source=source)


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


@dataclass
class ExtraViews:
    """The subject seen by U more calibrated cameras (a multi-view fit; the track's own ``kp2d`` is the first
    camera's, whose frame the fit lives in). Their reprojection terms join the first camera's."""

    R: np.ndarray  # (U,3,3) first camera's frame -> this camera's
    t: np.ndarray  # (U,3) metres
    K: np.ndarray  # (U,3,3) pixels (pinhole: the keypoints are undistorted)
    kp2d: np.ndarray  # (U,T,33,3) pixels + confidence, 0 where the view does not see the point
    weight: np.ndarray  # (U,) trust in each view relative to the first camera's (1 = the same)


FOOT_CONTACT_LANDMARKS = (29, 30, 31, 32)  # heels and foot tips (MediaPipe order): the points held on the ground
CONTACT_DELTA_M = 0.05  # foot-height misses beyond this cost linearly (a wrong contact cannot pull hard)
FLOOR_SLACK_M = 0.02  # a foot that does not rest may dip this far below the ground plane freely (its error)


@dataclass
class FootContacts:
    """Where the feet rest, for :func:`refine_with_contacts`. Camera frame (OpenCV, metres)."""

    mask: np.ndarray  # (T,4) bool: FOOT_CONTACT_LANDMARKS on the ground in that frame
    normal: np.ndarray  # (3,) ground normal (up), camera frame
    offset: float  # ground plane: normal . x = offset
    heights: np.ndarray  # (4,) height of each point above the plane when its foot rests flat


def rest_foot_heights(model: Any, regressor: Any, betas: np.ndarray, options: FitOptions | None = None) -> np.ndarray:
    """(4,) height of each of FOOT_CONTACT_LANDMARKS above the body's lowest foot point (foot joints, ankles,
    heels, foot tips) in the rest pose, whose feet stand flat: where each sits when its foot rests."""
    opts = options or FitOptions()
    body = _Body(model, regressor, opts)
    b = torch.as_tensor(np.asarray(betas, dtype=np.float64), dtype=opts.dtype, device=opts.device)
    with torch.no_grad():
        joints, lm, _ = body(torch.zeros(1, N_DOFS, dtype=opts.dtype, device=opts.device), b)
    joints, lm = joints[0].double().cpu().numpy(), lm[0].double().cpu().numpy()
    low = min(joints[list(FOOT_JOINTS), 1].min(), lm[list(FOOT_LANDMARKS), 1].min())  # model y is up
    return lm[list(FOOT_CONTACT_LANDMARKS), 1] - low


# ----------------------------------------------------------------------------------------------------------
# parametrisation


_Q_CONST: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def rest_landmarks(model: Any, regressor: Any, betas: np.ndarray, options: FitOptions | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The body at q = 0 and trans = 0: landmarks (33,3), root pivot J0 (3,) and root rest frame M_0 (3,3)."""
    options = options or FitOptions()
    body = _Body(model, regressor, options)
    b = torch.as_tensor(np.asarray(betas, dtype=np.float64), dtype=options.dtype, device=options.device)
    with torch.no_grad():
        j0, m0 = body.rest(b)
        _, lm, _ = body(torch.zeros(1, N_DOFS, dtype=options.dtype, device=options.device), b)
    f = lambda x: x.double().cpu().numpy()  # noqa: E731
    return f(lm[0]), f(j0), f(m0)


def q_from_u(u: torch.Tensor) -> torch.Tensor:
    """(…,43) free parameters -> body DoFs q[3:], limited ones strictly inside their limits."""
    key = (u.dtype, str(u.device))
    if key not in _Q_CONST:  # constants built once per dtype/device (this runs in every objective call)
        lo = torch.as_tensor(LOWER[BODY], dtype=u.dtype, device=u.device)
        hi = torch.as_tensor(UPPER[BODY], dtype=u.dtype, device=u.device)
        lim = torch.as_tensor(LIMITED[BODY], device=u.device)
        half = torch.where(lim, (hi - lo) / 2, torch.ones_like(lo))
        mid = torch.where(lim, (hi + lo) / 2, torch.zeros_like(lo))
        _Q_CONST[key] = (lim, mid, half)
    lim, mid, half = _Q_CONST[key]
    return torch.where(lim, mid + half * torch.sin(u), u)


def u_from_q(q_body: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Inverse of :func:`q_from_u`; q is first pulled ``margin`` x range inside its limits."""
    lo, hi, lim = LOWER[BODY], UPPER[BODY], LIMITED[BODY]
    q = np.asarray(q_body, dtype=np.float64)
    out = q.copy()
    half = np.where(lim, (hi - lo) / 2, 1.0)
    x = np.clip((q - np.where(lim, (hi + lo) / 2, 0.0)) / half, -1.0 + margin, 1.0 - margin)
    out[..., lim] = np.arcsin(x)[..., lim]
    return out


def clip_to_limits(poses: np.ndarray) -> np.ndarray:
    """Clip every limited DoF into [lower, upper] (a safety step; the parametrisation already holds them)."""
    q = np.asarray(poses, dtype=np.float64).copy()
    q[..., LIMITED] = np.clip(q[..., LIMITED], LOWER[LIMITED], UPPER[LIMITED])
    return q


def limits_float32(poses: np.ndarray) -> np.ndarray:
    """float32 copy whose limited values stay inside [lower, upper] even after rounding to float32."""
    q = np.asarray(poses, dtype=np.float32).copy()
    lo, hi = LOWER.astype(np.float32), UPPER.astype(np.float32)
    lo = np.where(lo < LOWER, np.nextafter(lo, np.float32(np.inf)), lo)  # float32 limit inside the float64 one
    hi = np.where(hi > UPPER, np.nextafter(hi, np.float32(-np.inf)), hi)
    q[..., LIMITED] = np.clip(q[..., LIMITED], lo[LIMITED], hi[LIMITED])
    return q


def count_violations(poses: np.ndarray, tol: float = 0.0) -> int:
    """Number of (frame, DoF) values outside their limits by more than ``tol`` radians."""
    q = np.asarray(poses)
    bad = (q[..., LIMITED] < LOWER[LIMITED] - tol) | (q[..., LIMITED] > UPPER[LIMITED] + tol)
    return int(bad.sum())


def so3_exp(v: torch.Tensor) -> torch.Tensor:
    """Axis-angle (…,3) -> rotation (…,3,3); smooth at 0."""
    th2 = (v * v).sum(-1, keepdim=True)[..., None]
    th = torch.sqrt(th2 + 1e-12)
    small = th2 < 1e-8
    a = torch.where(small, 1 - th2 / 6, torch.sin(th) / th)
    b = torch.where(small, 0.5 - th2 / 24, (1 - torch.cos(th)) / (th2 + 1e-12))
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = torch.zeros_like(x)
    k = torch.stack([torch.stack([o, -z, y], -1), torch.stack([z, o, -x], -1), torch.stack([-y, x, o], -1)], -2)
    eye = torch.eye(3, dtype=v.dtype, device=v.device)
    return eye + a * k + b * (k @ k)


# ----------------------------------------------------------------------------------------------------------
# the body: model + landmark regressor, evaluated with the pelvis at q = 0 (root rotation = identity)


class _Body:
    """The body model and the landmark regressor behind one call, fast paths used when available:
    ``model.rest_state(betas)`` once per shape, ``model.pose(rest, ..., skin_vertex_ids=...)`` skinning only
    the vertices the regressor reads (``hsmr_backend.skel.SKEL``); any model with the SKEL call works too."""

    def __init__(self, model: Any, regressor: Any, options: FitOptions) -> None:
        self.model, self.regressor = model, regressor
        self.dtype, self.device = options.dtype, options.device
        self.correctives = options.pose_correctives
        self.fast = hasattr(model, "rest_state") and hasattr(model, "pose")
        self.sub_regressor, self.skin_ids = regressor, None
        ids = getattr(regressor, "vertex_ids", None)
        if ids is not None and hasattr(regressor, "apply") and dataclasses.is_dataclass(regressor):
            uniq, inv = np.unique(np.asarray(ids), return_inverse=True)
            self.skin_ids = torch.as_tensor(uniq, dtype=torch.long)
            # stored as tensors: apply() then converts nothing per call
            dev, dt = options.device, options.dtype
            self.sub_regressor = dataclasses.replace(
                regressor, vertex_ids=torch.as_tensor(inv.reshape(np.shape(ids)), device=dev),
                vertex_weights=torch.as_tensor(np.asarray(regressor.vertex_weights), dtype=dt, device=dev),
                joint_weights=torch.as_tensor(np.asarray(regressor.joint_weights), dtype=dt, device=dev))
        params = inspect.signature(model.forward if hasattr(model, "forward") else model).parameters
        self.kw: dict[str, Any] = {}
        if "bone_mesh" in params:
            self.kw["bone_mesh"] = False
        if "pose_correctives" in params:
            self.kw["pose_correctives"] = options.pose_correctives
        if "skin_vertex_ids" in params and self.skin_ids is not None:
            self.kw["skin_vertex_ids"] = self.skin_ids
        self._rest_cache: tuple[torch.Tensor, Any] | None = None

    def _landmarks(self, out: Any) -> torch.Tensor:
        reg = self.sub_regressor
        if hasattr(reg, "apply"):
            return reg.apply(out.skin_verts, out.joints)
        return reg(out.skin_verts, out.joints)

    def _rest(self, betas: torch.Tensor) -> Any:
        if betas.requires_grad:
            return self.model.rest_state(betas[None])
        hit = self._rest_cache
        if hit is None or hit[0].shape != betas.shape or not torch.equal(hit[0], betas):
            with torch.no_grad():
                self._rest_cache = hit = (betas.detach().clone(), self.model.rest_state(betas[None]))
        return hit[1]

    def run(self, q: torch.Tensor, betas: torch.Tensor, trans: torch.Tensor | None = None) -> Any:
        b = q.shape[0]
        trans = torch.zeros(b, 3, dtype=q.dtype, device=q.device) if trans is None else trans
        if self.fast:
            return self.model.pose(self._rest(betas), q, trans, pose_correctives=self.correctives, bone_mesh=False,
                                   skin_vertex_ids=self.skin_ids)
        return self.model(q, betas[None].expand(b, -1), trans, **self.kw)

    def __call__(self, q: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """q (B,46), betas (K,) -> joints (B,24,3), landmarks (B,33,3), raw output; trans = 0."""
        out = self.run(q, betas)
        return out.joints, self._landmarks(out), out

    def rest(self, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Root pivot J0 (3,) and root rest frame M_0 (3,3) for this shape."""
        if self.fast:
            r = self._rest(betas)
            return r.joints[0, 0], r.rest_frames[0, 0]
        q = torch.zeros(1, N_DOFS, dtype=betas.dtype, device=betas.device)
        out = self.model(q, betas[None], torch.zeros(1, 3, dtype=betas.dtype, device=betas.device), **self.kw)
        return out.joints_tpose[0, 0], out.rest_frames[0, 0]


# ----------------------------------------------------------------------------------------------------------
# input handling


@dataclass
class _Data:
    kp2d: torch.Tensor  # (T,33,2) pixels
    conf: torch.Tensor  # (T,33)
    dirs: torch.Tensor  # (T,S,3) unit segment directions from the world landmarks
    dir_w: torch.Tensor  # (T,S)
    dir_xy: torch.Tensor  # (T,S) weight of the in-image components (segments the image does not show)
    valid: np.ndarray  # (T,)
    scale_px: float  # person height in pixels (clip median)
    views: dict[str, torch.Tensor] | None = None  # ExtraViews as tensors (_view_tensors)


def person_height_px(kp2d: np.ndarray, valid: np.ndarray, min_conf: float) -> float | None:
    """The person's height in the image (px): the clip median, over the valid frames with at least 4 landmarks
    at ``min_conf`` or more, of their vertical spread (the horizontal one where that is zero); None without
    such a frame."""
    kp2d = np.asarray(kp2d, dtype=np.float64)
    conf = np.where(np.isfinite(kp2d[..., 2]), kp2d[..., 2], 0.0)
    seen = (conf >= min_conf) & (conf > 0) & np.asarray(valid, dtype=bool)[:, None]
    xy = np.nan_to_num(kp2d[..., :2])
    heights = []
    for i in np.flatnonzero(seen.sum(1) >= 4):
        y_spread = np.ptp(xy[i, seen[i], 1])
        heights.append(y_spread if y_spread > 0 else np.ptp(xy[i, seen[i], 0]))
    return float(np.median(heights)) if heights else None


def _prepare(track: Any, camera: Camera, options: FitOptions) -> _Data:
    kp2d = np.asarray(track.kp2d, dtype=np.float64)
    if kp2d.ndim != 3 or kp2d.shape[1:] != (N_LANDMARKS, 3):
        raise ValueError(f"track.kp2d must have shape (T, 33, 3) (x, y, confidence), got {kp2d.shape}")
    t = len(kp2d)
    if t == 0:
        raise ValueError("the landmark track holds no frames; nothing to fit")
    kp3d = np.asarray(getattr(track, "kp3d", np.zeros((t, N_LANDMARKS, 3))), dtype=np.float64)
    valid = np.asarray(getattr(track, "valid", np.ones(t, bool)), dtype=bool)
    conf = np.where(np.isfinite(kp2d[..., 2]), kp2d[..., 2], 0.0)
    conf = np.where(conf >= options.min_confidence, conf, 0.0) * valid[:, None]
    xy = np.nan_to_num(kp2d[..., :2])
    tt = lambda x: torch.as_tensor(x, dtype=options.dtype, device=options.device)  # noqa: E731
    extra = getattr(track, "extra_views", None)
    views, seen = (None, conf.sum(1) > 0) if extra is None else _view_tensors(extra, conf, options, tt)
    if not seen.any():
        raise ValueError("no confident landmarks in the whole clip; check that the subject is visible")
    height_px = person_height_px(kp2d, valid, options.min_confidence)
    scale_px = max(height_px if height_px is not None else float(camera.height) / 2, 20.0)
    # segment directions from the world landmarks (zeros where lost)
    a, b = np.array(SEGMENTS).T
    seg = kp3d[:, b] - kp3d[:, a]
    n = np.linalg.norm(seg, axis=-1)
    ok = (n > 1e-3) & np.isfinite(n) & valid[:, None]
    dirs = np.where(ok[..., None], seg / np.maximum(n, 1e-9)[..., None], 0.0)
    # MediaPipe gives world landmarks for occluded points too (a plausible guess): they keep some weight
    raw = np.clip(np.nan_to_num(kp2d[..., 2]), 0.0, 1.0)
    cmin = np.minimum(raw[:, a], raw[:, b])
    dir_w = np.where(ok, 0.3 + 0.7 * cmin, 0.0) * foot_trust(kp3d)
    dir_xy = np.where(ok, 1.0 - cmin, 0.0)  # where the image does not show a segment, its full 3D direction counts
    return _Data(tt(xy), tt(conf), tt(dirs), tt(dir_w), tt(dir_xy), seen, scale_px, views)


def _view_tensors(extra: ExtraViews, conf0: np.ndarray, options: FitOptions, tt: Callable[[Any], torch.Tensor]
                  ) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """The other views' data as tensors, and (T,) the frames some view sees the subject in."""
    kp = np.asarray(extra.kp2d, dtype=np.float64)
    if kp.ndim != 4 or kp.shape[1:] != (len(conf0), N_LANDMARKS, 3):
        raise ValueError(f"extra_views.kp2d must have shape (U, {len(conf0)}, 33, 3), got {kp.shape}")
    conf = np.where(np.isfinite(kp[..., 2]) & (kp[..., 2] >= options.min_confidence), kp[..., 2], 0.0)
    conf = conf * np.asarray(extra.weight, dtype=np.float64)[:, None, None]
    scale = [max(person_height_px(k, np.ones(len(k), bool), options.min_confidence) or 1.0, 20.0) for k in kp]
    k = np.asarray(extra.K, dtype=np.float64)
    views = {"R": tt(extra.R), "t": tt(extra.t), "k": tt(np.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2]], 1)),
             "kp2d": tt(np.nan_to_num(kp[..., :2])), "conf": tt(conf), "scale": tt(scale)}
    return views, (conf0.sum(1) > 0) | (conf.sum((0, 2)) > 0)


def _views_reprojection(lm: torch.Tensor, views: dict[str, torch.Tensor], sigma: float
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The other views' robust reprojection terms for landmarks ``lm`` (T,33,3) in the first camera's frame:
    per frame, the confidence-weighted sum over views and points, and the sum of the confidences."""
    x = torch.einsum("uij,tkj->utki", views["R"], lm) + views["t"][:, None, None]
    z = x[..., 2].clamp(min=0.05)
    k = views["k"][:, None, None]
    proj = torch.stack([k[..., 0] * x[..., 0] / z + k[..., 2], k[..., 1] * x[..., 1] / z + k[..., 3]], -1)
    e2 = ((proj - views["kp2d"]) ** 2).sum(-1) / (views["scale"][:, None, None] * UNIT) ** 2
    return (views["conf"] * _gmof(e2, sigma)).sum((0, 2)), views["conf"].sum((0, 2))


def facing(kp3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(…,3) unit forward and up directions of the torso from MediaPipe world landmarks (…,33,3) (x right,
    y down, z away from the camera); zero where the shoulders or hips are missing or degenerate."""
    k = np.asarray(kp3d, dtype=np.float64)
    right = k[..., R_SHOULDER, :] - k[..., L_SHOULDER, :] + k[..., R_HIP, :] - k[..., L_HIP, :]
    up = (k[..., L_SHOULDER, :] + k[..., R_SHOULDER, :] - k[..., L_HIP, :] - k[..., R_HIP, :]) / 2
    fwd = np.cross(up, right)
    nu, nf = np.linalg.norm(up, axis=-1, keepdims=True), np.linalg.norm(fwd, axis=-1, keepdims=True)
    good = (nu > 1e-3) & (nf > 1e-6)
    return (np.where(good, fwd / np.maximum(nf, 1e-12), 0.0), np.where(good, up / np.maximum(nu, 1e-12), 0.0))


def foot_trust(kp3d: np.ndarray) -> np.ndarray:
    """(T,S) weight of each segment's depth prior from how the world landmarks' foot points: 1 for
    segments that are not a foot, and for feet within ``FOOT_TRUST_DEG[0]`` of the torso's facing (in the
    horizontal plane of the torso), 0 beyond ``FOOT_TRUST_DEG[1]`` (a foot pointing backwards), linear
    between; 1 where the torso or the foot is not there to judge."""
    k = np.nan_to_num(np.asarray(kp3d, dtype=np.float64))  # lost points: no torso or foot to judge by
    fwd, up = facing(k)
    trust = np.ones(k.shape[:-2] + (len(SEGMENTS),))
    full, none = FOOT_TRUST_DEG
    for (heel, tip), segs in FEET:
        foot = k[..., tip, :] - k[..., heel, :]
        foot = foot - (foot * up).sum(-1, keepdims=True) * up  # horizontal part
        n = np.linalg.norm(foot, axis=-1)
        cos = np.where(n > 1e-3, (foot * fwd).sum(-1) / np.maximum(n, 1e-12), 1.0)
        cos = np.where(np.linalg.norm(fwd, axis=-1) > 0, cos, 1.0)
        angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        w = np.clip((none - angle) / (none - full), 0.0, 1.0)
        for seg in segs:
            trust[..., SEGMENTS.index(seg)] = w
    return trust


def _fill_invalid(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Copy the nearest valid frame's value into invalid frames (any trailing shape)."""
    if valid.all() or not valid.any():
        return x
    idx = np.flatnonzero(valid)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(len(x))), 0, len(idx) - 1)]
    prev = idx[np.clip(np.searchsorted(idx, np.arange(len(x))) - 1, 0, len(idx) - 1)]
    pick = np.where(np.abs(prev - np.arange(len(x))) < np.abs(nearest - np.arange(len(x))), prev, nearest)
    out = x.copy()
    out[~valid] = x[pick[~valid]]
    return out


def _initial_root(
    data: _Data, track: Any, lm_rest: np.ndarray, j0: np.ndarray, camera: Camera
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame root rotation (Kabsch of the rest torso onto the world landmarks), root position
    (weak perspective: distance from the ratio of 3D to 2D torso size), and which frames' rotation was
    measured (the others are copied from the nearest such frame, or upright facing the camera)."""
    t = len(data.valid)
    kp3d = np.asarray(getattr(track, "kp3d", np.zeros((t, N_LANDMARKS, 3))), dtype=np.float64)
    conf = data.conf.cpu().numpy().astype(np.float64)
    xy = data.kp2d.cpu().numpy().astype(np.float64)
    facing_camera = np.diag([1.0, -1.0, -1.0])  # upright, facing the camera: R_x(pi)
    rots = np.repeat(facing_camera[None], t, 0)
    have = np.zeros(t, bool)
    pts = list(TORSO)  # not the knees: they would tilt the pelvis towards the thighs' flexion
    for i in range(t):
        w = conf[i, pts] * (np.linalg.norm(kp3d[i, pts], axis=-1) > 1e-6)
        if (w > 0).sum() >= 3:
            rots[i] = kabsch(lm_rest[pts], kp3d[i, pts], w)
            have[i] = True
    rots = _fill_invalid(rots, have)
    pos = np.zeros((t, 3))
    have_p = np.zeros(t, bool)
    allpts = np.arange(N_LANDMARKS)
    for i in range(t):
        m = conf[i, allpts] > 0
        mt = conf[i, list(TORSO)] > 0
        if m.sum() < 4 or mt.sum() < 2:
            continue
        x3 = (rots[i] @ (lm_rest - j0).T).T  # rest landmarks relative to the root, rotated
        sel = np.array(TORSO)[mt]
        c3, c2 = x3[sel].mean(0), xy[i, sel].mean(0)
        d3 = np.linalg.norm(x3[sel][:, :2] - c3[:2], axis=-1).sum()
        d2 = np.linalg.norm(xy[i, sel] - c2, axis=-1).sum()
        if len(sel) < 3 or d2 < 1e-3 or d3 < 1e-3:  # fall back to the whole body's extent
            h3, h2 = np.ptp(x3[m][:, 1]), np.ptp(xy[i, m, 1])
            if h2 < 1e-3:
                continue
            z = camera.fy * h3 / h2
        else:
            z = camera.fx * d3 / d2
        z = float(np.clip(z, 0.3, 200.0))
        p_c = np.array([(c2[0] - camera.cx) * z / camera.fx, (c2[1] - camera.cy) * z / camera.fy, z])
        pos[i] = p_c - c3
        have_p[i] = True
    if not have_p.any():
        pos[:] = [0.0, 0.0, 3.0]
        have_p[:] = True
    return rots, _fill_invalid(pos, have_p), have


# ----------------------------------------------------------------------------------------------------------
# the objective


def _gmof(r2: torch.Tensor, sigma: float) -> torch.Tensor:
    s2 = sigma * sigma
    return s2 * r2 / (s2 + r2)


def _charbonnier(a2: torch.Tensor, delta: float) -> torch.Tensor:
    d2 = delta * delta
    return 2 * d2 * (torch.sqrt(1 + a2 / d2) - 1)


@dataclass
class _Weights:
    reproj: float
    sigma: float
    depth: float
    acc: float  # joint-acceleration weight (already from the cut-off)
    acc_delta: float  # in heights per frame^2
    q_acc: float
    pose: float
    init: float
    shape: float
    contact: float


def _weights(options: FitOptions, fps: float) -> _Weights:
    fps = float(fps) if fps and fps > 0 else 30.0
    lam = 0.0
    if options.smoothing > 0:
        w = 2 * math.pi * min(options.cutoff_hz / fps, 0.45)
        lam = options.smoothing / (2 - 2 * math.cos(w)) ** 2
    return _Weights(
        reproj=options.w_reproj,
        sigma=options.robust_sigma / UNIT,
        depth=options.w_depth,
        acc=lam,
        acc_delta=options.acc_robust_mps2 / fps**2 / (NOMINAL_HEIGHT_M * UNIT),
        q_acc=lam * options.w_q_acc,
        pose=options.w_pose,
        init=options.w_init,
        shape=options.w_shape,
        contact=options.w_contact,
    )


class _Problem:
    """One window of frames: parameters, objective, and the final per-frame values."""

    def __init__(self, body: _Body, data: _Data, sl: slice, camera: Camera, weights: _Weights, betas: torch.Tensor,
                 u0: np.ndarray, r0: np.ndarray, p0: np.ndarray, q_init: np.ndarray | None,
                 frame_ids: np.ndarray | None = None) -> None:
        dt, dev = body.dtype, body.device
        tt = lambda x: torch.as_tensor(np.asarray(x), dtype=dt, device=dev)  # noqa: E731
        self.body, self.cam, self.w = body, camera, weights
        ids = np.arange(sl.start, sl.stop) if frame_ids is None else frame_ids
        self.kp2d, self.conf = data.kp2d[ids], data.conf[ids]
        self.views = None if data.views is None else {
            k: (v[:, ids] if k in ("kp2d", "conf") else v) for k, v in data.views.items()}
        self.dirs, self.dir_w, self.dir_xy = data.dirs[ids], data.dir_w[ids], data.dir_xy[ids]
        self.scale = data.scale_px
        self.u = torch.nn.Parameter(tt(u0))
        self.r = torch.nn.Parameter(torch.zeros(len(ids), 3, dtype=dt, device=dev))
        self.r_base = tt(r0)
        self.p = torch.nn.Parameter(tt(p0))
        self.betas = torch.nn.Parameter(betas.detach().clone())
        self._j0: torch.Tensor | None = None
        self.prior_scale = tt(PRIOR_SCALE)
        self.anchor_j: torch.Tensor | None = None  # (T,24,3) smoothed joints, set by the temporal step
        self.anchor_q: torch.Tensor | None = None  # (T,43) smoothed body q
        self.mu, self.mu_q = 1.0, 0.0
        self.q_init = None if q_init is None else tt(q_init)
        self.seg_a, self.seg_b = torch.as_tensor(np.array(SEGMENTS).T, device=dev)
        self.memory: dict = {}  # L-BFGS curvature pairs carried from one per-frame stage to the next
        self.contact: tuple[torch.Tensor, torch.Tensor, float, torch.Tensor] | None = None  # mask, n, d, heights
        self.contact_place: torch.Tensor | None = None  # (T,4,3) where each resting point stays (temporal step)
        self.k = torch.tensor([camera.fx, camera.fy, camera.cx, camera.cy], dtype=dt, device=dev)

    def rotations(self) -> torch.Tensor:
        return so3_exp(self.r) @ self.r_base

    def forward(self, temporal: bool = True, depth_scale: float = 1.0, sigma: float | None = None,
                shape: bool = False, x: torch.Tensor | None = None, betas: torch.Tensor | None = None,
                posed: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict]:
        """Objective; ``x`` (T,49) = [u, r, p] and ``betas`` replace the parameters (used by the optimisers);
        ``posed`` = (joints, landmarks) of the body at the current u, when only the root moves."""
        u, r, p = (self.u, self.r, self.p) if x is None else (x[:, :-6], x[:, -6:-3], x[:, -3:])
        t = u.shape[0]
        qb = q_from_u(u)
        q = torch.cat([qb.new_zeros(t, 3), qb], 1)
        if shape:
            betas = self.betas if betas is None else betas
            j0, _ = self.body.rest(betas)
        else:  # shape fixed: its rest state is computed once
            betas = self.betas.detach()
            if self._j0 is None:
                with torch.no_grad():
                    self._j0 = self.body.rest(betas)[0]
            j0 = self._j0
        joints0, lm0 = self.body(q, betas)[:2] if posed is None else posed
        rot = so3_exp(r) @ self.r_base
        joints = torch.einsum("tij,tkj->tki", rot, joints0 - j0) + p[:, None]
        lm = torch.einsum("tij,tkj->tki", rot, lm0 - j0) + p[:, None]
        z = lm[..., 2].clamp(min=0.05)
        proj = torch.stack([self.k[0] * lm[..., 0] / z + self.k[2], self.k[1] * lm[..., 1] / z + self.k[3]], -1)
        e2 = ((proj - self.kp2d) ** 2).sum(-1) / (self.scale * UNIT) ** 2
        sig = self.w.sigma if sigma is None else sigma / UNIT
        num, csum = (self.conf * _gmof(e2, sig)).sum(1), self.conf.sum(1)
        if self.views is not None:  # the other calibrated cameras' views
            more, cmore = _views_reprojection(lm, self.views, sig)
            num, csum = num + more, csum + cmore
        reproj = num / csum.clamp(min=1e-6)
        per_frame = self.w.reproj * reproj
        if self.w.depth > 0:
            a, b = self.seg_a, self.seg_b
            seg = lm[:, b] - lm[:, a]
            d = seg / seg.norm(dim=-1, keepdim=True).clamp(min=1e-6)
            dd = (d[..., 2] - self.dirs[..., 2]) ** 2  # relative depth; x, y come from the image ...
            dd = dd + self.dir_xy * ((d[..., :2] - self.dirs[..., :2]) ** 2).sum(-1)  # ... when it shows them
            depth = (self.dir_w * dd).sum(1) / self.dir_w.sum(1).clamp(min=1e-6)
            per_frame = per_frame + self.w.depth * depth_scale * depth
        if self.w.pose > 0:
            per_frame = per_frame + self.w.pose * (self.prior_scale * qb**2).sum(1)
        if self.q_init is not None and self.w.init > 0:
            per_frame = per_frame + self.w.init * ((qb - self.q_init) ** 2).sum(1)
        if self.contact is not None and self.w.contact > 0:  # resting feet on the ground, no foot below it
            mask, n, d, heights = self.contact
            h = (lm[:, FOOT_CONTACT_LANDMARKS] @ n - d - heights) / (NOMINAL_HEIGHT_M * UNIT)
            h = torch.where(mask > 0, h, (h + FLOOR_SLACK_M / (NOMINAL_HEIGHT_M * UNIT)).clamp(max=0.0))
            delta = CONTACT_DELTA_M / (NOMINAL_HEIGHT_M * UNIT)
            per_frame = per_frame + self.w.contact * _charbonnier(h**2, delta).sum(1)
            if self.contact_place is not None:  # and a resting point stays put for its whole spell
                moved = ((lm[:, FOOT_CONTACT_LANDMARKS] - self.contact_place) ** 2).sum(-1)
                moved = moved / (NOMINAL_HEIGHT_M * UNIT) ** 2
                per_frame = per_frame + self.w.contact * (mask * _charbonnier(moved, delta)).sum(1)
        if self.anchor_j is not None:  # temporal step of the splitting: stay near the smoothed trajectory
            dj = ((joints - self.anchor_j) ** 2).sum(-1).mean(1) / (NOMINAL_HEIGHT_M * UNIT) ** 2
            dq = ((qb - self.anchor_q) ** 2).sum(1) / Q_UNIT**2
            per_frame = per_frame + self.mu * dj + self.mu_q * dq
        if temporal and t >= 3 and self.w.acc > 0:
            acc = (joints[:-2] - 2 * joints[1:-1] + joints[2:]) / (NOMINAL_HEIGHT_M * UNIT)
            pen = _charbonnier((acc**2).sum(-1), self.w.acc_delta).mean(1)
            qa = ((qb[:-2] - 2 * qb[1:-1] + qb[2:]) ** 2).sum(1) / Q_UNIT**2
            ra = ((rot[:-2] - 2 * rot[1:-1] + rot[2:]) ** 2).sum((1, 2)) / Q_UNIT**2
            tmp = self.w.acc * pen + self.w.q_acc * (qa + ra)
            per_frame = per_frame + torch.nn.functional.pad(tmp, (1, 1))
        total = per_frame.mean() + (self.w.shape * (betas**2).sum() if shape else 0.0)
        return total, {"per_frame": per_frame, "q": q, "rot": rot, "joints": joints, "lm": lm, "proj": proj}

    def optimise_shape(self, iterations: int) -> None:
        """All frames and the shared betas together (one L-BFGS row; torch.optim is avoided: its first use
        imports torch._dynamo, ~2 s)."""
        if iterations <= 0:
            return
        t, n = self.u.shape[0], self.u.shape[1] + 6  # per frame [u, r, p], as optimise_frames lays them out
        x0 = torch.cat([self.u, self.r, self.p], 1).reshape(-1)
        x0 = torch.cat([x0, self.betas]).detach()[None]

        def fun(x: torch.Tensor) -> torch.Tensor:
            frames, betas = x[0, : t * n].reshape(t, n), x[0, t * n :]
            return self.forward(temporal=False, shape=True, x=frames, betas=betas)[0][None]

        x = batched_lbfgs(fun, x0, iterations)[0]
        with torch.no_grad():
            frames = x[: t * n].reshape(t, n)
            self.u.copy_(frames[:, :-6])
            self.r.copy_(frames[:, -6:-3])
            self.p.copy_(frames[:, -3:])
            self.betas.copy_(x[t * n :])

    def optimise_frames(self, iterations: int, root_only: bool = False, hold_rotation: np.ndarray | None = None,
                        hold_frames: np.ndarray | None = None, **kw: Any) -> None:
        """Per-frame fits (no temporal terms, shape fixed), batched: L-BFGS with a history and a step size of
        its own for every frame. One shared line search (torch's L-BFGS) is slow here because frames differ
        in curvature. ``root_only``: the body's pose stays; ``hold_rotation (T,)``: those frames' root
        rotation stays; ``hold_frames (T,)``: those frames stay as they are."""
        if iterations <= 0:
            return
        x0 = torch.cat([self.u, self.r, self.p], 1).detach()
        mask = torch.zeros_like(x0[0])
        mask[-6:] = 1.0
        if not root_only:
            mask[:] = 1.0
        if hold_rotation is not None and np.any(hold_rotation):
            mask = mask.repeat(len(x0), 1)
            mask[torch.as_tensor(np.asarray(hold_rotation, bool), device=mask.device), -6:-3] = 0.0
        if hold_frames is not None and np.any(hold_frames):
            mask = mask.repeat(len(x0), 1) if mask.dim() == 1 else mask
            mask[torch.as_tensor(np.asarray(hold_frames, bool), device=mask.device)] = 0.0

        if root_only:  # the body's pose is fixed: pose it once, only the rigid root moves in the objective
            with torch.no_grad():
                qb = q_from_u(self.u.detach())
                q = torch.cat([qb.new_zeros(len(qb), 3), qb], 1)
                kw["posed"] = self.body(q, self.betas.detach())[:2]

        def fun(x: torch.Tensor) -> torch.Tensor:
            return self.forward(temporal=False, x=x, **kw)[1]["per_frame"]

        x = batched_lbfgs(fun, x0, iterations, mask=mask, memory=None if root_only else self.memory)
        with torch.no_grad():
            self.u.copy_(x[:, :-6])
            self.r.copy_(x[:, -6:-3])
            self.p.copy_(x[:, -3:])


def batched_lbfgs(fun: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, iterations: int, history: int = 40,
                  mask: torch.Tensor | None = None, rel_tol: float = 1e-6,
                  memory: dict | None = None) -> torch.Tensor:
    """Minimise ``sum_t fun(x)[t]`` where row t of ``x`` (T,n) only affects ``fun(x)[t]``.

    Each row gets its own L-BFGS two-loop recursion and its own step length. One batched value-and-gradient
    call per iteration: every row tries its step; a row whose step fails the Armijo test keeps its point and
    tries a shorter one at the next iteration (backtracking spread over iterations, so one failing frame
    never costs the whole batch extra evaluations). ``memory`` (a dict) carries the curvature pairs from one
    call to the next on a similar objective (the next stage of the same frames): its first steps are then
    already well scaled instead of cautious.
    """
    x = x0.detach().clone()
    t, n = x.shape
    history = min(history, 2 * n)  # far more pairs than unknowns only go stale (tiny problems)
    m = torch.ones(n, dtype=x.dtype, device=x.device) if mask is None else mask.to(x)
    s_hist: list[torch.Tensor] = [] if memory is None else memory.setdefault("s", [])
    y_hist: list[torch.Tensor] = [] if memory is None else memory.setdefault("y", [])
    r_hist: list[torch.Tensor] = [] if memory is None else memory.setdefault("rho", [])
    if s_hist and s_hist[0].shape != x.shape:
        s_hist.clear()
        y_hist.clear()
        r_hist.clear()
    while len(s_hist) > history:  # a shorter history than the call that filled the memory
        s_hist.pop(0)
        y_hist.pop(0)
        r_hist.pop(0)
    scale = torch.ones(t, dtype=x.dtype, device=x.device)  # per-row step multiplier (halved on failure)

    def value_grad(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = z.detach().requires_grad_(True)
        f = fun(z)
        (g,) = torch.autograd.grad(f.sum(), z)
        return f.detach(), g * m

    f, g = value_grad(x)
    for _ in range(iterations):
        # two-loop recursion, per row (1/rho stored with each pair; fused ops: this runs 2 x history times)
        q = -g
        alphas = []
        for s_i, y_i, rho in zip(reversed(s_hist), reversed(y_hist), reversed(r_hist), strict=True):
            a = rho * torch.linalg.vecdot(s_i, q)[:, None]
            q = torch.addcmul(q, a, y_i, value=-1.0)
            alphas.append(a)
        if s_hist:
            s_l, y_l = s_hist[-1], y_hist[-1]
            gamma = torch.linalg.vecdot(s_l, y_l)[:, None] / torch.linalg.vecdot(y_l, y_l)[:, None].clamp(min=1e-20)
            # rows without a usable pair yet (inert pairs: s = 0) take the cautious first step
            first = torch.linalg.vecdot(s_l, s_l)[:, None] == 0
            cautious = (0.1 / g.abs().amax(1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)
            q = q * torch.where(first, cautious, gamma)
        else:  # first step: at most 0.1 in any coordinate
            q = q * (0.1 / g.abs().amax(1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)
        for s_i, y_i, rho, a in zip(s_hist, y_hist, r_hist, reversed(alphas), strict=True):
            q = torch.addcmul(q, a - rho * torch.linalg.vecdot(y_i, q)[:, None], s_i)
        d = q
        slope = (g * d).sum(1)
        bad = slope >= 0  # not a descent direction: fall back to steepest descent for that row
        if bad.any():
            d[bad] = -g[bad] * (0.1 / g[bad].abs().amax(1, keepdim=True).clamp(min=1e-12))
            slope = (g * d).sum(1)
        d = d * scale[:, None]
        slope = slope * scale
        ft, gt = value_grad(x + d)
        ok = torch.isfinite(ft) & (ft <= f + 1e-4 * slope)
        x_new = torch.where(ok[:, None], x + d, x)
        f_new = torch.where(ok, ft, f)
        g_new = torch.where(ok[:, None], gt, g)
        # failed rows: the trial still measured the curvature along d (kept as a pair), and the step is cut
        # to the minimiser of the quadratic through f, slope and ft (clamped to [0.1, 0.5] of it)
        curv = ft - f - slope
        cut = (-slope / (2 * curv.clamp(min=1e-30))).nan_to_num(0.5).clamp(0.1, 0.5)
        scale = torch.where(ok, torch.ones_like(scale), scale * cut)
        s_k = torch.where(ok[:, None], x_new - x, d)
        y_k = torch.where(ok[:, None], g_new - g, gt.nan_to_num(0.0) - g)
        sy = (s_k * y_k).sum(1, keepdim=True)
        good = (sy > 1e-12).to(x.dtype)  # rows whose curvature pair is usable; others store an inert pair
        s_hist.append(s_k * good)
        y_hist.append(y_k * good + (1 - good) * 1.0)  # y=1,s=0 keeps rho finite and the pair inert
        r_hist.append(1.0 / torch.linalg.vecdot(s_hist[-1], y_hist[-1])[:, None].clamp(min=1e-20))
        if len(s_hist) > history:
            s_hist.pop(0)
            y_hist.pop(0)
            r_hist.pop(0)
        gain = float((f - f_new).sum())
        # rows still backtracking with a decrease worth having keep the loop going
        pending = float((-slope * 0.5).clamp(min=0)[~ok].sum())
        x, f, g = x_new, f_new, g_new
        if max(gain, pending) <= rel_tol * float(f.abs().sum()):
            break  # converged: the whole batch improved (or could improve) by less than rel_tol
    return x


def _first_stages(prob: _Problem, options: FitOptions, held: np.ndarray) -> None:
    """The per-frame stages before the final one: root position, then the body's pose (depth prior x10,
    a wider robust scale), both with the root rotation held in the frames (``held``) where it was measured
    (the torso's world landmarks, or HSMR); elsewhere it is free.

    Held because rotating the root is the cheapest way to swing both thighs at once: a free root tilts the
    pelvis towards the thighs' flexion, the spine bends back to keep the trunk, and the final stage hardly
    leaves that valley (pelvis tilt and lumbar extension trade off; the landmarks barely see the pelvis).
    """
    prob.optimise_frames(options.root_iterations, root_only=True, hold_rotation=held, sigma=EARLY_SIGMA)
    prob.optimise_frames(options.pose_iterations, hold_rotation=held, depth_scale=10.0, sigma=EARLY_SIGMA)


def _shape_stage(prob: _Problem, body: _Body, data: _Data, camera: Camera, weights: _Weights, betas: torch.Tensor,
                 u_all: np.ndarray, rots: np.ndarray, pos: np.ndarray, j0: np.ndarray, q_prior: np.ndarray | None,
                 options: FitOptions, win: tuple[int, int], rot_known: np.ndarray,
                 ) -> tuple[_Problem, torch.Tensor, np.ndarray, np.ndarray]:
    """Shape on up to ``shape_frames`` frames spread over the clip, all of them and the betas together.

    Sampled frames inside the first window (``prob``, already fitted per frame) start from its fits; the
    others get the per-frame stages first. Returns the first window's problem re-made on the new shape
    (the refined sampled frames written back), the betas, and the starting root positions and pivot moved
    with the shape (so the starting root positions stay where they were).
    """
    s, e = win
    vidx = np.flatnonzero(data.valid)
    pick = vidx[np.unique(np.linspace(0, len(vidx) - 1, min(options.shape_frames, len(vidx))).round().astype(int))]
    inside = (pick >= s) & (pick < e)
    with torch.no_grad():
        w_u, w_r, w_p = (prob.u.double().cpu().numpy(), prob.rotations().double().cpu().numpy(),
                         prob.p.double().cpu().numpy())
    u_s, r_s, p_s = u_all[pick].copy(), rots[pick].copy(), pos[pick].copy()
    u_s[inside], r_s[inside], p_s[inside] = w_u[pick[inside] - s], w_r[pick[inside] - s], w_p[pick[inside] - s]
    sp = _Problem(body, data, slice(0, 0), camera, weights, betas, u_s, r_s, p_s,
                  None if q_prior is None else q_prior[pick], frame_ids=pick)
    if not inside.all():  # frames of later windows: per-frame fits first (the whole sample, batched)
        _first_stages(sp, options, rot_known[pick] | inside)
        sp.optimise_frames(options.iterations // 2)
    sp.optimise_shape(options.shape_iterations)
    new_betas = sp.betas.detach().clone()
    with torch.no_grad():
        j0_new = body.rest(new_betas)[0].double().cpu().numpy()
        s_u, s_r, s_p = sp.u.double().cpu().numpy(), sp.rotations().double().cpu().numpy(), sp.p.double().cpu().numpy()
    shift = j0_new - j0
    w_p = w_p + shift
    w_u[pick[inside] - s], w_r[pick[inside] - s], w_p[pick[inside] - s] = s_u[inside], s_r[inside], s_p[inside]
    new_prob = _Problem(body, data, slice(s, e), camera, weights, new_betas, w_u, w_r, w_p,
                        None if q_prior is None else q_prior[s:e])
    new_prob.memory = prob.memory  # the curvature pairs still describe these frames well
    return new_prob, new_betas, pos + shift, j0_new


def _temporal_steps(prob: _Problem, w: _Weights, options: FitOptions, valid: np.ndarray) -> None:
    """Temporal terms by half-quadratic splitting, so every step stays per-frame or linear.

    The coupled objective  sum_t data_t(x_t) + lam * acc(J(x))  is replaced by
    sum_t data_t(x_t) + mu |J(x_t) - S_t|^2 + lam' * acc(S), minimised alternately: S by a banded linear
    solve (robust, IRLS; :mod:`hsmr_backend.smoothing`), x by the batched per-frame L-BFGS. With
    lam' = lam * mu / (1 + mu) the two objectives have the same minimiser in the linear-Gaussian case.
    The body q get the same treatment with a small weight (it steadies DoFs the landmarks barely see).
    """
    mu = 1.0
    lam_j = w.acc * mu / (1 + mu)
    mu_q = w.q_acc / max(w.acc, 1e-12) * 0.1
    prob.mu, prob.mu_q = mu, mu_q
    unit = NOMINAL_HEIGHT_M * UNIT
    weight = valid.astype(np.float64)
    for _ in range(options.temporal_rounds):
        with torch.no_grad():
            _, out = prob.forward(temporal=False)
        joints = out["joints"].double().cpu().numpy() / unit
        qb = out["q"][:, 3:].double().cpu().numpy() / Q_UNIT
        sj = smooth_points(joints, lam_j, weight, delta=w.acc_delta) * unit
        sq = smooth(qb, lam_j, weight) * Q_UNIT
        prob.anchor_j = torch.as_tensor(sj, dtype=prob.u.dtype, device=prob.u.device)
        prob.anchor_q = torch.as_tensor(sq, dtype=prob.u.dtype, device=prob.u.device)
        if prob.contact is not None:
            place = _resting_places(out["lm"][:, FOOT_CONTACT_LANDMARKS].double().cpu().numpy(),
                                    prob.contact[0].cpu().numpy() > 0, valid)
            prob.contact_place = torch.as_tensor(place, dtype=prob.u.dtype, device=prob.u.device)
        prob.optimise_frames(options.temporal_iterations)
    prob.anchor_j = prob.anchor_q = prob.contact_place = None


def spells(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a (T,) mask as half-open (start, end) frame ranges."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _resting_places(points: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T,P,3): for every spell of a resting point (a run of ``mask`` (T,P)), the median of its positions over
    the spell's valid frames, in every frame of the spell; elsewhere the point's own position."""
    out = points.copy()
    for p in range(mask.shape[1]):
        for a, b in spells(mask[:, p]):
            v = valid[a:b]
            if v.any():
                out[a:b, p] = np.median(points[a:b, p][v], axis=0)
    return out


# ----------------------------------------------------------------------------------------------------------
# the driver


def _windows(t: int, size: int, overlap: int) -> list[tuple[int, int]]:
    size = max(int(size), 8)
    overlap = int(np.clip(overlap, 0, size // 2))
    if t <= size:
        return [(0, t)]
    out, s = [], 0
    while True:
        e = min(s + size, t)
        out.append((s, e))
        if e == t:
            return out
        s = e - overlap


def _num_betas(model: Any, options: FitOptions, init: dict | None) -> int:
    for name in ("num_betas", "n_betas"):
        k = getattr(model, name, None)
        if isinstance(k, int) and k > 0:
            return min(k, options.n_betas)
    if init is not None and "betas" in init:
        return int(np.asarray(init["betas"]).shape[-1])
    return options.n_betas


def fit_sequence(
    track: Any,
    model: Any,
    regressor: Any,
    camera: Camera,
    options: FitOptions | None = None,
    init: dict | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> FitResult:
    """Fit a clip. ``track``: a LandmarkTrack (kp2d (T,33,3) px+conf, kp3d (T,33,3), valid, fps).

    ``init`` may carry per-frame HSMR predictions ``poses (T,46)``, ``betas (T,K)``, ``cam_t (T,3)`` in the
    full-image camera; they start the fit and act as a weak prior.
    """
    options = options or FitOptions()
    return _with_threads(options, lambda: _fit_sequence(track, model, regressor, camera, options, init, progress))


def refine_with_contacts(
    start: FitResult,
    track: Any,
    model: Any,
    regressor: Any,
    contacts: FootContacts,
    options: FitOptions | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    init: dict | None = None,
) -> FitResult:
    """Fit ``start`` again (same shape, same camera) with the landmarks of ``contacts.mask`` held on the ground.

    A pose the landmarks see wrongly in depth (MediaPipe's thighs too upright in a squat filmed from the front)
    otherwise makes the whole body slide away from the camera and sink through the floor to match the image;
    with the resting feet held, the image has to be matched by the pose. Held means: each resting point at its
    flat-foot height above the ground plane, and, in the temporal rounds, at one place for its whole spell
    (the median of its positions); no foot point more than ``FLOOR_SLACK_M`` below the ground in any frame.
    Starts from ``start``'s poses (no first stages, no shape stage; frames without landmarks keep their
    bridge), then ``contact_iterations`` per-frame iterations and the temporal rounds. ``init``: the per-frame
    HSMR predictions that started ``start``, kept as its weak prior.
    """
    options = options or FitOptions()
    return _with_threads(options, lambda: _fit_sequence(track, model, regressor, start.camera, options, init,
                                                        progress, start=start, contacts=contacts))


def _with_threads(options: FitOptions, run: Callable[[], FitResult]) -> FitResult:
    threads = torch.get_num_threads()
    if options.threads and str(options.device).startswith("cpu"):
        torch.set_num_threads(int(options.threads))
    try:
        return run()
    finally:
        torch.set_num_threads(threads)


def _fit_sequence(track: Any, model: Any, regressor: Any, camera: Camera, options: FitOptions, init: dict | None,
                  progress: Callable[[str, int, int], None] | None, start: FitResult | None = None,
                  contacts: FootContacts | None = None) -> FitResult:
    t_start = time.perf_counter()
    report = progress or (lambda *_: None)
    data = _prepare(track, camera, options)
    t = len(data.valid)
    fps = float(getattr(track, "fps", 30.0) or 30.0)
    weights = _weights(options, fps)
    body = _Body(model, regressor, options)
    dt, dev = options.dtype, options.device
    k = _num_betas(model, options, init)

    # --- starting values -----------------------------------------------------------------------------
    ip = None
    if start is not None:
        betas = torch.as_tensor(np.asarray(start.betas, dtype=np.float64), dtype=dt, device=dev)
    elif init is not None:
        ip = np.asarray(init["poses"], dtype=np.float64)
        if ip.shape != (t, N_DOFS):
            raise ValueError(f"init['poses'] must have shape ({t}, 46), got {ip.shape}")
        b0 = np.median(np.asarray(init.get("betas", np.zeros((t, k))), dtype=np.float64), axis=0)[:k]
        betas = torch.as_tensor(np.pad(b0, (0, k - len(b0))), dtype=dt, device=dev)
    else:
        betas = torch.zeros(k, dtype=dt, device=dev)
    with torch.no_grad():
        j0_t, m0_t = body.rest(betas)
        _, lm_rest, _ = body(torch.zeros(1, N_DOFS, dtype=dt, device=dev), betas)
    j0, m0, lm_rest = j0_t.double().cpu().numpy(), m0_t.double().cpu().numpy(), lm_rest[0].double().cpu().numpy()
    if start is not None:  # a finished fit: its poses, root and shape as they are
        sp = np.asarray(start.poses, dtype=np.float64)
        rots = m0 @ pelvis_matrix(sp[:, :3]) @ m0.T
        rot_known = np.ones(t, bool)
        pos = j0 + np.asarray(start.trans, dtype=np.float64)
        u_all = u_from_q(sp[:, 3:], margin=0.01)  # at a limit the sine parametrisation would barely move
        q_prior = None if init is None else clip_to_limits(np.asarray(init["poses"], dtype=np.float64))[:, 3:]
    elif ip is not None:
        rots = m0 @ pelvis_matrix(ip[:, :3]) @ m0.T
        rot_known = np.ones(t, bool)
        pos = j0 + np.asarray(init["cam_t"], dtype=np.float64)
        u_all = u_from_q(ip[:, 3:])
        q_prior = clip_to_limits(ip)[:, 3:]
    else:
        rots, pos, rot_known = _initial_root(data, track, lm_rest, j0, camera)
        u_all = np.repeat(u_from_q(np.zeros(len(BODY)))[None], t, 0)
        q_prior = None

    # --- windows; the shape is fitted after the first window's per-frame stages ----------------------------
    info: dict[str, Any] = {"windows": [], "focal_source": camera.focal_source, "n_betas": k}
    vidx = np.flatnonzero(data.valid)
    wins = _windows(t, options.window, options.overlap)
    u_out = np.zeros((t, len(BODY)))
    r_out = np.zeros((t, 3, 3))
    p_out = np.zeros((t, 3))
    loss_out = np.zeros(t)
    prev_end = 0
    for wi, (s, e) in enumerate(wins):
        report("fit", wi, len(wins))
        u0, r0, p0 = u_all[s:e].copy(), rots[s:e].copy(), pos[s:e].copy()
        if wi > 0:  # warm start: overlap from the previous window, the rest continues its last frame's pose
            ov = prev_end - s
            u0[:ov], r0[:ov], p0[:ov] = u_out[s:prev_end], r_out[s:prev_end], p_out[s:prev_end]
            if ip is None and start is None:
                u0[ov:] = u_out[prev_end - 1]
        prob = _Problem(body, data, slice(s, e), camera, weights, betas, u0, r0, p0,
                        None if q_prior is None else q_prior[s:e])
        tw = time.perf_counter()
        held = rot_known[s:e].copy()
        if wi > 0:
            held[: prev_end - s] = True  # the overlap starts from the previous window's fit
        if contacts is not None:
            tc = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dt, device=dev)  # noqa: E731
            prob.contact = (tc(contacts.mask[s:e]), tc(contacts.normal), float(contacts.offset), tc(contacts.heights))
        if start is not None:  # frames without landmarks keep the first fit's bridge
            prob.optimise_frames(options.contact_iterations, hold_frames=~data.valid[s:e])
        else:
            _first_stages(prob, options, held)
            prob.optimise_frames(options.iterations)
        if start is None and wi == 0 and options.fit_shape and len(vidx) > 0 and options.shape_iterations > 0:
            report("shape", 0, 1)
            prob, betas, pos, j0 = _shape_stage(prob, body, data, camera, weights, betas, u_all, rots, pos, j0,
                                                q_prior, options, (s, e), rot_known)
            info["shape_time_s"] = time.perf_counter() - t_start
            report("shape", 1, 1)
            if weights.acc <= 0:  # per-frame fits only: settle the poses on the new shape
                prob.optimise_frames(options.iterations // 2)
        if weights.acc > 0:
            _temporal_steps(prob, weights, options, data.valid[s:e])
        with torch.no_grad():
            _, out = prob.forward()
        u_w = prob.u.detach().double().cpu().numpy()
        r_w = out["rot"].double().cpu().numpy()
        p_w = prob.p.detach().double().cpu().numpy()
        l_w = out["per_frame"].double().cpu().numpy()
        ov = prev_end - s if wi > 0 else 0
        if ov > 0:  # blend the overlap linearly from the previous window to this one
            a = ((np.arange(ov) + 1) / (ov + 1))[:, None]
            u_w[:ov] = (1 - a) * u_out[s:prev_end] + a * u_w[:ov]
            p_w[:ov] = (1 - a) * p_out[s:prev_end] + a * p_w[:ov]
            r_w[:ov] = orthonormalize((1 - a)[..., None] * r_out[s:prev_end] + a[..., None] * r_w[:ov])
            l_w[:ov] = (1 - a[:, 0]) * loss_out[s:prev_end] + a[:, 0] * l_w[:ov]
        u_out[s:e], r_out[s:e], p_out[s:e], loss_out[s:e] = u_w, r_w, p_w, l_w
        prev_end = e
        info["windows"].append({"frames": [int(s), int(e)], "time_s": time.perf_counter() - tw})
    report("fit", len(wins), len(wins))

    # --- final values: limits exactly, pelvis angles, trans -------------------------------------------
    with torch.no_grad():
        qb = q_from_u(torch.as_tensor(u_out, dtype=torch.float64)).numpy()
    poses = np.zeros((t, N_DOFS))
    poses[:, 3:] = qb
    poses[:, :3] = pelvis_angles_sequence(np.einsum("ji,tjk,kl->til", m0, r_out, m0))  # M0^T R M0
    poses = clip_to_limits(poses)
    if count_violations(poses) != 0:  # cannot happen after clipping; kept as a hard guarantee
        raise AssertionError("joint limits violated after clipping")
    trans = p_out - j0
    res = _evaluate(body, poses, betas, trans, camera, data, dt, dev)
    info["time_s"] = time.perf_counter() - t_start
    info["fps"] = fps
    info["options"] = {k_: v for k_, v in vars(options).items() if isinstance(v, int | float | str | bool)}
    return FitResult(
        poses=limits_float32(poses),
        betas=betas.double().cpu().numpy().astype(np.float32),
        trans=trans.astype(np.float32),
        joints_cam=res["joints"],
        kp2d_pred=res["proj"],
        reprojection_error_px=res["err"],
        fit_loss=loss_out.astype(np.float32),
        camera=camera,
        landmarks_cam=res["lm"],
        valid=data.valid.copy(),
        joint_offsets=res.get("joint_offsets"),
        info=info,
    )


def _evaluate(body: _Body, poses: np.ndarray, betas: torch.Tensor, trans: np.ndarray, camera: Camera, data: _Data,
              dt: torch.dtype, dev: str, chunk: int = 256) -> dict[str, np.ndarray]:
    """Run the model on the final q and trans (pelvis included) so outputs are exactly what the body gives."""
    joints, lms, offs = [], [], []
    with torch.no_grad():
        for s in range(0, len(poses), chunk):
            q = torch.as_tensor(poses[s : s + chunk], dtype=dt, device=dev)
            tr = torch.as_tensor(trans[s : s + chunk], dtype=dt, device=dev)
            out = body.run(q, betas, tr)
            joints.append(out.joints.double().cpu().numpy())
            lms.append(body._landmarks(out).double().cpu().numpy())
            if getattr(out, "joint_offsets", None) is not None:
                offs.append(out.joint_offsets.double().cpu().numpy())
    lm = np.concatenate(lms)
    proj = camera.project(lm)
    conf = data.conf.double().cpu().numpy()
    err_k = np.linalg.norm(proj - data.kp2d.double().cpu().numpy(), axis=-1)
    err = (conf * err_k).sum(1) / np.maximum(conf.sum(1), 1e-9)
    out_d = {
        "joints": np.concatenate(joints).astype(np.float32),
        "lm": lm.astype(np.float32),
        "proj": proj.astype(np.float32),
        "err": np.where(conf.sum(1) > 0, err, 0.0).astype(np.float32),
    }
    if offs:
        out_d["joint_offsets"] = np.concatenate(offs).astype(np.float32)
    return out_d


def per_frame_options(options: FitOptions | None = None) -> FitOptions:
    """The same fit without temporal terms (a per-frame baseline for benchmarks)."""
    return replace(options or FitOptions(), smoothing=0.0)
