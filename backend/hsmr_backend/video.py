"""Frame sources: a video file, a folder or glob of images, or a single image, streamed one frame at a time.

Frames are BGR uint8 arrays, already turned upright (the container's rotation tag is applied here, so every
later stage, the image size in the result file and the overlay see the frames as a viewer shows them).
Nothing holds a whole video in memory.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_IMAGE_FPS = 30.0  # an image sequence has no clock; the user can override with --fps
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # "35 mm equivalent" focal lengths are scaled to this diagonal
EXIF_IFD, EXIF_FOCAL_35MM = 0x8769, 0xA405  # FocalLengthIn35mmFilm, in the Exif sub-IFD (some writers: IFD0)


def exif_focal_px(path: str, size: tuple[int, int]) -> float | None:
    """The focal length in pixels of an image of ``size`` (W, H) from its EXIF 35-mm-equivalent focal length
    (phones and most cameras write it), or None when the file has none (or an implausible one)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            exif = im.getexif()
            f35 = exif.get_ifd(EXIF_IFD).get(EXIF_FOCAL_35MM) or exif.get(EXIF_FOCAL_35MM)
        f35 = float(f35)
    except Exception:  # no Pillow, not an EXIF format, no tag, a malformed value: no hint
        return None
    if not (math.isfinite(f35) and 8.0 <= f35 <= 2000.0):
        return None
    return f35 / FULL_FRAME_DIAGONAL_MM * math.hypot(*size)


class VideoError(ValueError):
    """Unusable input footage; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class FrameRange:
    """Frames ``start <= i < end`` (``end`` None = to the last frame), every ``stride``-th one."""

    start: int = 0
    end: int | None = None
    stride: int = 1

    @classmethod
    def parse(cls, text: str | None, stride: int = 1) -> FrameRange:
        """Parse ``START:END`` (either side may be empty; END exclusive) as given to ``--frames``."""
        if stride < 1:
            raise VideoError(f"--stride must be 1 or more (got {stride})")
        if not text:
            return cls(0, None, stride)
        parts = text.split(":")
        if len(parts) != 2:
            raise VideoError(f"--frames must look like START:END, e.g. 0:100 or 50: (got {text!r})")
        try:
            start = int(parts[0]) if parts[0].strip() else 0
            end = int(parts[1]) if parts[1].strip() else None
        except ValueError:
            raise VideoError(f"--frames must hold whole numbers, like 0:100 (got {text!r})") from None
        if start < 0 or (end is not None and end <= start):
            raise VideoError(f"--frames {text!r} is empty or negative: use START:END with 0 <= START < END")
        return cls(start, end, stride)

    def indices(self, n_frames: int) -> range:
        end = n_frames if self.end is None else min(self.end, n_frames)
        return range(self.start, max(end, self.start), self.stride)


_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def _rotation_code(degrees: float) -> int | None:
    """cv2.rotate code for a clockwise display rotation in degrees (as OpenCV reports the container tag)."""
    return _ROTATE.get(int(round(degrees)) % 360)


class FrameSource:
    """Upright frames of one clip: ``fps``, ``size`` (W, H after rotation), ``n_frames`` (best estimate)."""

    path: str
    fps: float
    size: tuple[int, int]
    n_frames: int
    rotation: int  # clockwise degrees applied to the decoded frames
    focal_px_hint: float | None = None  # from the file's metadata (images: EXIF), when it says

    def frames(self, frame_range: FrameRange = FrameRange()) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError

    def selected_count(self, frame_range: FrameRange) -> int:
        return len(frame_range.indices(self.n_frames))


class VideoFileSource(FrameSource):
    def __init__(self, path: str, fps_override: float | None = None) -> None:
        self.path = path
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise VideoError(f"cannot open video {path!r}: it is empty, damaged, incomplete (copy cut short?) or not a "
                             "video; play it to check, then re-export it (e.g. H.264 .mp4)")
        # Apply the rotation tag ourselves; only when this OpenCV build auto-rotates and will not stop, leave it.
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        auto = bool(cap.get(cv2.CAP_PROP_ORIENTATION_AUTO))
        meta = cap.get(cv2.CAP_PROP_ORIENTATION_META)
        self._rot_code = None if auto else _rotation_code(meta)
        self.rotation = int(round(meta)) % 360
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if self._rot_code in (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE):
            w, h = h, w
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps_override or (fps if fps and np.isfinite(fps) and fps > 0 else DEFAULT_IMAGE_FPS))
        self.n_frames = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        cap.release()
        self.timestamps_ms: dict[int, float] = {}  # decoded frame -> its time in the container (VFR check)
        self.last_decoded = -1
        if w <= 0 or h <= 0:
            raise VideoError(f"video {path!r} reports no picture size: it may be audio-only or damaged")
        self.size = (w, h)

    def frames(self, frame_range: FrameRange = FrameRange()) -> Iterator[tuple[int, np.ndarray]]:
        cap = cv2.VideoCapture(self.path)
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        try:
            i = 0
            if frame_range.start > 0:
                # Seeking is keyframe-exact only with some codecs; check where we landed and grab forward.
                cap.set(cv2.CAP_PROP_POS_FRAMES, frame_range.start)
                pos = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
                if pos != frame_range.start or pos < 0:
                    cap.release()
                    cap = cv2.VideoCapture(self.path)
                    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
                    pos = 0
                i = pos
                while i < frame_range.start:
                    if not cap.grab():
                        return
                    i += 1
            while frame_range.end is None or i < frame_range.end:
                if (i - frame_range.start) % frame_range.stride:
                    if not cap.grab():  # skipped frames are decoded but never converted
                        return
                else:
                    ok, frame = cap.read()
                    if not ok or frame is None:
                        return
                    self.timestamps_ms[i] = float(cap.get(cv2.CAP_PROP_POS_MSEC))
                    self.last_decoded = max(self.last_decoded, i)
                    if self._rot_code is not None:
                        frame = cv2.rotate(frame, self._rot_code)
                    yield i, frame
                i += 1
        finally:
            cap.release()


    def variable_rate(self) -> tuple[float, float] | None:
        """(shortest, longest) frame interval in ms when the decoded frames' times are not evenly spaced."""
        idx = np.array(sorted(self.timestamps_ms))
        if len(idx) < 3:
            return None
        ms = np.array([self.timestamps_ms[i] for i in idx])
        step = np.diff(idx)
        dt = np.diff(ms) / step
        ok = (step > 0) & np.isfinite(dt) & (dt > 0)
        if ok.sum() < 2:
            return None
        lo, hi = float(dt[ok].min()), float(dt[ok].max())
        return (lo, hi) if hi > 1.25 * lo and hi - lo > 2.0 else None


class ImageListSource(FrameSource):
    def __init__(self, paths: list[str], label: str, fps_override: float | None = None) -> None:
        if not paths:
            raise VideoError(f"no images found at {label!r}: give a video, an image, a folder of images or a glob")
        self.path = label
        self.paths = paths
        self.fps = float(fps_override or DEFAULT_IMAGE_FPS)
        self.rotation = 0
        self.n_frames = len(paths)
        first = self._read(paths[0])
        self.size = (first.shape[1], first.shape[0])
        self.focal_px_hint = exif_focal_px(paths[0], self.size)

    @staticmethod
    def _read(path: str) -> np.ndarray:
        img = cv2.imread(path, cv2.IMREAD_COLOR)  # applies EXIF orientation
        if img is None:
            raise VideoError(f"cannot read image {path!r}: the file is damaged or not an image")
        return img

    def frames(self, frame_range: FrameRange = FrameRange()) -> Iterator[tuple[int, np.ndarray]]:
        for i in frame_range.indices(self.n_frames):
            img = self._read(self.paths[i])
            if (img.shape[1], img.shape[0]) != self.size:
                raise VideoError(
                    f"image {self.paths[i]!r} is {img.shape[1]}x{img.shape[0]}, the sequence started at "
                    f"{self.size[0]}x{self.size[1]}: all images of a sequence must share one size"
                )
            yield i, img


def open_source(path: str | os.PathLike, fps: float | None = None) -> FrameSource:
    """Open footage: a video file, an image, a folder of images (sorted by name) or a glob pattern."""
    text = str(path)
    p = Path(text)
    if any(c in text for c in "*?["):
        files = sorted(f for f in glob.glob(text) if f.lower().endswith(IMAGE_EXTS))
        return ImageListSource(files, text, fps)
    if p.is_dir():
        files = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS and f.is_file())
        return ImageListSource(files, text, fps)
    if not p.exists():
        raise VideoError(f"footage not found: {text!r} (check the path)")
    if not p.is_file() or not os.access(p, os.R_OK):
        raise VideoError(f"footage {text!r} is not a readable file (check permissions)")
    if p.suffix.lower() in IMAGE_EXTS:
        return ImageListSource([text], text, fps)
    return VideoFileSource(text, fps)


def prefetch(frames: Iterator[tuple[int, np.ndarray]], depth: int = 4) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ahead in a thread (OpenCV releases the GIL) so decoding overlaps the pose model; bounded memory."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in frames:
                if not put(item):
                    return
            put(done)
        except BaseException as e:  # hand decoder errors to the consumer
            put(e)

    t = threading.Thread(target=work, name="frame-decoder", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)
