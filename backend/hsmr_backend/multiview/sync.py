"""Which frames of the clips show the same moment: by index when the clips start together, else a whole-frame
offset per clip against the first.

The offset is the one at which the subject's 2D keypoints in the two clips agree best through the calibration
(the median two-view triangulation residual over the frames the clips share), not the cross-correlation of
vertical keypoint speeds Pose2Sim uses: that needs a long moment of clear vertical motion, which short takes lack
(docs/multicamera.md, Synchronisation)."""

from __future__ import annotations

import numpy as np

from .cameras import CalibratedCamera
from .geometry import projections, reproject, triangulate

MIN_OVERLAP = 0.6  # share of the shorter clip two clips must share at an offset (short overlaps agree by chance)
COARSE_STEP = 4  # frames between the offsets tried first (the residual changes smoothly with the offset)
CLEAR_GAIN = 0.8  # an offset is taken when its residual is below this share of the residual at offset 0


class SyncError(ValueError):
    """Offsets that cannot be used; one line saying what is wrong and what to do."""


def residual_at_lag(kp_a: np.ndarray, cam_a: CalibratedCamera, kp_b: np.ndarray, cam_b: CalibratedCamera, lag: int,
                    min_conf: float = 0.5) -> float:
    """Median two-view residual (px) of kp_a[i] (T,J,3) with kp_b[i + lag], each view's median residual taken
    out (the calibration's bias); NaN when the clips share less than
    ``MIN_OVERLAP`` of the shorter one or too few points."""
    lo, hi = max(0, -lag), min(len(kp_a), len(kp_b) - lag)
    if hi - lo < max(5, int(MIN_OVERLAP * min(len(kp_a), len(kp_b)))):
        return float("nan")
    a, b = kp_a[lo:hi].reshape(-1, 3), kp_b[lo + lag: hi + lag].reshape(-1, 3)
    both = (a[:, 2] >= min_conf) & (b[:, 2] >= min_conf)
    if both.sum() < 20:
        return float("nan")
    xy = np.stack([a[both, :2], b[both, :2]])
    p = projections([cam_a, cam_b])
    pts, _, _ = triangulate(xy, np.ones((2, int(both.sum()))), p)
    r = reproject(pts, p) - xy  # (2,N,2); a calibration's constant bias is not a time offset: taken out
    r = r - np.nanmedian(r, axis=1, keepdims=True)
    return float(np.nanmedian(np.linalg.norm(r, axis=-1)))


def estimate_offsets(kp2d_views: list[np.ndarray], cameras: list[CalibratedCamera], fps: float,
                     max_lag_s: float = 2.0) -> tuple[list[int], str]:
    """Offsets (frames) of every clip against the first: frame i of the first clip shows the same moment as frame
    i + offset[v] of clip v; 0 unless another offset clearly agrees better. Also a line saying what was found."""
    max_lag = max(1, int(round(max_lag_s * fps)))
    offsets, notes = [0], []
    for kp, cam in zip(kp2d_views[1:], cameras[1:], strict=True):
        lags = set(range(-max_lag, max_lag + 1, COARSE_STEP)) | {0}  # a coarse search, then around its best
        res = {lag: residual_at_lag(kp2d_views[0], cameras[0], kp, cam, lag) for lag in lags}
        res = {k: v for k, v in res.items() if np.isfinite(v)}
        if res:
            near = min(res, key=res.get)
            for lag in range(near - COARSE_STEP + 1, near + COARSE_STEP):
                res.setdefault(lag, residual_at_lag(kp2d_views[0], cameras[0], kp, cam, lag))
            res = {k: v for k, v in res.items() if np.isfinite(v)}
        at0 = res.get(0, np.inf)
        best = min(res, key=res.get) if res else 0
        take = best != 0 and res[best] < CLEAR_GAIN * at0
        offsets.append(best if take else 0)
        notes.append(f"{cam.name} {offsets[-1]:+d} ({res.get(offsets[-1], float('nan')):.1f} px)")
    if all(o == 0 for o in offsets):
        return offsets, ("synchronisation: the clips start together (the subject agrees best across views at offset "
                         f"0: {', '.join(notes)}); frames are matched by index")
    return offsets, (f"synchronisation: frame offsets against {cameras[0].name} where the subject agrees best across "
                     f"views: {', '.join(notes)}; override with --offsets")


def parse_offsets(text: str | None, n_clips: int) -> list[int] | None:
    """``--offsets``: None or "auto" (estimate), "0" (every clip starts together), or one whole number per clip
    ("0,12,-3": the first must be 0)."""
    if text is None or str(text).strip().lower() in ("", "auto"):
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise SyncError(f"--offsets {text!r} not understood: give 'auto', '0', or one whole number of frames "
                        f"per clip ({n_clips}), e.g. '0,12,-3'") from None
    if values == [0]:
        return [0] * n_clips
    if len(values) != n_clips or values[0] != 0:
        raise SyncError(f"--offsets {text!r}: give {n_clips} whole numbers of frames, the first 0 "
                        "(offsets are counted against the first clip)")
    return values


def aligned_frames(lengths: list[int], offsets: list[int]) -> tuple[int, int]:
    """The frames [start, end) of the first clip that every clip also has, given the offsets."""
    start = max(0, *(-o for o in offsets))
    end = min(n - o for n, o in zip(lengths, offsets, strict=True))
    if end - start < 1:
        raise SyncError(f"with offsets {offsets} the clips share no frame: check --offsets")
    return start, end
