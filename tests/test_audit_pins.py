"""The five papers' findings, pinned: a check that stops finding one (or starts raising a new one) fails here.

Each finding is pinned by its check, severity, issue (where a check has several) and the spec entries it
names (``Finding.ids``). Changing a pin is a decision about the audit, taken on purpose: say why next to it.
"""
from __future__ import annotations

import pytest

from replicate.audit import audit

#: paper -> {(check, severity, issue, "id id ...")} for every error and warning
PINNED = {
    "alt": {
        ('cohort_table', 'error', None, 't1_c3_depth_deep t1_c3_depth_superficial'),
        ('cohort_table', 'error', None, 't1_c2_depth_superficial t1_c3_depth_superficial t1_c4_depth_superficial t1_tot_depth_superficial'),
        ('cross_reference', 'error', None, 'abs_c2_pos t1_c2_mdm2_pos'),
        ('cohort_table', 'warning', 'p_value', 't1_p_sex'),
    },
    "rls": {
        ('feasibility', 'error', None, 't1_va_non_cystic_spaces_or_necrosis_not_present'),
        ('feasibility', 'error', None, 't1_tr_mdm_cystic_spaces_or_necrosis_not_present'),
        ('feasibility', 'error', None, 't1_va_non_cystic_spaces_or_necrosis_present'),
        ('feasibility', 'error', None, 't1_tr_mdm_cystic_spaces_or_necrosis_present'),
        ('feasibility', 'error', None, 't3_train_clin_spe'),
        ('feasibility', 'error', None, 't3_ext_dlrs_spe'),
        ('feasibility', 'error', None, 't3_ext_rs_spe'),
        ('confusion_matrix', 'error', None, 't3_train_clin_acc t3_train_clin_npv t3_train_clin_spe'),
        ('confusion_matrix', 'error', None, 't3_ext_clin_acc t3_ext_clin_npv t3_ext_clin_spe'),
        ('confusion_matrix', 'error', None, 't3_train_dlrn_acc t3_train_dlrn_npv t3_train_dlrn_spe'),
        ('confusion_matrix', 'error', None, 't3_ext_dlrs_acc t3_ext_dlrs_npv t3_ext_dlrs_spe'),
        ('confusion_matrix', 'error', None, 't3_train_rs_acc t3_train_rs_npv t3_train_rs_spe'),
        ('confusion_matrix', 'error', None, 't3_ext_rs_acc t3_ext_rs_npv t3_ext_rs_spe'),
        ('comparison', 'error', 'ci_centre', 't3_ext_dlrn_clin'),
        ('comparison', 'error', 'ci_centre', 't3_ext_dlrn_dlrs'),
        ('comparison', 'error', 'se_vs_ci', 't3_ext_dlrn_dlrs'),
        ('comparison', 'error', 'ci_centre', 't3_ext_dlrn_rs'),
        ('comparison', 'error', 'ci_centre', 't3_train_dlrn_rs'),
        ('comparison', 'error', 'ci_centre', 't3_ext_dlrs_clin'),
        ('comparison', 'error', 'ci_centre', 't3_ext_dlrs_rs'),
        ('comparison', 'error', 'ci_centre', 't3_train_dlrs_rs'),
        ('odds_ratio', 'error', None, 't2_uni_adjacent'),
        ('odds_ratio', 'error', None, 't2_uni_cystic'),
        ('odds_ratio', 'error', None, 't2_uni_contours'),
        ('cohort_table', 'error', None, 't1_tr_mdm_gender_male t1_tr_non_gender_male txt_train_men'),
        ('cohort_table', 'error', None, 't1_tr_mdm_gender_female t1_tr_non_gender_female txt_train_women'),
        ('cross_reference', 'error', None, 'abs_ext_dlrn_auc t3_ext_dlrn_auc'),
        ('cross_reference', 'error', None, 'abs_ext_dlrs_auc t3_ext_dlrs_auc'),
        ('cross_reference', 'error', None, 'formula_n_dlrs_terms txt_n_dlrs_total'),
        ('comparison', 'warning', 'se_vs_ci', 't3_train_dlrn_dlrs'),
        ('ratio_ci_p', 'warning', None, 't2_multi_dlrscore'),
        ('ratio_ci_p', 'warning', None, 't2_uni_dlrscore'),
        ('cohort_table', 'warning', 'p_value', 't1_p_va_cystic_spaces_or_necrosis'),
        ('cohort_table', 'warning', 'p_value', 't1_p_tr_cystic_spaces_or_necrosis'),
        ('cohort_table', 'warning', 'p_value', 't1_p_all_cystic_spaces_or_necrosis'),
    },
    "sts": {
        ('feasibility', 'error', None, 't3_train_rad_acc'),
        ('feasibility', 'error', None, 't3_train_rad_er'),
        ('feasibility', 'error', None, 't3_train_rad_sen'),
        ('confusion_matrix', 'error', None, 't3_train_rad_acc t3_train_rad_er t3_train_rad_npv t3_train_rad_ppv t3_train_rad_sen t3_train_rad_spe'),
        ('auc_ci_width', 'warning', None, 't3_train_rad_auc'),
    },
    "us": {
        ('feasibility', 'error', None, 'disc_crdl_acc'),
        ('class_split', 'error', None, 'cohort:validation'),
        ('cross_reference', 'error', None, 'disc_crdl_sen txt_ext_crdl_sen'),
        ('cross_reference', 'error', None, 'disc_crdl_spe txt_ext_crdl_spe'),
    },
    "wdlps": {
        ('feasibility', 'error', None, 't1_all_gender_male'),
        ('feasibility', 'error', None, 't2_train_ldh_spe'),
        ('estimate_in_ci', 'error', None, 't2_train_ldh_spe'),
        ('confusion_matrix', 'error', None, 't2_train_ldh_acc t2_train_ldh_npv t2_train_ldh_ppv t2_train_ldh_sen t2_train_ldh_spe'),
        ('cohort_table', 'error', None, 't1_all_gender_female t1_all_gender_male'),
        ('cohort_table', 'error', None, 't1_all_gender_male t1_tra_gender_male t1_val_gender_male'),
        ('cohort_table', 'error', None, 't1_all_hgb_abnormal t1_tra_hgb_abnormal t1_val_hgb_abnormal'),
        ('cohort_table', 'error', None, 't1_all_hgb_normal t1_tra_hgb_normal t1_val_hgb_normal'),
        ('cohort_table', 'warning', 'p_value', 't1_p_hgb'),
    },
}


def _key(f):
    return (f.check, f.severity, f.evidence.get("issue"), " ".join(f.ids))


@pytest.fixture(scope="module")
def findings():
    return audit(sorted(PINNED))


@pytest.mark.parametrize("paper", sorted(PINNED))
def test_every_pinned_finding_is_still_found(findings, paper):
    got = {_key(f) for f in findings if f.paper == paper and f.severity != "info"}
    assert not PINNED[paper] - got, f"{paper}: lost {sorted(PINNED[paper] - got)}"
    assert not got - PINNED[paper], f"{paper}: new, unpinned {sorted(got - PINNED[paper])}"


@pytest.mark.parametrize("paper", sorted(PINNED))
def test_one_finding_per_pin(findings, paper):
    keys = [_key(f) for f in findings if f.paper == paper and f.severity != "info"]
    assert len(keys) == len(set(keys)), f"{paper}: two findings share a pin"
