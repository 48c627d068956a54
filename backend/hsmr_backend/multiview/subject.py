"""One subject across views: the same person in every view (never a bystander), labelled left/right the
same way in every view before anything is combined, and the frames where a view does not agree dropped."""

from __future__ import annotations

import numpy as np

from ..landmarks import LEG_SWAP, MIRROR
from .cameras import CalibratedCamera
from .geometry import pair_residual, projections, triangulate, triangulate_track, view_residual

# a candidate (or a view's frame) is the subject when its keypoints agree with the other views within this
# share of the person's height in pixels: above what a biased calibration leaves for the same person, well below
# another person's disagreement (docs/multicamera.md)
SAME_PERSON_SHARE = 0.12
RELABEL_GAIN = 0.7  # a relabelling is taken when it lowers the view's disagreement below this share of before


def person_height(kp: np.ndarray, min_conf: float = 0.3) -> float:
    """Vertical spread (px) of a person's confident keypoints (…,J,3) (the median over frames)."""
    kp = np.asarray(kp, dtype=np.float64).reshape(-1, kp.shape[-2], 3)
    spans = [np.ptp(f[f[:, 2] >= min_conf, 1]) for f in kp if (f[:, 2] >= min_conf).sum() >= 4]
    return float(np.median(spans)) if spans else float("nan")


def consistent_candidate(ref_kp: np.ndarray, ref_cam: CalibratedCamera, candidates: list[np.ndarray],
                         cam: CalibratedCamera) -> tuple[int, list[float]]:
    """Which of another view's people (keypoints (J,3) each, same moment) is the reference view's subject
    ``ref_kp``: the one whose two-view triangulation residual is smallest, if it is below ``SAME_PERSON_SHARE``
    of the person's height; -1 when none is. Also returns every candidate's residual (px)."""
    res = [pair_residual(ref_kp, ref_cam, c, cam) for c in candidates]
    finite = [r if np.isfinite(r) else np.inf for r in res]
    if not finite:
        return -1, res
    k = int(np.argmin(finite))
    limit = SAME_PERSON_SHARE * person_height(candidates[k])
    return (k if finite[k] <= limit else -1), res


LABELLINGS = {"as seen": np.arange(len(MIRROR)), "mirrored": MIRROR, "legs swapped": LEG_SWAP}


def consistent_labels(kp2d: np.ndarray, cameras: list[CalibratedCamera], rounds: int = 2
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Left and right made consistent across views: kp2d (V,T,33,3) undistorted pixels. For every view and frame,
    the labelling (as seen, mirrored, legs swapped) that agrees best with the points triangulated from the other
    views is kept, when it clearly beats the one seen. Returns the relabelled keypoints and (V,T) the last
    labelling applied (0 none, 1 mirrored, 2 legs swapped)."""
    kp = np.array(kp2d, dtype=np.float64, copy=True)
    v_n, t_n = kp.shape[:2]
    applied = np.zeros((v_n, t_n), np.int8)
    orders = list(LABELLINGS.values())
    for _ in range(rounds):
        changed = False
        for v in range(v_n):
            rest = [u for u in range(v_n) if u != v]
            others, _ = triangulate_track(kp[rest], [cameras[u] for u in rest])  # once for every labelling
            res = np.stack([view_residual(kp[v][:, order], others, cameras[v]) for order in orders])
            res = np.where(np.isfinite(res), res, np.inf)
            best = np.argmin(res, 0)
            take = (best > 0) & (res[best, np.arange(t_n)] < RELABEL_GAIN * res[0])
            for i in np.flatnonzero(take):
                kp[v, i] = kp[v, i][orders[best[i]]]
                applied[v, i] = best[i]
            changed |= bool(take.any())
        if not changed:
            break
    return kp, applied


def pair_residuals(kp_a: np.ndarray, cam_a: CalibratedCamera, kp_b: np.ndarray, cam_b: CalibratedCamera,
                   min_conf: float = 0.3) -> np.ndarray:
    """(T,) median two-view triangulation residual (px) per frame of keypoints (T,J,3) seen in two views (NaN
    where fewer than 4 points are seen in both)."""
    t, j, _ = kp_a.shape
    both = (kp_a[..., 2] >= min_conf) & (kp_b[..., 2] >= min_conf)
    xy = np.stack([kp_a[..., :2], kp_b[..., :2]]).reshape(2, t * j, 2)
    _, _, err = triangulate(xy, np.repeat(both.reshape(1, -1), 2, 0).astype(float), projections([cam_a, cam_b]))
    err = np.where(both, err.max(0).reshape(t, j), np.nan)
    out = np.full(t, np.nan)
    seen = both.sum(1) >= 4
    out[seen] = np.nanmedian(err[seen], axis=1)
    return out


def disagreeing_frames(kp2d: np.ndarray, cameras: list[CalibratedCamera]) -> np.ndarray:
    """(V,T) frames where a view drops out: its keypoints are not the subject's (a bystander followed, or the
    subject badly detected). Two views agree when their two-view residual is below ``SAME_PERSON_SHARE`` of the
    person's height. The first view, where the subject was chosen, is the reference: the others must agree with
    it; where it agrees with no view while two others agree with each other, it is the one that drops out."""
    v_n, t_n = kp2d.shape[:2]
    heights = np.array([person_height(k) for k in kp2d])
    agree = np.zeros((v_n, v_n, t_n), bool)
    seen = np.zeros((v_n, v_n, t_n), bool)
    for a in range(v_n):
        for b in range(a + 1, v_n):
            res = pair_residuals(kp2d[a], cameras[a], kp2d[b], cameras[b])
            limit = SAME_PERSON_SHARE * np.nanmin(heights[[a, b]])
            seen[a, b] = seen[b, a] = np.isfinite(res)
            agree[a, b] = agree[b, a] = np.isfinite(res) & (res <= limit)
    ref_trusted = agree[0].any(0) | ~agree[1:, 1:].any((0, 1))  # (T,) unless it alone disagrees with a pair
    drop = np.zeros((v_n, t_n), bool)
    drop[0] = ~ref_trusted
    for v in range(1, v_n):
        by_ref = seen[0, v] & ref_trusted
        by_others = seen[v, 1:].any(0) & ~agree[v, 1:].any(0)  # where the reference cannot judge
        drop[v] = np.where(by_ref, ~agree[0, v], by_others)
    return drop
