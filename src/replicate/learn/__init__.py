"""Learned steps as scikit-learn estimators, fitted inside the training folds only.

Every step works on pandas DataFrames (index = patient ids, columns =
feature names; the output keeps both) and on numpy arrays; all are
clone-able, deterministic given ``random_state`` and safe inside
``cross_val_predict`` and :class:`imblearn.pipeline.Pipeline`. Steps that
need side information per patient (``ICCFilter``, ``ComBat``) take it at
construction, indexed by patient id, and look up ``X.index``.
"""

from ._base import FrameSelector, FrameTransformer, as_frame, as_series
from .basic import DropConstant, Impute, ZScore
from .combat import ComBat
from .filters import FTestRFE, TTestFilter
from .icc_filter import ICCFilter
from .lasso import LassoSelector, format_score_formula
from .mrmr import MRMRSelector

__all__ = [
    "DropConstant",
    "ZScore",
    "Impute",
    "ICCFilter",
    "ComBat",
    "MRMRSelector",
    "LassoSelector",
    "format_score_formula",
    "TTestFilter",
    "FTestRFE",
    "FrameTransformer",
    "FrameSelector",
    "as_frame",
    "as_series",
]


def __getattr__(name):
    # ClinicalLogit lives in replicate.clinical (statsmodels); re-exported lazily.
    if name == "ClinicalLogit":
        from replicate.clinical import ClinicalLogit

        return ClinicalLogit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
