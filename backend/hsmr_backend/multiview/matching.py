"""Which clip was filmed by which calibrated camera, and the camera fitted to the clip's actual image size."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from .cameras import CalibratedCamera, CalibrationError

# A clip whose size differs from its calibrated image by at most this factor is the same image resized
# (the Pose2Sim demo's 1080 px wide videos of its 1088 px wide calibration); more is another camera or setting.
SMALL_SIZE_CHANGE = 0.05


def _stem(text: str) -> str:
    """Lower-case name without extensions or separators: 'Cam_01.mp4' -> 'cam01'."""
    name = Path(text).name.lower().removesuffix(".qca.txt")
    name = re.sub(r"\.[a-z0-9]{2,4}$", "", name)
    return re.sub(r"[^a-z0-9]", "", name)


def _digits(text: str) -> int | None:
    found = re.findall(r"\d+", text)
    return int(found[-1]) if found else None


def _name_match(clip: str, cam: str) -> bool:
    a, b = _stem(clip), _stem(cam)
    if a == b or (b and (a.endswith(b) or b in a)):
        return True
    da, db = _digits(a), _digits(b)
    letters = lambda s: re.sub(r"\d+", "", s)  # noqa: E731
    return da is not None and da == db and letters(b) in letters(a)


def match_clips(clips: list[str], cameras: list[CalibratedCamera]) -> tuple[list[int], str]:
    """Camera index for every clip: by name when each clip's name picks one camera, each a different one;
    else by order. Returns the indices and a line saying how they were matched."""
    if len(clips) > len(cameras):
        raise CalibrationError(f"{len(clips)} clips but the calibration has only {len(cameras)} camera(s) "
                               f"({', '.join(c.name for c in cameras)}); give one clip per calibrated camera")
    if len(clips) < 2:
        raise CalibrationError("a calibrated multi-camera conversion needs at least two clips; "
                               "for one clip leave out --calibration")
    picks = []
    for clip in clips:
        hits = [i for i, c in enumerate(cameras) if _name_match(clip, c.name)]
        picks.append(hits[0] if len(hits) == 1 else -1)
    by_name = -1 not in picks and len(set(picks)) == len(picks)
    if not by_name:
        picks = list(range(len(clips)))
    pairs = ", ".join(f"{Path(c).name} -> {cameras[i].name}" for c, i in zip(clips, picks, strict=True))
    return picks, f"clips matched to cameras by {'name' if by_name else 'order'}: {pairs}"


def fit_to_image(cam: CalibratedCamera, width: int, height: int) -> tuple[CalibratedCamera, str | None]:
    """The camera for a clip of ``width`` x ``height``: unchanged when the size is the calibrated one; for a size
    within ``SMALL_SIZE_CHANGE`` the calibrated image scaled to fit and centred (letterboxed), with a warning;
    a :class:`CalibrationError` for anything else."""
    cw, ch = cam.size
    if (cw, ch) == (width, height):
        return cam, None
    s = min(width / cw, height / ch)
    ratio_w, ratio_h = width / cw, height / ch
    if max(abs(ratio_w - 1), abs(ratio_h - 1)) > SMALL_SIZE_CHANGE:
        raise CalibrationError(
            f"camera {cam.name!r} was calibrated for {cw}x{ch} px images but its clip is {width}x{height}: "
            "give the clip that camera filmed at its calibrated size, or a calibration made for this size")
    ox, oy = (width - s * cw) / 2.0, (height - s * ch) / 2.0
    k = cam.K.copy()
    k[0, :] *= s
    k[1, :] *= s
    k[0, 2] += ox
    k[1, 2] += oy
    warning = (f"camera {cam.name!r}: the clip is {width}x{height} px, calibrated {cw}x{ch}: "
               f"intrinsics scaled by {s:.4f} and shifted by ({ox:+.1f}, {oy:+.1f}) px (the calibrated image "
               "resized to fit); check the clip is that camera's")
    return replace(cam, K=k, size=(int(width), int(height)), dist=np.asarray(cam.dist, dtype=np.float64)), warning
