"""The bottom layer of the landmarks package: MediaPipe's landmark names, the track they end up in, the errors and
the sizes that several of its files share. Imports nothing from the package, so no import cycle can form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

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

CROP_PX = 448  # long side of the subject crop handed to MediaPipe (its models work at 224-256 px)
WINDOW_PAD = 0.3  # crop = subject box grown by this share of its long side on each side

Progress = Callable[[str, int, int], None]  # (stage, frames done, total)


class NoPersonError(RuntimeError):
    """Nobody was found in the footage."""


class SubjectError(ValueError):
    """A ``--subject`` value that cannot be used; the message says what to pass instead."""


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
