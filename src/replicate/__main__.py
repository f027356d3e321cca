"""``python -m replicate ...``: the command line (:mod:`replicate.cli`)."""

import sys

from .cli import main

sys.exit(main())
