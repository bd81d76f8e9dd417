"""scikit-learn's and imbalanced-learn's own pipeline tests, run against midlogit's Pipeline.

``outside_suites.py`` runs the installed ``test_pipeline.py`` of each library with
midlogit's ``Pipeline`` and ``make_pipeline`` in place of the library's own. The tests
that fail must be exactly the known differences below (each has its reason, and
``docs/design.rst`` lists them): a new failure is a regression, and a known difference
that starts to pass, or that the installed suite no longer has, must be taken off the
list. imbalanced-learn's suite (about 10 s) runs by default; scikit-learn's (about
45 s, mostly importing its test helpers) is marked slow.
"""

import imblearn
import pytest
import sklearn
from outside_suites import run_suite

# The versions the lists were made with; another version may rename or add tests.
MEASURED_WITH = {"sklearn": "1.9.1", "imblearn": "0.14.2"}

_NOT_FITTED = (
    "imbalanced-learn 0.14 warns (FutureWarning) when an unfitted pipeline predicts and "
    "announces an error from 0.15; midlogit raises NotFittedError now, as scikit-learn's "
    "Pipeline does (its suite's test of the same name expects the error)."
)
KNOWN_DIFFERENCES = {
    "sklearn": {},
    "imblearn": {
        **{
            f"test_pipeline_warns_not_fitted[{method}]": _NOT_FITTED
            for method in (
                "decision_function",
                "inverse_transform",
                "predict",
                "predict_log_proba",
                "predict_proba",
                "score",
                "score_samples",
                "transform",
            )
        },
        "test_pipeline_with_step_that_it_is_pipeline": (
            "imbalanced-learn refuses a Pipeline as an intermediate step; midlogit "
            "resamples through a nested pipeline (fit_resample carries y and "
            "sample-aligned metadata), so nesting is supported, not refused."
        ),
    },
}
# Fewer tests than this means the suite did not run (an import or collection error).
MINIMUM_TESTS = {"sklearn": 150, "imblearn": 60}
INSTALLED = {"sklearn": sklearn.__version__, "imblearn": imblearn.__version__}


def check_suite(suite, tmp_path):
    results = run_suite(suite, tmp_path / f"{suite}.json")
    outcomes = results["outcomes"]
    version_note = (
        ""
        if INSTALLED[suite] == MEASURED_WITH[suite]
        else f" (installed {suite} {INSTALLED[suite]}; the list was made with "
        f"{MEASURED_WITH[suite]}: compare its test_pipeline.py)"
    )
    assert results["substituted"], f"the {suite} suite ran without midlogit's Pipeline"
    assert len(outcomes) >= MINIMUM_TESTS[suite], (
        f"only {len(outcomes)} tests of the {suite} suite ran{version_note}"
    )
    known = KNOWN_DIFFERENCES[suite]
    missing = sorted(set(known) - set(outcomes))
    assert not missing, (
        f"the {suite} suite no longer has these known differences: {missing}{version_note}; "
        "update KNOWN_DIFFERENCES and docs/design.rst"
    )
    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    new_failures = sorted(failed - set(known))
    now_passing = sorted(set(known) - failed)
    assert not new_failures, f"new failures in the {suite} suite{version_note}: {new_failures}"
    assert not now_passing, (
        f"known differences that now pass in the {suite} suite: {now_passing}; take them "
        "off KNOWN_DIFFERENCES and docs/design.rst"
    )
    # The suites skip tests on their own conditions (missing array libraries, versions);
    # none may skip because of something midlogit raised.
    from_midlogit = {
        name: reason for name, reason in results["skip_reasons"].items() if "midlogit" in reason
    }
    assert not from_midlogit, f"tests skipped from midlogit's code: {from_midlogit}"


def test_imbalanced_learn_pipeline_suite(tmp_path):
    check_suite("imblearn", tmp_path)


@pytest.mark.slow
def test_scikit_learn_pipeline_suite(tmp_path):
    check_suite("sklearn", tmp_path)


def test_every_known_difference_has_a_reason():
    for suite, differences in KNOWN_DIFFERENCES.items():
        for name, reason in differences.items():
            assert name.startswith("test_") and len(reason) > 40, (suite, name)
