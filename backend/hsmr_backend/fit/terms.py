"""The objective's terms, one function each, and their weights.

Each term takes the posed body (landmarks, joints or q of a window's frames) and what it compares them with,
and returns its unweighted loss per frame (T,) (the shape prior: one number); :mod:`.problem` sums them with
the weights of :class:`Weights`. Lengths are in the units of :mod:`.options` (UNIT, NOMINAL_HEIGHT_M, Q_UNIT).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .contacts import CONTACT_DELTA_M, FLOOR_SLACK_M, FOOT_CONTACT_LANDMARKS
from .options import NOMINAL_HEIGHT_M, Q_UNIT, UNIT, FitOptions

LENGTH_UNIT_M = NOMINAL_HEIGHT_M * UNIT  # one unit of a 3D length or acceleration term


def gmof(r2: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure of squared residuals ``r2`` at scale ``sigma``."""
    s2 = sigma * sigma
    return s2 * r2 / (s2 + r2)


def charbonnier(a2: torch.Tensor, delta: float) -> torch.Tensor:
    """Charbonnier of squared values ``a2``: quadratic below ``delta``, linear above."""
    d2 = delta * delta
    return 2 * d2 * (torch.sqrt(1 + a2 / d2) - 1)


@dataclass
class Weights:
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


def weights_for(options: FitOptions, fps: float) -> Weights:
    """The terms' weights for a clip at ``fps``; the temporal strength comes from the cut-off frequency."""
    fps = float(fps) if fps and fps > 0 else 30.0
    lam = 0.0
    if options.smoothing > 0:
        w = 2 * math.pi * min(options.cutoff_hz / fps, 0.45)
        lam = options.smoothing / (2 - 2 * math.cos(w)) ** 2
    return Weights(
        reproj=options.w_reproj,
        sigma=options.robust_sigma / UNIT,
        depth=options.w_depth,
        acc=lam,
        acc_delta=options.acc_robust_mps2 / fps**2 / LENGTH_UNIT_M,
        q_acc=lam * options.w_q_acc,
        pose=options.w_pose,
        init=options.w_init,
        shape=options.w_shape,
        contact=options.w_contact,
    )


@dataclass
class ImageView:
    """One camera and the landmarks it saw in a window's frames. The fit's frame is the first view's camera
    frame; another view gives the rigid move from that frame into its own (``rotation``, ``translation``)."""

    k: torch.Tensor  # (4,) fx, fy, cx, cy in pixels
    kp2d: torch.Tensor  # (T,33,2) pixels
    conf: torch.Tensor  # (T,33) 0 = not seen
    scale_px: float  # the person's height in this view, pixels
    rotation: torch.Tensor | None = None  # (3,3) fit frame -> this camera's frame; None: the same frame
    translation: torch.Tensor | None = None  # (3,) metres


@dataclass
class SegmentDirections:
    """3D directions of body segments from MediaPipe's world landmarks, per frame."""

    seg_a: torch.Tensor  # (S,) landmark each segment starts at
    seg_b: torch.Tensor  # (S,) and ends at
    dirs: torch.Tensor  # (T,S,3) unit directions
    weight: torch.Tensor  # (T,S)
    weight_xy: torch.Tensor  # (T,S) weight of the in-image components


@dataclass
class GroundHold:
    """Resting foot points held on a ground plane (camera frame): ``normal . x = offset``."""

    mask: torch.Tensor  # (T,4) 1 where that FOOT_CONTACT_LANDMARKS point rests
    normal: torch.Tensor  # (3,)
    offset: float
    heights: torch.Tensor  # (4,) each point's height above the ground when its foot rests flat


def project(lm: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(T,N,3) camera-frame points -> (T,N,2) pixels (depth clamped to 5 cm in front of the camera)."""
    z = lm[..., 2].clamp(min=0.05)
    return torch.stack([k[0] * lm[..., 0] / z + k[2], k[1] * lm[..., 1] / z + k[3]], -1)


def reprojection(lm: torch.Tensor, views: Sequence[ImageView], sigma: float) -> torch.Tensor:
    """Robust image distance of the landmarks (T,33,3) in UNITs of the person's height in each view, averaged
    per frame over every view's points, weighted by their confidences."""
    num = csum = None
    for view in views:
        x = lm
        if view.rotation is not None and view.translation is not None:
            x = torch.einsum("ij,tkj->tki", view.rotation, lm) + view.translation
        e2 = ((project(x, view.k) - view.kp2d) ** 2).sum(-1) / (view.scale_px * UNIT) ** 2
        n_v, c_v = (view.conf * gmof(e2, sigma)).sum(1), view.conf.sum(1)
        num, csum = (n_v, c_v) if num is None or csum is None else (num + n_v, csum + c_v)
    if num is None or csum is None:
        raise ValueError("the reprojection term needs at least one view")
    return num / csum.clamp(min=1e-6)


def segment_depth(lm: torch.Tensor, seen: SegmentDirections) -> torch.Tensor:
    """Disagreement of the body's segment directions with the world landmarks' ones: the depth component
    always, the in-image components where the image does not show the segment."""
    seg = lm[:, seen.seg_b] - lm[:, seen.seg_a]
    d = seg / seg.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    dd = (d[..., 2] - seen.dirs[..., 2]) ** 2  # relative depth; x, y come from the image ...
    dd = dd + seen.weight_xy * ((d[..., :2] - seen.dirs[..., :2]) ** 2).sum(-1)  # ... when it shows them
    return (seen.weight * dd).sum(1) / seen.weight.sum(1).clamp(min=1e-6)


def pose_prior(qb: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Pull of the body DoFs (T,43) towards zero, ``scale`` (43,) per DoF."""
    return (scale * qb**2).sum(1)


def init_prior(qb: torch.Tensor, q_init: torch.Tensor) -> torch.Tensor:
    """Pull of the body DoFs towards per-frame predictions (T,43)."""
    return ((qb - q_init) ** 2).sum(1)


def ground_contact(lm: torch.Tensor, hold: GroundHold) -> torch.Tensor:
    """Resting foot points at their flat-foot height above the ground; no foot point more than FLOOR_SLACK_M
    below it."""
    h = (lm[:, FOOT_CONTACT_LANDMARKS] @ hold.normal - hold.offset - hold.heights) / LENGTH_UNIT_M
    h = torch.where(hold.mask > 0, h, (h + FLOOR_SLACK_M / LENGTH_UNIT_M).clamp(max=0.0))
    return charbonnier(h**2, CONTACT_DELTA_M / LENGTH_UNIT_M).sum(1)


def resting_place(lm: torch.Tensor, mask: torch.Tensor, place: torch.Tensor) -> torch.Tensor:
    """Resting foot points (``mask`` (T,4)) away from the place (T,4,3) they rest at for their spell."""
    moved = ((lm[:, FOOT_CONTACT_LANDMARKS] - place) ** 2).sum(-1)
    moved = moved / LENGTH_UNIT_M**2
    return (mask * charbonnier(moved, CONTACT_DELTA_M / LENGTH_UNIT_M)).sum(1)


def joint_anchor(joints: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the joints (T,24,3) from a smoothed trajectory."""
    return ((joints - anchor) ** 2).sum(-1).mean(1) / LENGTH_UNIT_M**2


def q_anchor(qb: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Squared distance of the body DoFs (T,43) from smoothed ones, in Q_UNITs."""
    return ((qb - anchor) ** 2).sum(1) / Q_UNIT**2


def joint_acceleration(joints: torch.Tensor, delta: float) -> torch.Tensor:
    """(T-2,) robust acceleration of the joints (T,24,3) at the inner frames."""
    acc = (joints[:-2] - 2 * joints[1:-1] + joints[2:]) / LENGTH_UNIT_M
    return charbonnier((acc**2).sum(-1), delta).mean(1)


def q_acceleration(qb: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """(T-2,) squared acceleration of the body DoFs (T,43) and the root rotation matrices (T,3,3)."""
    qa = ((qb[:-2] - 2 * qb[1:-1] + qb[2:]) ** 2).sum(1) / Q_UNIT**2
    ra = ((rot[:-2] - 2 * rot[1:-1] + rot[2:]) ** 2).sum((1, 2)) / Q_UNIT**2
    return qa + ra


def shape_prior(betas: torch.Tensor) -> torch.Tensor:
    """Sum of squared shape coefficients."""
    return (betas**2).sum()
