"""MediaPipe's left/right swaps (a person facing the camera taken for one facing away): found and undone."""

from __future__ import annotations

import numpy as np

from hsmr_backend import landmarks as L

NAMES = L.KEYPOINT_NAMES


def _person(t: int, turn_deg: float = 0.0) -> np.ndarray:
    """(t,33,3) landmarks of a person facing the camera (their left on the image's right), left arm up, right
    arm down, walking to the right, arms swinging; ``turn_deg`` turns them about the vertical over the clip
    (180: facing away at the end; the labels stay right, as a detector that gets it right gives them)."""
    side = {"left": 1.0, "right": -1.0}
    kp = np.zeros((t, 33, 3))
    kp[..., 2] = 0.9
    for f in range(t):
        phase = 0.3 * np.sin(f / 4)
        c = np.cos(np.radians(turn_deg) * f / max(t - 1, 1))
        for i, name in enumerate(NAMES):
            s = next((v for k, v in side.items() if name.startswith(k)), 0.0)
            if "shoulder" in name:
                x, y = 40 * s, 100
            elif "elbow" in name:
                x, y = 60 * s, 40 if s > 0 else 160
            elif any(k in name for k in ("wrist", "pinky", "index", "thumb")):
                x, y = 70 * s + 20 * phase * s, -10 if s > 0 else 220
            elif "hip" in name:
                x, y = 20 * s, 250
            elif "knee" in name:
                x, y = 22 * s, 350 + 20 * phase * s
            elif any(k in name for k in ("ankle", "heel", "foot")):
                x, y = 24 * s, 450 + 10 * phase * s
            else:  # face
                x, y = 8 * s, 40
            kp[f, i, :2] = [400 + 3 * f + c * x, y]
    return kp


def test_swapped_runs_and_single_frames_are_found_and_undone():
    kp = _person(80)
    swapped = np.zeros(80, bool)
    swapped[20:35] = True  # a run
    swapped[[50, 52, 53, 60]] = True  # single frames and a pair
    seen = kp.copy()
    seen[swapped] = kp[swapped][:, L.MIRROR]
    for f in (27, 40):  # garbled frames, in a swapped run and outside: both arms drawn at the belly
        seen[f, [13, 14, 15, 16], :2] = [400 + 3 * f, 200]
    found = L.mirrored_frames(seen, np.ones(80, bool))
    np.testing.assert_array_equal(found, swapped)
    fixed2d, fixed3d = L.unmirror(seen, seen * 0.01, found)
    keep = np.ones(80, bool)
    keep[[27, 40]] = False  # (their torsos decide them; the arms stay garbled)
    np.testing.assert_allclose(fixed2d[keep], kp[keep])
    np.testing.assert_allclose(fixed3d[keep], kp[keep] * 0.01)


def test_the_majority_labelling_wins_and_lost_frames_are_skipped():
    kp = _person(30)
    seen = kp[:, L.MIRROR].copy()  # mirrored from the start ...
    seen[25:] = kp[25:]  # ... except the last five frames: those are the odd ones out
    valid = np.ones(30, bool)
    valid[10:13] = False
    seen[10:13] = 0.0
    found = L.mirrored_frames(seen, valid)
    np.testing.assert_array_equal(np.flatnonzero(found), np.arange(25, 30))


def test_a_person_turning_round_is_not_taken_for_a_swap():
    for turn in (180.0, -180.0, 90.0):
        assert not L.mirrored_frames(_person(60, turn), np.ones(60, bool)).any(), turn


def test_mirror_pairs_are_left_and_right_of_the_same_landmark():
    for i, j in enumerate(L.MIRROR):
        a, b = NAMES[i], NAMES[j]
        assert L.MIRROR[j] == i
        assert a == b if "left" not in a and "right" not in a else a.replace("left", "right") == b or (
            a.replace("right", "left") == b)


def test_open_body_turning_round_while_moving_its_limbs(open_body):
    """The open body's own landmarks, projected with 3 px noise and 10 % of points dropped, while it turns
    a full circle in two seconds and swings its limbs: no frame is taken for a swap; a swapped run is found."""
    import torch

    from hsmr_backend import fit
    from hsmr_contract.dofs import dof_index

    model, reg = open_body
    t = 60
    ph = np.linspace(0, 4 * np.pi, t)
    q = np.zeros((t, 46))
    q[:, 0], q[:, 2] = np.pi, np.linspace(0, 2 * np.pi, t)
    for side, sign in (("r", 1), ("l", -1)):
        q[:, dof_index(f"hip_flexion_{side}")] = 0.5 * sign * np.sin(ph)
        q[:, dof_index(f"knee_angle_{side}")] = 0.6 + 0.5 * sign * np.sin(ph)
        q[:, dof_index(f"elbow_flexion_{side}")] = 0.8
    q = fit.clip_to_limits(q)
    trans = np.tile([0.0, -0.2, 4.0], (t, 1))
    with torch.no_grad():
        out = model(torch.tensor(q, dtype=torch.float32), torch.zeros(t, 10), torch.tensor(trans, dtype=torch.float32))
        lm = reg(out).double().numpy()
    rng = np.random.default_rng(0)
    cam = fit.default_camera(1280, 720)
    conf = rng.uniform(0.5, 1.0, (t, 33)) * (rng.uniform(size=(t, 33)) > 0.1)
    kp = np.concatenate([cam.project(lm) + rng.normal(0, 3, (t, 33, 2)), conf[..., None]], -1)
    assert not L.mirrored_frames(kp, np.ones(t, bool)).any()
    swapped = np.zeros(t, bool)
    swapped[[5, 6, 7, 30, 41]] = True
    kp[swapped] = kp[swapped][:, L.MIRROR]
    found = L.mirrored_frames(kp, np.ones(t, bool))
    # frames seen edge-on (shoulders and hips on top of each other) cannot tell; every other one is found
    assert not (found & ~swapped).any() and found[swapped].sum() >= 4, np.flatnonzero(found)


def _side_walk(open_body, t: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(kp2d, kp3d) of the open body walking in place seen from its side (the legs cross twice a stride),
    projected with 3 px noise and 10 % of points dropped."""
    import torch

    from hsmr_backend import fit
    from hsmr_contract.dofs import dof_index

    model, reg = open_body
    ph = np.linspace(0, 4 * np.pi, t)
    q = np.zeros((t, 46))
    q[:, 0], q[:, 2] = np.pi, np.pi / 2
    for side, sign in (("r", 1), ("l", -1)):
        q[:, dof_index(f"hip_flexion_{side}")] = 0.2 + 0.45 * sign * np.sin(ph)
        q[:, dof_index(f"knee_angle_{side}")] = 0.3 + 0.3 * sign * np.sin(ph + 0.6)
        q[:, dof_index(f"shoulder_{side}_x")] = 1.2 * sign
    q = fit.clip_to_limits(q)
    trans = np.tile([0.0, -0.2, 4.0], (t, 1))
    with torch.no_grad():
        out = model(torch.tensor(q, dtype=torch.float32), torch.zeros(t, 10), torch.tensor(trans, dtype=torch.float32))
        lm = reg(out).double().numpy()
    rng = np.random.default_rng(seed)
    cam = fit.default_camera(1280, 720)
    conf = rng.uniform(0.5, 1.0, (t, 33)) * (rng.uniform(size=(t, 33)) > 0.1)
    kp = np.concatenate([cam.project(lm) + rng.normal(0, 3, (t, 33, 2)), conf[..., None]], -1)
    return kp, lm - (lm[:, 23:24] + lm[:, 24:25]) / 2


def test_leg_swaps_in_a_side_view_are_found_and_undone(open_body):
    """Seen from the side the legs cross twice a stride, where MediaPipe tends to swap them. A clean walk has no
    leg swap; runs swapped where the legs cross (only their velocities reverse), where they are apart, and a
    single frame are all found, and relabelling restores the true labels in the image and in the world."""
    kp, kp3d = _side_walk(open_body)
    t = len(kp)
    valid = np.ones(t, bool)
    assert not L.leg_swapped_frames(kp, valid).any()
    sep = np.linalg.norm(kp[:, 27, :2] - kp[:, 28, :2], axis=-1)
    cross = int(np.argmin(sep[5:25])) + 5  # ankles on top of each other
    swapped = np.zeros(t, bool)
    swapped[cross:cross + 8] = True  # starts where the legs cross
    swapped[[40, 41, 42, 50]] = True
    assert sep[40] > 3 * sep[cross]  # (apart there)
    seen2d, seen3d = kp.copy(), kp3d.copy()
    seen2d[swapped] = kp[swapped][:, L.LEG_SWAP]
    seen3d[swapped] = kp3d[swapped][:, L.LEG_SWAP]
    found = L.leg_swapped_frames(seen2d, valid)
    np.testing.assert_array_equal(found, swapped)
    fixed2d, fixed3d = L.swap_legs(seen2d, seen3d, found)
    np.testing.assert_allclose(fixed2d, kp)
    np.testing.assert_allclose(fixed3d, kp3d)
    assert L.mirrored_frames(seen2d, valid).sum() == 0  # the whole-body check leaves leg-only swaps alone


def test_legs_drawn_on_top_of_each_other_do_not_relabel_the_rest():
    """Two frames where the detector puts both legs at one spot (as on the shared cam02 clip) say nothing about
    which leg is which afterwards: the frames after them keep their labels, however many they are."""
    kp = _person(60)
    seen = kp.copy()
    seen[20:22, L.LEGS, :2] = [400 + 3 * 20, 400]
    assert not L.leg_swapped_frames(seen, np.ones(60, bool)).any()
    # with 40 frames after the glitch and 20 before, the later ones would be the majority anyway: also the other
    # way round
    seen = kp.copy()
    seen[38:40, L.LEGS, :2] = [400 + 3 * 38, 400]
    assert not L.leg_swapped_frames(seen, np.ones(60, bool)).any()


def test_leg_pairs_are_the_legs_of_the_mirror():
    names = [NAMES[i] for i in L.LEGS]
    assert all(("knee" in n or "ankle" in n or "heel" in n or "foot" in n) for n in names)
    np.testing.assert_array_equal(L.LEG_SWAP[L.LEGS], L.MIRROR[L.LEGS])
    keep = np.setdiff1d(np.arange(33), L.LEGS)
    np.testing.assert_array_equal(L.LEG_SWAP[keep], keep)


def test_a_hidden_leg_is_not_relabelled():
    """Where one leg is hidden (every landmark under 0.5 confidence, e.g. seated, filmed from behind) the legs
    are guesses: labelled the other way round for ten frames, they are left as given; the same frames with
    both legs confidently seen are relabelled."""
    kp = _person(60)
    seen = kp.copy()
    seen[10:20] = kp[10:20][:, L.LEG_SWAP]
    seen[10:20, L.LEGS[0::2], 2] = 0.35
    assert not L.leg_swapped_frames(seen, np.ones(60, bool)).any()
    seen[10:20, L.LEGS[0::2], 2] = 0.9
    np.testing.assert_array_equal(L.leg_swapped_frames(seen, np.ones(60, bool)), np.arange(60) // 10 == 1)
