"""LastLayerRetrainer: folded standardisation, L1, DFR-style averaging, groups, torch export."""

import warnings

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from midlogit.retraining import LastLayerRetrainer


def embeddings(n_classes=2, sizes=None, n_features=6, seed=0):
    """Classes of the given sizes, separable along the first features, on varied scales."""
    rng = np.random.RandomState(seed)
    sizes = sizes or [60] * n_classes
    y = np.repeat(np.arange(n_classes), sizes)
    X = rng.randn(y.size, n_features)
    X[:, :n_classes] += 1.5 * np.eye(n_classes)[y]
    X = X * rng.uniform(0.1, 10, n_features) + rng.uniform(-5, 5, n_features)
    return X, y


@pytest.fixture
def recorded_fits(monkeypatch):
    """Every LogisticRegression fit inside midlogit.retraining, with its inputs."""
    fits = []

    class RecordingLogisticRegression(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            super().fit(X, y, sample_weight=sample_weight)
            fits.append((np.array(X), np.array(y), self.coef_.copy(), self.intercept_.copy()))
            return self

    monkeypatch.setattr("midlogit.retraining.LogisticRegression", RecordingLogisticRegression)
    return fits


def rows_of(head, X, Z_fit):
    """Indices of the rows of X that were standardised into Z_fit."""
    Z = (X - head.mean_) / head.scale_
    distance = np.abs(Z_fit[:, None, :] - Z[None, :, :]).sum(axis=2)
    assert np.allclose(distance.min(axis=1), 0)
    return distance.argmin(axis=1)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_decision_function_equals_logistic_regression_on_standardised_data(n_classes):
    X, y = embeddings(n_classes, sizes=[70, 40, 30][:n_classes])
    head = LastLayerRetrainer(C=0.5).fit(X, y)
    reference = make_pipeline(
        StandardScaler(), LogisticRegression(C=0.5, class_weight="balanced", max_iter=1000)
    ).fit(X, y)
    np.testing.assert_allclose(
        head.decision_function(X), reference.decision_function(X), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        head.predict_proba(X), reference.predict_proba(X), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(head.predict(X), reference.predict(X))


def test_coefficients_act_on_raw_embeddings():
    X, y = embeddings()
    head = LastLayerRetrainer().fit(X, y)
    scaler = StandardScaler().fit(X)
    inner = LogisticRegression(class_weight="balanced").fit(scaler.transform(X), y)
    np.testing.assert_allclose(head.coef_, inner.coef_ / scaler.scale_, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(head.mean_, scaler.mean_)
    np.testing.assert_allclose(head.scale_, scaler.scale_)
    np.testing.assert_allclose(head.decision_function(X), X @ head.coef_[0] + head.intercept_[0])


def test_without_standardisation_it_is_a_plain_logistic_regression():
    X, y = embeddings(n_features=3)
    head = LastLayerRetrainer(standardize=False, class_weight=None).fit(X, y)
    reference = LogisticRegression(max_iter=1000).fit(X, y)
    np.testing.assert_allclose(head.coef_, reference.coef_, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(head.scale_, np.ones(3))


def test_l1_gives_sparse_coefficients():
    X, y = embeddings(n_features=30)
    l1 = LastLayerRetrainer(penalty="l1", C=0.05, random_state=0).fit(X, y)
    l2 = LastLayerRetrainer(penalty="l2", C=0.05, random_state=0).fit(X, y)
    assert (l1.coef_ == 0).sum() >= 20
    assert l1.coef_[0, 0] != 0
    assert (l2.coef_ == 0).sum() == 0


def test_l1_multiclass_gives_sparse_coefficients():
    X, y = embeddings(n_classes=3, n_features=20)
    head = LastLayerRetrainer(penalty="l1", C=0.05, random_state=0).fit(X, y)
    assert head.coef_.shape == (3, 20)
    assert (head.coef_ == 0).sum() >= 30


def test_averaging_is_the_mean_of_class_balanced_fits(recorded_fits):
    X, y = embeddings(sizes=[80, 25])
    head = LastLayerRetrainer(n_subsamples=4, random_state=0).fit(X, y)
    assert len(recorded_fits) == 4
    subsets = []
    for Z_fit, y_fit, _, _ in recorded_fits:
        rows = rows_of(head, X, Z_fit)
        assert np.unique(rows).size == rows.size == 50
        assert np.bincount(y[rows]).tolist() == [25, 25]
        np.testing.assert_array_equal(y_fit, y[rows])
        subsets.append(frozenset(rows.tolist()))
    assert len(set(subsets)) == 4
    mean_coef = np.mean([coef for _, _, coef, _ in recorded_fits], axis=0)
    mean_intercept = np.mean([b for _, _, _, b in recorded_fits], axis=0)
    np.testing.assert_allclose(head.coef_ * head.scale_, mean_coef)
    np.testing.assert_allclose(head.intercept_ + head.coef_ @ head.mean_, mean_intercept)


def test_one_subsample_fits_all_rows_once(recorded_fits):
    X, y = embeddings(sizes=[80, 25])
    LastLayerRetrainer().fit(X, y)
    assert len(recorded_fits) == 1
    assert recorded_fits[0][0].shape[0] == 105


@pytest.mark.parametrize("n_subsamples", [1, 3])
def test_groups_give_group_balanced_subsamples(recorded_fits, n_subsamples):
    X, y = embeddings(sizes=[80, 40])
    groups = 2 * y + (np.arange(y.size) % 5 == 0)
    smallest = np.bincount(groups).min()
    head = LastLayerRetrainer(n_subsamples=n_subsamples, random_state=0)
    head.fit(X, y, groups=groups)
    assert len(recorded_fits) == n_subsamples
    for Z_fit, _, _, _ in recorded_fits:
        rows = rows_of(head, X, Z_fit)
        assert np.bincount(groups[rows]).tolist() == [smallest] * 4


def test_dfr_recipe_runs_with_liblinear():
    X, y = embeddings(sizes=[80, 40], n_features=12)
    groups = 2 * y + (np.arange(y.size) % 4 == 0)
    head = LastLayerRetrainer(penalty="l1", C=0.3, n_subsamples=5, random_state=0)
    head.fit(X, y, groups=groups)
    assert head.score(X, y) > 0.8


def test_sample_weight_equals_repeating_rows():
    X, y = embeddings(n_features=4)
    weights = np.arange(y.size) % 3 + 1
    weighted = LastLayerRetrainer(class_weight=None).fit(X, y, sample_weight=weights)
    repeated = LastLayerRetrainer(class_weight=None).fit(
        np.repeat(X, weights, axis=0), np.repeat(y, weights)
    )
    np.testing.assert_allclose(weighted.mean_, repeated.mean_)
    np.testing.assert_allclose(weighted.scale_, repeated.scale_)
    np.testing.assert_allclose(
        weighted.decision_function(X), repeated.decision_function(X), rtol=1e-3, atol=1e-3
    )


def test_class_weight_dict_uses_the_labels():
    X, y = embeddings(sizes=[60, 30], n_features=3)
    labels = np.array(["bird", "water"])[y]
    weights = {"bird": 1.0, "water": 4.0}
    head = LastLayerRetrainer(class_weight=weights).fit(X, labels)
    reference = make_pipeline(
        StandardScaler(), LogisticRegression(class_weight=weights, max_iter=1000)
    ).fit(X, labels)
    np.testing.assert_allclose(
        head.decision_function(X), reference.decision_function(X), rtol=1e-4, atol=1e-4
    )
    assert set(head.predict(X)) <= {"bird", "water"}
    np.testing.assert_array_equal(head.classes_, ["bird", "water"])


def test_same_random_state_same_head():
    X, y = embeddings(sizes=[80, 25])
    first = LastLayerRetrainer(penalty="l1", n_subsamples=3, random_state=0).fit(X, y)
    second = LastLayerRetrainer(penalty="l1", n_subsamples=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(first.coef_, second.coef_)
    np.testing.assert_array_equal(first.intercept_, second.intercept_)


def test_to_torch_binary_logit_difference_is_the_decision_function():
    import torch

    X, y = embeddings(sizes=[60, 40])
    head = LastLayerRetrainer().fit(X, y)
    layer = head.to_torch()
    assert isinstance(layer, torch.nn.Linear)
    assert (layer.in_features, layer.out_features) == (6, 2)
    with torch.no_grad():
        logits = layer(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(
        logits[:, 1] - logits[:, 0], head.decision_function(X), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_array_equal(head.classes_[logits.argmax(axis=1)], head.predict(X))


def test_to_torch_multiclass_reproduces_logits_and_predictions():
    import torch

    X, y = embeddings(n_classes=3)
    head = LastLayerRetrainer().fit(X, y)
    layer = head.to_torch()
    with torch.no_grad():
        logits = layer(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(logits, head.decision_function(X), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(logits.argmax(axis=1), head.predict(X))
    np.testing.assert_allclose(softmax(logits, axis=1), head.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize(
    "dtype, factor",
    [
        (np.float64, 1e-300),
        (np.float64, 1e300),
        (np.float64, 1e307),
        (np.float32, 1e-30),
        (np.float32, 1e30),
        (np.float32, 1e37),
    ],
)
def test_extreme_but_finite_values_give_the_same_head(dtype, factor):
    X, y = make_classification(n_samples=300, n_features=5, random_state=0)
    reference = LastLayerRetrainer(random_state=0).fit(X.astype(dtype), y)
    X_extreme = (X * factor).astype(dtype)
    assert np.isfinite(X_extreme).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        head = LastLayerRetrainer(random_state=0).fit(X_extreme, y)
        predicted = head.predict(X_extreme)
    np.testing.assert_array_equal(predicted, reference.predict(X.astype(dtype)))
    np.testing.assert_allclose(head.coef_ * factor, reference.coef_, rtol=1e-4)


def test_values_outside_what_the_solver_handles_are_refused():
    X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    with pytest.raises(ValueError, match="subnormal"):
        LastLayerRetrainer().fit(X * 1e-310, y)
    with pytest.raises(ValueError, match="standardize=False.*standardize=True"):
        LastLayerRetrainer(standardize=False).fit(X * 1e30, y)
    # One column varies by about 1e-309: its coefficient on raw values would be ~1e309.
    tiny = np.c_[np.where(y == 1, 1.0, -1.0) * 1e-309, X[:, 1:]]
    with pytest.raises(ValueError, match="overflow.*Multiply X"):
        LastLayerRetrainer().fit(tiny, y)
