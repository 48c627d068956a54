"""The landmark stage: per-frame MediaPipe pose landmarks of ONE chosen subject, kept through the clip.

1. *Candidates*: on the first frame that shows anyone, every person MediaPipe finds (``pose.find_people``).
2. *Choice*: ``--subject`` picks one (``people.SubjectChoice``); the note says which and lists the others.
3. *Tracking* and *identity*: ``tracker.SubjectTracker``, frame by frame on a crop around the subject.
4. *Labels*: frames MediaPipe labelled left for right are relabelled over the whole clip (``relabel``).

Finished frames are saved in chunks (``work.WorkDir``) as they come, so a rerun resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from . import people as P
from .names import N_KP, LandmarkTrack, NoPersonError, Progress
from .pose import find_people, new_pose
from .relabel import fix_labels
from .tracker import SubjectTracker, TrackerState
from .work import Resume, WorkDir

Emit = Callable[[int, np.ndarray, np.ndarray, np.ndarray, bool], None]  # (frame, kp2d, kp3d, box, valid)


def _start_subject(
    frames: Iterator[tuple[int, np.ndarray]], choice: P.SubjectChoice, image_size: tuple[int, int],
    emit: Emit,
) -> tuple[TrackerState, str, list[np.ndarray], tuple[int, np.ndarray] | None]:
    """Look for people frame by frame until someone is found; frames before that are emitted as lost."""
    finder = new_pose(static=True)
    zeros = np.zeros((N_KP, 3), np.float32)
    try:
        for idx, frame in frames:
            people = find_people(frame, finder)
            boxes = [b for b, _ in people]
            k = P.choose_subject(boxes, choice, image_size)
            if k < 0 and choice.kind == "box":
                # the user's box holds nobody MediaPipe found on its own: track inside that box directly
                assert choice.box is not None
                box = np.asarray(choice.box, float)
                note = f"subject: the given box {P.describe_box(box)} (no detected person matched it)"
                return TrackerState(box, np.zeros(2)), note, boxes, (idx, frame)
            if k < 0:
                emit(idx, zeros, zeros, np.zeros(4), False)
                continue
            box, kp2d = people[k]
            how = {"largest": "the largest person", "most-central": "the person nearest the image centre",
                   "index": f"candidate {k}", "box": "the person in the given box"}[choice.kind]
            others = "; ".join(f"{i}: {P.describe_box(b)}" for i, b in enumerate(boxes) if i != k)
            note = (f"subject: {how} (candidate {k} of {len(boxes)}, box x,y,w,h {P.describe_box(box)}, "
                    f"first seen at frame {idx})"
                    + (f"; other people: {others} (follow one of them with --subject N)" if others else ""))
            state = TrackerState(box, np.zeros(2), appearance=P.torso_histogram(frame, kp2d))
            return state, note, boxes, (idx, frame)
    finally:
        finder.close()
    raise NoPersonError("no person was found in any frame: check the footage shows a whole person, well lit")


def _new_subject(frames: Iterator[tuple[int, np.ndarray]], choice: P.SubjectChoice, image_size: tuple[int, int],
                 emit: Emit, work: WorkDir | None) -> tuple[TrackerState, dict, tuple[int, np.ndarray] | None]:
    """The subject chosen on the first frame that shows anyone, the work folder's header (the subject note, every
    candidate, the search time) and the frame they were found on; a fresh work folder is started."""
    t0 = time.perf_counter()
    state, note, cands, start = _start_subject(frames, choice, image_size, emit)
    candidates = [list(map(float, b)) for b in cands]
    header = {"subject_note": note, "candidates": candidates, "image_size": list(image_size),
              "search_s": time.perf_counter() - t0}
    if work is not None:
        work.start(header)
    return state, header, start


class _Columns:
    """The frames done in this run, column by column, saved to the work folder in chunks of ``chunk`` frames."""

    def __init__(self, work: WorkDir | None, n_chunk: int, chunk: int) -> None:
        self.cols: dict[str, list] = {"frame_index": [], "kp2d": [], "kp3d": [], "valid": [], "boxes": []}
        self.work, self.n_chunk, self.chunk, self.saved_upto = work, n_chunk, chunk, 0

    def __len__(self) -> int:
        return len(self.cols["frame_index"])

    def emit(self, idx: int, kp2d: np.ndarray, kp3d: np.ndarray, box: np.ndarray, ok: bool) -> None:
        self.cols["frame_index"].append(idx)
        self.cols["kp2d"].append(kp2d)
        self.cols["kp3d"].append(kp3d)
        self.cols["boxes"].append(np.asarray(box, np.float32))
        self.cols["valid"].append(ok)

    def flush(self, state: TrackerState, final: bool = False) -> None:
        """Save the frames not saved yet, with the tracker ``state`` after them, once a chunk is full (or any
        left at the end)."""
        if self.work is None:
            return
        n = len(self)
        if n - self.saved_upto >= self.chunk or (final and n > self.saved_upto):
            self.work.save_chunk(self.n_chunk, {k: np.asarray(v[self.saved_upto:n]) for k, v in self.cols.items()},
                                 state)
            self.n_chunk += 1
            self.saved_upto = n

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.cols.items()}


def _follow(frames: Iterator[tuple[int, np.ndarray]], state: TrackerState, image_size: tuple[int, int],
            done: _Columns, tick: Callable[[], None]) -> SubjectTracker:
    """Track the subject through ``frames``, saving chunks as they fill; the tracker, its graph closed."""
    tracker = SubjectTracker(image_size, state)
    try:
        for idx, frame in frames:
            kp2d, kp3d, box, ok = tracker.step(frame)
            done.emit(idx, kp2d, kp3d, box, ok)
            tick()
            done.flush(tracker.state)
    finally:
        tracker.pose.close()
    return tracker


def detect_landmarks(
    frames_iter: Iterable[tuple[int, np.ndarray]],
    subject: str | P.SubjectChoice | None = "largest",
    progress: Progress | None = None,
    *,
    fps: float = 30.0,
    image_size: tuple[int, int] | None = None,
    total: int = 0,
    work: WorkDir | None = None,
    resume: Resume | None = None,
    chunk: int = 50,
) -> LandmarkTrack:
    """Landmarks of one subject for every frame of ``frames_iter`` ((index, BGR frame) pairs).

    ``work`` saves chunks of finished frames as it goes; ``resume`` (from ``work.load()``) continues a run
    whose frames up to the last chunk are done; ``frames_iter`` then starts after them.
    """
    choice = subject if isinstance(subject, P.SubjectChoice) else P.SubjectChoice.parse(subject)
    done_before = len(resume[0]["frame_index"]) if resume is not None else 0
    if progress is not None:  # something to show while the first frame is searched for people
        progress("landmarks", done_before, total)
    it = iter(frames_iter)
    first = next(it, None)
    if first is None:
        if resume is not None:
            arrays, _, header = resume
            return _make_track(arrays, fps, image_size or tuple(header["image_size"]), header)
        raise NoPersonError("the footage has no frames in the chosen range: check --frames and the file")
    if image_size is None:
        image_size = (first[1].shape[1], first[1].shape[0])
    frames = _prepend(first, it)
    done = _Columns(work, len(work.chunk_files()) if (work is not None and resume is not None) else 0, chunk)
    if resume is not None:
        old, state, header = resume
        start = None
    else:
        old = None
        state, header, start = _new_subject(frames, choice, image_size, done.emit, work)

    def tick() -> None:
        if progress is not None:
            progress("landmarks", done_before + len(done), total)

    t_track = time.perf_counter()
    tracker = _follow(frames if start is None else _prepend(start, frames), state, image_size, done, tick)
    header["tracker_resets"] = header.get("tracker_resets", 0) + tracker.resets
    header["track_s"] = time.perf_counter() - t_track
    done.flush(tracker.state, final=True)

    arrays = done.arrays()
    if old is not None:
        arrays = {k: np.concatenate([old[k], arrays[k]]) if len(arrays[k]) else old[k] for k in old}
    return _make_track(arrays, fps, image_size, header)


def _prepend(first: tuple[int, np.ndarray], rest: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
    yield first
    yield from rest


def _make_track(arrays: dict[str, np.ndarray], fps: float, image_size, header: dict) -> LandmarkTrack:
    n = len(arrays["frame_index"])
    kp2d = np.asarray(arrays["kp2d"], np.float32).reshape(n, N_KP, 3)
    kp3d = np.asarray(arrays["kp3d"], np.float32).reshape(n, N_KP, 3)
    valid = np.asarray(arrays["valid"], bool).reshape(n)
    kp2d, kp3d, mirrored, legs = fix_labels(kp2d, kp3d, valid)
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
