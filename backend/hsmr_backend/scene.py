"""The camera's "up" from the scene: the vanishing point of its vertical edges (static camera).

Rooms, doors, shelves, poles and buildings are full of vertical edges. In the image they all point at one
vanishing point, the image of the world's vertical, so where enough of them are seen that point gives the
camera's pitch and roll, independently of the body. From the body alone (balance, foot contacts) "up" was 8-11°
off on the four calibrated views of a real lab (`benchmarks/accuracy/bench_multiview_pose2sim.py`).

- :class:`FrameSampler` keeps a few downscaled grey frames spread over the clip as the frames stream past.
- :func:`scene_lines` finds straight edges in them (OpenCV's LSD), away from the subject's box.
- :func:`vertical_up` searches, near the body's up (weighted by a Gaussian of the angle from it), the direction
  whose vanishing point the most edges point at, refines it on those edges, and gives it back only when they
  are many and spread over the image (a lone edge, or edges that all lie in one column of the image, do not
  fix both pitch and roll). A scene without
  vertical edges (a field, a plain studio, a checkered floor) gives ``None``, and the body decides as before.

Edges are measured in the full-size image; the focal length is the pipeline's (given, EXIF or default), and
the pitch found scales with it (``tan(pitch)`` is proportional to the focal).

- :func:`focal_from_scene` then estimates the focal length itself from two orthogonal families of horizontal
  edges (a floor's tiles, a room's walls), whose vanishing points lie on the horizon: ``(p1 - c) . (p2 - c) =
  -f²``. It is used only for a camera that looks up or down by 5° or more (the horizon's place, which finds
  the families, then depends on the focal).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

SAMPLE_FRAMES = 8  # frames spread over the clip: the subject hides different edges in each
LONG_SIDE_PX = 960  # edges are found at this size (26 ms a frame on one core)
MIN_LENGTH = 0.03  # of the image diagonal: shorter edges are texture
WEIGHT_CAP = 0.08  # one long edge (a table, a rail) counts no more than this share of the diagonal
SEARCH_DEG = 25.0  # candidates within this angle of the body's up (which is 8-13° off at worst in tests)
PRIOR_SIGMA_DEG = 12.0  # and their score is weighted by a Gaussian of their angle from it
PRE_DEG = 30.0  # edges more than this off the direction to the body's vertical vanishing point are ignored
INLIER_DEG = 2.0  # an edge supports a vanishing point when it points at it within this angle
MIN_SUPPORT = 0.25  # inlier weight per frame, in image diagonals (about four long edges)
MIN_SPREAD = 0.01  # second-smallest eigenvalue share: edges in one column of the image fix only the roll
PERSON_PAD = 0.12  # the subject's box grows by this share of its height on every side
FOCAL_MIN_TILT_DEG = 5.0  # a camera nearer level than this does not tell its focal length
FOCAL_FOV_DEG = (20.0, 120.0)  # diagonal fields of view searched for the focal
FOCAL_MIN_SUPPORT = 0.5  # each horizontal family's edges pointing at its vanishing point, diagonals per frame
FOCAL_AGREE = 0.15  # the two focal estimates (orthogonal families; family on the vertical's horizon) must agree
VERTICAL_SKIP_DEG = 5.0  # edges pointing at the vertical vanishing point this closely are not horizontal ones


@dataclass
class SceneLines:
    """Straight edges of the sampled frames, in pixels of the full-size upright frame."""

    segments: np.ndarray  # (S,4) x1, y1, x2, y2
    weights: np.ndarray  # (S,) length (capped) / number of frames
    image_size: tuple[int, int]  # (W, H)
    frames: int  # how many frames they come from

    @classmethod
    def from_segments(cls, segments: np.ndarray, image_size: tuple[int, int], frames: int) -> SceneLines:
        """Keeps the edges of ``MIN_LENGTH`` or more, each weighing its length (capped at ``WEIGHT_CAP`` of the
        diagonal) per frame."""
        segs = np.asarray(segments, np.float64).reshape(-1, 4)
        diag = float(np.hypot(*image_size))
        length = np.hypot(segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1])
        keep = length >= MIN_LENGTH * diag
        n = max(int(frames), 1)
        return cls(segs[keep], np.minimum(length[keep], WEIGHT_CAP * diag) / n, tuple(image_size), n)


@dataclass
class SceneFocal:
    focal_px: float  # from the two families' vanishing points
    support: float  # the stronger family's (kernel-weighted) edges, image diagonals per frame
    support_second: float  # the orthogonal family's
    from_vertical_px: float  # the focal that puts the stronger family on the vertical's horizon (a check)


@dataclass
class SceneUp:
    up: np.ndarray  # (3,) unit vector, the world's up in the camera frame (OpenCV axes)
    edges: float  # inlier edges per sampled frame
    support: float  # their weight, in image diagonals per frame
    spread: float  # how well they fix both directions (second-smallest eigenvalue share)


class FrameSampler:
    """Keeps up to ``count`` grey frames, downscaled to ``long_side``, spread over a stream of ``total`` frames
    (every ``fallback_step``-th when the total is unknown) while passing every frame on untouched."""

    def __init__(self, total: int, count: int = SAMPLE_FRAMES, long_side: int = LONG_SIDE_PX,
                 fallback_step: int = 15) -> None:
        if total > 0:
            self.wanted = set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist())
        else:
            self.wanted = {i * fallback_step for i in range(count)}
        self.long_side = long_side
        self.samples: list[tuple[int, np.ndarray, float]] = []  # (source frame index, grey, scale)

    def tap(self, frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
        for i, (idx, frame) in enumerate(frames):
            if i in self.wanted and frame is not None and frame.ndim >= 2:
                s = min(1.0, self.long_side / max(frame.shape[:2]))
                small = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else frame
                grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
                self.samples.append((int(idx), grey, s))
            yield idx, frame


def pitch_roll_deg(up: np.ndarray) -> tuple[float, float]:
    """(pitch, roll) of a camera in degrees from the world's up in its frame (OpenCV axes): pitch > 0 looks
    down; roll > 0 when the world's up, seen in the image, leans from the image's up towards its right."""
    u = np.asarray(up, np.float64) / np.linalg.norm(up)
    return float(np.degrees(np.arcsin(np.clip(-u[2], -1.0, 1.0)))), float(np.degrees(np.arctan2(u[0], -u[1])))


def _outside(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box
    return ~((points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0) & (points[:, 1] < y1))


def _subject_box(boxes: np.ndarray | None, frame_index: np.ndarray | None, idx: int) -> np.ndarray | None:
    """The subject's box (xyxy, full-size pixels) of the tracked frame nearest to ``idx``, grown by
    ``PERSON_PAD`` of its height on every side; ``None`` without boxes."""
    if boxes is None or not len(boxes) or frame_index is None:
        return None
    box = np.asarray(boxes[int(np.argmin(np.abs(np.asarray(frame_index) - idx)))], np.float64)
    pad = PERSON_PAD * max(box[3] - box[1], 1.0)
    return box + np.array([-pad, -pad, pad, pad])


def scene_lines(samples: list[tuple[int, np.ndarray, float]], image_size: tuple[int, int],
                frame_index: np.ndarray | None = None, boxes: np.ndarray | None = None) -> SceneLines:
    """Straight edges (LSD) of the sampled frames, minus those touching the subject's box (xyxy, one per
    entry of ``frame_index``; the nearest frame's box is used)."""
    detector = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD)
    found = []
    for idx, grey, scale in samples:
        segs = detector.detect(grey)[0]
        if segs is None:
            continue
        segs = segs.reshape(-1, 4).astype(np.float64) / scale
        box = _subject_box(boxes, frame_index, idx)
        if box is not None:
            mid = (segs[:, :2] + segs[:, 2:]) / 2
            segs = segs[_outside(segs[:, :2], box) & _outside(segs[:, 2:], box) & _outside(mid, box)]
        found.append(segs)
    return SceneLines.from_segments(np.concatenate(found) if found else np.zeros((0, 4)), image_size, len(samples))


def pointing_error_deg(segments: np.ndarray, k: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(C,S) angle between each segment and the line from its midpoint to the vanishing point of each 3D
    direction (C,3) in the camera frame (a vanishing point at infinity included)."""
    mid = (segments[:, :2] + segments[:, 2:]) / 2
    d = segments[:, 2:] - segments[:, :2]
    d = d / np.linalg.norm(d, axis=1, keepdims=True).clip(1e-12)
    vp = np.asarray(directions, np.float64) @ np.asarray(k, np.float64).T  # homogeneous image points
    dx = vp[:, None, 0] - mid[None, :, 0] * vp[:, None, 2]
    dy = vp[:, None, 1] - mid[None, :, 1] * vp[:, None, 2]
    cos = np.abs(dx * d[None, :, 0] + dy * d[None, :, 1]) / np.hypot(dx, dy).clip(1e-12)
    return np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))


def _support(segs: np.ndarray, w: np.ndarray, k: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(C,) how strongly the edges point at each direction's vanishing point: their weights times a kernel that
    is 1 for an edge pointing straight at it and 0 from ``INLIER_DEG`` off."""
    err = pointing_error_deg(segs, k, directions)
    return (w * np.clip(1.0 - (err / INLIER_DEG) ** 2, 0.0, None)).sum(1)


def vertical_up(lines: SceneLines, k: np.ndarray, prior: np.ndarray) -> SceneUp | None:
    """The up direction (camera frame) whose vanishing point the scene's edges point at, searched within
    ``SEARCH_DEG`` of ``prior`` (the body's up); ``None`` when the edges do not decide it."""
    prior = np.asarray(prior, np.float64) / np.linalg.norm(prior)
    if len(lines.segments) < 2:
        return None
    k = np.asarray(k, np.float64)
    near = pointing_error_deg(lines.segments, k, prior[None])[0] < PRE_DEG
    segs, w = lines.segments[near], lines.weights[near]
    diag = float(np.hypot(*lines.image_size))
    if w.sum() < MIN_SUPPORT * diag:
        return None
    # candidates on a 1° grid of tangent-plane offsets around the prior
    e1 = np.cross(prior, [0.0, 0.0, 1.0])
    if np.linalg.norm(e1) < 1e-6:
        e1 = np.cross(prior, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(prior, e1)
    steps = np.tan(np.radians(np.arange(-SEARCH_DEG, SEARCH_DEG + 0.5, 1.0)))
    a, b = np.meshgrid(steps, steps)
    inside = np.hypot(a, b) <= np.tan(np.radians(SEARCH_DEG))
    cand = prior + a[inside][:, None] * e1 + b[inside][:, None] * e2
    cand /= np.linalg.norm(cand, axis=1, keepdims=True)
    score = np.concatenate([_support(segs, w, k, cand[i:i + 256]) for i in range(0, len(cand), 256)])
    # a checkered floor's receding edges can meet near some far-off candidate by chance: the body's up is a prior
    off = np.degrees(np.arccos(np.clip(cand @ prior, -1.0, 1.0)))
    score = score * np.exp(-0.5 * (off / PRIOR_SIGMA_DEG) ** 2)
    best = int(np.argmax(score))
    if off[best] > SEARCH_DEG - 1.5:
        return None  # the best lies on the search's rim: the edges point somewhere else
    # refine on the inliers: each edge's interpretation plane (through the camera centre) contains the vertical
    kinv = np.linalg.inv(k)
    ends = [np.c_[segs[:, i:i + 2], np.ones(len(segs))] @ kinv.T for i in (0, 2)]
    normals = np.cross(ends[0], ends[1])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    up = cand[best]
    for _ in range(4):  # Tukey-weighted: an edge that barely passes counts little
        err = pointing_error_deg(segs, k, up[None])[0]
        inl = err < INLIER_DEG
        if inl.sum() < 2:
            return None
        tukey = w[inl] * (1.0 - (err[inl] / INLIER_DEG) ** 2) ** 2
        m = (normals[inl] * tukey[:, None]).T @ normals[inl]
        evals, evecs = np.linalg.eigh(m / max(tukey.sum(), 1e-12) * w[inl].sum())
        up = evecs[:, 0] * np.sign(evecs[:, 0] @ prior or 1.0)
    total = float(w[inl].sum())
    support, spread = total / diag, float(evals[1] / total)
    if support < MIN_SUPPORT or spread < MIN_SPREAD:
        return None
    if np.degrees(np.arccos(np.clip(up @ prior, -1.0, 1.0))) > SEARCH_DEG:
        return None
    return SceneUp(up=up, edges=float(inl.sum()) / lines.frames, support=support, spread=spread)


def _pinhole(f: float, k: np.ndarray) -> np.ndarray:
    out = np.array(k, dtype=np.float64)
    out[0, 0] = out[1, 1] = f
    return out


def _refined_point(segs: np.ndarray, w: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """The image point (homogeneous) that the edges pointing at ``guess`` within ``INLIER_DEG`` meet at best
    (weighted least squares on their homogeneous lines, in units of the image size for conditioning)."""
    scale = float(np.abs(segs).max()) or 1.0
    a = np.c_[segs[:, :2] / scale, np.ones(len(segs))]
    b = np.c_[segs[:, 2:] / scale, np.ones(len(segs))]
    lines = np.cross(a, b)
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True).clip(1e-12)
    inl = pointing_error_deg(segs, np.eye(3), np.asarray(guess, np.float64)[None])[0] < INLIER_DEG
    if inl.sum() < 2:
        return np.asarray(guess, np.float64)
    evecs = np.linalg.eigh((lines[inl] * w[inl, None]).T @ lines[inl])[1]
    p = evecs[:, 0]
    return np.array([p[0] * scale, p[1] * scale, p[2]])


def focal_from_scene(lines: SceneLines, k: np.ndarray, up: np.ndarray) -> SceneFocal | None:
    """The focal length (pixels) from two orthogonal families of horizontal edges (a floor's tiles, a room's
    walls): their vanishing points p1, p2 satisfy ``(p1 - c) . (p2 - c) = -f²`` about the principal point c. The
    families are found on the horizon of ``up`` (the vertical vanishing point is an image point, whatever the
    focal), searching focal and heading; the focal that puts the stronger family on the horizon must agree
    within ``FOCAL_AGREE``. ``None`` for a camera within ``FOCAL_MIN_TILT_DEG`` of level, without two such
    families, when the two estimates disagree, or with a focal outside ``FOCAL_FOV_DEG``."""
    k = np.asarray(k, np.float64)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    if abs(np.degrees(np.arcsin(np.clip(up[2], -1.0, 1.0)))) < FOCAL_MIN_TILT_DEG or len(lines.segments) < 4:
        return None
    vz = k @ up  # the vertical vanishing point, homogeneous
    horizontal = pointing_error_deg(lines.segments, k, up[None])[0] > VERTICAL_SKIP_DEG
    segs, w = lines.segments[horizontal], lines.weights[horizontal]
    diag = float(np.hypot(*lines.image_size))
    if w.sum() < FOCAL_MIN_SUPPORT * diag:
        return None
    f_lo, f_hi = (diag / (2.0 * np.tan(np.radians(fov) / 2.0)) for fov in FOCAL_FOV_DEG[::-1])
    focals = np.exp(np.linspace(np.log(f_lo), np.log(f_hi), 64))  # 3 % steps
    headings = np.radians(np.arange(0.0, 180.0, 1.0))

    def directions(f: float) -> tuple[np.ndarray, np.ndarray]:
        kf = _pinhole(f, k)
        u = np.linalg.solve(kf, vz)
        u = u / np.linalg.norm(u) * np.sign(u @ up or 1.0)
        a = np.cross(u, [0.0, 0.0, 1.0])
        a /= np.linalg.norm(a)
        return kf, np.cos(headings)[:, None] * a + np.sin(headings)[:, None] * np.cross(u, a)

    score = np.zeros((len(focals), len(headings)))
    for i, f in enumerate(focals):
        score[i] = _support(segs, w, *directions(f)) / diag
    i1, j1 = np.unravel_index(int(np.argmax(score)), score.shape)
    band = (j1 + 90 + np.arange(-10, 11)) % len(headings)  # the orthogonal family, give or take 10°
    i2 = int(np.argmax(score[:, band].max(1)))
    j2 = int(band[int(np.argmax(score[i2, band]))])
    if score[i1, j1] < FOCAL_MIN_SUPPORT or score[i2, j2] < FOCAL_MIN_SUPPORT:
        return None
    points = []
    for i, j in ((i1, j1), (i2, j2)):
        kf, dirs = directions(focals[i])
        p = _refined_point(segs, w, kf @ dirs[j])
        if abs(p[2]) < 1e-9 * np.abs(p[:2]).max():
            return None  # a family parallel to the image: its vanishing point is at infinity
        points.append(p[:2] / p[2] - k[:2, 2])
    f2 = -float(points[0] @ points[1])
    if f2 <= 0:
        return None
    f = float(np.sqrt(f2))
    if not (f_lo <= f <= f_hi and abs(np.log(f / focals[i1])) <= np.log(1.0 + FOCAL_AGREE)):
        return None
    return SceneFocal(focal_px=f, support=float(score[i1, j1]), support_second=float(score[i2, j2]),
                      from_vertical_px=float(focals[i1]))


# ----------------------------------------------------------------------------------------------------------
# Did the camera move? The fit assumes a static camera; the background of the sampled frames says whether it was.

MOTION_FEATURES = 800  # ORB features per sampled frame, away from the subject
MOTION_MIN_INLIERS = 25  # matches agreeing on one image motion: fewer and the pair is not judged
MOTION_RANSAC_PX = 3.0  # at the size the motion is measured (480 px long side for 960 px samples)
MOTION_LONG_SIDE_PX = 300  # samples longer than twice this are halved first
CAMERA_MOVED = 0.02  # the background moving this share of the image diagonal or more: the camera moved


@dataclass
class CameraMotion:
    shift: float  # the largest background motion between the first sampled frame and another, image diagonals
    rotation_deg: float  # the largest in-image rotation among them
    pairs: int  # frame pairs that could be judged (enough background texture)
    frame: int  # the source frame where the largest motion was seen

    @property
    def moved(self) -> bool:
        return self.shift >= CAMERA_MOVED


def _halved(grey: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """Half size for the motion check (a 2 % motion is ~10 px there; ORB runs 4x faster)."""
    if max(grey.shape[:2]) > 2 * MOTION_LONG_SIDE_PX:
        return cv2.pyrDown(grey), scale / 2
    return grey, scale


def camera_motion(samples: list[tuple[int, np.ndarray, float]], frame_index: np.ndarray | None = None,
                  boxes: np.ndarray | None = None) -> CameraMotion | None:
    """How far the background moved between the first sampled frame and each later one: ORB features outside
    the subject's box, matched and fitted with one similarity (RANSAC, so a person walking by does not count);
    the motion is the largest displacement of the image's corners and centre under it. ``None`` when no pair
    has enough background texture to judge (a blank wall, a subject filling the frame)."""
    if len(samples) < 2:
        return None
    orb = cv2.ORB_create(MOTION_FEATURES)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)

    def features(idx: int, grey: np.ndarray, scale: float) -> tuple[list, np.ndarray | None]:
        grey, scale = _halved(grey, scale)
        mask = np.full(grey.shape[:2], 255, np.uint8)
        box = _subject_box(boxes, frame_index, idx)
        if box is not None:
            x0, y0, x1, y1 = np.round(box * scale).astype(int)
            mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 0
        return orb.detectAndCompute(grey, mask)

    ref_idx, ref_grey, ref_scale = samples[0]
    kp0, des0 = features(ref_idx, ref_grey, ref_scale)
    if des0 is None or len(kp0) < MOTION_MIN_INLIERS:
        return None
    h, w = _halved(ref_grey, ref_scale)[0].shape[:2]
    probe = np.array([[0, 0], [w, 0], [0, h], [w, h], [w / 2, h / 2]], np.float64)  # corners and centre
    diag = float(np.hypot(w, h))
    shifts: list[tuple[float, int]] = []  # (shift, source frame) of every pair judged
    rotations: list[float] = []
    for idx, grey, scale in samples[1:]:
        if grey.shape[:2] != ref_grey.shape[:2]:
            continue
        kp1, des1 = features(idx, grey, scale)
        if des1 is None or len(kp1) < MOTION_MIN_INLIERS:
            continue
        matches = matcher.match(des0, des1)
        if len(matches) < MOTION_MIN_INLIERS:
            continue
        src = np.float32([kp0[m.queryIdx].pt for m in matches])
        dst = np.float32([kp1[m.trainIdx].pt for m in matches])
        m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=MOTION_RANSAC_PX)
        if m is None or inliers is None or int(inliers.sum()) < MOTION_MIN_INLIERS:
            continue
        moved = probe @ m[:, :2].T + m[:, 2] - probe
        shifts.append((float(np.linalg.norm(moved, axis=1).max()) / diag, int(idx)))
        rotations.append(abs(float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))))
    if not shifts:
        return None
    shift, frame = max(shifts)
    return CameraMotion(shift=shift, rotation_deg=max(rotations), pairs=len(shifts), frame=frame)
