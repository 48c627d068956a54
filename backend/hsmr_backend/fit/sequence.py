"""The driver: a clip fitted in overlapping windows, each warm-started from the previous one and blended over
the overlap; the shape is fitted once, after the first window's per-frame stages.

Three ways to start (:func:`_start_from_landmarks`, :func:`_start_from_predictions`, :func:`_start_from_fit`):
from the landmarks alone, from per-frame network predictions (which then also act as a weak prior), or from a
finished fit (``refine_with_contacts``: same shape, no first stages, no shape stage).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hsmr_contract.dofs import N_DOFS
from hsmr_contract.kinematics import pelvis_angles_sequence, pelvis_matrix
from hsmr_contract.rotations import special_procrustes

from ..camera import Camera
from .body import Body, BodyModel, LandmarkRegressor
from .contacts import FootContacts
from .inputs import FitData, initial_root, prepare
from .options import FitOptions, FitResult
from .params import BODY, clip_to_limits, count_violations, limits_float32, q_from_u, u_from_q
from .problem import Problem
from .stages import first_stages, shape_stage, temporal_steps
from .terms import GroundHold, Weights, weights_for

Progress = Callable[[str, int, int], None]


def fit_sequence(
    track: Any,
    model: BodyModel,
    regressor: LandmarkRegressor,
    camera: Camera,
    options: FitOptions | None = None,
    init: dict | None = None,
    progress: Progress | None = None,
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
    model: BodyModel,
    regressor: LandmarkRegressor,
    contacts: FootContacts,
    options: FitOptions | None = None,
    progress: Progress | None = None,
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


# ----------------------------------------------------------------------------------------------------------
# starting values


@dataclass
class _Start:
    """Where the fit starts: the shape and its root pivot / rest frame, per frame the root rotation and
    position, which rotations were measured, the body's free parameters, and the prior's body DoFs."""

    betas: torch.Tensor  # (K,)
    j0: np.ndarray  # (3,) root pivot at rest
    m0: np.ndarray  # (3,3) root rest frame
    rots: np.ndarray  # (T,3,3)
    pos: np.ndarray  # (T,3) root pivot positions
    rot_known: np.ndarray  # (T,) bool
    u_all: np.ndarray  # (T,43)
    q_prior: np.ndarray | None  # (T,43) or None
    continue_last: bool  # a window's new frames start from the previous window's last pose


def _start_from_landmarks(data: FitData, track: Any, body: Body, camera: Camera, k: int) -> _Start:
    """Average shape; root from the torso's world landmarks and the image; body DoFs at zero (in limits)."""
    betas = torch.zeros(k, dtype=body.dtype, device=body.device)
    j0, m0, lm_rest = body.rest_pose(betas)
    t = len(data.valid)
    rots, pos, rot_known = initial_root(data, track, lm_rest, j0, camera)
    u_all = np.repeat(u_from_q(np.zeros(len(BODY)))[None], t, 0)
    return _Start(betas, j0, m0, rots, pos, rot_known, u_all, None, continue_last=True)


def _start_from_predictions(init: dict, body: Body, t: int, k: int) -> _Start:
    """Per-frame network predictions: poses (T,46), betas (T,K) (their median), cam_t (T,3)."""
    ip = np.asarray(init["poses"], dtype=np.float64)
    if ip.shape != (t, N_DOFS):
        raise ValueError(f"init['poses'] must have shape ({t}, 46), got {ip.shape}")
    b0 = np.median(np.asarray(init.get("betas", np.zeros((t, k))), dtype=np.float64), axis=0)[:k]
    betas = torch.as_tensor(np.pad(b0, (0, k - len(b0))), dtype=body.dtype, device=body.device)
    j0, m0, _ = body.rest_pose(betas)
    rots = m0 @ pelvis_matrix(ip[:, :3]) @ m0.T
    pos = j0 + np.asarray(init["cam_t"], dtype=np.float64)
    return _Start(betas, j0, m0, rots, pos, np.ones(t, bool), u_from_q(ip[:, 3:]), clip_to_limits(ip)[:, 3:],
                  continue_last=False)


def _start_from_fit(start: FitResult, init: dict | None, body: Body, t: int) -> _Start:
    """A finished fit: its poses, root and shape as they are; ``init`` stays the weak prior."""
    betas = torch.as_tensor(np.asarray(start.betas, dtype=np.float64), dtype=body.dtype, device=body.device)
    j0, m0, _ = body.rest_pose(betas)
    sp = np.asarray(start.poses, dtype=np.float64)
    rots = m0 @ pelvis_matrix(sp[:, :3]) @ m0.T
    pos = j0 + np.asarray(start.trans, dtype=np.float64)
    u_all = u_from_q(sp[:, 3:], margin=0.01)  # at a limit the sine parametrisation would barely move
    q_prior = None if init is None else clip_to_limits(np.asarray(init["poses"], dtype=np.float64))[:, 3:]
    return _Start(betas, j0, m0, rots, pos, np.ones(t, bool), u_all, q_prior, continue_last=False)


# ----------------------------------------------------------------------------------------------------------
# windows


@dataclass
class _Clip:
    """What every window of one fit shares."""

    body: Body
    data: FitData
    camera: Camera
    weights: Weights
    options: FitOptions
    report: Progress
    start: _Start
    refit: bool  # refine_with_contacts: no first stages, no shape stage
    contacts: FootContacts | None
    info: dict[str, Any]
    t_start: float


@dataclass
class _Blended:
    """The clip's fitted values so far, windows blended over their overlaps."""

    u: np.ndarray  # (T,43)
    rots: np.ndarray  # (T,3,3)
    pos: np.ndarray  # (T,3)
    loss: np.ndarray  # (T,)
    end: int = 0  # frames [0, end) are filled
    windows: list[dict] = field(default_factory=list)


def _window_problem(clip: _Clip, done: _Blended, s: int, e: int) -> tuple[Problem, np.ndarray]:
    """The window's problem, warm-started over the overlap from the previous window's fit (the rest continues
    its last frame's pose, when starting from the landmarks), and the frames whose root rotation is held."""
    st = clip.start
    u0, r0, p0 = st.u_all[s:e].copy(), st.rots[s:e].copy(), st.pos[s:e].copy()
    held = st.rot_known[s:e].copy()
    if done.end > 0:
        ov = done.end - s
        u0[:ov], r0[:ov], p0[:ov] = done.u[s : done.end], done.rots[s : done.end], done.pos[s : done.end]
        if st.continue_last:
            u0[ov:] = done.u[done.end - 1]
        held[:ov] = True  # the overlap starts from the previous window's fit
    prob = Problem(clip.body, clip.data, slice(s, e), clip.camera, clip.weights, st.betas, u0, r0, p0,
                   None if st.q_prior is None else st.q_prior[s:e])
    if clip.contacts is not None:
        c, opts = clip.contacts, clip.options
        tc = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=opts.dtype, device=opts.device)  # noqa: E731
        prob.contact = GroundHold(tc(c.mask[s:e]), tc(c.normal), float(c.offset), tc(c.heights))
    return prob, held


def _fit_window(clip: _Clip, prob: Problem, held: np.ndarray, first: bool, s: int, e: int) -> Problem:
    """The window's stages; the first window of a fresh fit also fits the shape (then ``clip.start`` holds
    the new shape and the root positions moved with it). Returns the window's problem, re-made on the new
    shape when it changed."""
    opts, data = clip.options, clip.data
    if clip.refit:  # frames without landmarks keep the first fit's bridge
        prob.optimise_frames(opts.contact_iterations, hold_frames=~data.valid[s:e])
    else:
        first_stages(prob, opts, held)
        prob.optimise_frames(opts.iterations)
    if not clip.refit and first and opts.fit_shape and data.valid.any() and opts.shape_iterations > 0:
        clip.report("shape", 0, 1)
        st = clip.start
        prob, st.betas, st.pos, st.j0 = shape_stage(prob, clip.body, data, clip.camera, clip.weights, st.betas,
                                                    st.u_all, st.rots, st.pos, st.j0, st.q_prior, opts, (s, e),
                                                    st.rot_known)
        clip.info["shape_time_s"] = time.perf_counter() - clip.t_start
        clip.report("shape", 1, 1)
        if clip.weights.acc <= 0:  # per-frame fits only: settle the poses on the new shape
            prob.optimise_frames(opts.iterations // 2)
    if clip.weights.acc > 0:
        temporal_steps(prob, clip.weights, opts, data.valid[s:e])
    return prob


def _blend_window(prob: Problem, done: _Blended, s: int, e: int) -> None:
    """Store the window's fit, blended linearly over the overlap from the previous window to this one."""
    with torch.no_grad():
        _, out = prob.forward()
    u_w = prob.u.detach().double().cpu().numpy()
    r_w = out["rot"].double().cpu().numpy()
    p_w = prob.p.detach().double().cpu().numpy()
    l_w = out["per_frame"].double().cpu().numpy()
    ov = done.end - s if done.end > 0 else 0
    if ov > 0:
        a = ((np.arange(ov) + 1) / (ov + 1))[:, None]
        u_w[:ov] = (1 - a) * done.u[s : done.end] + a * u_w[:ov]
        p_w[:ov] = (1 - a) * done.pos[s : done.end] + a * p_w[:ov]
        r_w[:ov] = special_procrustes((1 - a)[..., None] * done.rots[s : done.end] + a[..., None] * r_w[:ov])
        l_w[:ov] = (1 - a[:, 0]) * done.loss[s : done.end] + a[:, 0] * l_w[:ov]
    done.u[s:e], done.rots[s:e], done.pos[s:e], done.loss[s:e] = u_w, r_w, p_w, l_w
    done.end = e


# ----------------------------------------------------------------------------------------------------------
# the whole clip


def _fit_sequence(track: Any, model: BodyModel, regressor: LandmarkRegressor, camera: Camera, options: FitOptions,
                  init: dict | None, progress: Progress | None, start: FitResult | None = None,
                  contacts: FootContacts | None = None) -> FitResult:
    t_start = time.perf_counter()
    data = prepare(track, camera, options)
    t = len(data.valid)
    fps = float(getattr(track, "fps", 30.0) or 30.0)
    body = Body(model, regressor, options)
    k = _num_betas(model, options, init)
    if start is not None:
        st = _start_from_fit(start, init, body, t)
    elif init is not None:
        st = _start_from_predictions(init, body, t, k)
    else:
        st = _start_from_landmarks(data, track, body, camera, k)
    info: dict[str, Any] = {"windows": [], "focal_source": camera.focal_source, "n_betas": k}
    clip = _Clip(body, data, camera, weights_for(options, fps), options, progress or (lambda *_: None), st,
                 start is not None, contacts, info, t_start)
    done = _Blended(np.zeros((t, len(BODY))), np.zeros((t, 3, 3)), np.zeros((t, 3)), np.zeros(t), 0, info["windows"])
    wins = _windows(t, options.window, options.overlap)
    for wi, (s, e) in enumerate(wins):
        clip.report("fit", wi, len(wins))
        prob, held = _window_problem(clip, done, s, e)
        tw = time.perf_counter()
        prob = _fit_window(clip, prob, held, wi == 0, s, e)
        _blend_window(prob, done, s, e)
        done.windows.append({"frames": [int(s), int(e)], "time_s": time.perf_counter() - tw})
    clip.report("fit", len(wins), len(wins))
    return _result(clip, done, fps)


def _result(clip: _Clip, done: _Blended, fps: float) -> FitResult:
    """Final values: limits exactly, pelvis angles, trans; outputs from the body model at them."""
    st, opts = clip.start, clip.options
    with torch.no_grad():
        qb = q_from_u(torch.as_tensor(done.u, dtype=torch.float64)).numpy()
    poses = np.zeros((len(qb), N_DOFS))
    poses[:, 3:] = qb
    poses[:, :3] = pelvis_angles_sequence(np.einsum("ji,tjk,kl->til", st.m0, done.rots, st.m0))  # M0^T R M0
    poses = clip_to_limits(poses)
    if count_violations(poses) != 0:  # cannot happen after clipping; kept as a hard guarantee
        raise AssertionError("joint limits violated after clipping")
    trans = done.pos - st.j0
    res = _evaluate(clip.body, poses, st.betas, trans, clip.camera, clip.data, opts.dtype, opts.device)
    info = clip.info
    info["time_s"] = time.perf_counter() - clip.t_start
    info["fps"] = fps
    info["options"] = {k_: v for k_, v in vars(opts).items() if isinstance(v, int | float | str | bool)}
    return FitResult(
        poses=limits_float32(poses),
        betas=st.betas.double().cpu().numpy().astype(np.float32),
        trans=trans.astype(np.float32),
        joints_cam=res["joints"],
        kp2d_pred=res["proj"],
        reprojection_error_px=res["err"],
        fit_loss=done.loss.astype(np.float32),
        camera=clip.camera,
        landmarks_cam=res["lm"],
        valid=clip.data.valid.copy(),
        joint_offsets=res.get("joint_offsets"),
        info=info,
    )


def _evaluate(body: Body, poses: np.ndarray, betas: torch.Tensor, trans: np.ndarray, camera: Camera, data: FitData,
              dt: torch.dtype, dev: str, chunk: int = 256) -> dict[str, np.ndarray]:
    """Run the model on the final q and trans (pelvis included) so outputs are exactly what the body gives."""
    joints, lms, offs = [], [], []
    with torch.no_grad():
        for s in range(0, len(poses), chunk):
            q = torch.as_tensor(poses[s : s + chunk], dtype=dt, device=dev)
            tr = torch.as_tensor(trans[s : s + chunk], dtype=dt, device=dev)
            out = body.run(q, betas, tr)
            joints.append(out.joints.double().cpu().numpy())
            lms.append(body.landmarks(out).double().cpu().numpy())
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
