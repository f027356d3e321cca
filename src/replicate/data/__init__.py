"""Public data: registry, verified fetch (mirror or download), cohort loaders.

fetch(name, progress=True) -> Path        # verified files under replicate.config.data_dir()/name
list_datasets() -> DataFrame              # name, title, files, size_mb, citation, licence, cached
load_cohort(name) -> Cohort               # "ibsi_sts", "busbra", "worc_lipo"
load_worc_splits() -> [(train_ids, test_ids), ...]   # WORC's 100 Lipo splits (92/23)
"""

from .cohort import Case, Cohort
from .fetch import DataUnavailableError, VerificationError, fetch, list_datasets
from .loaders import load_cohort, load_worc_splits
from .registry import get_dataset

__all__ = [
    "Case",
    "Cohort",
    "DataUnavailableError",
    "VerificationError",
    "fetch",
    "get_dataset",
    "list_datasets",
    "load_cohort",
    "load_worc_splits",
]
