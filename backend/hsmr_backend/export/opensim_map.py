"""Moved to ``hsmr_contract.export.opensim_map``; kept until benchmarks import it from there."""

from hsmr_contract.export.opensim_map import *  # noqa: F403
