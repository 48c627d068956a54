"""World frame for a static camera: the ground plane from foot contacts, Blender's z up, ground at z = 0.

The fit lives in the camera frame (OpenCV). Here we assume the camera did not move during the clip (the common
case for footage of one person; a moving camera is not modelled). "Up" comes from the scene's vertical edges
when it has enough of them (:func:`hsmr_backend.scene.vertical_up`, searched near the body's up); otherwise from
balance (feet -> centre of mass, averaged over the standing frames of the clip), with the feet's lowest points
while they rest on the ground deciding the ground plane along the directions in which they spread far enough (an
area: the plane; a line: the normal made perpendicular to it), see :func:`fit_ground_plane`. The ground's height
always comes from the resting feet. Then:

- world z is the plane normal (up), world x is the camera's x projected on the plane, world y = z × x (so the
  camera looks roughly along +y, horizontally up to its pitch/roll), origin on the ground under the subject's
  first valid root position;
- the model frame used in the world (y up, like SKEL) is tied to the world by the fixed rotation
  ``model_to_world`` = [[1,0,0],[0,0,-1],[0,1,0]] (model y-up -> world z-up, model +z -> world -y), no
  translation: model y = 0 is the ground;
- the root rotation is re-expressed in that frame and decomposed again into SKEL's pelvis tilt/list/rotation,
  so upright standing gives pelvis angles near 0 (up to the heading), and ``trans`` absorbs the pivot J0 so
  every joint lands exactly where the camera-frame fit put it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hsmr_contract.dofs import dof_index
from hsmr_contract.kinematics import pelvis_angles_sequence, pelvis_matrix
from hsmr_contract.runs import true_runs

from .fit import (
    FOOT_CONTACT_LANDMARKS,
    FOOT_JOINTS,
    FOOT_LANDMARKS,
    FitOptions,
    FitResult,
    FootContacts,
    fit_sequence,
    person_height_px,
    refine_with_contacts,
    rest_foot_heights,
)
from .scene import SceneLines, vertical_up

MODEL_TO_WORLD_ROT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
HEAD_JOINT, PELVIS_JOINT = 13, 0


@dataclass
class WorldResult:
    poses: np.ndarray  # (T,46) q with the pelvis angles in the world-aligned model frame
    trans: np.ndarray  # (T,3) model-frame trans: model(poses, betas, trans) then model_to_world = world
    model_to_world: np.ndarray  # (4,4)
    camera_to_world: np.ndarray  # (4,4)
    joints_world: np.ndarray  # (T,24,3) Blender world, z up, metres
    ground_residual_m: float  # RMS distance of the contact points to the fitted plane
    notes: list[str] = field(default_factory=list)
    up_source: str = "balance"  # what decided "up": scene edges, foot contacts (and balance), or balance


def _rest_root(model: Any, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root pivot J0 and root rest frame M_0 of the body for these betas."""
    dev = getattr(model, "device", "cpu")  # the model may live on the GPU
    b = torch.as_tensor(np.asarray(betas, dtype=np.float32), device=dev)[None]
    with torch.no_grad():
        out = model(torch.zeros(1, 46, device=dev), b, torch.zeros(1, 3, device=dev), pose_correctives=False,
                    bone_mesh=False)
    return out.joints_tpose[0, 0].double().cpu().numpy(), out.rest_frames[0, 0].double().cpu().numpy()


def fit_ground_plane(points: np.ndarray, up_prior: np.ndarray, max_tilt_deg: float = 20.0, min_spread_m: float = 1.0,
                     fixed_normal: bool = False) -> tuple[np.ndarray, float, float, list[str], str]:
    """Plane ``n . x = d`` through contact points (N,3), normal on the side of ``up_prior``.

    Monocular depth makes a plane through two resting feet wobble by tens of degrees, so the contacts decide
    the normal only along directions in which they spread at least ``min_spread_m`` (twice the standard
    deviation): over an area, the plane; along a line (walking straight), the normal is the prior made
    perpendicular to that line; on one spot, the prior. A plane that tilts more than ``max_tilt_deg`` from
    the prior is not trusted. With ``fixed_normal`` (an "up" known from the scene) the normal is the prior and
    only the height is fitted. Returns (n, d, rms residual, notes, what decided the normal: "foot contacts",
    "foot contacts and balance", "balance" or "given").
    """
    notes: list[str] = []
    up = up_prior / np.linalg.norm(up_prior)
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 3:
        d = float(np.median(pts @ up)) if len(pts) else 0.0
        if fixed_normal:
            return up, d, 0.0, notes, "given"
        notes.append("too few foot contacts: ground normal from the body's balance (centre of mass over the feet)")
        return up, d, 0.0, notes, "balance"
    n, source = up, "given" if fixed_normal else "balance"
    keep = np.ones(len(pts), bool)
    for it in range(3):  # plane fit, then drop far points (feet in the air) and refit
        c = pts[keep].mean(0)
        evals, evecs = np.linalg.eigh(np.cov((pts[keep] - c).T))
        spread = 2 * np.sqrt(np.clip(evals, 0.0, None))  # ascending: normal, second, main direction
        cand = evecs[:, 0] * np.sign(evecs[:, 0] @ up or 1.0)
        tilt = np.degrees(np.arccos(np.clip(cand @ up, -1, 1)))
        line = evecs[:, 2]
        on_line = up - (up @ line) * line
        line_tilt = np.degrees(np.arccos(np.clip(on_line @ up / max(np.linalg.norm(on_line), 1e-12), -1, 1)))
        note = None
        if fixed_normal:
            pass
        elif spread[1] >= min_spread_m and tilt <= max_tilt_deg:
            n, source = cand, "foot contacts"
        elif spread[2] >= min_spread_m and line_tilt <= max_tilt_deg:
            n, source = on_line / np.linalg.norm(on_line), "foot contacts and balance"
            note = "foot contacts lie along a line: ground normal from that line and the body's balance"
        elif spread[2] >= min_spread_m:
            n, source = up, "balance"
            note = f"fitted ground tilts {max(tilt, line_tilt):.0f}° from the body's balance: not trusted"
        else:
            n, source = up, "balance"
            note = "foot contacts cover too small an area: ground normal from the body's balance (centre of mass " \
                   "over the feet)"
        if it == 0 and note:
            notes.append(note)
        d = float(np.median(pts[keep] @ n))
        r = pts @ n - d
        keep = np.abs(r) < max(3 * np.median(np.abs(r[keep])), 0.02)
    d = float(np.median(pts[keep] @ n))
    rms = float(np.sqrt(np.mean((pts[keep] @ n - d) ** 2)))
    return n, d, rms, notes, source


# Approximate segment mass shares (after de Leva 1996), put on the joints that carry them; only the
# direction of the centre of mass from the feet is used, so rough shares are enough.
MASS_SHARES = {0: 0.14, 11: 0.10, 12: 0.20, 13: 0.08, 1: 0.10, 6: 0.10, 2: 0.07, 7: 0.07, 3: 0.02, 8: 0.02,
               15: 0.03, 20: 0.03, 16: 0.02, 21: 0.02, 18: 0.006, 23: 0.006}
SUPPORT_JOINTS = (4, 5, 9, 10)  # calcaneus and toes of both feet


STANDING_KNEE_RAD = 0.5  # mean knee flexion (~29°) below which a frame counts as standing for balance_up
KNEES = (dof_index("knee_angle_r"), dof_index("knee_angle_l"))


def standing_frames(poses: np.ndarray, valid: np.ndarray, min_share: float = 0.2) -> np.ndarray:
    """Valid frames with nearly straight knees, when they are at least ``min_share`` of the valid ones (else
    all valid frames). Standing, the centre of mass is over the feet; seated it rests on the seat, behind them."""
    knee = np.asarray(poses, dtype=np.float64)[:, list(KNEES)].mean(1)
    stand = valid & (knee < STANDING_KNEE_RAD)
    return stand if stand.sum() >= max(3, min_share * valid.sum()) else valid


def balance_up(joints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Up direction from balance: the unit vector from the feet to the body's centre of mass, averaged over
    the clip. A standing, walking or squatting body keeps its centre of mass over its feet (on average),
    while the trunk leans forward in squats and gait, so this is a better "up" than pelvis -> head."""
    idx = np.array(list(MASS_SHARES))
    w = np.array(list(MASS_SHARES.values()))
    j = joints[valid]
    com = (j[:, idx] * (w / w.sum())[None, :, None]).sum(1)
    v = com - j[:, list(SUPPORT_JOINTS)].mean(1)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-9)
    return v.mean(0) / max(np.linalg.norm(v.mean(0)), 1e-9)


def _foot_points(joints: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
    """(T, P, 3) the foot joints, and the foot landmarks when given."""
    feet = joints[:, FOOT_JOINTS]
    return feet if landmarks is None else np.concatenate([feet, landmarks[:, FOOT_LANDMARKS]], 1)


def contact_points(joints: np.ndarray, valid: np.ndarray, up: np.ndarray, fps: float,
                   landmarks: np.ndarray | None = None, max_speed: float = 0.5) -> np.ndarray:
    """Lowest foot points of each frame while that foot is nearly still (speed < ``max_speed`` m/s)."""
    feet = _foot_points(joints, landmarks)
    h = feet @ up
    vel = np.zeros(feet.shape[:2])
    if len(feet) > 1:
        v = np.linalg.norm(np.diff(feet, axis=0), axis=-1) * fps
        vel[1:] = v
        vel[0] = v[0]
    pts = []
    for t in np.flatnonzero(valid):
        low = h[t].min()
        sel = (h[t] < low + 0.03) & (vel[t] < max_speed)
        pts.append(feet[t, sel])
    if not pts:
        return np.zeros((0, 3))
    return np.concatenate(pts)


def lowest_foot_points(joints: np.ndarray, valid: np.ndarray, up: np.ndarray,
                       landmarks: np.ndarray | None = None) -> np.ndarray:
    """The lowest foot point of every valid frame, moving or not: the ground where no foot ever rests (a clip
    of a few frames; a treadmill, whose belt carries the standing foot). The ground fit's robust refit drops
    the frames with both feet in the air."""
    feet = _foot_points(joints, landmarks)
    idx = np.flatnonzero(valid)
    return feet[idx, np.argmin(feet[idx] @ up, axis=1)]


# A foot point rests where its image barely moves (static camera) while it is near the ground: slower than this
# many person heights per second, measured over +-CONTACT_SPAN_S. A planted foot's landmarks jitter by 2-5 px,
# a swinging foot moves at 0.6-2 heights/s.
CONTACT_SPEED = 0.15
CONTACT_SPAN_S = 0.1
CONTACT_MIN_S = 0.15  # shorter still spells are not contacts
CONTACT_NEAR_M = 0.10  # and the first fit must have the point no higher than this above the ground ...
CONTACT_NEAR_SHARE = 0.25  # ... in this share of the still spell (and at least CONTACT_MIN_S of it)
CONTACT_CONF = 0.5
# MediaPipe drags a planted foot's landmarks up to ~7 % of the body's height off it while the hips come down close
# to it (a squat filmed from behind). Two still spells of a point (each CONTACT_MIN_S or longer) are one when the
# gap between them is at most CONTACT_BRIDGE_S, the point is seen all through it and comes back to within
# CONTACT_RETURN person heights of where it left, and the first fit kept it near the ground all through the gap (a
# foot stepping in place is lifted there).
CONTACT_BRIDGE_S = 1.0
CONTACT_RETURN = 0.03


def _moving_average(x: np.ndarray, ok: np.ndarray, k: int) -> np.ndarray:
    """Centred mean over +-k frames of (T,P,2) points, counting only the frames where ``ok`` (T,P)."""
    w = ok[..., None].astype(np.float64)
    cx = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(np.where(w > 0, x, 0.0), axis=0)])
    cw = np.concatenate([np.zeros((1,) + w.shape[1:]), np.cumsum(w, axis=0)])
    lo = np.clip(np.arange(len(x)) - k, 0, len(x))
    hi = np.clip(np.arange(len(x)) + k + 1, 0, len(x))
    return (cx[hi] - cx[lo]) / np.maximum(cw[hi] - cw[lo], 1.0)


def foot_contacts(kp2d: np.ndarray, valid: np.ndarray, fps: float, landmarks_cam: np.ndarray, world: WorldResult,
                  heights: np.ndarray) -> FootContacts:
    """Frames where each heel / foot tip rests on the ground, from the image: its 2D landmark stands still (a
    static camera sees a resting foot at one spot, whatever the depth), and the first fit put it near the ground
    for a quarter or more of that still spell (not a foot held up); two still spells with only the detector's
    drag between them are one (``CONTACT_BRIDGE_S``). Returns them with the ground plane of ``world`` in the
    camera frame.

    ``kp2d`` (T,33,3) MediaPipe landmarks (px, confidence); ``landmarks_cam`` (T,33,3) the first fit's;
    ``heights`` (4,) each point's height above the ground when its foot rests flat.
    """
    kp = np.asarray(kp2d, dtype=np.float64)
    t = len(kp)
    valid = np.asarray(valid, dtype=bool)
    idx = list(FOOT_CONTACT_LANDMARKS)
    c2w = np.asarray(world.camera_to_world, dtype=np.float64)
    normal, offset = c2w[2, :3].copy(), float(-c2w[2, 3])  # world z = normal . x_cam + c2w[2, 3]
    seen = kp[..., 2] * valid[:, None] >= CONTACT_CONF
    height_px = person_height_px(kp, valid, CONTACT_CONF) or 1.0
    fps = float(fps) if fps and fps > 0 else 30.0
    k = max(1, int(round(CONTACT_SPAN_S * fps)))
    ok = seen[:, idx]
    pts = _moving_average(kp[:, idx, :2], ok, k)  # the jitter of a planted foot averages out
    still = np.zeros((t, len(idx)), bool)
    if t > 2 * k:
        speed = np.linalg.norm(pts[2 * k :] - pts[: -2 * k], axis=-1) / (2 * k / fps) / height_px
        both = ok[2 * k :] & ok[: -2 * k] & ok[k:-k]
        still[k:-k] = both & (speed < CONTACT_SPEED)
        still[:k], still[-k:] = still[k] & ok[:k], still[-k - 1] & ok[-k:]  # the ends as their neighbours
    near = np.asarray(landmarks_cam, dtype=np.float64)[:, idx] @ normal - offset < CONTACT_NEAR_M + heights
    min_len = max(2, int(round(CONTACT_MIN_S * fps)))
    for p in range(len(idx)):  # a spell interrupted by the detector dragging the foot is one spell
        runs = [(a, b) for a, b in true_runs(still[:, p]) if b - a >= min_len]
        for i, (_, b) in enumerate(runs):
            for a2, _ in runs[i + 1:]:  # the first later one that comes back (shorter spells may lie between)
                if a2 - b > CONTACT_BRIDGE_S * fps or not (near[b:a2, p].all() and ok[b:a2, p].all()):
                    break
                if np.linalg.norm(pts[a2, p] - pts[b - 1, p]) <= CONTACT_RETURN * height_px:
                    still[b:a2, p] = True
                    break
    mask = np.zeros_like(still)
    for p in range(len(idx)):
        # A foot point that stands still in the image stays in one state for the whole spell: it rests if the
        # first fit had it near the ground for long enough in it. Frame by frame, a planted foot that the first fit
        # lifts in the deep part of a squat (MediaPipe's leg depth) dropped out there and skated.
        for a, b in true_runs(still[:, p]):
            if b - a >= min_len and near[a:b, p].sum() >= max(min_len, CONTACT_NEAR_SHARE * (b - a)):
                mask[a:b, p] = True
    return FootContacts(mask=mask, normal=normal, offset=offset, heights=np.asarray(heights, dtype=np.float64))


def to_world(fit: Any, model: Any, camera: Any, scene: SceneLines | None = None, up: np.ndarray | None = None
             ) -> WorldResult:
    """Re-express a camera-frame :class:`~hsmr_backend.fit.FitResult` in Blender's world (static camera).
    ``scene``: straight edges of the footage (:func:`hsmr_backend.scene.scene_lines`), whose vertical ones give
    "up" when there are enough of them; ``up``: a known up (unit, camera frame: a calibrated lab's), which wins."""
    joints = np.asarray(fit.joints_cam, dtype=np.float64)
    t = len(joints)
    valid = np.asarray(getattr(fit, "valid", np.ones(t, bool)), dtype=bool)
    if not valid.any():
        valid = np.ones(t, bool)
    fps = float(getattr(fit, "info", {}).get("fps", 30.0) or 30.0)
    notes: list[str] = ["static camera assumed: the camera does not move during the clip"]
    # body up in the camera frame (camera y points down): the feet -> centre of mass direction, unless the
    # body is mostly not upright (pelvis -> head pointing down in the image)
    trunk_up = (joints[valid, HEAD_JOINT] - joints[valid, PELVIS_JOINT]).mean(0)
    if np.linalg.norm(trunk_up) < 1e-6 or trunk_up[1] > 0.5 * np.linalg.norm(trunk_up):
        body_up = np.array([0.0, -1.0, 0.0])
        notes.append("body mostly not upright: ground normal assumed opposite to the camera's y axis")
    else:
        body_up = balance_up(joints, standing_frames(np.asarray(fit.poses), valid))
    lms = getattr(fit, "landmarks_cam", None)
    lms = None if lms is None else np.asarray(lms, np.float64)
    pts = contact_points(joints, valid, body_up, fps, lms)
    if len(pts) < 3:  # without this the ground went through the camera: feet metres below z = 0
        pts = lowest_foot_points(joints, valid, body_up, lms)
        notes.append("no foot rests (a very short clip, or a treadmill): the ground is at the lowest foot points")
    found = None
    if scene is not None and camera is not None:
        found = vertical_up(scene, np.asarray(camera.K, dtype=np.float64), body_up)
    if found is not None:
        off = np.degrees(np.arccos(np.clip(found.up @ body_up, -1.0, 1.0)))
        notes.append(f"up from the scene: {found.edges:.0f} vertical edges, {off:.1f}° from the body's balance")
        body_up = found.up
    if up is not None:
        off = np.degrees(np.arccos(np.clip(up @ body_up, -1.0, 1.0)))
        notes.append(f"up from the calibration, {off:.1f}° from the body's balance")
        body_up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    n, d, rms, more, up_source = fit_ground_plane(pts, body_up, fixed_normal=found is not None or up is not None)
    notes += more
    if up is not None:
        up_source = "calibration"
    elif found is not None:
        up_source = "scene edges"
    # world axes expressed in the camera frame
    x_c = np.array([1.0, 0.0, 0.0])
    xw = x_c - (x_c @ n) * n
    if np.linalg.norm(xw) < 1e-3:  # camera looking straight down/up: use its y axis instead
        xw = np.array([0.0, 1.0, 0.0]) - n[1] * n
    xw /= np.linalg.norm(xw)
    yw = np.cross(n, xw)
    r_cw = np.stack([xw, yw, n])  # rows: world axes in camera coordinates -> world = r_cw @ cam
    first = int(np.flatnonzero(valid)[0])
    p0 = joints[first, PELVIS_JOINT]
    origin = p0 - (p0 @ n - d) * n  # ground point under the first root position
    c2w = np.eye(4)
    c2w[:3, :3] = r_cw
    c2w[:3, 3] = -r_cw @ origin
    m2w = np.eye(4)
    m2w[:3, :3] = MODEL_TO_WORLD_ROT
    # root rotation and trans in the world-aligned model frame
    betas = np.asarray(fit.betas, dtype=np.float64)
    j0, m0 = _rest_root(model, betas)
    poses_c = np.asarray(fit.poses, dtype=np.float64)
    trans_c = np.asarray(fit.trans, dtype=np.float64)
    r_root_c = m0 @ pelvis_matrix(poses_c[:, :3]) @ m0.T  # (T,3,3) camera frame
    a = MODEL_TO_WORLD_ROT.T @ r_cw  # camera -> world-aligned model frame (rotation part)
    r_root_m = a @ r_root_c
    poses_w = poses_c.copy()
    poses_w[:, :3] = pelvis_angles_sequence(m0.T @ r_root_m @ m0)
    root_c = j0 + trans_c  # root joint in the camera frame
    root_m = (MODEL_TO_WORLD_ROT.T @ ((r_cw @ root_c.T).T + c2w[:3, 3]).T).T
    trans_w = root_m - j0
    joints_world = (r_cw @ joints.reshape(-1, 3).T).T.reshape(joints.shape) + c2w[:3, 3]
    return WorldResult(
        poses=poses_w.astype(np.float32),
        trans=trans_w.astype(np.float32),
        model_to_world=m2w,
        camera_to_world=c2w,
        joints_world=joints_world.astype(np.float32),
        ground_residual_m=rms,
        notes=notes,
        up_source=up_source,
    )


def fit_in_world(track: Any, model: Any, regressor: Any, camera: Any, options: FitOptions | None = None,
                 init: dict | None = None, progress: Any = None,
                 scene: SceneLines | None = None, up: np.ndarray | None = None,
                 still_in: Sequence[np.ndarray] = ()) -> tuple[FitResult, WorldResult, np.ndarray]:
    """The whole fit of a clip: ``fit.fit_sequence`` in the camera frame, its world frame (``scene``: the
    footage's straight edges, see :func:`to_world`), then, where feet rest (:func:`foot_contacts`),
    ``fit.refine_with_contacts`` with them held on that ground and the world frame found again. Returns the fit,
    its world and where the feet rest: (T, 4) bool, FOOT_CONTACT_LANDMARKS (left/right heel, left/right foot tip).
    ``up``: a known up in the camera frame (to_world); ``still_in``: more views' keypoints (T,33,3) of the same
    frames (several calibrated cameras): a foot point rests only where every view that sees it sees it still (a
    foot sliding along the first camera's line of sight looks still in that view alone)."""
    options = options or FitOptions()
    result = fit_sequence(track, model, regressor, camera, options, init=init, progress=progress)
    world = to_world(result, model, camera, scene, up)
    fps = float(getattr(track, "fps", 30.0) or 30.0)
    heights = rest_foot_heights(model, regressor, result.betas, options)
    contacts = foot_contacts(track.kp2d, track.valid, fps, result.landmarks_cam, world, heights)
    for kp in still_in:
        seen = np.asarray(kp)[:, list(FOOT_CONTACT_LANDMARKS), 2] * track.valid[:, None] >= CONTACT_CONF
        other = foot_contacts(kp, track.valid, fps, result.landmarks_cam, world, heights)
        contacts.mask &= other.mask | ~seen
    if contacts.mask.any():
        result = refine_with_contacts(result, track, model, regressor, contacts, options, progress=progress,
                                      init=init)
        world = to_world(result, model, camera, scene, up)
    return result, world, contacts.mask.astype(bool)

