"""``Meta``: the typed ``meta_json`` of a result file (how it was made; nothing the rig needs).

Every key the backend writes is a field; a key this reader does not know (a newer writer's) is kept in
``extra`` and written back, never an error. Values are JSON types; a missing key reads as its default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

# written only when true / present (constant-rate footage has neither)
_OMITTED_WHEN_EMPTY = ("variable_frame_rate", "timestamps_ms", "sources", "calibration", "multi_camera")


class MetaError(ValueError):
    """A ``meta_json`` that is not a JSON object, or a known key of the wrong type."""


@dataclass
class Meta:
    producer: str = ""  # "hsmr-backend"
    versions: dict[str, str] = field(default_factory=dict)  # package -> version of the producer's environment
    mode: str = ""  # "keypoints" | "hsmr" | "skelcf": which network (if any) started the fit
    body: str = ""  # "open" | "skel_male" | "skel_female" | a path
    device: str = ""  # "cpu" | "cuda"
    source: str | None = None  # absolute path of the source video
    source_fps: float | None = None  # frame rate of the source video
    rotation: int = 0  # degrees the frames were turned (the video's rotation tag)
    stride: int = 1  # every stride-th source frame was fitted
    frames: str | None = None  # the frame range asked for (e.g. "10:200"), None = all
    focal_px: float | None = None  # the focal length used, pixels
    focal_source: str | None = None  # where it came from ("default", "scene edges", "option", ...)
    subject: str | None = None  # which person was followed, in words
    candidates: list[Any] = field(default_factory=list)  # boxes (x0, y0, x1, y1) of the people at the start
    options: dict[str, Any] = field(default_factory=dict)  # the convert options
    world_notes: list[str] | None = None  # assumptions and findings of the world-frame stage
    left_right_swaps: int = 0  # frames whose left/right landmarks were swapped back
    leg_swaps: int = 0  # frames whose legs were swapped back
    views: dict[str, int] = field(default_factory=dict)  # frames seen from the front / side / back
    feet_resting_share: float = 0.0  # share of frames with a foot resting on the ground
    up_source: str | None = None  # where the world's up came from ("scene edges", or None: the body)
    scene_focal_px: float | None = None  # focal length measured from the scene's edges, pixels
    camera_motion: dict[str, Any] | None = None  # did the camera move: moved, shift, rotation_deg, frame, pairs
    variable_frame_rate: bool = False  # the footage has a variable frame rate
    timestamps_ms: list[float | None] | None = None  # real time of each fitted frame (variable frame rate only)
    sources: list[str] = field(default_factory=list)  # several calibrated cameras: every clip, the first camera's first
    calibration: str | None = None  # several cameras: the calibration file
    # several cameras: offsets, principal_point_shift_px, triangulation_error_before_px / _after_px, view_weights,
    # fit_reprojection_error_views_px (one entry per camera, in camera_names order)
    multi_camera: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # keys of newer writers, kept as they were

    @classmethod
    def from_json(cls, text: str) -> Meta:
        """Parse ``meta_json``; unknown keys go to ``extra``."""
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise MetaError(f"result field 'meta_json' is not valid JSON ({e})") from None
        if not isinstance(obj, dict):
            raise MetaError("result field 'meta_json' is not a JSON object")
        known = {f.name for f in fields(cls)} - {"extra"}
        meta = cls(**{k: v for k, v in obj.items() if k in known})
        meta.extra = {k: v for k, v in obj.items() if k not in known}
        if meta.source is not None and not isinstance(meta.source, str):
            raise MetaError(f"meta_json 'source' must be a path string, got {meta.source!r:.60}")
        return meta

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        for key in _OMITTED_WHEN_EMPTY:
            if not out[key]:
                del out[key]
        return {**out, **self.extra}

    def to_json(self) -> str:
        """The ``meta_json`` string (values that are not JSON types are written as their ``str``)."""
        return json.dumps(self.to_dict(), default=str)
