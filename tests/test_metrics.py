"""Group metrics against hand-computed values and a plain loop reference."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score

from midlogit.metrics import (
    group_accuracies,
    make_pseudo_group_scorer,
    pseudo_groups,
    worst_class_accuracy,
    worst_class_scorer,
    worst_group_accuracy,
    worst_group_scorer,
)

Y_TRUE = [0, 0, 1, 1, 1, 0]
Y_PRED = [0, 1, 1, 0, 1, 0]
GROUPS = ["a", "a", "b", "b", "b", "c"]


def loop_group_accuracies(y_true, y_pred, groups):
    """Reference: one accuracy per group, written as a plain loop."""
    result = {}
    for group in sorted(set(groups)):
        hits = [t == p for t, p, g in zip(y_true, y_pred, groups) if g == group]
        result[group] = sum(hits) / len(hits)
    return result


def random_labels(seed, n=500):
    rng = np.random.RandomState(seed)
    y_true = rng.randint(0, 3, n)
    y_pred = np.where(rng.rand(n) < 0.7, y_true, rng.randint(0, 3, n))
    groups = rng.randint(0, 6, n)
    return y_true, y_pred, groups


def test_group_accuracies_hand_computed():
    assert group_accuracies(Y_TRUE, Y_PRED, groups=GROUPS) == {
        "a": 1 / 2,
        "b": 2 / 3,
        "c": 1.0,
    }


def test_worst_group_accuracy_hand_computed():
    assert worst_group_accuracy(Y_TRUE, Y_PRED, groups=GROUPS) == 0.5


def test_worst_class_accuracy_hand_computed():
    # class 0: rows 0, 1, 5 -> 2 of 3 right; class 1: rows 2, 3, 4 -> 2 of 3 right.
    assert worst_class_accuracy(Y_TRUE, Y_PRED) == pytest.approx(2 / 3)
    assert worst_class_accuracy([0, 0, 1, 1], [0, 0, 0, 0]) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_accuracies_match_loop_reference(seed):
    y_true, y_pred, groups = random_labels(seed)
    expected = loop_group_accuracies(y_true.tolist(), y_pred.tolist(), groups.tolist())
    result = group_accuracies(y_true, y_pred, groups=groups)
    assert list(result) == list(expected)
    np.testing.assert_allclose(list(result.values()), list(expected.values()))
    assert worst_group_accuracy(y_true, y_pred, groups=groups) == pytest.approx(
        min(expected.values())
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_worst_class_accuracy_is_lowest_recall(seed):
    y_true, y_pred, _ = random_labels(seed)
    expected = recall_score(y_true, y_pred, average=None).min()
    assert worst_class_accuracy(y_true, y_pred) == pytest.approx(expected)


def test_group_accuracies_keys_are_plain_python_values():
    result = group_accuracies([0, 1], [0, 1], groups=np.array([3, 7]))
    assert all(type(key) is int for key in result)


def test_group_accuracies_accept_string_groups_from_pandas():
    # A pandas column of strings is an object array: its values have no .item().
    groups = pd.Series(GROUPS)
    assert group_accuracies(Y_TRUE, Y_PRED, groups=groups) == group_accuracies(
        Y_TRUE, Y_PRED, groups=GROUPS
    )


@pytest.fixture(scope="module")
def fitted_classifier():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 3)
    y = (X[:, 0] + 0.8 * rng.randn(120) > 0).astype(int)
    groups = 2 * y + (X[:, 1] > 0)
    return LogisticRegression().fit(X, y), X, y, groups


def test_worst_group_scorer_scores_predictions(fitted_classifier):
    model, X, y, groups = fitted_classifier
    expected = worst_group_accuracy(y, model.predict(X), groups=groups)
    assert worst_group_scorer(model, X, y, groups=groups) == expected
    assert expected < 1.0


def test_worst_class_scorer_scores_predictions(fitted_classifier):
    model, X, y, _ = fitted_classifier
    assert worst_class_scorer(model, X, y) == worst_class_accuracy(y, model.predict(X))


def test_worst_group_scorer_requests_groups_for_score():
    routing = worst_group_scorer.get_metadata_routing()
    assert routing.consumes("score", ["groups"]) == {"groups"}


def test_worst_group_scorer_without_groups_explains(fitted_classifier):
    model, X, y, _ = fitted_classifier
    with pytest.raises(ValueError, match="worst_group_scorer needs group labels"):
        worst_group_scorer(model, X, y)


def test_group_accuracies_require_groups():
    with pytest.raises(ValueError, match="groups is required"):
        group_accuracies(Y_TRUE, Y_PRED, groups=None)


def test_group_accuracies_groups_length_mismatch():
    with pytest.raises(ValueError, match="groups has 5 entries but y_true has 6"):
        group_accuracies(Y_TRUE, Y_PRED, groups=GROUPS[:5])


def test_metrics_prediction_length_mismatch():
    with pytest.raises(ValueError, match="y_true and y_pred have different lengths"):
        worst_class_accuracy(Y_TRUE, Y_PRED[:4])


def test_metrics_empty_input():
    with pytest.raises(ValueError, match="y_true is empty"):
        worst_group_accuracy([], [], groups=[])


def test_metrics_two_dimensional_labels():
    with pytest.raises(ValueError, match="must be 1-D"):
        worst_class_accuracy([[0, 1]], [[0, 1]])


class _Fixed:
    """A fitted model whose predictions are given."""

    def __init__(self, predictions):
        self.predictions = np.asarray(predictions)

    def predict(self, X):
        return self.predictions


def test_pseudo_groups_split_each_class_by_the_reference_being_right():
    groups = pseudo_groups([0, 0, 1, 1, 1], [0, 1, 1, 0, 1])
    assert groups.tolist() == ["0|right", "0|wrong", "1|right", "1|wrong", "1|right"]


def test_pseudo_group_scorer_is_the_worst_pseudo_group_accuracy():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    erm = _Fixed([0, 0, 0, 1, 1, 1, 1, 0])  # wrong on rows 3 and 7
    scorer = make_pseudo_group_scorer(erm)
    candidate = _Fixed([0, 1, 0, 0, 1, 1, 1, 0])  # 0|right 2/3, 0|wrong 1, 1|wrong 0
    assert scorer(candidate, None, y) == pytest.approx(0.0, abs=1e-5)
    assert scorer(_Fixed(y), None, y) == pytest.approx(1.0, abs=1e-5)


def test_pseudo_group_scorer_breaks_ties_by_the_mean():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    erm = _Fixed([0, 0, 0, 1, 1, 1, 1, 0])
    scorer = make_pseudo_group_scorer(erm)
    # both miss the 1|wrong row entirely; the second also misses a 0|right row
    better = _Fixed([0, 0, 0, 0, 1, 1, 1, 0])
    worse = _Fixed([1, 0, 0, 0, 1, 1, 1, 0])
    assert scorer(better, None, y) > scorer(worse, None, y)
    assert scorer(better, None, y) == pytest.approx(scorer(worse, None, y), abs=1e-5)
