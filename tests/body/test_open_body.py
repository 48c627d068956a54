"""The open default body: SKEL's joints, DoF meanings and limits on a CC0 MakeHuman skin.

Directions are checked against analytic expectations in the SKEL/SMPL frame (y up, subject faces +z,
+x = subject's left). The forward pass is the product's ``SKEL`` (``load_body("open")``); its own
parity with an independent float64 transcription is tests/body/test_skel_model.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hsmr_backend.skel import SkelData, load_body
from hsmr_backend.skel.landmarks import MEDIAPIPE_POSE_LANDMARKS, load_landmark_regressor
from hsmr_backend.skel.open_body_build.body import MIRROR_JOINT
from hsmr_contract.dofs import DOFS, JOINT_NAMES, N_DOFS, dof_index

ROOT = Path(__file__).resolve().parents[2]
BODY = ROOT / "assets" / "open_body.npz"
J = {n: i for i, n in enumerate(JOINT_NAMES)}
P = np.diag([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def data() -> SkelData:
    return SkelData.from_npz(BODY)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_body("open")


@pytest.fixture(scope="module")
def fwd(model):
    """fwd(q (46,), betas=None) -> (skin (V,3), joints (24,3)) as float64 numpy."""

    def run(q, betas=None):
        b = np.zeros(10) if betas is None else np.pad(betas, (0, 10 - len(betas)))
        with torch.no_grad():
            o = model(
                torch.tensor(q, dtype=torch.float32)[None],
                torch.tensor(b, dtype=torch.float32)[None],
                torch.zeros(1, 3),
            )
        return o.skin_verts[0].double().numpy(), o.joints[0].double().numpy()

    return run


@pytest.fixture(scope="module")
def lm():
    return load_landmark_regressor("open")


def q_of(**kw: float) -> np.ndarray:
    q = np.zeros(N_DOFS)
    for k, v in kw.items():
        q[dof_index(k)] = v
    return q


def moved(fwd, lm, what: str, **kw: float) -> np.ndarray:
    """Displacement of a joint (by SKEL name) or a landmark (MediaPipe name) from the T-pose."""
    out = []
    for q in (q_of(), q_of(**kw)):
        skin, joints = fwd(q)
        out.append(joints[J[what]] if what in J else lm.apply(skin, joints)[MEDIAPIPE_POSE_LANDMARKS.index(what)])
    return out[1] - out[0]


# ----------------------------------------------------------------- the file itself
def test_body_file_is_plain_and_compact(data):
    with np.load(BODY, allow_pickle=False) as z:  # no pickles
        assert str(z["format"]) == "skel-data-1" and str(z["name"]) == "open"
    assert BODY.stat().st_size < 4e6
    v = data.skin_template_v
    assert 5000 < len(v) < 30000
    assert data.J_regressor_osim.shape == (24, len(v)) and data.skin_weights.shape == (len(v), 24)
    assert list(data.parents) == [
        d for d in (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 12, 14, 15, 16, 17, 12, 19, 20, 21, 22)
    ]
    assert data.posedirs is None  # no pose correctives (documented)


def test_no_private_kinematics_in_the_file():
    """Axes, flips and limits come from the DoF table alone: the file holds SkelData arrays only."""
    allowed = {
        "format",
        "name",
        "skin_template_v",
        "skin_template_f",
        "shapedirs",
        "J_regressor_osim",
        "skin_weights",
        "skel_template_v",
        "skel_template_f",
        "skel_weights",
        "skel_weights_rigid",
        "per_joint_rot",
        "apose_rel_transfo",
        "parents",
        "bone_scale_vertex_pairs",
        "beta_names",
        "mirror_vertex",
    }
    with np.load(BODY) as z:
        assert {k.split("__")[0] for k in z.files} == allowed
    # every DoF is driven within exactly the table's limits by the tests below
    assert sum(d.limited for d in DOFS) == 43


def test_template_is_a_t_pose_in_the_smpl_frame(data):
    v = data.skin_template_v.astype(np.float64)
    jt = data.J_regressor_osim @ v
    stature = v[:, 1].max() - v[:, 1].min()
    assert 1.5 < stature < 1.8
    assert np.allclose(jt[J["pelvis"]], [0.0, -0.22, 0.0], atol=0.01)
    # arms horizontal along -x (right) / +x (left), at shoulder height
    for s, sign in (("r", -1), ("l", 1)):
        arm = jt[[J[f"humerus_{s}"], J[f"ulna_{s}"], J[f"hand_{s}"]]]
        assert np.ptp(arm[:, 1]) < 1e-3 and np.ptp(arm[:, 2]) < 1e-3
        assert np.all(np.diff(sign * arm[:, 0]) > 0.15)
    # legs below the hips, feet forward of the heels, face forward
    assert jt[J["talus_r"], 1] < jt[J["tibia_r"], 1] < jt[J["femur_r"], 1]
    assert jt[J["toes_l"], 2] > jt[J["calcn_l"], 2]
    assert jt[J["head"], 1] > jt[J["thorax"], 1] > jt[J["lumbar_body"], 1]


def test_joint_regressor_is_local_and_affine(data):
    r = data.J_regressor_osim.astype(np.float64)
    assert np.allclose(r.sum(1), 1.0, atol=1e-5) and r.min() >= 0
    assert np.all(np.count_nonzero(r, axis=1) <= 80)


def test_skin_weights_valid_and_smooth(data):
    w = data.skin_weights.astype(np.float64)
    assert w.min() >= 0 and np.allclose(w.sum(1), 1.0, atol=1e-5)
    f = data.skin_template_f
    jump = np.abs(w[f[:, 0]] - w[f[:, 1]]).max(1)
    assert np.quantile(jump, 0.995) < 0.25 and jump.max() < 0.5  # neighbours differ little (no hard seams)
    # every bone that moves skin owns some of it; the talus is carried by the foot (documented)
    owned = w.max(0)
    assert all(owned[J[n]] > 0.5 for n in JOINT_NAMES if not n.startswith(("talus", "radius", "scapula")))


def test_bone_meshes_rigid_one_per_bone(data):
    rig = data.skel_weights_rigid
    assert np.all(np.count_nonzero(rig, axis=1) == 1)
    assert set(rig.argmax(1)) == set(range(24))


# ----------------------------------------------------------------- symmetry
def test_mirror_symmetric_rest(data):
    v = data.skin_template_v.astype(np.float64)
    mi = np.load(BODY)["mirror_vertex"]
    assert np.abs(v[mi] @ P - v).max() < 1e-6
    jt = data.J_regressor_osim.astype(np.float64) @ v
    assert np.abs(jt[MIRROR_JOINT] @ P - jt).max() < 1e-6
    w = data.skin_weights.astype(np.float64)
    assert np.abs(w[mi][:, MIRROR_JOINT] - w).max() < 1e-5


def _mirror_pose(q: np.ndarray, data: dict) -> np.ndarray:
    """The pose that mirrors q: DoF axes mapped through the frames, reflected, matched on the other side."""
    frames = data.per_joint_rot
    out = np.zeros_like(q)
    for d in DOFS:
        a = frames[d.joint] @ (d.flip * np.asarray(d.axis))
        mirrored = -P @ a  # the reflection of a rotation axis (axial vector)
        mj = MIRROR_JOINT[d.joint]
        best = max(
            (e for e in DOFS if e.joint == mj), key=lambda e: abs(frames[mj] @ (e.flip * np.asarray(e.axis)) @ mirrored)
        )
        b = frames[mj] @ (best.flip * np.asarray(best.axis))
        out[best.index] = q[d.index] * np.sign(b @ mirrored)
    return out


def test_mirrored_pose_gives_mirrored_body(data, fwd):
    rng = np.random.default_rng(0)
    q = np.array([rng.uniform(max(d.lower, -0.5), min(d.upper, 0.5)) for d in DOFS])
    # SKEL quirk kept: the talus axis is the same on both sides, so ankles are not mirror images
    q[[dof_index("ankle_angle_r"), dof_index("ankle_angle_l")]] = 0.0
    q[:3] = 0.0
    skin, joints = fwd(q)
    skin_m, joints_m = fwd(_mirror_pose(q, data))
    mi = np.load(BODY)["mirror_vertex"]
    assert np.abs(joints_m[MIRROR_JOINT] @ P - joints).max() < 2e-3
    assert np.abs(skin_m[mi] @ P - skin).max() < 5e-3


# ----------------------------------------------------------------- DoF meanings
def test_knee_flexion_moves_the_ankle_backwards(fwd, lm):
    for s in "rl":
        d = moved(fwd, lm, f"talus_{s}", **{f"knee_angle_{s}": 1.0})
        assert d[2] < -0.2 and d[1] > 0.1 and abs(d[0]) < 0.05


def test_hip_flexion_swings_the_thigh_forwards(fwd, lm):
    for s in "rl":
        d = moved(fwd, lm, f"tibia_{s}", **{f"hip_flexion_{s}": 0.8})
        assert d[2] > 0.2 and abs(d[0]) < 0.05


def test_hip_adduction_and_rotation(fwd, lm):
    for s, medial in (("r", 1.0), ("l", -1.0)):
        d = moved(fwd, lm, f"tibia_{s}", **{f"hip_adduction_{s}": 0.3})
        assert medial * d[0] > 0.08
        # internal rotation turns the foot inwards (toes towards the midline)
        d = moved(fwd, lm, f"toes_{s}", **{f"hip_rotation_{s}": 0.5})
        assert medial * d[0] > 0.03


def test_ankle_dorsiflexion_lifts_the_toes(fwd, lm):
    for s in "rl":
        assert moved(fwd, lm, f"toes_{s}", **{f"ankle_angle_{s}": 0.5})[1] > 0.03


def test_subtalar_inversion_turns_the_sole_inwards(fwd, lm):
    for side, s in (("right", "r"), ("left", "l")):
        big = moved(fwd, lm, f"{side}_foot_index", **{f"subtalar_angle_{s}": 0.5})
        heel = moved(fwd, lm, f"{side}_heel", **{f"subtalar_angle_{s}": 0.5})
        skin, joints = fwd(q_of(**{f"subtalar_angle_{s}": 0.5}))
        little = lm.apply(skin, joints)
        # the subtalar axis is oblique (mostly anterior and up): the forefoot swings medially
        medial = 1.0 if s == "r" else -1.0
        assert medial * big[0] > 0.01
        assert np.isfinite(little).all() and np.linalg.norm(heel) < np.linalg.norm(big)


def test_elbow_flexion_brings_the_wrist_to_the_shoulder(fwd, lm):
    for s in "rl":
        for q in (q_of(), q_of(**{f"elbow_flexion_{s}": 2.0})):
            _, joints = fwd(q)
            dist = np.linalg.norm(joints[J[f"hand_{s}"]] - joints[J[f"humerus_{s}"]])
            if not q.any():
                straight = dist
        assert dist < 0.75 * straight
        assert moved(fwd, lm, f"hand_{s}", **{f"elbow_flexion_{s}": 1.0})[2] > 0.1  # forwards in a T-pose


def test_pronation_turns_the_hand_about_the_forearm(fwd, lm):
    for side, s, sign in (("right", "r", -1.0), ("left", "l", 1.0)):
        angle = 0.6
        skin0, j0 = fwd(q_of())
        skin1, j1 = fwd(q_of(**{f"pro_sup_{s}": angle}))
        assert np.linalg.norm(j1[J[f"hand_{s}"]] - j0[J[f"hand_{s}"]]) < 0.025  # wrist near the oblique axis
        i = MEDIAPIPE_POSE_LANDMARKS.index(f"{side}_thumb")
        t0, t1 = lm.apply(skin0, j0)[i], lm.apply(skin1, j1)[i]
        axis = j0[J[f"hand_{s}"]] - j0[J[f"ulna_{s}"]]
        axis /= np.linalg.norm(axis)
        r0 = (t0 - j0[J[f"hand_{s}"]]) - axis * ((t0 - j0[J[f"hand_{s}"]]) @ axis)
        r1 = (t1 - j1[J[f"hand_{s}"]]) - axis * ((t1 - j1[J[f"hand_{s}"]]) @ axis)
        turned = np.arctan2(np.cross(r0, r1) @ axis, r0 @ r1)
        assert abs(abs(turned) - angle) < 0.15  # turns about the forearm by about q (axis slightly oblique)
        assert abs(t1[0] - t0[0]) < 0.01  # no swing along the forearm
        del sign


def test_wrist_flexion_bends_the_hand_down_palm_side(fwd, lm):
    for side, s in (("right", "r"), ("left", "l")):
        assert moved(fwd, lm, f"{side}_index", **{f"wrist_flexion_{s}": 0.8})[1] < -0.03


def test_shoulder_dofs_in_a_t_pose(fwd, lm):
    for s, lateral in (("r", -1.0), ("l", 1.0)):
        down = moved(fwd, lm, f"hand_{s}", **{f"shoulder_{s}_x": 0.8 * (1 if s == "r" else -1)})
        assert down[1] < -0.2  # adduction lowers the arm
        fwd_ = moved(fwd, lm, f"hand_{s}", **{f"shoulder_{s}_z": 0.8})
        assert fwd_[2] > 0.2  # flexion in the horizontal plane swings it forwards
        twist = moved(fwd, lm, f"hand_{s}", **{f"shoulder_{s}_y": 0.8})
        assert np.linalg.norm(twist) < 0.01  # axial rotation leaves the straight arm's wrist in place
        del lateral


def test_spine_and_head(fwd, lm):
    assert moved(fwd, lm, "head", lumbar_extension=0.4)[2] < -0.03  # extension leans back
    assert moved(fwd, lm, "head", lumbar_bending=0.4)[0] < -0.03  # positive bending: to the right
    assert moved(fwd, lm, "nose", head_twist=0.5)[0] > 0.03  # twist turns the face to the left
    assert moved(fwd, lm, "nose", head_extension=-0.4)[1] < -0.01  # flexion drops the nose
    assert moved(fwd, lm, "head", thorax_extension=0.4)[2] < -0.02


def test_pelvis_is_the_global_orientation(fwd, lm):
    d = moved(fwd, lm, "nose", pelvis_rotation=np.pi / 2)
    _, j0 = fwd(q_of())
    assert d[0] > 0.05  # facing +x (the subject's left) after a quarter turn about y
    assert np.allclose(moved(fwd, lm, "pelvis", pelvis_tilt=1.0, pelvis_list=0.5), 0.0, atol=1e-6)


# ----------------------------------------------------------------- robustness
def _face_areas(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)


def test_random_in_limit_poses_have_no_degenerate_faces(data, fwd):
    rng = np.random.default_rng(1)
    f = data.skin_template_f
    a0 = _face_areas(data.skin_template_v.astype(np.float64), f)
    assert a0.min() > 1e-9
    for _ in range(6):
        q = np.array([rng.uniform(d.lower, d.upper) if d.limited else rng.uniform(-np.pi, np.pi) for d in DOFS])
        betas = rng.uniform(-2, 2, size=5)
        skin, joints = fwd(q, betas)
        assert np.isfinite(skin).all() and np.isfinite(joints).all()
        a = _face_areas(skin, f)
        assert (a > 1e-10).mean() > 0.999 and np.quantile(a / a0, 0.01) > 0.05


def test_shape_space_stature_and_joints(data, fwd):
    heights = []
    for b in (-2.0, 0.0, 2.0):
        skin, joints = fwd(q_of(), np.array([b]))
        heights.append(np.ptp(skin[:, 1]))
        leg = np.linalg.norm(joints[J["femur_r"]] - joints[J["talus_r"]])
        assert 0.3 < leg / heights[-1] < 0.6  # joints follow the skin
    # beta 0 is stature, about 7 cm per unit
    assert 0.05 < (heights[1] - heights[0]) / 2 < 0.1 and 0.05 < (heights[2] - heights[1]) / 2 < 0.1
    names = list(np.load(BODY)["beta_names"])
    assert names[:2] == ["height", "weight"]


def test_runtime_does_not_import_anny():
    code = (
        "import sys; from hsmr_backend.skel.landmarks import load_landmark_regressor as f; f('open'); f('skel');"
        "import hsmr_backend.skel as s;"
        "getattr(s, 'load_body', lambda n: None)('open');"
        "assert 'anny' not in sys.modules, 'anny imported at run time'"
    )
    src = f"{ROOT / 'backend'}:{ROOT / 'backend' / 'contract'}:{ROOT}"
    env = {"PYTHONPATH": src, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def test_rest_state_at_betas_zero_is_the_designed_one(data, model):
    """The generator designs the rest offsets so that, at betas = 0, SKEL's bone alignment is the identity
    (rest frames = per_joint_rot, apose rotations = I) and every bone scale is 1 (open_body_build.body)."""
    assert np.abs(data.apose_rel_transfo[:, :3, :3] - np.eye(3)).max() < 1e-6
    with torch.no_grad():
        rest = model.rest_state(torch.zeros(1, 10))
        out = model(torch.zeros(1, 46), torch.zeros(1, 10), torch.zeros(1, 3), bone_mesh=True)
    assert np.abs(rest.bone_orient[0].numpy() - data.per_joint_rot).max() < 1e-5
    assert np.abs(out.rest_frames[0].numpy() - data.per_joint_rot).max() < 1e-5
    assert np.abs(rest.bone_scale[0].numpy() - 1.0).max() < 1e-4
    # so the T-pose bone mesh is the template turned into each bone's frame and placed at its joint
    owner = data.skel_weights_rigid.argmax(1)
    jt = data.J_regressor_osim.astype(np.float64) @ data.skin_template_v
    placed = np.einsum("nab,nb->na", data.per_joint_rot[owner].astype(np.float64), data.skel_template_v) + jt[owner]
    assert np.abs(out.bone_verts[0].numpy() - placed).max() < 1e-4
