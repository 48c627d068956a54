"""``python -m hsmr_backend``: the same command line as ``hsmr-backend``."""

import sys

from .cli import main

sys.exit(main())
