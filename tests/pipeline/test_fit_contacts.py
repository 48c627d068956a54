"""Resting feet: found from the image (``world.foot_contacts``) and held on the ground in a second fit
(``fit.refine_with_contacts``, through ``world.fit_in_world``)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hsmr_backend import fit, world  # noqa: E402
from hsmr_contract.dofs import dof_index  # noqa: E402
from synthetic.fit_toy import Track  # noqa: E402

FEET = list(fit.FOOT_CONTACT_LANDMARKS)


def _level_world(camera_height: float) -> world.WorldResult:
    """A level camera ``camera_height`` m above the ground: world z = -y_camera + camera_height."""
    c2w = np.eye(4)
    c2w[:3, :3] = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]
    c2w[2, 3] = camera_height
    t = 1
    return world.WorldResult(np.zeros((t, 46)), np.zeros((t, 3)), np.eye(4), c2w, np.zeros((t, 24, 3)), 0.0)


def test_resting_feet_are_the_still_ones_near_the_ground():
    """Still in the image and low in the first fit: resting. Moving, held up, or still too briefly: not."""
    rng = np.random.default_rng(0)
    t, fps = 60, 30.0
    kp2d = np.zeros((t, 33, 3))
    kp2d[..., 2] = 0.9
    kp2d[:, 0, :2] = (500.0, 100.0)  # head and foot 300 px apart: the person's height in the image
    base = np.array([[480.0, 400.0], [520.0, 400.0], [470.0, 405.0], [530.0, 405.0]])
    path = np.zeros((t, 2))
    path[20:30, 0] = np.linspace(0.0, 200.0, 10)  # a stride: 20 px a frame = 2 heights/s
    path[30:, 0] = 200.0
    path[45:48, 0] = 200.0 + np.array([40.0, 80.0, 120.0])  # a hop, still for 3 frames, then on again
    path[48:51, 0] = 330.0
    path[51:, 0] = 330.0 + 20.0 * np.arange(1, t - 50)
    kp2d[:, FEET, :2] = base + path[:, None] + rng.normal(0, 2.0, (t, 4, 2))  # MediaPipe's jitter
    lm_cam = np.zeros((t, 33, 3))
    lm_cam[:, FEET, 1] = 1.5 - 0.01  # on the ground of a camera 1.5 m up
    lm_cam[35:45, 31, 1] = 1.5 - 0.4  # the left foot tip held 40 cm up (still, but not resting)
    heights = np.zeros(4)
    c = world.foot_contacts(kp2d, np.ones(t, bool), fps, lm_cam, _level_world(1.5), heights)
    np.testing.assert_allclose(c.normal, [0.0, -1.0, 0.0])
    assert c.offset == pytest.approx(-1.5)
    # points are averaged over +-0.1 s and their speed taken over +-0.1 s: moves blur over 6 frames either side
    assert c.mask[:14].all()  # standing
    assert not c.mask[20:30].any()  # the stride
    assert c.mask[36:39, [0, 1, 3]].all() and not c.mask[35:45, 2].any()  # the raised foot tip is not resting
    assert not c.mask[45:].any()  # still for 0.1 s only, between moves
    # lost frames never rest
    valid = np.ones(t, bool)
    valid[5:9] = False
    assert not world.foot_contacts(kp2d, valid, fps, lm_cam, _level_world(1.5), heights).mask[5:9].any()


def test_a_still_spell_is_decided_whole():
    """A planted foot that the first fit lifts 20 cm in the deep part of a squat (MediaPipe's leg depth) rests for
    the whole spell: it is near the ground in most of it. Near in only a few frames of a spell: not resting."""
    rng = np.random.default_rng(2)
    t, fps = 60, 30.0
    kp2d = np.zeros((t, 33, 3))
    kp2d[..., 2] = 0.9
    kp2d[:, 0, :2] = (500.0, 100.0)
    kp2d[:, FEET, :2] = np.array([[480.0, 400.0], [520.0, 400.0], [470.0, 405.0], [530.0, 405.0]]) \
        + rng.normal(0, 2.0, (t, 4, 2))  # still all along
    lm_cam = np.zeros((t, 33, 3))
    lm_cam[:, FEET, 1] = 1.5 - 0.01
    lm_cam[20:45, FEET[:2], 1] = 1.5 - 0.2  # the first fit lifts both heels 20 cm for 25 of the 60 frames
    lm_cam[:, FEET[3], 1] = 1.5 - 0.4  # the right foot tip 40 cm up ...
    lm_cam[10:12, FEET[3], 1] = 1.5 - 0.01  # ... but for two frames
    c = world.foot_contacts(kp2d, np.ones(t, bool), fps, lm_cam, _level_world(1.5), np.zeros(4))
    assert c.mask[:, :3].all()
    assert not c.mask[:, 3].any()


def test_a_foot_dragged_by_the_detector_stays_resting():
    """From behind, MediaPipe drags a planted foot's landmarks ~20 px (7 % of the height) up while the hips come
    down to it, and puts them back: one resting spell. A foot stepping in place (the same excursion, but lifted in
    the first fit) and one that lands somewhere else are not held through the gap."""
    rng = np.random.default_rng(3)
    t, fps = 60, 30.0
    kp2d = np.zeros((t, 33, 3))
    kp2d[..., 2] = 0.9
    kp2d[:, 0, :2] = (500.0, 100.0)
    base = np.array([[480.0, 400.0], [520.0, 400.0], [470.0, 405.0], [530.0, 405.0]])
    lift = np.zeros(t)
    lift[20:40] = 20.0 * np.sin(np.linspace(0.0, np.pi, 20))  # frames 20-39: up to 20 px up, and back
    kp2d[:, FEET, :2] = base + rng.normal(0, 1.0, (t, 4, 2))
    kp2d[:, FEET, 1] -= lift[:, None]
    kp2d[20:, FEET[1], 0] += np.minimum(np.arange(t - 20), 20) * 3.0  # the right heel goes 60 px aside: a step
    lm_cam = np.zeros((t, 33, 3))
    lm_cam[:, FEET, 1] = 1.5 - 0.01
    lm_cam[20:40, FEET[3], 1] = 1.5 - 0.25  # the first fit lifts the right foot tip: a step in place
    c = world.foot_contacts(kp2d, np.ones(t, bool), fps, lm_cam, _level_world(1.5), np.zeros(4))
    assert c.mask[:, [0, 2]].all()  # the left foot rests throughout
    assert not c.mask[22:38, 1].any() and not c.mask[26:34, 3].any()  # the step and the step in place
    assert c.mask[:15, [1, 3]].all() and c.mask[46:, [1, 3]].all()


def _squat_track(model, regressor, camera: fit.Camera, flatten: float):
    """A squat (benchmarks/accuracy/angles_synth.py) facing a level camera 3.5 m away, feet planted; MediaPipe-like
    inputs: 2D landmarks with 2 px noise, 3D landmarks whose thighs and shanks point ``flatten`` times as far
    in depth as they do (MediaPipe's legs lean towards the image plane)."""
    syn = pytest.importorskip("benchmarks.accuracy.angles_synth")
    q = syn.motion("squat", 40, 30.0)
    q[:, 0] += np.pi  # upright in the model frame -> facing the OpenCV camera
    rng = np.random.default_rng(1)
    betas = torch.zeros(1, 10)
    with torch.no_grad():
        out = model(torch.tensor(q, dtype=torch.float32), betas.expand(len(q), -1), torch.zeros(len(q), 3))
        talus = out.joints[:, [3, 8]].mean(1)
        trans = torch.tensor([0.0, 0.85, 3.5]) - talus  # ankles planted 0.85 m below the lens, 3.5 m away
        out = model(torch.tensor(q, dtype=torch.float32), betas.expand(len(q), -1), trans)
        lm = regressor.apply(out.skin_verts, out.joints).double().numpy()
    joints = out.joints.double().numpy()
    kp = camera.project(lm) + rng.normal(0, 2.0, lm.shape[:2] + (2,))
    kp2d = np.concatenate([kp, np.full(lm.shape[:2] + (1,), 0.95)], -1)
    kp3d = lm - lm[:, [23, 24]].mean(1, keepdims=True)

    def flat(seg: np.ndarray) -> np.ndarray:  # the same length, pointing less in depth
        f = seg * [1.0, 1.0, flatten]
        return f * np.linalg.norm(seg, axis=-1, keepdims=True) / np.linalg.norm(f, axis=-1, keepdims=True)

    for hip, knee, ankle, heel, tip in ((23, 25, 27, 29, 31), (24, 26, 28, 30, 32)):
        new_knee = kp3d[:, hip] + flat(kp3d[:, knee] - kp3d[:, hip])
        new_ankle = new_knee + flat(kp3d[:, ankle] - kp3d[:, knee])
        kp3d[:, [heel, tip]] += (new_ankle - kp3d[:, ankle])[:, None]
        kp3d[:, knee], kp3d[:, ankle] = new_knee, new_ankle
    return Track(kp2d, kp3d, np.ones(len(q), bool)), q, joints


def _feet_drift_cm(joints: np.ndarray) -> float:
    f = joints[:, list(world.FOOT_JOINTS)]
    return float(100 * np.linalg.norm(f - np.median(f, axis=0), axis=-1).max(axis=0).mean())


@pytest.mark.slow
def test_held_feet_stop_a_squat_sliding_away_and_sinking(open_body):
    """Legs seen too upright in depth: the plain fit matches the image partly by moving the body away from the
    camera and down through the floor; with the resting feet held, they stay where they rest."""
    model, regressor = open_body
    camera = fit.default_camera(720, 1280, focal_px=1000.0)
    track, q, joints = _squat_track(model, regressor, camera, flatten=0.2)
    first = fit.fit_sequence(track, model, regressor, camera)
    first_world = world.to_world(first, model, camera)
    held, held_world, resting = world.fit_in_world(track, model, regressor, camera)
    assert resting.shape == (len(q), 4) and resting.any(axis=1).all()  # the feet never leave the floor
    assert _feet_drift_cm(joints) < 1  # the truth
    assert _feet_drift_cm(first.joints_cam) > 15  # the plain fit slides (25 cm when written)
    assert _feet_drift_cm(held.joints_cam) < 0.4 * _feet_drift_cm(first.joints_cam)  # 6 cm

    def lowest_foot(w: world.WorldResult) -> float:
        return float(w.joints_world[:, list(world.FOOT_JOINTS), 2].min())

    assert lowest_foot(first_world) < -0.04  # 7 cm through the floor
    assert lowest_foot(held_world) > -0.025
    knees = [dof_index("knee_angle_r"), dof_index("knee_angle_l")]

    def knee_err(p: np.ndarray) -> float:
        return float(np.degrees(np.abs(p[:, knees] - q[:, knees])).mean())

    assert knee_err(held.poses) < knee_err(first.poses) + 0.5
    assert fit.count_violations(held.poses) == 0


@pytest.mark.slow
def test_the_second_fit_keeps_the_hsmr_prior(open_body):
    """In hsmr mode the network's per-frame poses are a weak prior of the fit; the second fit keeps it: made
    strong, it holds the body DoFs at the given poses while the feet are held."""
    model, regressor = open_body
    camera = fit.default_camera(720, 1280, focal_px=1000.0)
    track, q, _ = _squat_track(model, regressor, camera, flatten=0.2)
    first = fit.fit_sequence(track, model, regressor, camera)
    contacts = world.foot_contacts(track.kp2d, track.valid, 30.0, first.landmarks_cam,
                                   world.to_world(first, model, camera),
                                   fit.rest_foot_heights(model, regressor, first.betas))
    init = {"poses": q, "betas": np.zeros((len(q), 10)), "cam_t": np.zeros((len(q), 3))}
    strong = fit.FitOptions(w_init=100.0)
    free = fit.refine_with_contacts(first, track, model, regressor, contacts, strong)
    pulled = fit.refine_with_contacts(first, track, model, regressor, contacts, strong, init=init)

    def body_err(p: np.ndarray) -> float:
        return float(np.degrees(np.abs(p[:, 3:] - q[:, 3:])).mean())

    assert body_err(pulled.poses) < 0.5 * body_err(free.poses)

