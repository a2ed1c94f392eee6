"""scikit-learn's own estimator checks on PromptClassifier.

``parametrize_with_checks`` skips every check for an estimator whose tags say it takes text, not a 2-D
numeric array (``input_tags.two_d_array = False``): its checks generate numeric data. So the API checks
are run here one by one on a real estimator (a tiny model where one is needed), and each that cannot
apply is skipped with its reason."""

from __future__ import annotations

import pytest
from sklearn.utils import estimator_checks as checks

from lmbff import PromptClassifier

# The checks of scikit-learn's API suite (sklearn.utils.estimator_checks._yield_api_checks, 1.9) and
# the parameter checks, with why a check cannot apply to an estimator of texts.
NUMERIC = "fits generated numeric 2-D arrays; this estimator takes texts (tags: two_d_array False)"
SKIPPED = {
    "check_fit_score_takes_y": NUMERIC,
    "check_estimators_overwrite_params": NUMERIC,
    "check_dont_overwrite_parameters": NUMERIC,
    "check_estimators_fit_returns_self": NUMERIC,
    "check_readonly_memmap_input": NUMERIC,
    "check_n_features_in_after_fitting": NUMERIC + "; a text classifier has no n_features_in_",
    "check_positive_only_tag_during_fit": NUMERIC,
}
APPLIED = [
    "check_estimator_cloneable",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_estimators_unfitted",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_get_params_invariance",
    "check_set_params",
    "check_parameters_default_constructible",
]


def _estimator() -> PromptClassifier:
    return PromptClassifier(labels=["pos", "neg"], template="{{ text }} It was {{ mask }}.", verbose=False)


@pytest.mark.parametrize("name", [*APPLIED, *SKIPPED])
def test_scikit_learn_estimator_check(name):
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    check = getattr(checks, name)
    estimator = _estimator()
    check(type(estimator).__name__, estimator)


def test_every_api_check_of_this_scikit_learn_is_applied_or_skipped_with_a_reason():
    api = {check.__name__ for check in checks._yield_api_checks(_estimator())}
    api.discard("check_estimator_cloneable")
    assert api <= set(APPLIED) | set(SKIPPED), api - set(APPLIED) - set(SKIPPED)
