"""The convert orchestration on real footage: result file, overlay, plot, progress, work folder.

The fitter, world frame and body model are other parts; the ``standins`` fixture (synthetic/standins.py)
replaces them with trivial stand-ins so these tests check the pipeline's own job: what it passes on, what it writes.
When the real parts are present, ``test_real_parts_end_to_end`` runs them too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from hsmr_contract import dofs, protocol, result_format
from synthetic.standins import V_SKIN

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def clip(shared_dir) -> Path:
    return shared_dir / "footage" / "single_person_cam01.mp4"


def test_convert_writes_a_valid_result_overlay_and_plot(standins, clip, tmp_path):
    from hsmr_backend.convert import ConvertOptions, convert
    from hsmr_backend.progress import Reporter

    events = []

    class Rec(Reporter):
        def stage(self, stage, frame, total):
            events.append((stage, frame, total))

    out = tmp_path / "res.npz"
    summary = convert(ConvertOptions(str(clip), str(out), mode="keypoints", frames="10:22", stride=2,
                                     focal_px=1500.0), Rec("none"))
    r = result_format.load(out)
    print(summary.timings)
    assert summary.frames == 6 and summary.mode == "keypoints"
    assert list(r["frame_index"]) == [10, 12, 14, 16, 18, 20]
    assert float(r["fps"]) == pytest.approx(30.0)  # 60 fps source, every 2nd frame
    assert tuple(r["image_size"]) == (1080, 1920)
    assert r["valid"].all() and r["keypoints_2d"].shape == (6, 33, 3)
    assert list(r["dof_names"]) == list(dofs.DOF_NAMES) and list(r["joint_parents"]) == list(dofs.PARENTS)
    np.testing.assert_allclose(r["dof_limits"][3], [dofs.DOFS[3].lower, dofs.DOFS[3].upper], rtol=1e-6)
    assert r["camera_K"][0, 0] == pytest.approx(1500.0)
    meta = json.loads(str(r["meta_json"]))
    assert meta["mode"] == "keypoints" and meta["focal_source"] == "given" and "largest" in meta["subject"]
    assert meta["versions"]["hsmr_backend"] and meta["stride"] == 2
    assert r["skin_weights"].shape == (V_SKIN, 24) and r["bone_vertex_joint"].tolist() == [0, 1, 2, 3]
    # the fitter got the landmark track of exactly these frames, with the effective frame rate
    tr = standins["track"]
    assert list(tr.frame_index) == [10, 12, 14, 16, 18, 20] and tr.fps == pytest.approx(30.0)
    assert standins["regressor"] == ("regressor", "open")
    # the fit got the scene's straight edges from the frames it converted (for "up"), none on the subject
    lines = standins["scene"]
    assert lines.frames == 6 and lines.image_size == (1080, 1920) and len(lines.segments) > 50
    # overlay: same number of frames, readable, and the skeleton drawn where the camera projects it
    cap = cv2.VideoCapture(str(tmp_path / "res.overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, frame = cap.read()
    assert ok and max(frame.shape[:2]) == 1280
    assert (tmp_path / "res.angles.png").stat().st_size > 10_000
    assert cv2.imread(str(tmp_path / "res.angles.png")) is not None
    assert not (tmp_path / "res.npz.work").exists()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.part.*"))
    stages = [e[0] for e in events]
    assert "landmarks" in stages and "overlay" in stages
    assert ("landmarks", 6, 6) in events


def test_photos_bring_their_focal_length_unless_the_user_gives_one(standins, clip, tmp_path):
    """Phone photos carry a 35-mm-equivalent focal length in EXIF: it is the camera's focal (source "exif");
    --focal-px still wins."""
    from PIL import Image

    from hsmr_backend.convert import ConvertOptions, convert
    from hsmr_backend.progress import Reporter

    cap = cv2.VideoCapture(str(clip))
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        ok, frame = cap.read()
        assert ok
        im = Image.fromarray(frame[:, :, ::-1])
        exif = im.getexif()
        exif.get_ifd(0x8769)[0xA405] = 26  # FocalLengthIn35mmFilm
        im.save(folder / f"p{i}.jpg", exif=exif, quality=90)
    want = 26 / np.hypot(36, 24) * np.hypot(1080, 1920)
    for focal, source, k in ((None, "exif", want), (1500.0, "given", 1500.0)):
        out = tmp_path / f"{source}.npz"
        convert(ConvertOptions(str(folder), str(out), mode="keypoints", focal_px=focal, overlay=False, plot=False),
                Reporter("none"))
        r = result_format.load(out)
        assert r["camera_K"][0, 0] == pytest.approx(k, rel=1e-5)
        assert json.loads(str(r["meta_json"]))["focal_source"] == source


def _convert_keeping_warnings(video: Path, out: Path, frames: str) -> tuple[dict, list[str]]:
    """convert (keypoints, no overlay or plot) of ``frames``; the result's meta_json and the warnings logged."""
    from hsmr_backend.convert import ConvertOptions, convert
    from hsmr_backend.progress import Reporter

    warnings: list[str] = []

    class Rec(Reporter):
        def info(self, message, level="info"):
            if level == "warning":
                warnings.append(message)

    convert(ConvertOptions(str(video), str(out), mode="keypoints", frames=frames, overlay=False, plot=False),
            Rec("none"))
    return json.loads(str(result_format.load(out)["meta_json"])), warnings


@pytest.mark.parametrize("away", [False, True])
def test_a_subject_seen_from_behind_is_reported(standins, clip, tmp_path, monkeypatch, away):
    """The fitted trunk's facing decides: back to the camera in most frames -> a warning and the counts in
    meta_json; facing it -> no warning."""
    def to_world(fit, model, camera):  # a trunk 3 m in front of a camera at the origin that looks along +y
        side = -1.0 if away else 1.0  # the subject's left: +x facing the camera (-y), -x facing away
        j = np.zeros((len(fit.poses), 24, 3))
        for k, x, z in ((0, 0.0, 1.0), (1, -0.1, 0.92), (6, 0.1, 0.92), (15, -0.18, 1.5), (20, 0.18, 1.5)):
            j[:, k] = (side * x, 3.0, z)
        return types.SimpleNamespace(poses=fit.poses, trans=fit.trans, model_to_world=np.eye(4),
                                     camera_to_world=np.eye(4), joints_world=j, notes=[],
                                     up_source="balance")

    monkeypatch.setattr(sys.modules["hsmr_backend.world"], "to_world", to_world)  # the stand-in module
    meta, warnings = _convert_keeping_warnings(clip, tmp_path / "res.npz", "0:6")
    views = meta["views"]
    assert views == ({"front": 0, "side": 0, "back": 6} if away else {"front": 6, "side": 0, "back": 0})
    assert any("back to the camera in 6 of 6 frames" in w for w in warnings) == away


@pytest.mark.parametrize("pan", [False, True])
def test_a_moving_camera_is_reported(standins, clip, tmp_path, pan):
    """The shared clip's camera stands still: no warning, ``camera_motion.moved`` false. The same frames cut from a
    window that slides 8 px a frame (a pan): a warning and the shift in meta_json."""
    src = clip
    if pan:
        cap = cv2.VideoCapture(str(clip))
        src = tmp_path / "pan.mp4"
        out_video = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (900, 1600))
        for i in range(12):
            ok, frame = cap.read()
            assert ok
            out_video.write(np.ascontiguousarray(frame[160:1760, 8 * i:8 * i + 900]))
        out_video.release()
        cap.release()
    meta, warnings = _convert_keeping_warnings(src, tmp_path / "res.npz", "0:12")
    motion = meta["camera_motion"]
    assert motion["moved"] == pan and any("the camera moved" in w for w in warnings) == pan
    if pan:  # 88 px over the 1836 px diagonal
        assert motion["shift"] == pytest.approx(88 / np.hypot(900, 1600), abs=0.005)
    else:
        assert motion["shift"] < 0.002


@pytest.mark.parametrize("given", [None, 1500.0])
def test_a_focal_from_the_scene_replaces_only_a_default_focal(standins, clip, tmp_path, monkeypatch, given):
    """When the scene's edges decide "up" near MediaPipe's own up and its horizontal edges tell a focal 5 % or more
    from the default, the clip is fitted once, with that focal (focal_source "scene"); a focal the user gave is
    never replaced, nor asked about."""
    from hsmr_backend import convert as C
    from hsmr_backend.convert import stages
    from hsmr_backend.scene import SceneFocal, SceneUp

    world_mod = sys.modules["hsmr_backend.world"]
    cameras, priors, asked = [], [], []

    def fit_in_world(track, model, regressor, camera, options=None, init=None, progress=None, scene=None):
        cameras.append(camera)
        fit = sys.modules["hsmr_backend.fit"].fit_sequence(track, model, regressor, camera, options, init, progress)
        return fit, world_mod.to_world(fit, model, camera), np.zeros((len(fit.poses), 4), bool)

    def vertical_up(lines, k, prior):
        priors.append(np.asarray(prior))
        return SceneUp(up=np.array([0.0, -0.95, -0.31]), edges=10.0, support=1.0, spread=0.1)

    def focal_from_scene(lines, k, up):
        asked.append(float(k[0, 0]))
        return SceneFocal(focal_px=1200.0, support=1.0, support_second=1.0, from_vertical_px=1210.0)

    monkeypatch.setattr(world_mod, "fit_in_world", fit_in_world)
    monkeypatch.setattr(stages, "vertical_up", vertical_up)
    monkeypatch.setattr(stages, "focal_from_scene", focal_from_scene)
    out = tmp_path / "res.npz"
    C.convert(C.ConvertOptions(str(clip), str(out), mode="keypoints", frames="0:6", focal_px=given, overlay=False,
                               plot=False))
    r = result_format.load(out)
    meta = json.loads(str(r["meta_json"]))
    assert len(cameras) == 1  # one fit either way
    if given is None:
        assert len(asked) == 1 and cameras[0].focal_source == "scene" and meta["focal_source"] == "scene"
        assert r["camera_K"][0, 0] == pytest.approx(1200.0) and meta["scene_focal_px"] == pytest.approx(1200.0)
        # the prior is MediaPipe's own up: the subject stands upright in the shared clip
        assert len(priors) == 1 and priors[0][1] < -0.8
    else:
        assert not asked and not priors
        assert r["camera_K"][0, 0] == pytest.approx(1500.0) and meta["focal_source"] == "given"


def test_landmark_up_is_the_feet_to_shoulders_direction():
    from hsmr_backend import landmarks as L

    kp3d = np.zeros((4, 33, 3))
    kp3d[:, [11, 12]] = (0.0, -0.5, 0.0)
    kp3d[:, [27, 28, 29, 30]] = (0.0, 0.8, 0.3)  # the feet below and 0.3 m behind: up leans towards the camera
    up = L.landmark_up(kp3d, np.array([True, True, True, False]))
    np.testing.assert_allclose(up, np.array([0.0, -1.3, -0.3]) / np.hypot(1.3, 0.3), atol=1e-9)
    np.testing.assert_allclose(L.landmark_up(kp3d, np.zeros(4, bool)), [0.0, -1.0, 0.0])


def test_convert_resumes_from_an_interrupted_run(standins, clip, tmp_path, monkeypatch):
    from hsmr_backend import landmarks as L
    from hsmr_backend.convert import ConvertOptions, convert

    out = tmp_path / "res.npz"
    opts = ConvertOptions(str(clip), str(out), mode="keypoints", frames="0:30", overlay=False, plot=False)
    real = L.SubjectTracker.step
    calls = {"n": 0}

    def flaky(self, frame):
        calls["n"] += 1
        if calls["n"] == 28:
            raise KeyboardInterrupt
        return real(self, frame)

    monkeypatch.setattr(L.SubjectTracker, "step", flaky)
    monkeypatch.setattr(L, "detect_landmarks", _with_chunk(L.detect_landmarks, 10))
    with pytest.raises(KeyboardInterrupt):
        convert(opts)
    assert not out.exists() and (tmp_path / "res.npz.work").is_dir()
    monkeypatch.setattr(L.SubjectTracker, "step", real)
    calls["n"] = 0
    counted = {"n": 0}

    def counting(self, frame):
        counted["n"] += 1
        return real(self, frame)

    monkeypatch.setattr(L.SubjectTracker, "step", counting)
    convert(opts)
    assert counted["n"] == 10  # frames 20..29 only: 0..19 came from the work folder
    r = result_format.load(out)
    assert list(r["frame_index"]) == list(range(30)) and r["valid"].all()
    assert not (tmp_path / "res.npz.work").exists()


def _with_chunk(fn, chunk):
    def wrapped(*a, **kw):
        kw["chunk"] = chunk
        return fn(*a, **kw)

    return wrapped


def test_cli_json_progress_is_a_clean_protocol_stream(clip, tmp_path):
    """Real process, real stdout: every line parses; hello first, done last; exit 0."""
    out = tmp_path / "cli.npz"
    code = (
        "import sys\n"
        "from synthetic.standins import install_standins; install_standins()\n"
        "from hsmr_backend.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    src = os.pathsep.join(map(str, (ROOT / "backend", ROOT / "backend" / "contract", ROOT)))
    env = dict(os.environ, PYTHONPATH=src)
    p = subprocess.run([sys.executable, "-c", code, "convert", str(clip), "-o", str(out), "--frames", "0:8",
                        "--progress", "json", "--mode", "keypoints", "--no-overlay", "--no-plot"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    msgs = [protocol.parse_line(line) for line in p.stdout.splitlines()]
    assert msgs[0].type == "hello" and msgs[-1].type == "done"
    assert msgs[-1]["result"] == str(out) and json.loads(p.stdout.splitlines()[-1])["stage"] == "done"
    prog = [m for m in msgs if m.type == "progress"]
    assert prog and all(m["total"] == 8 for m in prog if m["stage"] == "landmarks")
    assert any(m.type == "log" and "subject" in m["message"] for m in msgs)
    result_format.load(out)


@pytest.mark.skipif(not all(
    (ROOT / "backend" / "hsmr_backend" / f).exists() for f in ("fit", "world.py", "skel/landmarks.py")
), reason="the fitter / world frame / landmark regressor parts are not merged yet")
@pytest.mark.slow
def test_real_parts_end_to_end(clip, tmp_path):
    from hsmr_backend.convert import ConvertOptions, convert

    out = tmp_path / "real.npz"
    s = convert(ConvertOptions(str(clip), str(out), mode="keypoints", frames="0:12", overlay=True, plot=True))
    assert len(s.outputs) == 3 and all(Path(p).is_file() for p in s.outputs)
    r = result_format.load(out)
    assert r["valid"].all() and str(r["body"]) == "open"
    lim = r["dof_limits"]
    finite = np.isfinite(lim).all(1)
    q = r["poses"][:, finite]
    assert np.all(q >= lim[finite, 0] - 1e-5) and np.all(q <= lim[finite, 1] + 1e-5)
    assert np.median(r["reprojection_error_px"][r["valid"]]) < 40
    meta = json.loads(str(r["meta_json"]))
    views = meta["views"]  # the subject faces the camera, 20-50° off
    assert views["back"] == 0 and sum(views.values()) == 12
    resting = r["foot_resting"]  # per frame and foot point, the spells the share in the meta counts
    assert resting.shape == (12, 4) and resting.any(axis=1).mean() == pytest.approx(meta["feet_resting_share"])


@pytest.mark.slow
def test_an_official_format_skel_file_runs_end_to_end(clip, tmp_path):
    """``--body skel_male.pkl``: a generated file in the official layout (SMPL topology, synthetic/fake_skel.py, its
    face, finger and foot vertices where the smplx ids of the "skel" landmark regressor expect them) drives the
    whole pipeline: MediaPipe -> fit with that regressor -> world -> result file."""
    from hsmr_backend.convert import ConvertOptions, convert
    from synthetic.fake_skel import write_fake_skel_pkl

    body = write_fake_skel_pkl(tmp_path / "skel_male.pkl")
    out = tmp_path / "skel.npz"
    convert(ConvertOptions(str(clip), str(out), mode="keypoints", frames="0:20", body=str(body), overlay=False,
                           plot=False))
    r = result_format.load(out)
    assert str(r["body"]) == "skel_male" and r["valid"].all() and r["skin_rest_verts"].shape == (6890, 3)
    # the file's pose correctives and their per-frame weights travel to the add-on (shape keys)
    assert r["skin_posedirs"].shape == (207, 6890, 3) and r["pose_features"].shape == (20, 207)
    assert np.abs(r["pose_features"]).max() > 0
    assert r["reprojection_error_px"].mean() < 15  # 7 px here; a regressor reading the wrong vertices: 220
    lim = r["dof_limits"]
    finite = np.isfinite(lim).all(1)
    assert np.all(r["poses"][:, finite] >= lim[finite, 0] - 1e-5)
    assert np.all(r["poses"][:, finite] <= lim[finite, 1] + 1e-5)
    feet = r["joints_world"][:, [4, 5, 9, 10], 2].min(1)
    assert np.abs(feet).max() < 0.05


def test_overlay_projection_and_drawing():
    from hsmr_backend import overlay

    K = np.array([[1000.0, 0, 320], [0, 1000.0, 240], [0, 0, 1]])
    pts = np.array([[0, 0, 2.0], [0.2, -0.1, 2.0], [1.0, 1.0, 4.0]])
    np.testing.assert_allclose(overlay.project(pts, K), [[320, 240], [420, 190], [570, 490]])
    frame = np.zeros((480, 640, 3), np.uint8)
    j2d = np.tile([320.0, 240.0], (24, 1))
    j2d[1] = [100, 100]  # femur_r: a right-side joint, drawn blue (BGR 255,160,0)
    overlay.draw_frame(frame, j2d, np.array(dofs.PARENTS), valid=True)
    assert tuple(frame[100, 100]) == (255, 160, 0)
    assert frame[170, 210].any()  # on the line from the pelvis (320,240) to it
    assert not frame[400, 50].any()
    lost = overlay.draw_frame(np.zeros((480, 640, 3), np.uint8), j2d, np.array(dofs.PARENTS), valid=False)
    assert lost[:, :, 2].sum() > frame[:, :, 2].sum()  # the red "subject lost" note


def test_rest_arrays_rebuild_the_posed_body_by_linear_blend_skinning():
    """What the result file stores (rest joints, shaped skin, weights, bone meshes and their joints) must
    reproduce the body model's own posed skin and bones through plain LBS with its global transforms."""
    import torch

    from hsmr_backend.skel import load_body

    try:
        model = load_body("open")
    except Exception as e:  # noqa: BLE001 - the open body asset is another part
        pytest.skip(f"open body not available: {e}")
    betas = np.zeros(model.num_betas, np.float32)
    betas[0] = 1.0
    a = model.rest_arrays(betas)
    q = torch.tensor(np.random.default_rng(0).uniform(-0.3, 0.3, (1, 46)), dtype=torch.float32)
    out = model(q, torch.tensor(betas)[None], torch.zeros(1, 3), pose_correctives=False, bone_mesh=True)
    G = out.global_transforms[0].double().numpy()
    J = a["rest_joints"].astype(np.float64)
    np.testing.assert_allclose(J, out.joints_tpose[0].numpy(), atol=1e-6)
    # bring each joint's rest position to the origin first: A_j = G_j [I | -J_j]
    A = G.copy()
    A[:, :3, 3] -= np.einsum("jab,jb->ja", G[:, :3, :3], J)
    W = a["skin_weights"].astype(np.float64)
    np.testing.assert_allclose(W.sum(1), 1.0, atol=1e-5)
    Av = np.einsum("vj,jab->vab", W, A)
    skin = np.einsum("vab,vb->va", Av[:, :3, :3], a["skin_rest_verts"]) + Av[:, :3, 3]
    np.testing.assert_allclose(skin, out.skin_verts[0].numpy(), atol=1e-5)
    k = a["bone_vertex_joint"]
    bones = np.einsum("nab,nb->na", A[k, :3, :3], a["bone_rest_verts"]) + A[k, :3, 3]
    np.testing.assert_allclose(bones, out.bone_verts[0].numpy(), atol=1e-5)
    assert a["skin_faces"].max() < len(a["skin_rest_verts"]) and a["bone_faces"].max() < len(k)
    assert "skin_posedirs" not in a  # the open body has no pose correctives


def test_rest_arrays_carry_an_official_bodys_pose_correctives(tmp_path):
    """A body file with pose correctives (official layout): the result's (207, V, 3) blend shapes are the file's
    (V, 3, 207) ``posedirs``, and the bone mesh's posing joints are its one-hot ``skel_weights``."""
    import pickle

    from hsmr_backend.skel import SKEL
    from synthetic.fake_skel import write_fake_skel_pkl

    path = write_fake_skel_pkl(tmp_path / "skel_male.pkl")
    with path.open("rb") as fh:
        raw = pickle.load(fh)
    a = SKEL.from_file(path).rest_arrays(np.zeros(10, np.float32))
    np.testing.assert_array_equal(a["skin_posedirs"], np.asarray(raw["posedirs"], np.float32).transpose(2, 0, 1))
    w = raw["skel_weights"]
    w = w.toarray() if hasattr(w, "toarray") else np.asarray(w)
    np.testing.assert_array_equal(a["bone_vertex_joint"], np.argmax(w, axis=1))
    assert a["skin_posedirs"].dtype == np.float32 and a["bone_vertex_joint"].dtype == np.int32


def test_auto_mode_runs_the_hsmr_network_when_weights_are_found(standins, clip, tmp_path, monkeypatch):
    """A tiny network in the official release layout stands for the real weights: auto mode must find it,
    run it on the subject's crops and hand its per-frame predictions to the fit."""
    pytest.importorskip("hsmr_backend.hsmr.predictor")
    from hsmr_backend.convert import ConvertOptions, convert
    from hsmr_backend.progress import Reporter
    from tests.support.hsmr_release import random_net, write_release

    rel = write_release(tmp_path / "weights", random_net())
    monkeypatch.setenv("HSMR_WEIGHTS", str(rel))
    monkeypatch.setenv("HSMR_CACHE", str(tmp_path / "cache"))
    notes = []

    class Rec(Reporter):
        def info(self, message, level="info"):
            notes.append(message)

    out = tmp_path / "h.npz"
    s = convert(ConvertOptions(str(clip), str(out), frames="0:5", overlay=False, plot=False), Rec("none"))
    assert s.mode == "hsmr" and any(n.startswith("mode: hsmr") for n in notes)
    init = standins["init"]
    assert init["poses"].shape == (5, 46) and init["betas"].shape == (5, 10) and init["cam_t"].shape == (5, 3)
    assert np.isfinite(init["poses"]).all() and np.abs(init["poses"]).sum(1).min() > 0  # every frame predicted
    assert json.loads(str(result_format.load(out)["meta_json"]))["mode"] == "hsmr"
    # keypoints mode asked for explicitly ignores the weights
    convert(ConvertOptions(str(clip), str(out), mode="keypoints", frames="0:3", overlay=False, plot=False))
    assert standins["init"] is None
