"""People and subject choice: boxes, plausibility, the ``--subject`` option, appearance, gap bridging.

Pure numpy + OpenCV; no MediaPipe here so the logic is testable on synthetic data.
Boxes are ``xyxy`` float pixels in the upright full frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .names import SubjectError

# ---------------------------------------------------------------- boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def box_center(b: np.ndarray) -> np.ndarray:
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])


def box_size(b: np.ndarray) -> float:
    """Longer side: the scale used for every distance threshold (independent of resolution)."""
    return float(max(b[2] - b[0], b[3] - b[1], 1.0))


def box_from_points(xy: np.ndarray, conf: np.ndarray, min_conf: float = 0.5) -> np.ndarray | None:
    """Tight box of the confident points (all points when too few are confident)."""
    keep = conf >= min_conf
    if keep.sum() < 4:
        keep = conf > 0
    if keep.sum() < 2:
        return None
    p = xy[keep]
    return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()], dtype=np.float64)


def square_window(box: np.ndarray, scale: float, image_size: tuple[int, int]) -> np.ndarray:
    """Integer square window of side ``scale * box_size`` around the box, shifted (not shrunk) into the image."""
    w, h = image_size
    side = min(box_size(box) * scale, float(max(w, h)))
    c = box_center(box)
    x0, y0 = c[0] - side / 2, c[1] - side / 2
    sw, sh = min(side, w), min(side, h)
    x0 = float(np.clip(x0, 0, w - sw))
    y0 = float(np.clip(y0, 0, h - sh))
    return np.array([int(x0), int(y0), int(np.ceil(x0 + sw)), int(np.ceil(y0 + sh))], dtype=np.int64)


def person_window(box: np.ndarray, margin: float, image_size: tuple[int, int]) -> np.ndarray:
    """Integer window: the box grown by ``margin * box_size`` on every side, shifted (not shrunk) into the image.

    Not square: a tall standing person gets a tall window, so people beside them mostly stay outside it.
    """
    w, h = image_size
    m = margin * box_size(box)
    x0, y0, x1, y1 = box[0] - m, box[1] - m, box[2] + m, box[3] + m
    sw, sh = min(x1 - x0, w), min(y1 - y0, h)
    x0 = float(np.clip(x0, 0, w - sw))
    y0 = float(np.clip(y0, 0, h - sh))
    return np.array([int(x0), int(y0), int(np.ceil(x0 + sw)), int(np.ceil(y0 + sh))], dtype=np.int64)


def contains(window: np.ndarray, box: np.ndarray, margin: float, image_size: tuple[int, int] | None = None) -> bool:
    """Whether ``box`` lies inside ``window`` shrunk by ``margin`` (a fraction of the window's long side).

    Sides of the window on the image border need no margin (the window cannot move further that way).
    """
    m = margin * max(window[2] - window[0], window[3] - window[1])
    w, h = image_size if image_size is not None else (np.inf, np.inf)
    lo = [window[0] + (m if window[0] > 0 else -np.inf), window[1] + (m if window[1] > 0 else -np.inf)]
    hi = [window[2] - (m if window[2] < w else -np.inf), window[3] - (m if window[3] < h else -np.inf)]
    return bool(box[0] >= lo[0] and box[1] >= lo[1] and box[2] <= hi[0] and box[3] <= hi[1])


MIN_PERSON_FRACTION = 0.08  # people smaller than this share of the frame's long side are too small to fit


def plausible_person(box: np.ndarray, kp2d: np.ndarray, image_size: tuple[int, int]) -> bool:
    """Reject MediaPipe's occasional 'person' on clutter: too small, or a torso out of proportion."""
    size = box_size(box)
    if size < MIN_PERSON_FRACTION * max(image_size):
        return False
    if np.any(kp2d[[11, 12, 23, 24], 2] < 0.5):
        return False
    shoulders, hips = kp2d[[11, 12], :2].mean(0), kp2d[[23, 24], :2].mean(0)
    return bool(np.linalg.norm(shoulders - hips) < 0.55 * size)


# ---------------------------------------------------------------- appearance

TORSO = (11, 12, 24, 23)  # MediaPipe: left shoulder, right shoulder, right hip, left hip


def torso_histogram(frame: np.ndarray, kp2d: np.ndarray) -> np.ndarray | None:
    """Normalised hue-saturation histogram of the torso quadrilateral (shoulders + hips), or None."""
    pts = kp2d[list(TORSO), :2]
    if np.any(kp2d[list(TORSO), 2] < 0.3):
        return None
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    roi = frame[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(pts - [x0, y0]).astype(np.int32), 255)
    if mask.sum() < 255 * 16:
        return None
    hsv = cv2.cvtColor(roi, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], mask, [16, 8], [0, 180, 0, 256])
    return cv2.normalize(hist, None, alpha=1.0, norm_type=cv2.NORM_L1).astype(np.float32)


def appearance_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya distance in [0, 1] (0 = same colours); 0 when either side is unknown."""
    if a is None or b is None:
        return 0.0
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


# ---------------------------------------------------------------- the --subject option


@dataclass(frozen=True)
class SubjectChoice:
    kind: str  # "largest" | "most-central" | "index" | "box"
    index: int = 0
    box: tuple[float, float, float, float] | None = None  # xyxy

    @classmethod
    def parse(cls, text: str | int | None) -> SubjectChoice:
        """``largest`` (default), ``most-central``, an index (0 = largest candidate) or a box ``x,y,w,h``."""
        if text is None or text == "":
            return cls("largest")
        if isinstance(text, int):
            text = str(text)
        t = text.strip().lower()
        if t in ("largest", "most-central"):
            return cls(t)
        if t.isdigit():
            return cls("index", index=int(t))
        parts = t.split(",")
        if len(parts) == 4:
            try:
                x, y, w, h = (float(p) for p in parts)
            except ValueError:
                pass
            else:
                if w > 0 and h > 0:
                    return cls("box", box=(x, y, x + w, y + h))
        raise SubjectError(
            f"--subject {text!r} not understood: use 'largest', 'most-central', a candidate number (0, 1, ...) "
            "or a box 'x,y,w,h' in pixels"
        )


def choose_subject(candidates: list[np.ndarray], choice: SubjectChoice, image_size: tuple[int, int]) -> int:
    """Index into ``candidates`` (sorted largest first) of the subject; -1 for a user box matching no one."""
    if choice.kind == "box":
        assert choice.box is not None
        ub = np.asarray(choice.box, float)
        scores = [box_iou(ub, c) for c in candidates]
        # a candidate whose centre the user's box contains also counts (a loose click-and-drag box)
        for i, c in enumerate(candidates):
            cx, cy = box_center(c)
            if ub[0] <= cx <= ub[2] and ub[1] <= cy <= ub[3]:
                scores[i] = max(scores[i], 0.25)
        if scores and max(scores) >= 0.2:
            return int(np.argmax(scores))
        return -1
    if not candidates:
        return -1
    if choice.kind == "largest":
        return 0
    if choice.kind == "most-central":
        mid = np.array(image_size, float) / 2
        return int(np.argmin([np.linalg.norm(box_center(c) - mid) for c in candidates]))
    if choice.index >= len(candidates):
        raise SubjectError(
            f"--subject {choice.index}: only {len(candidates)} person candidate(s) found "
            f"(0..{len(candidates) - 1}); pick one of those or give a box 'x,y,w,h'"
        )
    return choice.index


def describe_box(b: np.ndarray) -> str:
    return f"{int(b[0])},{int(b[1])},{int(b[2] - b[0])},{int(b[3] - b[1])}"


# ---------------------------------------------------------------- gaps


def bridge(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid frames by linear interpolation along axis 0 (edges hold the nearest valid frame).

    Used to hand the fitter a smooth guess across gaps; the frames stay marked invalid in the result.
    """
    values = np.asarray(values)
    valid = np.asarray(valid, bool)
    if valid.all() or not valid.any():
        return values.copy()
    t = np.arange(len(values))
    flat = values.reshape(len(values), -1).astype(np.float64)
    out = np.empty_like(flat)
    for k in range(flat.shape[1]):
        out[:, k] = np.interp(t, t[valid], flat[valid, k])
    return out.reshape(values.shape).astype(values.dtype)
