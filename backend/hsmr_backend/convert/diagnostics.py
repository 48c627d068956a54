"""Every conditional note convert gives about the footage and the fit: one table of (condition, message).

Each row is read after one stage (``after``), from the findings that stage left in the ``ConvertRun``;
``report(run, after)`` gives the lines whose condition holds, in table order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import video as V
from .state import ConvertRun

BACK_VIEW_SHARE = 0.25  # warn when at least this share of the valid frames shows the subject from behind


@dataclass(frozen=True)
class Diagnostic:
    name: str
    after: str  # the stage whose findings it reads: "landmarks" | "scene" | "fit"
    level: str  # the reporter's level: "info" | "warning"
    applies: Callable[[ConvertRun], bool]
    message: Callable[[ConvertRun], str]


def decoded_up_to(run: ConvertRun) -> int | None:
    """The last decoded frame when decoding stopped well before the frames the container announced (a damaged
    file), else None."""
    source, track, frame_range = run.source, run.track, run.frame_range
    if not isinstance(source, V.VideoFileSource) or not source.n_frames or track is None or not len(track):
        return None
    expected = frame_range.indices(source.n_frames)
    if not len(expected):
        return None
    last = int(track.frame_index[-1])
    missing = len(range(last + frame_range.stride, expected[-1] + 1, frame_range.stride))
    if missing <= max(2, len(expected) // 100):  # containers' frame counts are often off by a frame or two
        return None
    return last


def _stat(run: ConvertRun, name: str) -> int:
    return int(run.track.stats.get(name, 0))


def _back_view(run: ConvertRun) -> bool:
    return run.views["back"] >= BACK_VIEW_SHARE * max(sum(run.views.values()), 1)


DIAGNOSTICS: tuple[Diagnostic, ...] = (
    Diagnostic(
        "decode shortfall", "landmarks", "warning", lambda r: decoded_up_to(r) is not None,
        lambda r: f"the video could only be decoded up to frame {decoded_up_to(r)} of {r.source.n_frames}: the file "
                  "is damaged or cut short after that point; converted the first part (re-export or re-copy the "
                  "file for the rest)"),
    Diagnostic(
        "variable frame rate", "landmarks", "warning", lambda r: r.variable_rate_ms is not None,
        lambda r: f"variable frame rate footage (frames {r.variable_rate_ms[0]:.0f}-{r.variable_rate_ms[1]:.0f} ms "
                  f"apart): times assume a steady {r.source.fps:.3g} fps, so timing is approximate; for exact timing "
                  "re-encode at a constant rate (e.g. ffmpeg -i IN -vsync cfr OUT.mp4)"),
    Diagnostic(
        "mirrored frames", "landmarks", "info", lambda r: _stat(r, "left_right_swaps") > 0,
        lambda r: f"MediaPipe swapped left and right in {_stat(r, 'left_right_swaps')} of {len(r.track)} frames "
                  "(taking the front for the back): relabelled to match the rest of the clip"),
    Diagnostic(
        "leg swaps", "landmarks", "info", lambda r: _stat(r, "leg_swaps") > 0,
        lambda r: f"MediaPipe swapped the legs alone in {_stat(r, 'leg_swaps')} of {len(r.track)} frames: "
                  "relabelled"),
    Diagnostic(
        "moving camera", "landmarks", "warning", lambda r: r.motion is not None and r.motion.moved,
        lambda r: f"the camera moved during the clip: the background shifted by {r.motion.shift:.0%} of the frame's "
                  f"diagonal (by frame {r.motion.frame}). The fit assumes a static camera, so the subject's path, "
                  "the ground and the camera's pitch and roll are only approximate; film from a tripod for a true "
                  "world frame"),
    Diagnostic(
        "subject lost", "landmarks", "warning", lambda r: not r.track.valid.all(),
        lambda r: f"subject not found in {int((~r.track.valid).sum())} of {len(r.track)} frames: those are marked "
                  "invalid and bridged"),
    Diagnostic(
        "focal from the scene", "scene", "info", lambda r: r.camera.focal_source == "scene",
        lambda r: f"focal length from the scene's horizontal edges: {r.scene_focal.focal_px:.0f} px (the default "
                  f"would be {r.default_focal_px:.0f} px)"),
    Diagnostic(
        "resting feet", "fit", "info", lambda r: r.resting > 0,
        lambda r: f"feet rest on the ground in {r.resting:.0%} of the frames: they were held there"),
    Diagnostic(
        "back view", "fit", "warning", _back_view,
        lambda r: f"the subject has their back to the camera in {r.views['back']} of {len(r.track)} frames: from "
                  "behind, knee and hip flexion are poorly seen (deep squats and sitting came out 25-30° off in "
                  "tests); film from the front or the side if you can"),
)


def report(run: ConvertRun, after: str) -> None:
    """Give the notes of every diagnostic read after stage ``after`` whose condition holds."""
    for d in DIAGNOSTICS:
        if d.after == after and d.applies(run):
            run.reporter.info(d.message(run), level=d.level)
