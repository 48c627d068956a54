"""Moved to ``hsmr_contract.result_format``; this re-export keeps old imports working until they are updated."""

from hsmr_contract.result_format import *  # noqa: F403
from hsmr_contract.result_format import _default_file_mode  # noqa: F401
