"""What the stages of one conversion have found so far: each stage fills its own fields of ``ConvertRun``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import landmarks as L
from .. import video as V
from ..landmarks import people as T
from ..progress import Reporter
from ..scene import CameraMotion, FrameSampler, SceneFocal, SceneLines
from .options import ConvertOptions


@dataclass
class ConvertRun:
    opts: ConvertOptions
    reporter: Reporter
    started: float  # time.perf_counter() at the start
    paths: dict[str, Path]  # result, overlay, plot, work (options.output_paths)
    timings: dict[str, float] = field(default_factory=dict)
    # footage and choices (open_footage, choose_device_and_mode, load_body_model)
    frame_range: V.FrameRange = field(default_factory=V.FrameRange)
    choice: T.SubjectChoice | None = None
    source: V.FrameSource | None = None
    total: int = 0  # frames selected, 0 when the source cannot tell
    device: str = "cpu"
    mode: str = "keypoints"
    weights: Any = None
    model: Any = None
    # landmarks (find_landmarks)
    work: L.WorkDir | None = None
    sampler: FrameSampler | None = None
    track: L.LandmarkTrack | None = None
    variable_rate_ms: tuple[float, float] | None = None  # (shortest, longest) gap between frames
    motion: CameraMotion | None = None
    # camera and scene (prepare_fit, scene_focal)
    body: str = ""
    regressor: Any = None
    camera: Any = None
    default_focal_px: float = 0.0  # the focal the camera would have without the scene's edges
    lines: SceneLines | None = None  # the scene's straight edges (--up auto)
    scene_focal: SceneFocal | None = None
    focal_note: str = ""
    # network, fit, world (run_hsmr, fit_world)
    init: dict[str, Any] | None = None
    fit: Any = None
    world: Any = None
    foot_resting: Any = None  # (T, 4) bool: heels and foot tips resting on the ground (world.fit_in_world)
    views: dict[str, int] = field(default_factory=dict)  # front / side / back frame counts
    # outputs (save_result, write_overlay_and_plot)
    arrays: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    result_seconds: float = 0.0

    @property
    def resting(self) -> float:
        """The share of frames with a resting foot."""
        return 0.0 if self.foot_resting is None else float(self.foot_resting.any(axis=1).mean())
