"""The main job: footage in, result file out.

decode (video.py) -> subject landmarks (landmarks.py, resumable) -> [HSMR network on crops] -> SKELify over
time (fit.py) -> world frame (world.py) -> result file (result_format.save, atomic) -> overlay video + plot.

stages.py runs it as a list of stages over one ``ConvertRun`` (state.py); options.py holds what the user asks
and what comes back; diagnostics.py is the table of notes on the footage and the fit; result.py builds the
file's arrays and meta; hsmr_stage.py runs the network.

Every expected failure raises ``ConvertError`` (or a subclass of ValueError from the stage that found it)
with one line saying what is wrong and what to do; cli.py prints it without a traceback.
"""

from __future__ import annotations

from .hsmr_stage import hsmr_init, keepalive
from .options import (
    ConvertError,
    ConvertOptions,
    ConvertSummary,
    body_label,
    output_paths,
    resolve_device,
    resolve_mode,
)
from .result import assemble, build_meta, dof_arrays, model_forward, versions
from .stages import convert

__all__ = [
    "ConvertError", "ConvertOptions", "ConvertSummary", "assemble", "body_label", "build_meta", "convert",
    "dof_arrays", "hsmr_init", "keepalive", "model_forward", "output_paths", "resolve_device", "resolve_mode",
    "versions",
]
