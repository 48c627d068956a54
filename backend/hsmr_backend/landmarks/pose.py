"""MediaPipe plumbing: Pose graphs with their start-up log noise filtered, one run on a window of a frame, and
the search for every person in one frame.

Legacy MediaPipe Pose (0.10.21, ``model_complexity=1``: the model in the wheel, offline) returns one person per call, so
``find_people`` runs it on the whole (downscaled) frame, greys out the person found and runs again, then on
overlapping tiles (small, far people), until nobody new appears. Candidates are numbered largest first.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

import cv2
import numpy as np

from . import people as P
from .names import CROP_PX, N_KP, WINDOW_PAD

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings and up only
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# 1: the "full" landmark model, the one the mediapipe wheel carries; 2 ("heavy") is not in the wheel (MediaPipe
# downloads it on first use, which this product never relies on): benchmarks set it to compare the two
MODEL_COMPLEXITY = 1
FULL_PX = 640  # long side of the downscaled full frame used to look for people
MAX_CANDIDATES = 6

# What MediaPipe's C++ code (absl and TFLite logging, which ignore GLOG_minloglevel) writes straight to file
# descriptor 2 when a graph starts and runs its first frames: harmless, but it lands in the middle of the progress
# bar. Those lines are dropped; anything else written meanwhile is passed on.
NATIVE_NOISE = (
    "Created TensorFlow Lite XNNPACK delegate",
    "All log messages before absl::InitializeLog()",
    "inference_feedback_manager.cc",
    "landmark_projection_calculator.cc",
)
NOISY_CALLS = 3  # a graph logs on creation and in its first inferences that find a person


@contextlib.contextmanager
def native_stderr_filtered(noise: tuple[str, ...] = NATIVE_NOISE) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file while the block runs, then write back the lines that do not
    contain any of ``noise``. Without a real stderr (an embedding host, a captured stream) it does nothing."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not any(n in line for n in noise)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class QuietPose:
    """A MediaPipe Pose that runs with the native log noise filtered until it has found a person ``NOISY_CALLS``
    times: the landmark model logs when it first runs, which is the first call that finds someone, however many
    empty frames came before."""

    def __init__(self, pose) -> None:
        self._pose, self._found = pose, 0

    def process(self, rgb: np.ndarray):
        if self._found >= NOISY_CALLS:
            return self._pose.process(rgb)
        with native_stderr_filtered():
            result = self._pose.process(rgb)
        self._found += result.pose_landmarks is not None
        return result

    def reset(self) -> None:  # a restarted graph logs again
        with native_stderr_filtered():
            self._pose.reset()
        self._found = 0

    def close(self) -> None:
        self._pose.close()


def new_pose(static: bool) -> QuietPose:
    import mediapipe as mp  # deferred: importing it costs ~1 s

    with native_stderr_filtered():
        pose = mp.solutions.pose.Pose(
            static_image_mode=static,
            model_complexity=MODEL_COMPLEXITY,
            smooth_landmarks=False,  # the fitter smooths; MediaPipe's filter would blur across crop changes
            enable_segmentation=False,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        # the graph starts its models on its own threads and logs after the constructor returns: one empty frame
        # waits for that start inside the filter (nobody in it, so no tracking state is left behind)
        pose.process(np.zeros((64, 64, 3), np.uint8))
    return QuietPose(pose)


def _frame_landmarks(result, ox: float, oy: float, sx: float, sy: float) -> tuple[np.ndarray, np.ndarray] | None:
    """MediaPipe result on an image of size (sx, sy) placed at (ox, oy) -> (kp2d, kp3d) in frame pixels."""
    if result.pose_landmarks is None:
        return None
    kp2d = np.empty((N_KP, 3), np.float32)
    for i, lm in enumerate(result.pose_landmarks.landmark):
        presence = lm.presence if lm.HasField("presence") else 1.0
        kp2d[i] = (ox + lm.x * sx, oy + lm.y * sy, lm.visibility * presence)
    kp3d = np.zeros((N_KP, 3), np.float32)
    if result.pose_world_landmarks is not None:
        for i, lm in enumerate(result.pose_world_landmarks.landmark):
            kp3d[i] = (lm.x, lm.y, lm.z)
    np.clip(kp2d[:, 2], 0.0, 1.0, out=kp2d[:, 2])
    return kp2d, kp3d


def run_on(pose, frame: np.ndarray, window: np.ndarray, max_px: int, hide: np.ndarray | None = None,
           keep: np.ndarray | None = None):
    """Run Pose on ``frame[window]`` downscaled to ``max_px``; landmarks come back in frame pixels.

    ``hide``: a box (frame pixels) greyed out first, except where it overlaps ``keep`` (someone else who
    stands next to or in front of the subject, so MediaPipe cannot pick them).
    """
    x0, y0, x1, y1 = (int(v) for v in window)
    crop = frame[y0:y1, x0:x1]
    if hide is not None:
        crop = crop.copy()
        hx0, hy0, hx1, hy1 = (int(v) for v in np.round(hide - [x0, y0, x0, y0]))
        saved = None
        if keep is not None:
            kx0, ky0, kx1, ky1 = (int(v) for v in np.round(keep - [x0, y0, x0, y0]))
            kx0, ky0 = max(kx0, 0), max(ky0, 0)
            saved = (kx0, ky0, crop[ky0:max(ky1, ky0), kx0:max(kx1, kx0)].copy())
        crop[max(hy0, 0):max(hy1, 0), max(hx0, 0):max(hx1, 0)] = 127
        if saved is not None:
            kx0, ky0, patch = saved
            crop[ky0:ky0 + patch.shape[0], kx0:kx0 + patch.shape[1]] = patch
    s = min(1.0, max_px / max(crop.shape[:2]))
    if s < 1.0:
        # bilinear: MediaPipe resamples to 256 px anyway; INTER_AREA costs ~30% more CPU for the same landmarks
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))),
                          interpolation=cv2.INTER_LINEAR)
    rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    return _frame_landmarks(pose.process(rgb), x0, y0, x1 - x0, y1 - y0)



def find_people(frame: np.ndarray, pose=None, max_people: int = MAX_CANDIDATES, tile_div: int = 2,
                tile_step: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every person MediaPipe can find in one frame: [(box xyxy, kp2d)], largest first."""
    pose = pose or new_pose(static=True)
    h, w = frame.shape[:2]
    work = frame.copy()
    found: list[tuple[np.ndarray, np.ndarray]] = []

    def add(lm) -> bool:
        if lm is None:
            return False
        box = P.box_from_points(lm[0][:, :2], lm[0][:, 2])
        if box is None or any(P.box_iou(box, b) > 0.3 for b, _ in found):
            return False
        if not P.plausible_person(box, lm[0], (w, h)):
            return False
        found.append((box, lm[0]))
        # grey out this person so the next call finds someone else
        pad = 0.08 * P.box_size(box)
        x0, y0 = int(max(box[0] - pad, 0)), int(max(box[1] - pad, 0))
        x1, y1 = int(min(box[2] + pad, w)), int(min(box[3] + pad, h))
        work[y0:y1, x0:x1] = 127
        return True

    full = np.array([0, 0, w, h])
    while len(found) < max_people and add(run_on(pose, work, full, FULL_PX)):
        pass
    # overlapping tiles (half the frame each) for people too small for the whole-frame pass
    side = max(w, h) // tile_div

    def starts(length: int) -> np.ndarray:  # tiles at most 1/tile_step of a tile apart
        return np.linspace(0, max(length - side, 0), int(np.ceil(max(length - side, 0) / (side / tile_step))) + 1)

    for ty in starts(h):
        for tx in starts(w):
            if len(found) >= max_people:
                break
            tile = np.array([int(tx), int(ty), int(min(tx + side, w)), int(min(ty + side, h))])
            add(run_on(pose, work, tile, FULL_PX // 2))
    # MediaPipe now and then sees a "person" in clutter; a real one is found again on a crop of its own
    confirmed = []
    for box, kp in found:
        again = run_on(pose, frame, P.person_window(box, WINDOW_PAD, (w, h)), CROP_PX)
        b2 = None if again is None else P.box_from_points(again[0][:, :2], again[0][:, 2])
        if b2 is not None and P.box_iou(box, b2) > 0.5:
            confirmed.append((box, kp))
    confirmed.sort(key=lambda f: -(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))
    return confirmed
