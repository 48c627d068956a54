"""Moved to ``hsmr_contract.result_format``; kept until benchmarks/bench_blender_import.py imports it from there."""

from hsmr_contract.result_format import *  # noqa: F403
