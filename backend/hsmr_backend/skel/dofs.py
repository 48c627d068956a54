"""Moved to ``hsmr_contract.dofs``; this re-export keeps ``from hsmr_backend.skel import dofs`` working."""

from hsmr_contract.dofs import *  # noqa: F403
