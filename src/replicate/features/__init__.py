"""Feature extraction: PyRadiomics handcrafted features, deep CNN features, mask perturbations, ICC.

from replicate.features import extract_radiomics, extract_deep, perturbed_cases, icc
"""

from .deep import build_backbone, extract_deep, extract_deep_layers, find_weights, gradcam, tumour_crops
from .icc import icc
from .perturb import PerturbationError, perturb_mask, perturbed_cases
from .radiomics import (
    CaseError,
    ExtractionError,
    canonical_params,
    count_features,
    extract_radiomics,
    load_params,
    read_case,
    settings_hash,
)
from .table import FeatureTable

__all__ = [
    "FeatureTable",
    "extract_radiomics",
    "load_params",
    "count_features",
    "canonical_params",
    "settings_hash",
    "read_case",
    "CaseError",
    "ExtractionError",
    "extract_deep",
    "extract_deep_layers",
    "build_backbone",
    "find_weights",
    "gradcam",
    "tumour_crops",
    "perturb_mask",
    "perturbed_cases",
    "PerturbationError",
    "icc",
]
