"""A feature matrix with the cases that failed and how it was made."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class FeatureTable:
    """``features``: index = case id, columns = feature names; ``failures``: case_id, reason."""

    features: pd.DataFrame
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["case_id", "reason"]))
    info: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    def prefixed(self, prefix: str) -> FeatureTable:
        return FeatureTable(self.features.add_prefix(prefix), self.failures.copy(), dict(self.info))
