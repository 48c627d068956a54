"""MediaPipe landmark regressors for the open body and for official SKEL files (SMPL topology)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hsmr_backend.skel import load_body
from hsmr_backend.skel.landmarks import MEDIAPIPE_POSE_LANDMARKS, landmark_file, load_landmark_regressor


def test_order_is_mediapipes():
    try:
        from mediapipe.python.solutions.pose import PoseLandmark
    except ImportError:
        pytest.skip("mediapipe not installed")
    assert [p.name.lower() for p in PoseLandmark] == list(MEDIAPIPE_POSE_LANDMARKS)


@pytest.mark.parametrize("body,n_verts", [("open", 13718), ("skel", 6890)])
def test_regressor_valid(body, n_verts):
    reg = load_landmark_regressor(body)
    assert reg.vertex_ids.shape[0] == 33 and reg.joint_weights.shape == (33, 24)
    assert reg.vertex_ids.max() < n_verts
    assert np.allclose(reg.vertex_weights.sum(1) + reg.joint_weights.sum(1), 1.0, atol=1e-5)
    assert all(len(d) > 10 for d in reg.definitions)


def test_skel_anchors_are_smplx_vertex_ids():
    d = json.loads(landmark_file("skel").read_text())
    a = d["anchors"]
    assert (a["nose"], a["reye"], a["leye"], a["rear"], a["lear"]) == (332, 6260, 2800, 4071, 583)
    assert (a["LBigToe"], a["LSmallToe"], a["LHeel"], a["RBigToe"], a["RSmallToe"], a["RHeel"]) == (
        3216,
        3226,
        3387,
        6617,
        6624,
        6787,
    )


def test_same_rules_on_both_bodies():
    a, b = load_landmark_regressor("open"), load_landmark_regressor("skel")
    assert np.allclose(a.joint_weights, b.joint_weights)
    assert np.allclose(np.sort(a.vertex_weights, 1), np.sort(b.vertex_weights, 1))


def test_open_body_landmarks_where_they_belong():
    with torch.no_grad():
        out = load_body("open")(torch.zeros(1, 46), torch.zeros(1, 10), torch.zeros(1, 3))
    skin, joints = out.skin_verts[0].double().numpy(), out.joints[0].double().numpy()
    lm = load_landmark_regressor("open").apply(skin, joints)
    p = {n: lm[i] for i, n in enumerate(MEDIAPIPE_POSE_LANDMARKS)}
    for s, sign in (("left", 1), ("right", -1)):  # +x is the subject's left
        for part in ("eye", "ear", "shoulder", "wrist", "hip", "heel", "thumb"):
            assert sign * p[f"{s}_{part}"][0] > 0.01, (s, part)
        assert sign * (p[f"{s}_eye_outer"][0] - p[f"{s}_eye"][0]) > 0.01
        assert sign * (p[f"{s}_eye"][0] - p[f"{s}_eye_inner"][0]) > 0.005
        assert p[f"{s}_heel"][2] < p[f"{s}_ankle"][2] < p[f"{s}_foot_index"][2]
        assert p[f"{s}_ear"][2] < p[f"{s}_eye"][2] - 0.05
        assert p[f"mouth_{s}"][1] < p["nose"][1] - 0.01
        # on the skin surface, about where a face has them
        d = np.linalg.norm(skin - p[f"mouth_{s}"], axis=1).min()
        assert d < 0.015
    assert p["nose"][2] == max(v[2] for n, v in p.items() if "index" not in n and "thumb" not in n and "pinky" not in n)
    assert abs(np.linalg.norm(p["left_eye"] - p["right_eye"]) - 0.062) < 0.015


def test_apply_on_torch_and_batches():
    torch = pytest.importorskip("torch")
    reg = load_landmark_regressor("skel")
    v = np.random.default_rng(0).normal(size=(2, 6890, 3))
    j = np.random.default_rng(1).normal(size=(2, 24, 3))
    ref = reg.apply(v, j)
    vt = torch.tensor(v, requires_grad=True)
    got = reg.apply(vt, torch.tensor(j))
    assert np.allclose(got.detach().numpy(), ref) and ref.shape == (2, 33, 3)
    got.sum().backward()
    assert vt.grad is not None


def test_unknown_body_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="use 'open' or 'skel'"):
        load_landmark_regressor("smplx")
