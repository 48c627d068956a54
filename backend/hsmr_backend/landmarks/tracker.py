"""The subject tracker: follows one chosen subject frame by frame, and the state it carries between frames.

*Tracking*: every frame, Pose runs in tracking mode on a crop around the subject's predicted box (downscaled to
``CROP_PX``), so people outside the crop cannot be picked up. The crop window stays put while the subject is
well inside it (MediaPipe's own tracking then stays valid) and is re-centred, with a tracker reset, when the
subject nears its edge.

*Identity*: a result is accepted only if its box agrees with the prediction (overlap / centre distance / size)
and its torso colours match the subject's. Otherwise the frame is marked invalid (zeros), never filled with
someone else; the search window grows while the subject stays lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import people as P
from .names import CROP_PX, N_KP, WINDOW_PAD
from .pose import new_pose, run_on

WINDOW_MARGIN = 0.05  # re-centre the crop when the subject comes closer than this to its edge
LONG_LOSS = 30  # processed frames
DISTRACTOR_FRAMES = 30  # keep hiding a person mistaken for the subject for this many frames


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
        self.pose = new_pose(static=False)
        self.window: np.ndarray | None = None
        self.distractor: np.ndarray | None = None  # box of someone MediaPipe mistook for the subject
        self.distractor_age = DISTRACTOR_FRAMES
        self.resets = 0

    def predicted_box(self) -> np.ndarray:
        s = self.state
        n = s.lost + 1
        c = P.box_center(s.box) + s.velocity * n
        half = (s.box[2:] - s.box[:2]) / 2
        return np.concatenate([c - half, c + half])

    def _accept(self, box: np.ndarray, hist: np.ndarray | None, pred: np.ndarray) -> bool:
        s = self.state
        size = P.box_size(pred)
        slack = 1.0 + 0.5 * s.lost  # a subject lost for longer may have moved further
        centre_ok = np.linalg.norm(P.box_center(box) - P.box_center(pred)) < 0.35 * size * slack
        overlap_ok = P.box_iou(box, pred) > 0.3
        ratio = P.box_size(box) / size
        size_ok = 0.55 / slack < ratio < 1.8 * slack
        # colours drift (light, turning round): after a long loss accept a looser match in the expected place
        looks_ok = P.appearance_distance(hist, s.appearance) < (0.55 if s.lost < LONG_LOSS else 0.7)
        return bool((centre_ok or overlap_ok) and size_ok and looks_ok)

    def step(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """Landmarks of the subject in ``frame`` -> (kp2d, kp3d, box, valid)."""
        s = self.state
        pred = self.predicted_box()
        pad = WINDOW_PAD * (1.0 + 0.5 * min(s.lost, 6))  # look wider while the subject is lost
        if self.window is None or s.lost or not P.contains(self.window, pred, WINDOW_MARGIN, self.image_size):
            self.window = P.person_window(pred, pad, self.image_size)
            self.pose.reset()
            self.resets += 1
        hide = self.distractor if self.distractor_age < DISTRACTOR_FRAMES else None
        for attempt in range(2):
            lm = run_on(self.pose, frame, self.window, CROP_PX, hide=hide, keep=pred)
            if lm is None:
                break
            kp2d, kp3d = lm
            box = P.box_from_points(kp2d[:, :2], kp2d[:, 2])
            if box is None:
                break
            hist = P.torso_histogram(frame, kp2d)
            if self._accept(box, hist, pred):
                n = s.lost + 1
                new_v = (P.box_center(box) - P.box_center(s.box)) / n
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
