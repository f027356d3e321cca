"""The cohort: one row per patient, with labels, clinical variables, times and image paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

FAILURE_COLUMNS = ["patient_id", "stage", "reason"]


def empty_failures() -> pd.DataFrame:
    return pd.DataFrame(columns=FAILURE_COLUMNS)


@dataclass(frozen=True)
class Case:
    """One image/mask pair to extract features from."""

    case_id: str
    image: Path
    mask: Path
    modality: str = ""


@dataclass
class Cohort:
    """A cohort as every chapter sees it.

    ``table`` is indexed by ``patient_id``; image/mask paths are in columns
    ``image_<modality>`` / ``mask_<modality>``; outcomes are 0/1 ints;
    survival is ``<name>_time`` (days) + ``<name>_event``. Patients that could
    not be used are listed in ``failures`` (never silently dropped).
    """

    name: str
    table: pd.DataFrame
    label: str | None = None
    modalities: list[str] = field(default_factory=list)
    source: str = ""
    failures: pd.DataFrame = field(default_factory=empty_failures)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.table.index = self.table.index.astype(str)
        self.table.index.name = "patient_id"

    def __len__(self) -> int:
        return len(self.table)

    @property
    def y(self) -> pd.Series:
        if self.label is None:
            raise ValueError(f"cohort {self.name!r} has no default label column")
        return self.table[self.label]

    def cases(self, modality: str) -> list[Case]:
        img, msk = f"image_{modality}", f"mask_{modality}"
        if img not in self.table or msk not in self.table:
            raise KeyError(f"cohort {self.name!r} has no modality {modality!r} (has {self.modalities})")
        return [Case(str(pid), Path(r[img]), Path(r[msk]), modality) for pid, r in self.table.iterrows()]

    def subset(self, ids) -> Cohort:
        ids = [str(i) for i in ids]
        return Cohort(
            self.name,
            self.table.loc[ids].copy(),
            self.label,
            list(self.modalities),
            self.source,
            self.failures.copy(),
            dict(self.meta),
        )

    def add_failure(self, patient_id: str, stage: str, reason: str) -> None:
        row = pd.DataFrame([[str(patient_id), stage, reason]], columns=FAILURE_COLUMNS)
        self.failures = row if self.failures.empty else pd.concat([self.failures, row], ignore_index=True)

    def summary(self) -> dict:
        out = {"name": self.name, "n": len(self)}
        if self.label is not None and self.label in self.table:
            out["n_positive"] = int(self.table[self.label].sum())
        if "centre" in self.table:
            out["centres"] = self.table["centre"].value_counts().to_dict()
        out["n_failures"] = int(len(self.failures))
        return out
