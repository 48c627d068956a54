"""Left/right relabelling: frames whose left and right labels MediaPipe swapped (the whole body mirrored, or the
legs alone), found from the 2D landmarks over the clip and swapped back; and the body's up read from the world
landmarks (``landmark_up``). Pure numpy, no MediaPipe here."""

from __future__ import annotations

import numpy as np

from .names import MIRROR

# landmarks that decide whether a frame came out mirrored: shoulders, elbows, wrists, hips (the legs are
# judged on their own, see leg_swapped_frames: MediaPipe also swaps them alone)
FLIP_EVIDENCE = np.array([11, 12, 13, 14, 15, 16, 23, 24])
FLIP_TORSO = np.array([11, 12, 23, 24])  # the fallback when the limbs are garbled
FLIP_NEED = 5  # of FLIP_EVIDENCE seen in both frames
# MediaPipe also swaps the legs alone (the hips stay), typically where they cross in a side view
LEGS = np.array([25, 26, 27, 28, 29, 30, 31, 32])  # knees, ankles, heels, foot tips
LEG_SWAP = np.arange(33)
LEG_SWAP[LEGS] = MIRROR[LEGS]


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


def fix_labels(kp2d: np.ndarray, kp3d: np.ndarray, valid: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Copies of ``kp2d``, ``kp3d`` with the mirrored frames and then the leg-swapped frames relabelled, and
    (T,) bool masks of the mirrored and the leg-swapped frames."""
    mirrored = mirrored_frames(kp2d, valid)
    kp2d, kp3d = unmirror(kp2d, kp3d, mirrored)
    legs = leg_swapped_frames(kp2d, valid)  # after the whole-body relabelling: it may leave the legs wrong
    kp2d, kp3d = swap_legs(kp2d, kp3d, legs)
    return kp2d, kp3d, mirrored, legs


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
