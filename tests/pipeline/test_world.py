"""World frame: ground plane from foot contacts, re-expressed root, joints unchanged up to the camera pose."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hsmr_backend import world
from hsmr_contract import kinematics as kin
from hsmr_contract import rotations as rn
from synthetic.fit_toy import ToyBody


def test_pelvis_angles_round_trip_and_continuity():
    rng = np.random.default_rng(0)
    q = np.stack([rng.uniform(-np.pi, np.pi, 200), rng.uniform(-1.5, 1.5, 200), rng.uniform(-np.pi, np.pi, 200)], 1)
    np.testing.assert_allclose(kin.pelvis_matrix(kin.pelvis_angles(kin.pelvis_matrix(q))), kin.pelvis_matrix(q),
                               atol=1e-9)
    # a turning sequence through +-pi stays continuous
    seq = np.stack([np.full(50, np.pi), np.zeros(50), np.linspace(0, 3 * np.pi, 50)], 1)
    out = kin.pelvis_angles_sequence(kin.pelvis_matrix(seq))
    assert np.abs(np.diff(out, axis=0)).max() < 0.3
    np.testing.assert_allclose(kin.pelvis_matrix(out), kin.pelvis_matrix(seq), atol=1e-9)


def test_ground_plane_from_points():
    rng = np.random.default_rng(1)
    n_true = np.array([0.1, -0.98, 0.15])
    n_true /= np.linalg.norm(n_true)
    a = np.cross(n_true, [1.0, 0, 0])
    a /= np.linalg.norm(a)
    b = np.cross(n_true, a)
    pts = 1.5 * n_true + rng.uniform(-1, 1, (300, 1)) * a + rng.uniform(-1, 1, (300, 1)) * b
    pts += rng.normal(0, 0.005, pts.shape)
    pts[:20] += 0.3 * n_true  # feet in the air are rejected
    n, d, rms, notes, source = world.fit_ground_plane(pts, np.array([0.0, -1.0, 0.0]))
    assert np.degrees(np.arccos(n @ n_true)) < 1.0 and abs(d - 1.5) < 0.01 and rms < 0.01 and not notes
    assert source == "foot contacts"
    # an up known from the scene: the normal stays, only the height is fitted (through the tilted points)
    n, d, _, notes, source = world.fit_ground_plane(pts, np.array([0.0, -1.0, 0.0]), fixed_normal=True)
    np.testing.assert_allclose(n, [0, -1, 0])
    assert source == "given" and not notes and abs(d - np.median(pts[20:] @ n)) < 0.02
    # a subject standing on one spot: the normal comes from the prior, with a note
    n, d, _, notes, source = world.fit_ground_plane(pts[50:53] * 0 + pts[60], np.array([0.0, -1.0, 0.0]))
    np.testing.assert_allclose(n, [0, -1, 0])
    assert notes and source == "balance"
    # contacts along a line (walking straight): the normal is the prior made perpendicular to the line
    line_pts = 1.5 * n_true + rng.uniform(-1, 1, (300, 1)) * a + rng.normal(0, 0.02, (300, 1)) * b
    prior = n_true + 0.1 * a + 0.1 * b  # ~8° off, partly along the line, partly across it
    n, d, _, notes, source = world.fit_ground_plane(line_pts, prior)
    assert abs(n @ a) < 0.01  # the tilt along the line is gone (0.6°) ...
    assert abs(n @ b / np.linalg.norm(prior) - prior @ b / np.linalg.norm(prior) ** 2) < 0.02  # ... across it stays
    assert "line" in notes[0] and source == "foot contacts and balance"
    # a plane far from the prior is not trusted
    n, d, _, notes, source = world.fit_ground_plane(pts, np.array([0.0, -0.5, 0.87]))
    assert "not trusted" in notes[0]


def test_balance_up_ignores_the_trunk_lean():
    """A squat with the trunk leaning 40° forward: the centre of mass stays over the feet, so the balance up is
    near vertical while pelvis -> head leans."""
    rng = np.random.default_rng(3)
    j = np.zeros((10, 24, 3))
    up = np.array([0.0, -1.0, 0.0])
    fwd = np.array([0.0, 0.0, -1.0])
    j[:, list(world.SUPPORT_JOINTS)] = rng.normal(0, 0.01, (10, 4, 3))  # feet around the origin
    com_height = 0.8
    lean = np.radians(40)
    trunk = np.cos(lean) * up + np.sin(lean) * fwd
    # place the trunk joints forward and the hips back so the mass-weighted centre sits over the feet
    for k in world.MASS_SHARES:
        j[:, k] = com_height * up
    j[:, world.HEAD_JOINT] = com_height * up + 0.6 * trunk
    j[:, world.PELVIS_JOINT] = com_height * up - (0.6 * trunk - 0.6 * np.cos(lean) * up) * (
        world.MASS_SHARES[world.HEAD_JOINT] / world.MASS_SHARES[world.PELVIS_JOINT])
    got = world.balance_up(j, np.ones(10, bool))
    trunk_dir = (j[:, world.HEAD_JOINT] - j[:, world.PELVIS_JOINT]).mean(0)
    tilt = lambda v: np.degrees(np.arccos(v @ up / np.linalg.norm(v)))  # noqa: E731
    assert tilt(got) < 2.0 and tilt(trunk_dir) > 20.0


@dataclass
class FakeFit:
    poses: np.ndarray
    betas: np.ndarray
    trans: np.ndarray
    joints_cam: np.ndarray
    valid: np.ndarray
    info: dict = field(default_factory=lambda: {"fps": 30.0})


def _walking_in_place(body: ToyBody, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(q, the lowest foot joint's height) of a body walking on the spot in a y-up world, heading 0.7 rad."""
    tt = np.arange(t) / 30
    q_m = np.zeros((t, 46))
    q_m[:, 2] = 0.7
    q_m[:, 3] = 0.3 * np.sin(2 * np.pi * tt)
    q_m[:, 10] = -0.3 * np.sin(2 * np.pi * tt)
    with torch.no_grad():
        out = body(torch.tensor(q_m, dtype=torch.float32), torch.zeros(t, 10), torch.zeros(t, 3))
    return q_m, out.joints[:, list(world.FOOT_JOINTS), 1].min(1).values.numpy()


def _seen_by_camera(body: ToyBody, q_m: np.ndarray, trans_m: np.ndarray) -> FakeFit:
    """The fit a camera 1.3 m high, 4 m in front, pitched 12° down and rolled 3° would give of the motion."""
    t, betas = len(q_m), np.zeros(10)
    j0, m0 = world._rest_root(body, betas)
    r_mc = rn.rot_z(np.radians(3)) @ rn.rot_x(np.radians(-12)) @ np.diag([1.0, -1.0, -1.0])
    t_mc = -r_mc @ np.array([0.3, 1.3, 4.0])
    r_root_c = r_mc @ m0 @ kin.pelvis_matrix(q_m[:, :3]) @ m0.T
    q_c = q_m.copy()
    q_c[:, :3] = kin.pelvis_angles_sequence(m0.T @ r_root_c @ m0)
    trans_c = (r_mc @ (j0 + trans_m).T).T + t_mc - j0
    with torch.no_grad():
        f32 = torch.float32
        out_c = body(torch.tensor(q_c, dtype=f32), torch.zeros(t, 10), torch.tensor(trans_c, dtype=f32))
    return FakeFit(q_c, betas, trans_c, out_c.joints.double().numpy(), np.ones(t, bool))


def test_feet_that_never_rest_still_stand_on_the_ground():
    """Feet that are never still (the whole body carried at 2 m/s while it steps, as the belt of a treadmill
    carries the standing foot) and a clip of two frames: the ground is at the lowest foot points, not through
    the camera (before: feet 2 m below z = 0)."""
    body = ToyBody()
    for t, belt in ((90, 2.0), (2, 2.0)):
        q_m, low = _walking_in_place(body, t)
        tt = np.arange(t) / 30
        trans_m = np.stack([-belt * tt, -low, np.zeros(t)], 1)
        w = world.to_world(_seen_by_camera(body, q_m, trans_m), body, None)
        feet_z = w.joints_world[:, list(world.FOOT_JOINTS), 2].min(1)
        assert np.abs(feet_z).max() < 0.03, (t, feet_z)
        assert any("no foot rests" in n for n in w.notes)


def test_to_world_keeps_joints_and_stands_the_body_on_the_ground():
    body = ToyBody()
    t = 300  # 10 s: an L-shaped walk (2 m x 2 m), so the foot contacts span an area and decide the ground plane
    tt = np.arange(t) / 30
    # the motion in a y-up world: upright, heading 0.7 rad, walking, feet on y = 0
    q_m, low = _walking_in_place(body, t)
    leg = np.minimum(tt, 5.0)
    trans_m = np.stack([0.4 * leg, -low, 0.4 * (tt - leg)], 1)
    fake = _seen_by_camera(body, q_m, trans_m)
    w = world.to_world(fake, body, None)
    c2w = w.camera_to_world
    # joints_world is the camera-frame fit moved by camera_to_world
    jc = fake.joints_cam.reshape(-1, 3)
    np.testing.assert_allclose(w.joints_world.reshape(-1, 3), jc @ c2w[:3, :3].T + c2w[:3, 3], atol=1e-4)
    # and the re-expressed q/trans give the same joints through the model and model_to_world
    with torch.no_grad():
        out_w = body(torch.tensor(w.poses), torch.zeros(t, 10), torch.tensor(w.trans))
    jw = out_w.joints.double().numpy().reshape(-1, 3) @ w.model_to_world[:3, :3].T + w.model_to_world[:3, 3]
    np.testing.assert_allclose(jw.reshape(t, 24, 3), w.joints_world, atol=1e-4)
    # the ground is z = 0, the body stands on it, upright: tilt and list near 0
    feet_z = w.joints_world[:, list(world.FOOT_JOINTS), 2].min(1)
    assert np.abs(feet_z).max() < 0.02
    assert np.abs(w.poses[:, :2]).max() < np.radians(2)
    assert np.all(w.joints_world[:, 13, 2] > 1.3)  # head up
    # the root moves through space: 0.5 m/s sideways
    assert np.linalg.norm(w.joints_world[-1, 0, :2] - w.joints_world[0, 0, :2]) > 0.25
    np.testing.assert_allclose(w.joints_world[0, 0, :2], 0.0, atol=1e-6)  # origin under the first root position
    assert w.ground_residual_m < 0.02


def test_balance_up_uses_the_standing_frames():
    """Sit-to-stand: seated, the centre of mass rests on the seat 0.35 m behind the feet; standing, it is over
    them. Up from the standing frames is vertical; averaged over every frame it would lean."""
    t = 20
    up = np.array([0.0, -1.0, 0.0])
    back = np.array([0.0, 0.0, 1.0])
    j = np.zeros((t, 24, 3))
    poses = np.zeros((t, 46))
    seated = np.arange(t) < 10
    poses[seated, world.KNEES[0]] = poses[seated, world.KNEES[1]] = 1.5
    poses[~seated, world.KNEES[0]] = poses[~seated, world.KNEES[1]] = 0.1
    for k in world.MASS_SHARES:
        j[:, k] = 0.9 * up
        j[seated, k] = 0.5 * up + 0.35 * back
    valid = np.ones(t, bool)
    stand = world.standing_frames(poses, valid)
    np.testing.assert_array_equal(stand, ~seated)
    tilt = lambda v: np.degrees(np.arccos(v @ up / np.linalg.norm(v)))  # noqa: E731
    assert tilt(world.balance_up(j, stand)) < 0.5 and tilt(world.balance_up(j, valid)) > 10.0
    # too few standing frames (a clip seated throughout but for two frames): every valid frame counts
    poses[2:, list(world.KNEES)] = 1.5
    assert world.standing_frames(poses, valid).all()
