"""Validated statistics for reported-vs-reproduced comparisons.

Every function is checked against an established implementation or a
published number in ``tests/test_stats_*.py`` (pROC, statsmodels,
scikit-learn, lifelines, dcurves, Newcombe 1998, WORC's formula).
Conventions: ``y`` is 0/1 with 1 = positive; a higher score means "more
likely positive" (or, for survival, higher risk); intervals are returned in
the order each function's docstring states.
"""

from .auc import (
    DeLongResult,
    auc_ci,
    auc_score,
    delong_covariance,
    delong_placements,
    delong_test,
    delong_test_unpaired,
    delong_variance,
    hanley_mcneil_se,
)
from .bootstrap import (
    bootstrap_auc,
    bootstrap_auc_ci,
    bootstrap_ci,
    bootstrap_indices,
    bootstrap_values,
    percentile_ci,
)
from .calibration import (
    HosmerLemeshowResult,
    brier_score,
    calibration_curve_with_bands,
    calibration_intercept_slope,
    calibration_with_bands,
    hosmer_lemeshow,
    hosmer_lemeshow_table,
)
from .compare import (
    POWER_FACTOR,
    Equivalence,
    contrast_word,
    method_se,
    mover_difference,
    resolution,
    se_from_ci,
    tost,
)
from .decision import TREAT_ALL, TREAT_NONE, decision_curve, net_benefit
from .metrics import (
    METRICS,
    ConfusionCounts,
    classification_report,
    confusion_counts,
    confusion_metrics,
    performance,
    threshold_for_sensitivity,
    youden_threshold,
)
from .paired_tests import McNemarResult, mcnemar
from .proportions import PROPORTION_METHODS, proportion_ci
from .resampled_ttest import (
    ResampledTTestResult,
    corrected_resampled_ttest,
    corrected_resampled_ttest_ci,
    corrected_se,
)
from .survival import c_index, c_index_ci, cox_hazard_ratio, kaplan_meier_groups, logrank, risk_groups

__all__ = [
    # auc
    "auc_score",
    "auc_ci",
    "delong_test",
    "delong_test_unpaired",
    "DeLongResult",
    "delong_placements",
    "delong_covariance",
    "delong_variance",
    "hanley_mcneil_se",
    # reported vs reproduced
    "mover_difference",
    "se_from_ci",
    "resolution",
    "tost",
    "Equivalence",
    "contrast_word",
    "method_se",
    "POWER_FACTOR",
    # bootstrap
    "bootstrap_auc",
    "bootstrap_auc_ci",
    "bootstrap_ci",
    "bootstrap_values",
    "bootstrap_indices",
    "percentile_ci",
    # proportions / metrics
    "proportion_ci",
    "PROPORTION_METHODS",
    "confusion_counts",
    "ConfusionCounts",
    "confusion_metrics",
    "METRICS",
    "youden_threshold",
    "performance",
    "threshold_for_sensitivity",
    "classification_report",
    # resampled t-test
    "corrected_resampled_ttest_ci",
    "corrected_resampled_ttest",
    "corrected_se",
    "ResampledTTestResult",
    # calibration
    "hosmer_lemeshow",
    "hosmer_lemeshow_table",
    "HosmerLemeshowResult",
    "calibration_curve_with_bands",
    "calibration_with_bands",
    "calibration_intercept_slope",
    "brier_score",
    # decision curves
    "decision_curve",
    "net_benefit",
    "TREAT_ALL",
    "TREAT_NONE",
    # survival
    "c_index",
    "c_index_ci",
    "kaplan_meier_groups",
    "logrank",
    "risk_groups",
    "cox_hazard_ratio",
    # paired tests
    "mcnemar",
    "McNemarResult",
]
