"""Biomechanics exports of a result file: the numpy writers live in ``hsmr_contract.export`` (re-exported here,
the stable names); this package adds the HTML joint-angle report (matplotlib) and the ``export`` command."""

from hsmr_contract.export import *  # noqa: F403
from hsmr_contract.export import __all__  # noqa: F401
