"""The fitter: hard joint limits, the batched optimiser, and recovery of a known motion on a small body."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsmr_backend import fit
from hsmr_contract.dofs import DOFS
from synthetic.fit_toy import ToyBody, ToyRegressor, Track


def test_parametrisation_holds_limits_for_any_u():
    u = torch.randn(2000, 43, dtype=torch.float64) * 50
    q = fit.q_from_u(u).numpy()
    full = np.zeros((len(q), 46))
    full[:, 3:] = q
    assert fit.count_violations(full) == 0
    # and reaches (almost) both ends of every range
    lo = np.array([d.lower for d in DOFS[3:]])
    hi = np.array([d.upper for d in DOFS[3:]])
    assert np.all(q.min(0) - lo < 1e-3 * (hi - lo)) and np.all(hi - q.max(0) < 1e-3 * (hi - lo))


def test_u_from_q_inverts_inside_the_limits():
    rng = np.random.default_rng(0)
    lo = np.array([d.lower for d in DOFS[3:]])
    hi = np.array([d.upper for d in DOFS[3:]])
    q = lo + (hi - lo) * rng.uniform(0.05, 0.95, (50, 43))
    back = fit.q_from_u(torch.as_tensor(fit.u_from_q(q))).numpy()
    np.testing.assert_allclose(back, q, atol=1e-9)
    # out-of-limit input (e.g. a network prediction) starts just inside
    out = fit.q_from_u(torch.as_tensor(fit.u_from_q(np.full((1, 43), 100.0)))).numpy()
    assert np.all(out < hi) and np.all(out > hi - 0.03 * (hi - lo))


def test_clip_to_limits_and_count():
    q = fit.clip_to_limits(np.zeros((3, 46)))  # zero is outside the scapula elevation range
    q[0, 6] = -0.3  # knee hyper-extended
    q[1, 32] = 3.0  # elbow past 135°
    q[2, 0] = 10.0  # pelvis is free
    assert fit.count_violations(q) == 2
    assert fit.count_violations(fit.clip_to_limits(q)) == 0
    assert fit.clip_to_limits(q)[2, 0] == 10.0


def test_batched_lbfgs_solves_rows_of_very_different_scale():
    rng = np.random.default_rng(1)
    scales = torch.tensor(10.0 ** rng.uniform(-3, 3, (6, 4)))
    target = torch.tensor(rng.normal(size=(6, 4)))

    def fun(x):
        return (scales * (x - target) ** 2).sum(1) + 0.1 * ((x - target) ** 4).sum(1)

    x = fit.batched_lbfgs(fun, torch.zeros(6, 4, dtype=torch.float64), 60)
    np.testing.assert_allclose(x.numpy(), target.numpy(), atol=1e-3)


def test_batched_lbfgs_one_evaluation_per_iteration_and_hard_rows_do_not_hold_up_the_others():
    # rows 0-2: Rosenbrock valleys (many rejected steps); rows 3-5: easy quadratics
    target = torch.tensor([[1, 1], [1, 1], [1, 1], [0.5, -2], [3, 0.1], [-1, 4]], dtype=torch.float64)
    calls = {"grad": 0, "nograd": 0}

    def fun(x):
        calls["grad" if torch.is_grad_enabled() else "nograd"] += 1
        rosen = 100 * (x[:, 1] - x[:, 0] ** 2) ** 2 + (1 - x[:, 0]) ** 2
        quad = ((x - target) ** 2).sum(1)
        return torch.where(torch.arange(6) < 3, rosen, quad) + 1.0  # minimum 1: the relative test applies

    x0 = torch.tensor([[-1.2, 1.0], [0.0, 0.0], [2.0, 3.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    memory: dict = {}
    x = fit.batched_lbfgs(fun, x0, 150, memory=memory, rel_tol=1e-12)
    np.testing.assert_allclose(x.numpy(), target.numpy(), atol=1e-3)
    assert calls["nograd"] == 0 and calls["grad"] <= 151  # one value+gradient call per iteration
    assert 0 < len(memory["s"]) <= 40  # curvature pairs kept for the next stage
    calls["grad"] = 0
    fit.batched_lbfgs(fun, x, 20, memory=memory)  # warm memory, already at the minimum: stops at once
    assert calls["grad"] <= 3


def test_default_camera():
    cam = fit.default_camera(1920, 1080)
    assert cam.focal_source == "default"
    # a 70° diagonal field of view: the corner ray is 35° off the axis
    corner = np.hypot(960, 540)
    assert np.degrees(np.arctan(corner / cam.fx)) == pytest.approx(35.0) and (cam.cx, cam.cy) == (960, 540)
    cam = fit.default_camera(640, 480, focal_px=500.0)
    assert cam.focal_source == "user" and cam.fy == 500.0
    with pytest.raises(ValueError, match="focal"):
        fit.default_camera(640, 480, focal_px=-1.0)


def test_windows_cover_the_clip_with_overlaps():
    w = fit._windows(250, 100, 16)
    assert w[0][0] == 0 and w[-1][1] == 250
    for (_s0, e0), (s1, _) in zip(w, w[1:], strict=False):
        assert e0 - s1 == 16
    assert fit._windows(50, 100, 16) == [(0, 50)]


def _scene(t: int, seed: int = 0, noise_px: float = 0.0):
    """A toy subject walking slowly sideways 4 m in front of the default camera, legs and arms moving."""
    rng = np.random.default_rng(seed)
    body = ToyBody()
    tt = np.arange(t) / 30.0
    q = np.zeros((t, 46))
    q[:, 0] = np.pi  # upright in the camera frame (y down), facing the camera
    q[:, 2] = 0.4  # turned a little
    q[:, 3] = 0.5 + 0.3 * np.sin(2 * np.pi * tt)
    q[:, 6] = 0.7 + 0.4 * np.sin(2 * np.pi * tt)
    q[:, 10], q[:, 13] = 0.2, 0.3
    q[:, 29], q[:, 39] = -1.0, 1.0
    q = fit.clip_to_limits(q)
    trans = np.stack([0.3 * tt - 0.2, -0.9 + 0 * tt, 4 + 0 * tt], 1)
    with torch.no_grad():
        out = body(torch.tensor(q, dtype=torch.float32), torch.zeros(t, 10), torch.tensor(trans, dtype=torch.float32))
    lm = out.skin_verts.double().numpy()
    cam = fit.default_camera(1280, 720)
    kp = cam.project(lm) + rng.normal(0, noise_px, (t, 33, 2))
    hip = (lm[:, 23] + lm[:, 24]) / 2
    track = Track(np.concatenate([kp, np.ones((t, 33, 1))], -1), lm - hip[:, None], np.ones(t, bool))
    return body, cam, track, q, out.joints.double().numpy()


FAST = fit.FitOptions(root_iterations=10, pose_iterations=30, iterations=40, temporal_iterations=15,
                      shape_iterations=0, fit_shape=False)


def test_fit_recovers_a_toy_motion_with_zero_limit_violations():
    torch.manual_seed(0)
    body, cam, track, q, joints = _scene(8)
    res = fit.fit_sequence(track, body, ToyRegressor(), cam, FAST)
    assert res.poses.shape == (8, 46) and res.joints_cam.shape == (8, 24, 3) and res.kp2d_pred.shape == (8, 33, 2)
    assert fit.count_violations(res.poses) == 0
    assert res.reprojection_error_px.mean() < 3.0
    rel = (res.joints_cam - res.joints_cam[:, :1]) - (joints - joints[:, :1])
    assert np.linalg.norm(rel, axis=-1).mean() < 0.05  # root-relative joints within 5 cm
    err = np.degrees(np.abs(res.poses[:, [3, 6, 13]] - q[:, [3, 6, 13]])).mean()
    assert err < 12.0  # hip flexion / knees (few iterations here; the benchmark measures accuracy)
    # the reported trans/poses reproduce the reported joints through the model
    with torch.no_grad():
        out = body(torch.tensor(res.poses), torch.tensor(res.betas)[None].expand(8, -1), torch.tensor(res.trans))
    np.testing.assert_allclose(out.joints.numpy(), res.joints_cam, atol=1e-4)


def test_fit_bridges_lost_frames_and_windows():
    body, cam, track, q, joints = _scene(12, seed=2)
    track.kp2d[5:7, :, 2] = 0.0
    track.kp3d[5:7] = 0.0
    track.valid[5:7] = False
    opts = fit.FitOptions(**{**vars(FAST), "window": 8, "overlap": 3})
    calls = []
    res = fit.fit_sequence(track, body, ToyRegressor(), cam, opts, progress=lambda *a: calls.append(a))
    assert [tuple(w["frames"]) for w in res.info["windows"]] == [(0, 8), (5, 12)]
    assert not res.valid[5] and res.reprojection_error_px[5] == 0.0
    # lost frames are bridged smoothly: the root moves less than 5 cm a frame across the gap
    step = np.linalg.norm(np.diff(res.joints_cam[3:9, 0], axis=0), axis=-1)
    assert step.max() < 0.05
    assert fit.count_violations(res.poses) == 0
    assert calls[-1][0] == "fit" and calls[-1][1] == calls[-1][2]


def test_shape_fit_over_several_windows_keeps_the_outputs_consistent_and_threads_restored():
    body, cam, track, q, joints = _scene(12, seed=4)
    opts = fit.FitOptions(**{**vars(FAST), "window": 8, "overlap": 3, "fit_shape": True, "shape_iterations": 5,
                             "shape_frames": 6})
    threads = torch.get_num_threads()
    res = fit.fit_sequence(track, body, ToyRegressor(), cam, opts)
    assert torch.get_num_threads() == threads
    assert "shape_time_s" in res.info and res.betas.shape == (10,)
    assert fit.count_violations(res.poses) == 0 and res.reprojection_error_px.mean() < 3.0
    with torch.no_grad():  # poses, betas and trans together reproduce the reported joints
        out = body(torch.tensor(res.poses), torch.tensor(res.betas)[None].expand(12, -1), torch.tensor(res.trans))
    np.testing.assert_allclose(out.joints.numpy(), res.joints_cam, atol=1e-4)


def test_bad_input_is_refused_with_a_clear_message():
    body, cam, track, *_ = _scene(3)
    track.kp2d[..., 2] = 0.0
    with pytest.raises(ValueError, match="no confident landmarks"):
        fit.fit_sequence(track, body, ToyRegressor(), cam, FAST)
    with pytest.raises(ValueError, match=r"\(T, 33, 3\)"):
        fit.fit_sequence(Track(np.zeros((3, 17, 3)), np.zeros((3, 17, 3)), np.ones(3, bool)), body, ToyRegressor(),
                         cam, FAST)


def test_init_from_per_frame_predictions_is_used_and_kept_in_limits():
    body, cam, track, q, joints = _scene(6, seed=3)
    rng = np.random.default_rng(3)
    init_q = q + rng.normal(0, 0.05, q.shape)
    init_q[0, 6] = -0.2  # a network may predict a hyper-extended knee: the fit starts inside the limits
    with torch.no_grad():
        j0 = body(torch.zeros(1, 46), torch.zeros(1, 10), torch.zeros(1, 3)).joints_tpose[0, 0].numpy()
    trans_true = joints[:, 0] - j0
    init = {"poses": init_q, "betas": np.zeros((6, 10)), "cam_t": trans_true + [0.02, 0.0, 0.2]}
    opts = fit.FitOptions(**{**vars(FAST), "root_iterations": 0, "pose_iterations": 10, "iterations": 20})
    res = fit.fit_sequence(track, body, ToyRegressor(), cam, opts, init=init)
    assert fit.count_violations(res.poses) == 0
    assert res.reprojection_error_px.mean() < 3.0
    assert np.degrees(np.abs(res.poses[:, [3, 6]] - q[:, [3, 6]])).mean() < 6.0
    with pytest.raises(ValueError, match="init"):
        fit.fit_sequence(track, body, ToyRegressor(), cam, opts, init={**init, "poses": init_q[:3]})


def test_fit_runs_on_the_open_body_with_its_regressor(open_body):
    model, reg = open_body
    t = 4
    q = fit.clip_to_limits(np.zeros((t, 46)))
    q[:, 0] = np.pi
    q[:, 6] = np.linspace(0.2, 0.8, t)
    trans = np.array([[0.0, 0.0, 4.0]] * t)
    with torch.no_grad():
        out = model(torch.tensor(q, dtype=torch.float32), torch.zeros(t, 10), torch.tensor(trans, dtype=torch.float32))
        lm = reg(out).double().numpy()
    cam = fit.default_camera(1280, 720)
    hip = (lm[:, 23] + lm[:, 24]) / 2
    track = Track(np.concatenate([cam.project(lm), np.ones((t, 33, 1))], -1), lm - hip[:, None], np.ones(t, bool))
    res = fit.fit_sequence(track, model, reg, cam, FAST)
    assert fit.count_violations(res.poses) == 0 and res.reprojection_error_px.mean() < 4.0
    assert np.degrees(np.abs(res.poses[:, 6] - q[:, 6])).mean() < 10.0


def test_flexed_hips_stay_in_the_hips_not_in_the_pelvis():
    """Sitting-like frames: hips flexed 60-80°, trunk and pelvis upright. The root must not tilt towards the
    thighs (the starting rotation comes from the torso alone and is held while the limbs find their pose), so
    the flexion is recovered at the hips rather than as pelvis tilt with the spine bent back."""
    t = 8
    body = ToyBody()
    q = np.zeros((t, 46))
    q[:, 0] = np.pi  # upright in the camera frame, facing the camera
    q[:, 2] = 0.5
    q[:, 3] = q[:, 10] = np.linspace(1.05, 1.4, t)
    q[:, 6] = q[:, 13] = 1.2
    trans = np.tile([0.0, -0.6, 4.0], (t, 1))
    with torch.no_grad():
        out = body(torch.tensor(q, dtype=torch.float32), torch.zeros(t, 10), torch.tensor(trans, dtype=torch.float32))
    lm = out.skin_verts.double().numpy()
    cam = fit.default_camera(1280, 720)
    hip = (lm[:, 23] + lm[:, 24]) / 2
    track = Track(np.concatenate([cam.project(lm), np.ones((t, 33, 1))], -1), lm - hip[:, None], np.ones(t, bool))
    res = fit.fit_sequence(track, body, ToyRegressor(), cam, FAST)
    tilt_err = np.degrees(np.abs(np.angle(np.exp(1j * (res.poses[:, 0] - q[:, 0])))))
    hip_err = np.degrees(np.abs(res.poses[:, [3, 10]] - q[:, [3, 10]]))
    assert tilt_err.mean() < 3.0 and hip_err.mean() < 4.0, (tilt_err.mean(), hip_err.mean())


def _mp_torso(facing_away: bool) -> np.ndarray:
    """MediaPipe-like world landmarks (x right, y down, z away from the camera) of an upright torso with
    both feet pointing where the person faces."""
    k = np.zeros((33, 3))
    s = -1.0 if facing_away else 1.0  # the person's left is on the image's right when they face the camera
    k[11], k[12] = [0.2 * s, -0.5, 0.0], [-0.2 * s, -0.5, 0.0]
    k[23], k[24] = [0.1 * s, 0.0, 0.0], [-0.1 * s, 0.0, 0.0]
    fwd = 1.0 if facing_away else -1.0  # +z is away from the camera
    for ankle, heel, tip, x in ((27, 29, 31, 0.1 * s), (28, 30, 32, -0.1 * s)):
        k[ankle], k[heel], k[tip] = [x, 0.85, 0.0], [x, 0.9, -0.05 * fwd], [x, 0.92, 0.2 * fwd]
    return k


def _turn_foot(k: np.ndarray, deg: float) -> np.ndarray:
    """The left foot turned by ``deg`` about the vertical through its heel."""
    k = k.copy()
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    d = k[31] - k[29]
    k[31] = k[29] + [c * d[0] + s * d[2], d[1], -s * d[0] + c * d[2]]
    d = k[27] - k[29]
    k[27] = k[29] + [c * d[0] + s * d[2], d[1], -s * d[0] + c * d[2]]
    return k


def test_world_feet_pointing_backwards_lose_their_depth_prior():
    """MediaPipe's world feet point at the camera even when the person faces away: a foot that points
    more than 90° from the torso's facing gets no depth prior, one within 60° keeps it, in between is linear."""
    seg = [fit.SEGMENTS.index(s) for s in ((27, 31), (29, 31))]  # the left foot's segments
    right_foot = [fit.SEGMENTS.index(s) for s in ((28, 32), (30, 32))]
    others = [i for i in range(len(fit.SEGMENTS)) if i not in seg + right_foot]
    for away in (False, True):
        k = _mp_torso(away)
        fwd, up = fit.facing(k)
        np.testing.assert_allclose(fwd, [0, 0, 1 if away else -1], atol=1e-9)
        np.testing.assert_allclose(up, [0, -1, 0], atol=1e-9)
        for deg, want in ((0, 1.0), (45, 1.0), (-45, 1.0), (75, 0.5), (-75, 0.5), (120, 0.0), (180, 0.0)):
            trust = fit.foot_trust(_turn_foot(k, deg)[None])[0]
            np.testing.assert_allclose(trust[seg], want, atol=1e-6, err_msg=f"away={away} turned {deg}°")
            np.testing.assert_allclose(trust[others], 1.0)
    k = _turn_foot(_mp_torso(True), 180)
    k[[11, 12, 23, 24]] = 0.0  # no torso: nothing to judge by, the prior stays
    assert np.all(fit.foot_trust(k[None]) == 1.0)
    k[:] = np.nan  # a lost frame
    assert np.all(fit.foot_trust(k[None]) == 1.0)


def test_reversed_world_feet_of_a_person_seen_from_behind_do_not_twist_the_legs(open_body):
    """Seen from behind, MediaPipe's world landmarks put the toes towards the camera. Fed such feet, the
    fit must keep the true ankles and hips (before the foot check: ankles at their plantarflexion limit and
    hips rotated ~40°)."""
    from hsmr_contract.dofs import dof_index

    model, reg = open_body
    t = 6
    q = np.zeros((t, 46))
    q[:, 0], q[:, 2] = np.pi, np.pi  # upright, facing away from the camera
    q[:, dof_index("knee_angle_r")] = np.linspace(0.1, 0.9, t)
    q[:, dof_index("hip_flexion_r")] = np.linspace(0.0, 0.4, t)
    q = fit.clip_to_limits(q)
    trans = np.tile([0.0, -0.2, 4.0], (t, 1))
    with torch.no_grad():
        out = model(torch.tensor(q, dtype=torch.float32), torch.zeros(t, 10), torch.tensor(trans, dtype=torch.float32))
        lm = reg(out).double().numpy()
    cam = fit.default_camera(1280, 720)
    world = lm - ((lm[:, 23] + lm[:, 24]) / 2)[:, None]
    for ankle, pts in ((27, (29, 31)), (28, (30, 32))):  # feet turned 180° about the vertical at the ankle
        d = world[:, list(pts)] - world[:, ankle, None]
        world[:, list(pts)] = world[:, ankle, None] + d * [-1.0, 1.0, -1.0]
    track = Track(np.concatenate([cam.project(lm), np.ones((t, 33, 1))], -1), world, np.ones(t, bool))
    res = fit.fit_sequence(track, model, reg, cam, FAST)
    idx = [dof_index(n) for n in ("ankle_angle_r", "ankle_angle_l", "hip_rotation_r", "hip_rotation_l")]
    err = np.degrees(np.abs(res.poses[:, idx] - q[:, idx])).mean(0)
    assert err.max() < 8.0, err


def test_body_models_implement_the_protocol(open_body):
    """The SKEL body and the stand-in are BodyModels; anything else is refused with one clear line."""
    assert isinstance(ToyBody(), fit.BodyModel) and isinstance(open_body[0], fit.BodyModel)
    assert isinstance(open_body[1], fit.LandmarkRegressor)

    class ForwardOnly(torch.nn.Module):
        def forward(self, poses, betas, trans):
            return poses

    with pytest.raises(TypeError, match="rest_state"):
        fit.Body(ForwardOnly(), ToyRegressor(), fit.FitOptions())


def test_objective_terms_on_hand_made_cases():
    """Each term against values worked out by hand."""
    terms = fit.terms
    t = 4
    lm = torch.zeros(t, 33, 3, dtype=torch.float64)
    lm[..., 2] = 2.0  # 2 m in front of the camera, on the optical axis
    k = torch.tensor([1000.0, 1000.0, 320.0, 240.0], dtype=torch.float64)
    centre = torch.tensor([320.0, 240.0], dtype=torch.float64).expand(t, 33, 2)
    view = terms.ImageView(k, centre.clone(), torch.ones(t, 33, dtype=torch.float64), scale_px=100.0)
    assert torch.all(terms.reprojection(lm, [view], sigma=8.0) == 0)
    view.kp2d[:, 0, 0] += 2.0  # one landmark 2 px off = 2 units of 1 % of a 100 px person
    one_off = 64 * 4 / (64 + 4) / 33
    assert torch.allclose(terms.reprojection(lm, [view], sigma=8.0), torch.full((t,), one_off, dtype=torch.float64))
    # a second camera 0.1 m to the left sees every point 50 px right of the centre, exactly where it looks
    second = terms.ImageView(k, centre + torch.tensor([50.0, 0.0], dtype=torch.float64),
                             torch.ones(t, 33, dtype=torch.float64), scale_px=100.0,
                             rotation=torch.eye(3, dtype=torch.float64),
                             translation=torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64))
    both = terms.reprojection(lm, [view, second], sigma=8.0)  # 66 points, one of them 2 px off
    assert torch.allclose(both, torch.full((t,), one_off / 2, dtype=torch.float64))

    # ground y = 0 (normal -y in OpenCV's y-down frame: up), resting heights 0.03 m
    hold = terms.GroundHold(torch.tensor([[1.0, 1.0, 0.0, 0.0]] * t, dtype=torch.float64),
                            torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64), 0.0,
                            torch.full((4,), 0.03, dtype=torch.float64))
    feet = torch.zeros(t, 33, 3, dtype=torch.float64)
    feet[:, [29, 30], 1] = -0.03  # resting points at their height
    feet[:, 31, 1] = -0.02  # a free point 1 cm below its flat-foot height: within the slack
    feet[:, 32, 1] = -0.5  # a free point in the air
    assert torch.all(terms.ground_contact(feet, hold) == 0)
    feet[:, 32, 1] = 0.02  # 5 cm below its flat-foot height: 3 cm past the slack
    h = 0.03 / (1.7 * 0.01)
    delta = 0.05 / (1.7 * 0.01)
    expected = 2 * delta**2 * (np.sqrt(1 + h**2 / delta**2) - 1)
    assert torch.allclose(terms.ground_contact(feet, hold), torch.full((t,), expected, dtype=torch.float64))

    # constant velocities have no acceleration
    ramp = torch.arange(t, dtype=torch.float64)[:, None]
    qb = 0.1 * ramp.expand(t, 43)
    rot = torch.eye(3, dtype=torch.float64).expand(t, 3, 3)
    joints = (0.02 * ramp)[..., None].expand(t, 24, 3)
    assert torch.allclose(terms.q_acceleration(qb, rot), torch.zeros(t - 2, dtype=torch.float64))
    assert torch.allclose(terms.joint_acceleration(joints, 1.0), torch.zeros(t - 2, dtype=torch.float64))
    assert float(terms.shape_prior(torch.tensor([3.0, 4.0]))) == 25.0
