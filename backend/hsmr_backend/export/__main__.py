"""``python -m hsmr_backend.export RESULT.npz [--mot] [--trc] [--csv] [--report]``."""

import sys

from .cli import main

sys.exit(main())
