"""The subject's landmarks on real footage: the right person, every frame, never someone else.

The clips (../shared/footage, BSD-3, pose2sim demo data): in ``single_person_cam0*`` the subject does lunges on
force plates in the foreground while a second person stands still in the background (far left in cam01,
right of the subject in cam02). In ``two_people_cam01`` a second, larger person stands in front and the two
overlap near the end. Regions below were read off frames dumped to PNG and looked at.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hsmr_backend import landmarks as L
from hsmr_backend import video as V
from hsmr_backend.landmarks import people as T

SAMPLE_CLIP = Path(__file__).resolve().parents[2] / "assets" / "sample_clip.mp4"

pytestmark = pytest.mark.slow


def _clip(shared_dir, name: str) -> V.FrameSource:
    return V.open_source(shared_dir / "footage" / f"{name}.mp4")


ALL = V.FrameRange()


def _run(src: V.FrameSource, subject="largest", rng=ALL, **kw) -> L.LandmarkTrack:
    return L.detect_landmarks(src.frames(rng), subject, fps=src.fps / rng.stride, image_size=src.size,
                              total=src.selected_count(rng), **kw)


def _hip(track: L.LandmarkTrack) -> np.ndarray:
    return (track.kp2d[:, 23, :2] + track.kp2d[:, 24, :2]) / 2


# The background person's place, read off frames of each clip (fractions of width, height; xyxy). They stand
# still all through the clip.
BACKGROUND = {
    "single_person_cam01": (0.0, 0.17, 0.11, 0.40),
    "single_person_cam02": (0.71, 0.27, 0.77, 0.46),
}


def _background(track: L.LandmarkTrack, clip: str) -> np.ndarray:
    w, h = track.image_size
    return np.array(BACKGROUND[clip]) * [w, h, w, h]


def _assert_no_jumps(track: L.LandmarkTrack, limit: float = 0.1) -> None:
    """Between consecutive valid frames the hip moves less than ``limit`` of the subject's size."""
    v = track.valid
    hip = _hip(track)[v]
    size = np.array([T.box_size(b) for b in track.boxes[v]])
    steps = np.linalg.norm(np.diff(hip, axis=0), axis=1) / size[1:]
    assert steps.max() < limit, (steps.argmax(), steps.max())


@pytest.fixture(scope="module")
def cam01(shared_dir) -> L.LandmarkTrack:
    return _run(_clip(shared_dir, "single_person_cam01"))


def test_cam01_subject_on_the_plates_every_frame(cam01):
    w, h = cam01.image_size
    assert len(cam01) == 100 and cam01.valid.all()
    assert list(cam01.frame_index) == list(range(100))
    assert "largest" in cam01.subject_note
    bg = _background(cam01, "single_person_cam01")  # standing at the far left, never to be followed
    hip = _hip(cam01)
    assert np.all((hip[:, 0] > 0.3 * w) & (hip[:, 0] < 0.75 * w)), hip[:, 0]  # over the plates
    assert np.all((hip[:, 1] > 0.35 * h) & (hip[:, 1] < 0.55 * h)), hip[:, 1]
    assert all(T.box_iou(b, bg) < 0.05 for b in cam01.boxes)  # (an outstretched arm may reach it)
    _assert_no_jumps(cam01)
    # landmarks are confident and the world landmarks are metric and hip-centred
    assert np.median(cam01.kp2d[:, :, 2]) > 0.8
    pelvis = (cam01.kp3d[:, 23] + cam01.kp3d[:, 24]) / 2
    assert np.abs(pelvis).max() < 0.05
    leg = np.linalg.norm(cam01.kp3d[:, 23] - cam01.kp3d[:, 25], axis=1)  # hip -> knee, metres
    assert 0.25 < np.median(leg) < 0.6


def test_cam02_subject_never_becomes_the_background_person(shared_dir):
    tr = _run(_clip(shared_dir, "single_person_cam02"))
    w, _ = tr.image_size
    assert tr.valid.all()
    bg = _background(tr, "single_person_cam02")  # standing right of the subject, further back
    hip = _hip(tr)
    assert np.all(hip[:, 0] < bg[0] - 0.05 * w), (hip[:, 0].max(), bg)
    assert all(T.box_iou(b, bg) < 0.2 for b in tr.boxes)  # (an outstretched arm may reach over them)
    _assert_no_jumps(tr)
    # The subject faces the camera throughout (looked at), but MediaPipe swaps left and right for frames
    # 41-74 (most of them) and 81: after relabelling, the left shoulder is on the image's right in every frame
    # where the shoulders are apart.
    assert tr.stats["left_right_swaps"] >= 20
    left, right = L.KEYPOINT_NAMES.index("left_shoulder"), L.KEYPOINT_NAMES.index("right_shoulder")
    dx = tr.kp2d[:, left, 0] - tr.kp2d[:, right, 0]
    apart = np.abs(dx) > 0.02 * tr.image_size[1]
    assert apart.sum() >= 95 and np.all(dx[apart] > 0), np.flatnonzero(apart & (dx < 0))


def test_two_people_chosen_subject_kept_through_occlusion(shared_dir):
    src = _clip(shared_dir, "two_people_cam01")
    tr = _run(src, subject="1")  # candidate 1 = the second largest: the man behind
    w, h = tr.image_size
    assert "candidate 1" in tr.subject_note
    hip = _hip(tr)
    v = tr.valid
    # when the woman in front covers him he is lost for a few frames, never replaced by her
    assert v.sum() >= 80, np.nonzero(~v)
    assert np.all(hip[v, 1] < 0.55 * h), hip[v, 1].max()  # his hip is far above hers (she is nearer)
    assert np.all(tr.kp2d[~v] == 0) and np.all(tr.kp3d[~v] == 0)
    _assert_no_jumps(tr)
    # the default (largest) is the woman in front, followed with a stride
    rng = V.FrameRange(0, None, 3)
    tw = _run(src, rng=rng)
    assert list(tw.frame_index) == list(range(0, 100, 3))
    hip_w = _hip(tw)[tw.valid]
    assert tw.valid.sum() >= 0.8 * len(tw) and np.all(hip_w[:, 1] > 0.6 * h)


def test_subject_by_box_picks_the_background_person(shared_dir, cam01):
    bg = _background(cam01, "single_person_cam01")
    box = f"{bg[0]:.0f},{bg[1]:.0f},{bg[2] - bg[0]:.0f},{bg[3] - bg[1]:.0f}"
    tr = _run(_clip(shared_dir, "single_person_cam01"), subject=box, rng=V.FrameRange(0, 20))
    assert tr.valid.all()
    assert all(T.box_iou(b, bg) > 0.3 for b in tr.boxes)
    hip = _hip(tr)
    assert np.all((hip[:, 0] > bg[0]) & (hip[:, 0] < bg[2]) & (hip[:, 1] > bg[1]) & (hip[:, 1] < bg[3]))


def test_interrupted_run_resumes_from_saved_chunks(shared_dir, cam01, tmp_path):
    src = _clip(shared_dir, "single_person_cam01")
    rng = V.FrameRange(0, 40)
    work = L.WorkDir(tmp_path / "r.npz.work", {"clip": "cam01", "range": "0:40"})

    def crashing():
        for i, f in src.frames(rng):
            if i == 27:
                raise KeyboardInterrupt
            yield i, f

    with pytest.raises(KeyboardInterrupt):
        L.detect_landmarks(crashing(), "largest", fps=src.fps, image_size=src.size, work=work, chunk=10)
    saved = work.load()
    assert saved is not None and list(saved[0]["frame_index"]) == list(range(20))
    # a different key (other options) must not reuse the frames
    assert L.WorkDir(work.path, {"clip": "cam01", "range": "0:50"}).load() is None
    tr = L.detect_landmarks(src.frames(V.FrameRange(20, 40)), "largest", fps=src.fps, image_size=src.size,
                            work=work, resume=saved, chunk=10)
    assert list(tr.frame_index) == list(range(40)) and tr.valid.all()
    assert tr.subject_note == cam01.subject_note
    size = np.array([T.box_size(b) for b in cam01.boxes[:40]])
    err = np.linalg.norm(tr.kp2d[:, :, :2] - cam01.kp2d[:40, :, :2], axis=2).mean(1) / size
    assert err.max() < 0.05, err
    work.remove()
    assert not work.path.exists()


def test_no_person_is_a_clear_error():
    blank = np.full((480, 640, 3), 90, np.uint8)
    with pytest.raises(L.NoPersonError, match="no person"):
        L.detect_landmarks(iter([(0, blank), (1, blank)]), "largest")


def test_rotation_tagged_phone_clip_gives_the_same_landmarks(shared_dir, cam01, tmp_path):
    """Store the real clip sideways with a 90-degree display tag (what phones do): the pipeline must turn it
    upright and find the same subject at the same places."""
    import cv2

    from tests.support.video import tag_rotation

    src = _clip(shared_dir, "single_person_cam01")
    plain = tmp_path / "sideways.mp4"
    w, h = src.size
    wr = cv2.VideoWriter(str(plain), cv2.VideoWriter_fourcc(*"mp4v"), src.fps, (h, w))
    for _, f in src.frames(V.FrameRange(0, 15)):
        wr.write(cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE))
    wr.release()
    tagged = V.open_source(tag_rotation(plain, tmp_path / "tagged.mp4", 90))
    assert tagged.size == (w, h) and tagged.rotation == 90
    tr = _run(tagged)
    assert tr.valid.all() and tr.image_size == (w, h)
    size = np.array([T.box_size(b) for b in cam01.boxes[:15]])
    err = np.linalg.norm(_hip(tr) - _hip(cam01)[:15], axis=1) / size
    assert err.max() < 0.03, err


def _stderr_of(code: str) -> str:
    import subprocess
    import sys
    from pathlib import Path

    backend = Path(__file__).resolve().parents[2] / "backend"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": f"{backend}:{backend / 'contract'}"})
    assert run.returncode == 0, run.stderr
    return run.stderr


def test_native_log_noise_is_dropped_and_the_rest_passed_on():
    """Lines written straight to file descriptor 2 inside the filter: MediaPipe's known noise is dropped, anything
    else comes out after it, and writes outside it are untouched."""
    err = _stderr_of(
        "import os\n"
        "from hsmr_backend import landmarks as L\n"
        "os.write(2, b'before\\n')\n"
        "with L.native_stderr_filtered():\n"
        "    os.write(2, b'W0000 inference_feedback_manager.cc:114] Feedback manager requires ...\\n')\n"
        "    os.write(2, b'a real error\\n')\n"
        "os.write(2, b'after\\n')\n")
    assert err.splitlines() == ["before", "a real error", "after"]


def test_mediapipe_says_nothing_on_stderr_when_it_starts():
    """A real Pose graph, created and run on a few frames (its noisy start), writes nothing to stderr."""
    err = _stderr_of(
        "import numpy as np\n"
        "from hsmr_backend import landmarks as L\n"
        "pose = L.new_pose(static=False)\n"
        "for _ in range(4):\n"
        "    pose.process(np.zeros((256, 256, 3), np.uint8))\n"
        "pose.reset()\n"
        "pose.process(np.zeros((256, 256, 3), np.uint8))\n"
        "pose.close()\n")
    assert err == ""


def test_mediapipe_says_nothing_on_stderr_when_the_subject_comes_late():
    """Empty frames first, then one with a person: the landmark model's first run (which logs) is still filtered."""
    err = _stderr_of(
        "import cv2, numpy as np\n"
        "from hsmr_backend import landmarks as L\n"
        f"cap = cv2.VideoCapture({str(SAMPLE_CLIP)!r})\n"
        "person = cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB)\n"
        "pose = L.new_pose(static=False)\n"
        "for _ in range(4):\n"
        "    pose.process(np.zeros((256, 256, 3), np.uint8))\n"
        "assert pose.process(person).pose_landmarks is not None\n"
        "pose.close()\n")
    assert err == ""
