"""Test-session set-up: the tests never write into the user's data cache.

Unless the caller chose a folder (``REPLICATE_DATA_DIR``), every test — and every chapter notebook a test
executes, whose kernel inherits the environment — uses ``.cache/test-data`` in the checkout (git-ignored):
warm across test runs on one machine, separate from ``data/cache`` that ``make book`` fills.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if not os.environ.get("REPLICATE_DATA_DIR"):
    os.environ["REPLICATE_DATA_DIR"] = str(ROOT / ".cache" / "test-data")
