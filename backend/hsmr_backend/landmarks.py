"""Per-frame MediaPipe pose landmarks of ONE chosen subject, kept through the clip.

Legacy MediaPipe Pose (0.10.21, ``model_complexity=1``, bundled model, offline) returns one person per call,
so people are handled here:

1. *Candidates*: on the first frame that shows anyone, run Pose on the whole (downscaled) frame, grey out
   the person found and run again, then on overlapping tiles (small, far people), until nobody new appears.
   Candidates are numbered largest first.
2. *Choice*: ``--subject`` picks one (track.SubjectChoice); the note says which and lists the others.
3. *Tracking*: every frame, Pose runs in tracking mode on a square crop around the subject's predicted box
   (downscaled to ``CROP_PX``), so people outside the crop cannot be picked up. The crop window stays put while
   the subject is well inside it (MediaPipe's own tracking then stays valid) and is re-centred, with a tracker
   reset, when the subject nears its edge.
4. *Identity*: a result is accepted only if its box agrees with the prediction (overlap / centre distance /
   size) and its torso colours match the subject's. Otherwise the frame is marked invalid (zeros), never
   filled with someone else; the search window grows while the subject stays lost.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import track as T

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings and up only
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
N_KP = len(KEYPOINT_NAMES)
# each landmark's mirror partner (left <-> right; the nose is its own)
MIRROR = np.array([KEYPOINT_NAMES.index(n.replace("left", "#").replace("right", "left").replace("#", "right"))
                   for n in KEYPOINT_NAMES])
# landmarks that decide whether a frame came out mirrored: shoulders, elbows, wrists, hips (the legs are
# judged on their own, see leg_swapped_frames: MediaPipe also swaps them alone)
FLIP_EVIDENCE = np.array([11, 12, 13, 14, 15, 16, 23, 24])
FLIP_TORSO = np.array([11, 12, 23, 24])  # the fallback when the limbs are garbled
FLIP_NEED = 5  # of FLIP_EVIDENCE seen in both frames
# MediaPipe also swaps the legs alone (the hips stay), typically where they cross in a side view
LEGS = np.array([25, 26, 27, 28, 29, 30, 31, 32])  # knees, ankles, heels, foot tips
LEG_SWAP = np.arange(33)
LEG_SWAP[LEGS] = MIRROR[LEGS]

FULL_PX = 640  # long side of the downscaled full frame used to look for people
CROP_PX = 448  # long side of the subject crop handed to MediaPipe (its models work at 224-256 px)
WINDOW_PAD = 0.3  # crop = subject box grown by this share of its long side on each side
WINDOW_MARGIN = 0.05  # re-centre the crop when the subject comes closer than this to its edge
MAX_CANDIDATES = 6
LONG_LOSS = 30  # processed frames
DISTRACTOR_FRAMES = 30  # keep hiding a person mistaken for the subject for this many frames

Progress = Callable[[str, int, int], None]  # (stage, frames done, total)


class NoPersonError(RuntimeError):
    """Nobody was found in the footage."""


@dataclass
class LandmarkTrack:
    """The subject's landmarks for every processed frame (T frames)."""

    frame_index: np.ndarray  # (T,) int, source frame numbers
    fps: float  # of the source footage (the caller divides by the stride)
    image_size: tuple[int, int]  # (W, H) upright
    kp2d: np.ndarray  # (T,33,3) float32: x, y pixels, confidence (visibility*presence); 0 where lost
    kp3d: np.ndarray  # (T,33,3) float32: MediaPipe world landmarks, metres, hip-centred; 0 where lost
    valid: np.ndarray  # (T,) bool
    boxes: np.ndarray  # (T,4) float32 xyxy of the subject (predicted box where lost)
    subject_note: str = ""
    candidates: list[list[float]] = field(default_factory=list)  # xyxy of every person found at the start
    stats: dict = field(default_factory=dict)  # e.g. tracker_resets (how often MediaPipe re-detected)

    def __len__(self) -> int:
        return len(self.frame_index)


# ---------------------------------------------------------------- MediaPipe


# What MediaPipe's C++ code (absl and TFLite logging, which ignore GLOG_minloglevel) writes straight to file
# descriptor 2 when a graph starts and runs its first frames: harmless, but it lands in the middle of the progress
# bar. Those lines are dropped; anything else written meanwhile is passed on.
NATIVE_NOISE = (
    "Created TensorFlow Lite XNNPACK delegate",
    "All log messages before absl::InitializeLog()",
    "inference_feedback_manager.cc",
    "landmark_projection_calculator.cc",
)
NOISY_CALLS = 3  # a graph logs on creation and in its first inferences


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


class _QuietPose:
    """A MediaPipe Pose whose first ``NOISY_CALLS`` inferences run with the native log noise filtered."""

    def __init__(self, pose) -> None:
        self._pose, self._calls = pose, 0

    def process(self, rgb: np.ndarray):
        if self._calls >= NOISY_CALLS:
            return self._pose.process(rgb)
        self._calls += 1
        with native_stderr_filtered():
            return self._pose.process(rgb)

    def reset(self) -> None:  # a restarted graph logs again
        with native_stderr_filtered():
            self._pose.reset()
        self._calls = 0

    def close(self) -> None:
        self._pose.close()


def _new_pose(static: bool) -> _QuietPose:
    import mediapipe as mp  # deferred: importing it costs ~1 s

    with native_stderr_filtered():
        return _QuietPose(mp.solutions.pose.Pose(
            static_image_mode=static,
            model_complexity=1,
            smooth_landmarks=False,  # the fitter smooths; MediaPipe's filter would blur across crop changes
            enable_segmentation=False,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        ))


def _landmarks(result, ox: float, oy: float, sx: float, sy: float) -> tuple[np.ndarray, np.ndarray] | None:
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


def _run_on(pose, frame: np.ndarray, window: np.ndarray, max_px: int, hide: np.ndarray | None = None,
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
    return _landmarks(pose.process(rgb), x0, y0, x1 - x0, y1 - y0)


MIN_PERSON_FRACTION = 0.08  # people smaller than this share of the frame's long side are too small to fit


def plausible_person(box: np.ndarray, kp2d: np.ndarray, image_size: tuple[int, int]) -> bool:
    """Reject MediaPipe's occasional 'person' on clutter: too small, or a torso out of proportion."""
    size = T.box_size(box)
    if size < MIN_PERSON_FRACTION * max(image_size):
        return False
    if np.any(kp2d[[11, 12, 23, 24], 2] < 0.5):
        return False
    shoulders, hips = kp2d[[11, 12], :2].mean(0), kp2d[[23, 24], :2].mean(0)
    return bool(np.linalg.norm(shoulders - hips) < 0.55 * size)


def find_people(frame: np.ndarray, pose=None, max_people: int = MAX_CANDIDATES, tile_div: int = 2,
                tile_step: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every person MediaPipe can find in one frame: [(box xyxy, kp2d)], largest first."""
    pose = pose or _new_pose(static=True)
    h, w = frame.shape[:2]
    work = frame.copy()
    found: list[tuple[np.ndarray, np.ndarray]] = []

    def add(lm) -> bool:
        if lm is None:
            return False
        box = T.box_from_points(lm[0][:, :2], lm[0][:, 2])
        if box is None or any(T.box_iou(box, b) > 0.3 for b, _ in found):
            return False
        if not plausible_person(box, lm[0], (w, h)):
            return False
        found.append((box, lm[0]))
        # grey out this person so the next call finds someone else
        pad = 0.08 * T.box_size(box)
        x0, y0 = int(max(box[0] - pad, 0)), int(max(box[1] - pad, 0))
        x1, y1 = int(min(box[2] + pad, w)), int(min(box[3] + pad, h))
        work[y0:y1, x0:x1] = 127
        return True

    full = np.array([0, 0, w, h])
    while len(found) < max_people and add(_run_on(pose, work, full, FULL_PX)):
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
            add(_run_on(pose, work, tile, FULL_PX // 2))
    # MediaPipe now and then sees a "person" in clutter; a real one is found again on a crop of its own
    confirmed = []
    for box, kp in found:
        again = _run_on(pose, frame, T.person_window(box, WINDOW_PAD, (w, h)), CROP_PX)
        b2 = None if again is None else T.box_from_points(again[0][:, :2], again[0][:, 2])
        if b2 is not None and T.box_iou(box, b2) > 0.5:
            confirmed.append((box, kp))
    confirmed.sort(key=lambda f: -(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))
    return confirmed


# ---------------------------------------------------------------- tracking


@dataclass
class TrackerState:
    """What the tracker carries between frames (and across a resumed run)."""

    box: np.ndarray  # last accepted box, xyxy
    velocity: np.ndarray  # box-centre pixels per processed frame
    size_rate: float = 1.0  # box-size ratio per frame (approaching/receding)
    appearance: np.ndarray | None = None  # torso HS histogram of the subject
    lost: int = 0  # processed frames since the last accepted one

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"box": self.box, "velocity": self.velocity, "size_rate": np.float64(self.size_rate),
               "lost": np.int64(self.lost)}
        if self.appearance is not None:
            out["appearance"] = self.appearance
        return out

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> TrackerState:
        return cls(np.asarray(a["box"], float), np.asarray(a["velocity"], float), float(a["size_rate"]),
                   a.get("appearance"), int(a["lost"]))


class SubjectTracker:
    """Follows one subject frame by frame with Pose in tracking mode on a crop around it."""

    def __init__(self, image_size: tuple[int, int], state: TrackerState) -> None:
        self.image_size = image_size
        self.state = state
        self.pose = _new_pose(static=False)
        self.window: np.ndarray | None = None
        self.distractor: np.ndarray | None = None  # box of someone MediaPipe mistook for the subject
        self.distractor_age = DISTRACTOR_FRAMES
        self.resets = 0

    def predicted_box(self) -> np.ndarray:
        s = self.state
        n = s.lost + 1
        c = T.box_center(s.box) + s.velocity * n
        half = (s.box[2:] - s.box[:2]) / 2
        return np.concatenate([c - half, c + half])

    def _accept(self, box: np.ndarray, hist: np.ndarray | None, pred: np.ndarray) -> bool:
        s = self.state
        size = T.box_size(pred)
        slack = 1.0 + 0.5 * s.lost  # a subject lost for longer may have moved further
        centre_ok = np.linalg.norm(T.box_center(box) - T.box_center(pred)) < 0.35 * size * slack
        overlap_ok = T.box_iou(box, pred) > 0.3
        ratio = T.box_size(box) / size
        size_ok = 0.55 / slack < ratio < 1.8 * slack
        # colours drift (light, turning round): after a long loss accept a looser match in the expected place
        looks_ok = T.appearance_distance(hist, s.appearance) < (0.55 if s.lost < LONG_LOSS else 0.7)
        return bool((centre_ok or overlap_ok) and size_ok and looks_ok)

    def step(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """Landmarks of the subject in ``frame`` -> (kp2d, kp3d, box, valid)."""
        s = self.state
        pred = self.predicted_box()
        pad = WINDOW_PAD * (1.0 + 0.5 * min(s.lost, 6))  # look wider while the subject is lost
        if self.window is None or s.lost or not T.contains(self.window, pred, WINDOW_MARGIN, self.image_size):
            self.window = T.person_window(pred, pad, self.image_size)
            self.pose.reset()
            self.resets += 1
        hide = self.distractor if self.distractor_age < DISTRACTOR_FRAMES else None
        for attempt in range(2):
            lm = _run_on(self.pose, frame, self.window, CROP_PX, hide=hide, keep=pred)
            if lm is None:
                break
            kp2d, kp3d = lm
            box = T.box_from_points(kp2d[:, :2], kp2d[:, 2])
            if box is None:
                break
            hist = T.torso_histogram(frame, kp2d)
            if self._accept(box, hist, pred):
                n = s.lost + 1
                new_v = (T.box_center(box) - T.box_center(s.box)) / n
                s.velocity = 0.5 * s.velocity + 0.5 * new_v
                s.box = box
                s.lost = 0
                if hist is not None:
                    s.appearance = hist if s.appearance is None else (0.9 * s.appearance + 0.1 * hist)
                self.distractor_age += 1
                return kp2d, kp3d, box, True
            # it locked onto someone else: remember where they are, hide them and look once more
            self.distractor, self.distractor_age = box, 0
            hide = box
            self.pose.reset()
            if attempt == 0:
                self.resets += 1
        s.lost += 1
        s.velocity *= 0.8  # do not coast far on a stale velocity
        return np.zeros((N_KP, 3), np.float32), np.zeros((N_KP, 3), np.float32), pred, False


# ---------------------------------------------------------------- resumable chunks


class WorkDir:
    """Chunks of finished frames in ``RESULT.npz.work/`` (atomic writes) so a rerun resumes."""

    def __init__(self, path: str | os.PathLike, key: dict) -> None:
        self.path = Path(path)
        self.key = key  # what must match for the saved frames to be reused (video, range, subject, ...)

    def _chunks(self) -> list[Path]:
        return sorted(self.path.glob("chunk_*.npz"))

    def load(self) -> tuple[dict[str, np.ndarray], TrackerState, dict] | None:
        """Finished frames, the tracker state after them and the header; None when nothing reusable."""
        head = self.path / "key.json"
        if not head.is_file():
            return None
        try:
            saved = json.loads(head.read_text())
            if saved.get("key") != self.key:
                return None
            parts: dict[str, list[np.ndarray]] = {}
            state = None
            for c in self._chunks():
                with np.load(c, allow_pickle=False) as z:
                    for k in ("frame_index", "kp2d", "kp3d", "valid", "boxes"):
                        parts.setdefault(k, []).append(z[k])
                    state = {k[6:]: z[k] for k in z.files if k.startswith("state_")}
            if state is None:
                return None
            return ({k: np.concatenate(v) for k, v in parts.items()}, TrackerState.from_arrays(state), saved)
        except (OSError, ValueError, KeyError):
            return None  # a damaged work folder is simply redone

    def start(self, header: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        for c in self.path.glob("*.npz"):  # landmark chunks and later stages' chunks (hsmr_*) of another run
            c.unlink()
        _atomic_write(self.path / "key.json", json.dumps({"key": self.key, **header}).encode())

    def save_chunk(self, n: int, arrays: dict[str, np.ndarray], state: TrackerState) -> None:
        self.save_arrays(f"chunk_{n:06d}", **arrays, **{f"state_{k}": v for k, v in state.to_arrays().items()})

    def save_arrays(self, name: str, **arrays: np.ndarray) -> None:
        """``name.npz`` in the work folder, written atomically: landmark chunks and later stages' chunks (cleared
        with them)."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        _atomic_write(self.path / f"{name}.npz", buf.getvalue())

    def remove(self) -> None:
        if self.path.is_dir():
            for f in self.path.iterdir():
                f.unlink()
            self.path.rmdir()


def _atomic_write(path: Path, data: bytes) -> None:
    """Temporary file, flushed to the disk, then renamed: a crash leaves the old file or the new one, and a failed
    write (full disk) leaves no temporary file behind."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- the whole stage


def _start_subject(
    frames: Iterator[tuple[int, np.ndarray]], choice: T.SubjectChoice, image_size: tuple[int, int],
    emit: Callable[[int, np.ndarray, np.ndarray, np.ndarray, bool], None],
) -> tuple[TrackerState, str, list[np.ndarray], tuple[int, np.ndarray] | None]:
    """Look for people frame by frame until someone is found; frames before that are emitted as lost."""
    finder = _new_pose(static=True)
    zeros = np.zeros((N_KP, 3), np.float32)
    try:
        for idx, frame in frames:
            people = find_people(frame, finder)
            boxes = [b for b, _ in people]
            k = T.choose_subject(boxes, choice, image_size)
            if k < 0 and choice.kind == "box":
                # the user's box holds nobody MediaPipe found on its own: track inside that box directly
                assert choice.box is not None
                box = np.asarray(choice.box, float)
                note = f"subject: the given box {T.describe_box(box)} (no detected person matched it)"
                return TrackerState(box, np.zeros(2)), note, boxes, (idx, frame)
            if k < 0:
                emit(idx, zeros, zeros, np.zeros(4), False)
                continue
            box, kp2d = people[k]
            how = {"largest": "the largest person", "most-central": "the person nearest the image centre",
                   "index": f"candidate {k}", "box": "the person in the given box"}[choice.kind]
            others = "; ".join(f"{i}: {T.describe_box(b)}" for i, b in enumerate(boxes) if i != k)
            note = (f"subject: {how} (candidate {k} of {len(boxes)}, box x,y,w,h {T.describe_box(box)}, "
                    f"first seen at frame {idx})"
                    + (f"; other people: {others} (follow one of them with --subject N)" if others else ""))
            state = TrackerState(box, np.zeros(2), appearance=T.torso_histogram(frame, kp2d))
            return state, note, boxes, (idx, frame)
    finally:
        finder.close()
    raise NoPersonError("no person was found in any frame: check the footage shows a whole person, well lit")


def detect_landmarks(
    frames_iter: Iterable[tuple[int, np.ndarray]],
    subject: str | T.SubjectChoice | None = "largest",
    progress: Progress | None = None,
    *,
    fps: float = 30.0,
    image_size: tuple[int, int] | None = None,
    total: int = 0,
    work: WorkDir | None = None,
    resume: tuple[dict[str, np.ndarray], TrackerState, dict] | None = None,
    chunk: int = 50,
) -> LandmarkTrack:
    """Landmarks of one subject for every frame of ``frames_iter`` ((index, BGR frame) pairs).

    ``work`` saves chunks of finished frames as it goes; ``resume`` (from ``work.load()``) continues a run
    whose frames up to the last chunk are done; ``frames_iter`` then starts after them.
    """
    choice = subject if isinstance(subject, T.SubjectChoice) else T.SubjectChoice.parse(subject)
    cols: dict[str, list] = {"frame_index": [], "kp2d": [], "kp3d": [], "valid": [], "boxes": []}
    done_before = 0

    def emit(idx: int, kp2d: np.ndarray, kp3d: np.ndarray, box: np.ndarray, ok: bool) -> None:
        cols["frame_index"].append(idx)
        cols["kp2d"].append(kp2d)
        cols["kp3d"].append(kp3d)
        cols["boxes"].append(np.asarray(box, np.float32))
        cols["valid"].append(ok)

    if progress is not None:  # something to show while the first frame is searched for people
        progress("landmarks", len(resume[0]["frame_index"]) if resume is not None else 0, total)
    it = iter(frames_iter)
    first = next(it, None)
    if first is None:
        if resume is not None:
            arrays, _, header = resume
            return _make_track(arrays, fps, image_size or tuple(header["image_size"]), header)
        raise NoPersonError("the footage has no frames in the chosen range: check --frames and the file")
    if image_size is None:
        image_size = (first[1].shape[1], first[1].shape[0])

    def chain() -> Iterator[tuple[int, np.ndarray]]:
        yield first
        yield from it

    frames = chain()
    if resume is not None:
        old, state, header = resume
        note, candidates = header["subject_note"], header["candidates"]
        done_before = len(old["frame_index"])
        start = None
    else:
        old = None
        t0 = time.perf_counter()
        state, note, cands, start = _start_subject(frames, choice, image_size, emit)
        candidates = [list(map(float, b)) for b in cands]
        header = {"subject_note": note, "candidates": candidates, "image_size": list(image_size),
                  "search_s": time.perf_counter() - t0}
        if work is not None:
            work.start(header)

    t_track = time.perf_counter()
    tracker = SubjectTracker(image_size, state)
    n_chunk = len(list(work._chunks())) if (work is not None and resume is not None) else 0
    saved_upto = 0

    def flush(final: bool = False) -> None:
        nonlocal n_chunk, saved_upto
        if work is None:
            return
        n = len(cols["frame_index"])
        if n - saved_upto >= chunk or (final and n > saved_upto):
            work.save_chunk(n_chunk, {k: np.asarray(v[saved_upto:n]) for k, v in cols.items()}, tracker.state)
            n_chunk += 1
            saved_upto = n

    def tick() -> None:
        if progress is not None:
            progress("landmarks", done_before + len(cols["frame_index"]), total)

    try:
        rest = frames if start is None else _prepend(start, frames)
        for idx, frame in rest:
            kp2d, kp3d, box, ok = tracker.step(frame)
            emit(idx, kp2d, kp3d, box, ok)
            tick()
            flush()
    finally:
        tracker.pose.close()
    header["tracker_resets"] = header.get("tracker_resets", 0) + tracker.resets
    header["track_s"] = time.perf_counter() - t_track
    flush(final=True)

    arrays = {k: np.asarray(v) for k, v in cols.items()}
    if old is not None:
        arrays = {k: np.concatenate([old[k], arrays[k]]) if len(arrays[k]) else old[k] for k in old}
    return _make_track(arrays, fps, image_size, header)


def _prepend(first: tuple[int, np.ndarray], rest: Iterator[tuple[int, np.ndarray]]):
    yield first
    yield from rest


def mirrored_frames(kp2d: np.ndarray, valid: np.ndarray, min_conf: float = 0.3, decisive: float = 0.5,
                    still: float = 0.08) -> np.ndarray:
    """(T,) bool: frames whose left/right labels MediaPipe swapped against the rest of the clip.

    MediaPipe sometimes takes a person facing the camera for one facing away (or the reverse) for a frame or a
    run of frames, e.g. when the face is hidden or blurred: every left landmark then sits where the right one
    was. Each frame is compared with the last frame that was decided (the "reference"), with its labels as
    they are and mirrored (``MIRROR``), on the limbs of ``FLIP_EVIDENCE`` seen in both: the labelling whose
    mean distance is under ``decisive`` times the other's wins, or the frame keeps its labels when it has
    hardly moved (both under ``still`` of the person's height). Otherwise the shoulders and hips alone
    decide (``FLIP_TORSO``; such a frame does not become the reference); anything else (a garbled frame, left
    and right on top of each other in a side view) is left undecided and keeps its labels. The
    decided frames fall into two classes (mirrored an even or odd number of times since the first one); the
    smaller class is the mirrored one. A turn of the body changes the labels' places gradually, so it is not
    taken for a swap."""
    kp2d = np.asarray(kp2d, dtype=np.float64)
    t = len(kp2d)
    parity = np.full(t, -1)  # -1 undecided, else 0/1 relative to the first decided frame
    opts = (min_conf, decisive, still)
    ref = None
    for i in range(t):
        if not valid[i]:
            continue
        if ref is None:
            if (kp2d[i, FLIP_EVIDENCE, 2] >= min_conf).sum() >= FLIP_NEED:
                ref, parity[i] = i, 0
            continue
        swapped = _labels_swapped(kp2d[i], kp2d[ref], FLIP_EVIDENCE, FLIP_NEED, *opts)
        if swapped is not None:
            parity[i], ref = parity[ref] ^ swapped, i
            continue
        # limbs garbled (e.g. both hands drawn in the middle): the torso alone may still tell; such a frame
        # is decided but does not become the reference
        swapped = _labels_swapped(kp2d[i], kp2d[ref], FLIP_TORSO, 4, *opts)
        if swapped is not None:
            parity[i] = parity[ref] ^ swapped
    # the smaller class is the swapped one (on a tie, the class of the first decided frame is kept)
    swapped_class = 1 if (parity == 1).sum() <= (parity == 0).sum() else 0
    return parity == swapped_class


def _labels_swapped(cur: np.ndarray, ref: np.ndarray, ev: np.ndarray, need: int, min_conf: float, decisive: float,
                    still: float) -> int | None:
    """1 if frame ``cur`` (33,3) matches ``ref`` with its labels mirrored, 0 as they are, None if it cannot
    tell (fewer than ``need`` of the ``ev`` landmarks seen in both, or no clear winner)."""
    same_ok = (cur[ev, 2] >= min_conf) & (ref[ev, 2] >= min_conf)
    swap_ok = (cur[MIRROR[ev], 2] >= min_conf) & (ref[ev, 2] >= min_conf)
    if same_ok.sum() < need or swap_ok.sum() < need:
        return None
    d_same = np.linalg.norm(cur[ev, :2] - ref[ev, :2], axis=-1)[same_ok].mean()
    d_swap = np.linalg.norm(cur[MIRROR[ev], :2] - ref[ev, :2], axis=-1)[swap_ok].mean()
    height = max(float(_extent_px(ref, min_conf)), 1.0)
    if d_swap < decisive * d_same:
        return 1
    if d_same < decisive * d_swap or max(d_same, d_swap) < still * height:
        return 0
    return None


def _extent_px(kp2d: np.ndarray, min_conf: float) -> np.ndarray:
    """(…) the person's vertical extent in pixels in each frame of (…,33,3): the spread of the ``FLIP_EVIDENCE``
    landmarks seen (0 where fewer than two are)."""
    seen = kp2d[..., FLIP_EVIDENCE, 2] >= min_conf
    y = kp2d[..., FLIP_EVIDENCE, 1]
    top, bottom = np.where(seen, y, np.inf).min(-1), np.where(seen, y, -np.inf).max(-1)
    return np.where(seen.any(-1), bottom - top, 0.0)


def unmirror(kp2d: np.ndarray, kp3d: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies with the left/right labels of ``frames`` swapped back, in the image and in the world landmarks.
    Only the labels: on the shared clip the swapped frames' world limbs keep their depth (relabelled, they
    are 12-29 cm from the neighbouring frames' on average, 23-45 cm if also mirrored in depth)."""
    return _relabel(kp2d, kp3d, frames, MIRROR)


def _relabel(kp2d: np.ndarray, kp3d: np.ndarray, frames: np.ndarray, order: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    kp2d, kp3d = np.array(kp2d, copy=True), np.array(kp3d, copy=True)
    kp2d[frames] = kp2d[frames][:, order]
    kp3d[frames] = kp3d[frames][:, order]
    return kp2d, kp3d


NOISE_SCALE, SWITCH_SCALE, CAP_SCALE, RELABEL_SCALE = 1.0, 0.4, 5.0, 0.02
HIDDEN_LEG_CONF = 0.5  # a leg none of whose landmarks reaches this confidence is hidden
MIN_LEVEL = 0.003  # of the height: about a pixel, for perfectly clean landmarks


def landmark_up(kp3d: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(3,) the body's up in the camera frame (OpenCV axes) from MediaPipe's world landmarks, which are
    camera-aligned: the mean direction from the feet (ankles, heels) to the shoulders' midpoint over the valid
    frames. Leans with the trunk and with MediaPipe's depth, so only a prior (``scene.vertical_up`` searches
    near it); straight down the image when nothing is valid."""
    k = np.asarray(kp3d, np.float64)[np.asarray(valid, bool)]
    if not len(k):
        return np.array([0.0, -1.0, 0.0])
    v = k[:, [11, 12]].mean(1) - k[:, [27, 28, 29, 30]].mean(1)
    v = v[np.linalg.norm(v, axis=1) > 1e-6]
    if not len(v):
        return np.array([0.0, -1.0, 0.0])
    u = (v / np.linalg.norm(v, axis=1, keepdims=True)).mean(0)
    n = float(np.linalg.norm(u))
    return u / n if n > 1e-6 else np.array([0.0, -1.0, 0.0])


def leg_swapped_frames(kp2d: np.ndarray, valid: np.ndarray, min_conf: float = 0.3) -> np.ndarray:
    """(T,) bool: frames whose legs (``LEGS``) MediaPipe labelled the other way round from the rest of their run.

    A leg swap shows as a jolt: every leg landmark jumps to the other leg, or, where the legs cross, reverses
    its velocity. Over each run of consecutive valid frames, a Viterbi search picks each frame's labelling
    (as given or legs swapped) to minimise the legs' mean 2D acceleration in units of the person's height
    (Charbonnier, capped so that a frame with both legs drawn at one spot decides nothing), plus a cost for
    each change of labelling, so noise does not flip a frame, and a small one for each frame relabelled, as
    the detector is mostly right; these are multiples of the clip's median leg acceleration (``NOISE_SCALE``,
    ``SWITCH_SCALE``, ``CAP_SCALE``, ``RELABEL_SCALE``). Frames with a hidden leg (``HIDDEN_LEG_CONF``) give
    no evidence. Of the two mirror-image answers the one that relabels fewer frames is kept. A leg that
    really moves stays smooth under its own labels, so it is never taken for a swap."""
    kp2d = np.asarray(kp2d, dtype=np.float64)
    swapped = np.zeros(len(kp2d), bool)
    seen = kp2d[:, FLIP_EVIDENCE, 2] >= min_conf
    ok = np.asarray(valid, bool) & (seen.sum(1) >= 2)
    if not ok.any():
        return swapped
    height = max(float(np.median(_extent_px(kp2d[ok], min_conf))), 1.0)
    # the legs' typical acceleration as labelled (swaps are rare): noise plus real motion
    xy = kp2d[:, LEGS, :2] / height
    acc = np.linalg.norm(xy[:-2] - 2 * xy[1:-1] + xy[2:], axis=-1)
    use = (kp2d[:-2, LEGS, 2] >= min_conf) & (kp2d[1:-1, LEGS, 2] >= min_conf) & (kp2d[2:, LEGS, 2] >= min_conf)
    use &= ok[:-2, None] & ok[1:-1, None] & ok[2:, None]
    level = max(float(np.median(acc[use])) if use.any() else 0.0, MIN_LEVEL)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start >= 3:
            swapped[start:stop] = _leg_labelling(kp2d[start:stop], height, min_conf, level)
    return swapped


def _leg_labelling(kp2d: np.ndarray, height: float, min_conf: float, level: float) -> np.ndarray:
    """Viterbi over one run of frames (T >= 3); states are (labelling of frame t-1, labelling of frame t)."""
    t = len(kp2d)
    noise, switch_cost, cap = NOISE_SCALE * level, SWITCH_SCALE * level, CAP_SCALE * level
    relabel = RELABEL_SCALE * level * np.arange(2)  # per frame relabelled: the detector is mostly right
    legs = np.stack([kp2d[:, LEGS], kp2d[:, LEG_SWAP[LEGS]]])  # (2 labellings, T, 8, 3)
    # a frame where either leg is hidden (none of its landmarks confidently seen) gives no evidence: its legs
    # are guesses, and one guess relabelled as another tells nothing
    hidden = np.minimum(kp2d[:, LEGS[0::2], 2].max(1), kp2d[:, LEGS[1::2], 2].max(1)) < HIDDEN_LEG_CONF
    xy, seen = legs[..., :2] / height, (legs[..., 2] >= min_conf) & ~hidden[None, :, None]
    typical = np.sqrt(level**2 + noise**2) - noise  # stands in for a landmark not seen in all three frames
    # cost[a, b, c, i]: the legs' mean acceleration at frame i + 1 with frames i, i+1, i+2 labelled a, b, c
    cost = np.zeros((2, 2, 2, t - 2))
    for a, b, c in np.ndindex(2, 2, 2):
        acc = xy[a, :-2] - 2 * xy[b, 1:-1] + xy[c, 2:]
        rho = np.minimum(np.sqrt((acc**2).sum(-1) + noise**2) - noise, cap)
        cost[a, b, c] = np.where(seen[a, :-2] & seen[b, 1:-1] & seen[c, 2:], rho, typical).mean(-1)
    switch = switch_cost * (1.0 - np.eye(2))  # [previous labelling, next labelling]
    # best[a, b]: least cost of frames 0..i+1 ending with labellings a, b
    best = switch + relabel[:, None] + relabel[None, :]
    back = np.zeros((t - 2, 2, 2), np.int64)
    for i in range(t - 2):
        total = best[:, :, None] + cost[:, :, :, i] + switch[None] + relabel[None, None, :]
        back[i] = total.argmin(0)
        best = total.min(0)
    state = np.zeros(t, np.int64)
    state[-2], state[-1] = np.unravel_index(best.argmin(), best.shape)
    for i in range(t - 3, -1, -1):
        state[i] = back[i, state[i + 1], state[i + 2]]
    # should the search still relabel most of the run, the smaller class is taken for the swapped one
    return state == (1 if state.sum() <= t / 2 else 0)


def swap_legs(kp2d: np.ndarray, kp3d: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies with the leg labels of ``frames`` swapped back, in the image and in the world landmarks."""
    return _relabel(kp2d, kp3d, frames, LEG_SWAP)


def _make_track(arrays: dict[str, np.ndarray], fps: float, image_size, header: dict) -> LandmarkTrack:
    n = len(arrays["frame_index"])
    kp2d = np.asarray(arrays["kp2d"], np.float32).reshape(n, N_KP, 3)
    kp3d = np.asarray(arrays["kp3d"], np.float32).reshape(n, N_KP, 3)
    valid = np.asarray(arrays["valid"], bool).reshape(n)
    mirrored = mirrored_frames(kp2d, valid)
    kp2d, kp3d = unmirror(kp2d, kp3d, mirrored)
    legs = leg_swapped_frames(kp2d, valid)  # after the whole-body relabelling: it may leave the legs wrong
    kp2d, kp3d = swap_legs(kp2d, kp3d, legs)
    stats = {k: header[k] for k in ("tracker_resets", "search_s", "track_s") if k in header}
    stats["left_right_swaps"] = int(mirrored.sum())
    stats["leg_swaps"] = int(legs.sum())
    track = LandmarkTrack(
        frame_index=np.asarray(arrays["frame_index"], np.int64).reshape(n),
        fps=float(fps),
        image_size=(int(image_size[0]), int(image_size[1])),
        kp2d=kp2d,
        kp3d=kp3d,
        valid=valid,
        boxes=np.asarray(arrays["boxes"], np.float32).reshape(n, 4),
        subject_note=header["subject_note"],
        candidates=header["candidates"],
        stats=stats,
    )
    if not track.valid.any():
        raise NoPersonError("the subject was never found in the chosen frames: try another --subject or range")
    return track
