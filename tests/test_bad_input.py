"""Bad input gets a ValueError (or NotFittedError) naming the parameter; inputs stay intact.

One test per case; a case that applies to several estimators is parametrized over them.
"""

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.cluster import DBSCAN, KMeans
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from midlogit.backbones import MLP, LinearHead, SkorchEmbedder, make_net
from midlogit.baselines import (
    ClassBalancedSampler,
    ErrorSetSelector,
    GroupBalancedSampler,
    RandomSubsetSampler,
)
from midlogit.clustering import EmbeddingClusterer
from midlogit.pipeline import make_pipeline
from midlogit.retraining import LastLayerRetrainer
from midlogit.selection import LogitBandSelector

SAMPLERS = {
    "LogitBandSelector": lambda: LogitBandSelector(cv=3, random_state=0),
    "EmbeddingClusterer": lambda: EmbeddingClusterer(n_clusters=2, random_state=0),
    "ClassBalancedSampler": lambda: ClassBalancedSampler(random_state=0),
    "RandomSubsetSampler": lambda: RandomSubsetSampler(random_state=0),
    "ErrorSetSelector": lambda: ErrorSetSelector(cv=3, random_state=0),
    "GroupBalancedSampler": lambda: GroupBalancedSampler(random_state=0),
}
ESTIMATORS = {**SAMPLERS, "LastLayerRetrainer": lambda: LastLayerRetrainer(random_state=0)}


class FixedLogits(ClassifierMixin, BaseEstimator):
    """A classifier whose logits are the first column of X (two classes)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=float)[:, 0]


def toy(n=40, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    X = np.c_[y + rng.randn(n), rng.randn(n, 2)]
    groups = 2 * y + (np.arange(n) % 4 >= 2)
    return X, y, groups


def fit_any(estimator, X, y, groups=None):
    """fit_resample for a sampler, fit for the retrainer; groups where they are used."""
    kwargs = {"groups": groups} if isinstance(estimator, GroupBalancedSampler) else {}
    if hasattr(estimator, "fit_resample"):
        return estimator.fit_resample(X, y, **kwargs)
    return estimator.fit(X, y, **kwargs)


def fitted_selector_on_logits(logits, y, **params):
    stub = FrozenEstimator(FixedLogits().fit(logits, y))
    return LogitBandSelector(estimator=stub, **params).fit(logits, y)


# --- features and logits ---------------------------------------------------------------


@pytest.mark.parametrize("name", ESTIMATORS)
def test_nan_in_features(name):
    X, y, groups = toy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fit_any(ESTIMATORS[name](), X, y, groups)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_inf_in_features(name):
    X, y, groups = toy()
    X[5, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        fit_any(ESTIMATORS[name](), X, y, groups)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_nan_in_labels(name):
    X, y, groups = toy()
    y = y.astype(float)
    y[2] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        fit_any(ESTIMATORS[name](), X, y, groups)


@pytest.mark.parametrize("selector", [LogitBandSelector, ErrorSetSelector])
def test_nan_logits_from_the_estimator(selector):
    X, y, _ = toy()

    class NanLogits(FixedLogits):
        def decision_function(self, X):
            values = super().decision_function(X)
            values[7] = np.nan
            return values

    estimator = FrozenEstimator(NanLogits().fit(X, y))
    with pytest.raises(ValueError, match="estimator returned NaN or infinite logits"):
        selector(estimator=estimator).fit(X, y)


# --- bands and clusters ----------------------------------------------------------------


def test_empty_band():
    # Two rows per class at logits 0 and 1: the quantiles 0.49 to 0.51 lie between them.
    logits = np.array([[0.0], [1.0], [0.0], [1.0]])
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"band is empty.*widen band_width"):
        fitted_selector_on_logits(logits, y, band_width=0.02)


def test_band_with_one_class():
    # Class 0 has logits 0 and 1 (none in the band), class 1 has 0, 0.5 and 1.
    logits = np.array([[0.0], [1.0], [0.0], [0.5], [1.0]])
    y = np.array([0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match=r"band holds only class .*1.*widen band_width"):
        fitted_selector_on_logits(logits, y, band_width=0.02)


def test_band_classes_not_in_y():
    X, y, _ = toy()
    with pytest.raises(ValueError, match=r"classes names \[5\]"):
        LogitBandSelector(band_classes=[5], cv=3).fit(X, y)


def test_out_of_fold_logits_need_two_rows_per_class():
    X, y, _ = toy()
    y = np.r_[np.zeros(39, dtype=int), 1]
    with pytest.raises(ValueError, match="at least 2 rows of every class.*estimator="):
        LogitBandSelector().fit(X, y)


def test_more_clusters_than_rows_in_a_class():
    X, y, _ = toy()
    y = np.r_[np.zeros(37, dtype=int), 1, 1, 1]
    message = "n_clusters=4 is more than the 3 rows of class .*1.*lower n_clusters"
    with pytest.raises(ValueError, match=message):
        EmbeddingClusterer(n_clusters=4, random_state=0).fit_resample(X, y)


@pytest.mark.parametrize("case", ["one-class band", "too many clusters"])
def test_messages_show_labels_as_written(case):
    if case == "one-class band":
        logits = np.array([[0.0], [1.0], [0.0], [0.5], [1.0]])
        y = np.array([0, 0, 1, 1, 1])
        with pytest.raises(ValueError, match=r"only class 1 "):
            fitted_selector_on_logits(logits, y, band_width=0.02)
    else:
        X, _, _ = toy()
        y = np.r_[np.zeros(37, dtype=int), 1, 1, 1]
        with pytest.raises(ValueError, match=r"rows of class 1;"):
            EmbeddingClusterer(n_clusters=4).fit(X, y)


def test_more_clusters_than_rows_without_labels():
    X = np.random.RandomState(0).randn(3, 2)
    with pytest.raises(ValueError, match="n_clusters=4 is more than the 3 rows"):
        EmbeddingClusterer(n_clusters=4).fit(X)


def test_clusterer_finding_more_clusters_than_asked():
    X, y, _ = toy()
    with pytest.raises(ValueError, match="found .* clusters, more than n_clusters=2"):
        EmbeddingClusterer(n_clusters=2, clusterer=DBSCAN(eps=1e-3, min_samples=1)).fit(X, y)


def test_clustering_resample_needs_labels():
    X, _, _ = toy()
    with pytest.raises(ValueError, match="fit_resample needs y"):
        EmbeddingClusterer(n_clusters=2).fit_resample(X, None)


def test_retraining_on_a_single_class():
    X, _, _ = toy()
    with pytest.raises(ValueError, match="y holds a single class.*widen its band"):
        LastLayerRetrainer().fit(X, np.zeros(40, dtype=int))


def test_groups_coarser_than_classes():
    # Group 0 is one class-0 row, so each balanced subsample has one row of group 1 (which
    # mixes the classes): of 20 subsamples, some lack class 1 for any seed but with
    # probability (20/39)**20, about 2e-6.
    X, y, _ = toy()
    groups = (np.arange(40) > 0).astype(int)
    with pytest.raises(ValueError, match="lacks a class; groups must be finer"):
        LastLayerRetrainer(n_subsamples=20, random_state=0).fit(X, y, groups=groups)


def test_error_set_with_one_class_and_no_upweighting():
    X, y, _ = toy()
    model = FrozenEstimator(FixedLogits().fit(X, y))
    # Logit = first feature: misclassified rows are class-1 rows with a negative value only.
    X = X.copy()
    X[:, 0] = np.where(y == 1, np.where(np.arange(40) % 5 == 1, -1.0, 1.0), -1.0)
    with pytest.raises(ValueError, match="fewer than two classes.*upweight"):
        ErrorSetSelector(estimator=model, upweight=None).fit(X, y)


def test_group_balanced_sampler_without_groups():
    X, y, _ = toy()
    with pytest.raises(ValueError, match=r"needs groups=\.\.\..*groupbalancedsampler__groups"):
        GroupBalancedSampler().fit_resample(X, y)


# --- lengths and shapes ----------------------------------------------------------------


@pytest.mark.parametrize("name", ESTIMATORS)
def test_mismatched_lengths_of_X_and_y(name):
    X, y, groups = toy()
    with pytest.raises(ValueError, match=r"X has 40 rows but y has 39"):
        fit_any(ESTIMATORS[name](), X, y[:-1], groups)


@pytest.mark.parametrize(
    "make",
    [
        lambda: GroupBalancedSampler(),
        lambda: LastLayerRetrainer(),
    ],
    ids=["GroupBalancedSampler", "LastLayerRetrainer"],
)
def test_mismatched_length_of_groups(make):
    X, y, groups = toy()
    with pytest.raises(ValueError, match=r"groups has .*one group label per row"):
        make().fit(X, y, groups=groups[:-3])


def test_mismatched_length_of_sample_weight():
    X, y, _ = toy()
    with pytest.raises(ValueError, match=r"sample_weight has shape \(39,\); expected \(40,\)"):
        LastLayerRetrainer().fit(X, y, sample_weight=np.ones(39))


def test_sample_weight_summing_to_zero():
    X, y, _ = toy()
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        LastLayerRetrainer().fit(X, y, sample_weight=np.zeros(40))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_one_dimensional_X(name):
    X, y, groups = toy()
    with pytest.raises(ValueError, match=r"X must be 2-D"):
        fit_any(ESTIMATORS[name](), X[:, 0], y, groups)


def test_one_dimensional_X_suggests_the_reshape():
    # What users get today: the fix is suggested, the parameter is not named (see above).
    X, y, _ = toy()
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        LastLayerRetrainer().fit(X[:, 0], y)


@pytest.mark.parametrize("method", ["predict", "decision_function", "predict_proba"])
def test_wrong_number_of_features_at_predict(method):
    X, y, _ = toy()
    head = LastLayerRetrainer().fit(X, y)
    with pytest.raises(
        ValueError, match="X has 2 features, but LastLayerRetrainer is expecting 3"
    ):
        getattr(head, method)(X[:, :2])


# --- labels the estimator has not seen --------------------------------------------------


@pytest.mark.parametrize("selector", [LogitBandSelector, ErrorSetSelector])
def test_labels_unknown_to_the_estimator(selector):
    X, y, _ = toy()
    model = FrozenEstimator(LogisticRegression().fit(X, y))
    y = y.copy()
    y[:3] = 2
    with pytest.raises(ValueError, match=r"y holds labels \[2\] that estimator was not fitted"):
        selector(estimator=model).fit(X, y)


def test_unfitted_estimator_for_logits():
    X, y, _ = toy()
    with pytest.raises(NotFittedError, match="estimator LogisticRegression is not fitted"):
        LogitBandSelector(estimator=LogisticRegression()).fit(X, y)


# --- use before fit --------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, method",
    [
        (LogitBandSelector, "get_support"),
        (EmbeddingClusterer, "predict"),
        (LastLayerRetrainer, "predict"),
        (LastLayerRetrainer, "decision_function"),
        (LastLayerRetrainer, "predict_proba"),
        (LastLayerRetrainer, "to_torch"),
    ],
)
def test_use_before_fit(make, method):
    X, _, _ = toy()
    args = () if method in ("get_support", "to_torch") else (X,)
    with pytest.raises(NotFittedError, match=f"This {make.__name__} instance is not fitted"):
        getattr(make(), method)(*args)


def test_pipeline_predict_before_fit():
    X, _, _ = toy()
    pipe = make_pipeline(LogitBandSelector(), LastLayerRetrainer())
    with pytest.raises(NotFittedError, match="LastLayerRetrainer instance is not fitted"):
        pipe.predict(X)


# --- invalid parameter values ----------------------------------------------------------

INVALID = [
    (LogitBandSelector, {"band_width": 0}, r"band_width must be in \(0, 1\]"),
    (LogitBandSelector, {"band_width": 1.5}, r"band_width must be in \(0, 1\]"),
    (LogitBandSelector, {"band_width": float("nan")}, r"band_width must be in \(0, 1\]"),
    (LogitBandSelector, {"band_center": -0.1}, r"band_center must be in \[0, 1\]"),
    (LogitBandSelector, {"band_center": 1.2}, r"band_center must be in \[0, 1\]"),
    (EmbeddingClusterer, {"sampling": "smote"}, "sampling must be 'undersample', 'oversample'"),
    (EmbeddingClusterer, {"balance": "groups"}, "balance must be 'clusters' or"),
    (EmbeddingClusterer, {"cluster_score": "auc"}, "cluster_score must be"),
    (EmbeddingClusterer, {"n_selected": 0}, "n_selected must be a positive integer"),
    (EmbeddingClusterer, {"balance": "pseudo_groups"}, "needs estimator="),
    (EmbeddingClusterer, {"selected_clusters": [99]}, "selected_clusters must be cluster ids"),
    (EmbeddingClusterer, {"n_clusters": 0}, "n_clusters must be a positive integer"),
    (EmbeddingClusterer, {"n_clusters": 2.5}, "n_clusters must be a positive integer"),
    (ClassBalancedSampler, {"sampling": "smote"}, "sampling must be 'undersample' or"),
    (GroupBalancedSampler, {"sampling": "smote"}, "sampling must be 'undersample' or"),
    (RandomSubsetSampler, {"n_samples": 0}, r"n_samples must be a count in \[1, 40\]"),
    (RandomSubsetSampler, {"n_samples": 41}, r"n_samples must be a count in \[1, 40\]"),
    (RandomSubsetSampler, {"n_samples": 1.5}, "n_samples must be a count"),
    (ErrorSetSelector, {"selection": "hardest"}, "selection must be 'errors' or"),
    (ErrorSetSelector, {"fraction": 0}, r"fraction must be in \(0, 1\]"),
    (ErrorSetSelector, {"upweight": 0}, "upweight must be a positive integer or None"),
    (LastLayerRetrainer, {"penalty": "elasticnet"}, "penalty must be 'l1' or 'l2'"),
    (LastLayerRetrainer, {"C": 0}, "C must be positive"),
    (LastLayerRetrainer, {"n_subsamples": 0}, "n_subsamples must be a positive integer"),
    # Wrong types get the same message, not a comparison's TypeError.
    (LogitBandSelector, {"band_width": None}, r"band_width must be in \(0, 1\]"),
    (LogitBandSelector, {"band_center": "0.5"}, r"band_center must be in \[0, 1\]"),
    (LogitBandSelector, {"cv": "5"}, "cv must be an integer of at least 2"),
    (ErrorSetSelector, {"cv": 1}, "cv must be an integer of at least 2"),
    (ErrorSetSelector, {"fraction": "0.2"}, r"fraction must be in \(0, 1\]"),
    (ErrorSetSelector, {"upweight": True}, "upweight must be a positive integer or None"),
    (ErrorSetSelector, {"upweight": 10**9}, "upweight=1000000000 would repeat the"),
    (RandomSubsetSampler, {"n_samples": True}, "n_samples must be a count"),
    (LastLayerRetrainer, {"C": "1"}, "C must be positive"),
    (LastLayerRetrainer, {"C": float("inf")}, "C must be positive"),
    (LastLayerRetrainer, {"n_subsamples": True}, "n_subsamples must be a positive integer"),
    (LastLayerRetrainer, {"max_iter": 0}, "max_iter must be a positive integer"),
    (EmbeddingClusterer, {"n_clusters": True}, "n_clusters must be a positive integer"),
    (EmbeddingClusterer, {"n_clusters": "2"}, "n_clusters must be a positive integer"),
    (EmbeddingClusterer, {"n_selected": True}, "n_selected must be a positive integer"),
    (EmbeddingClusterer, {"n_components": True}, "n_components must be a positive integer"),
    (EmbeddingClusterer, {"min_error_rate": True}, r"min_error_rate must be a number in"),
    (EmbeddingClusterer, {"clusterer": "kmeans"}, "clusterer must be a scikit-learn estimator"),
    (EmbeddingClusterer, {"clusterer": KMeans}, "clusterer must be an estimator instance"),
    (
        EmbeddingClusterer,
        {"clusterer": LastLayerRetrainer()},
        r"clusterer must be a scikit-learn estimator with fit_predict",
    ),
    (EmbeddingClusterer, {"selector": KMeans()}, r"selector must be .* with fit_resample"),
    (LogitBandSelector, {"estimator": "head"}, "estimator must be a fitted classifier"),
    (ErrorSetSelector, {"estimator": LogisticRegression}, "estimator must be a fitted classif"),
]


@pytest.mark.parametrize(
    "make, params, message",
    INVALID,
    ids=[
        f"{make.__name__}-{next(iter(params))}={next(iter(params.values()))}"
        for make, params, _ in INVALID
    ],
)
def test_invalid_parameter_value(make, params, message):
    X, y, groups = toy()
    with pytest.raises(ValueError, match=message):
        fit_any(make(**params), X, y, groups)


# --- inputs are never modified in place --------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_inputs_are_not_modified(name, dtype):
    X, y, groups = toy()
    X = X.astype(dtype)
    originals = [array.copy() for array in (X, y, groups)]
    for array in (X, y, groups):
        array.setflags(write=False)  # an in-place write would raise here
    estimator = ESTIMATORS[name]()
    result = fit_any(estimator, X, y, groups)
    for array, original in zip((X, y, groups), originals):
        np.testing.assert_array_equal(array, original)
        assert array.dtype == original.dtype
    if isinstance(result, tuple):
        X_res, y_res = result
        assert not np.shares_memory(X_res, X)
        assert not np.shares_memory(y_res, y)


def test_pipeline_does_not_modify_inputs():
    X, y, groups = toy()
    originals = [array.copy() for array in (X, y, groups)]
    for array in (X, y, groups):
        array.setflags(write=False)
    pipe = make_pipeline(
        GroupBalancedSampler(sampling="oversample", random_state=0),
        EmbeddingClusterer(n_clusters=2, random_state=0),
        LastLayerRetrainer(random_state=0),
    )
    clone(pipe).fit(X, y, groupbalancedsampler__groups=groups, lastlayerretrainer__groups=groups)
    for array, original in zip((X, y, groups), originals):
        np.testing.assert_array_equal(array, original)


@pytest.mark.parametrize(
    "bad, message",
    [
        (-1.0, r"negative values \(rows \[3\]\); weights must be >= 0"),
        (np.nan, r"NaN or infinite values \(rows \[3\]\)"),
        (np.inf, r"NaN or infinite values \(rows \[3\]\)"),
    ],
)
def test_sample_weight_negative_nan_or_infinite(bad, message):
    X, y, _ = toy()
    weights = np.ones(40)
    weights[3] = bad
    with pytest.raises(ValueError, match=message):
        LastLayerRetrainer().fit(X, y, sample_weight=weights)


@pytest.mark.parametrize("n_subsamples", [1, 3])
def test_sample_weight_zero_on_a_whole_class(n_subsamples):
    X, y, _ = toy()
    weights = np.where(y == y[0], 0.0, 1.0)
    with pytest.raises(ValueError, match="Class .* has zero total sample_weight"):
        LastLayerRetrainer(n_subsamples=n_subsamples).fit(X, y, sample_weight=weights)


# --- hostile inputs for every public estimator -------------------------------------------


def _table_net():
    X, y, _ = toy()
    net = make_net(MLP(3, 2, hidden=(4,)), max_epochs=1, verbose=0, random_state=0)
    return net.fit(X.astype(np.float32), y)


# Every public estimator, with a call that fits it on (X, y) and one that uses it fitted.
PUBLIC = {
    **ESTIMATORS,
    "LinearHead": lambda: LinearHead(),
    "SkorchEmbedder": lambda: SkorchEmbedder(random_state=0),
    "SkorchEmbedder(frozen)": lambda: SkorchEmbedder(_table_net(), frozen=True),
}


def fit_public(estimator, X, y, groups=None):
    if isinstance(estimator, LinearHead | SkorchEmbedder):
        return estimator.fit(X, y)
    return fit_any(estimator, X, y, groups)


MIXED = {
    "list": lambda y: [1 if label else "a" for label in y],
    "object array": lambda y: np.array([1 if label else "a" for label in y], dtype=object),
    "with None": lambda y: np.array([None if i == 3 else "ab"[v] for i, v in enumerate(y)]),
}


@pytest.mark.parametrize("kind", MIXED)
@pytest.mark.parametrize("name", PUBLIC)
def test_mixed_type_labels(name, kind):
    X, y, groups = toy()
    with pytest.raises(ValueError, match=r"y mixes labels of types .* give every label one"):
        fit_public(PUBLIC[name](), X, MIXED[kind](y), groups)


@pytest.mark.parametrize("make", [GroupBalancedSampler, LastLayerRetrainer])
def test_mixed_type_groups(make):
    X, y, groups = toy()
    mixed = np.array([g if g else "none" for g in groups], dtype=object)
    with pytest.raises(ValueError, match=r"groups mixes labels of types int and str"):
        make().fit(X, y, groups=mixed)


@pytest.mark.parametrize("container", [scipy.sparse.csr_matrix, scipy.sparse.csc_array])
@pytest.mark.parametrize("name", PUBLIC)
def test_sparse_X_at_fit(name, container):
    X, y, groups = toy()
    with pytest.raises(ValueError, match=r"X is a sparse .*Pass X.toarray\(\)"):
        fit_public(PUBLIC[name](), container(X), y, groups)


@pytest.mark.parametrize(
    "name, method",
    [
        ("LastLayerRetrainer", "predict"),
        ("LastLayerRetrainer", "decision_function"),
        ("EmbeddingClusterer", "predict"),
        ("LinearHead", "predict_proba"),
        ("SkorchEmbedder(frozen)", "transform"),
    ],
)
def test_sparse_X_when_fitted(name, method):
    X, y, groups = toy()
    estimator = PUBLIC[name]()
    estimator.fit(X.astype(np.float32), y)
    with pytest.raises(ValueError, match=r"X is a sparse csr_matrix"):
        getattr(estimator, method)(scipy.sparse.csr_matrix(X))


class ShapedLogits(FixedLogits):
    """Logits of a chosen wrong shape."""

    def __init__(self, shape="short"):
        self.shape = shape

    def decision_function(self, X):
        X = np.asarray(X, dtype=float)
        return {
            "short": X[:-1, 0],
            "too many classes": X[:, :3],
            "one column": X[:, :1],
            "3-D": X[:, :2, None],
        }[self.shape]


@pytest.mark.parametrize("shape", ["short", "too many classes", "one column", "3-D"])
@pytest.mark.parametrize("user", ["LogitBandSelector", "ErrorSetSelector", "EmbeddingClusterer"])
def test_logits_of_the_wrong_shape(user, shape):
    X, y, _ = toy()
    estimator = FrozenEstimator(ShapedLogits(shape).fit(X, y))
    make = {
        "LogitBandSelector": lambda: LogitBandSelector(estimator=estimator),
        "ErrorSetSelector": lambda: ErrorSetSelector(estimator=estimator),
        "EmbeddingClusterer": lambda: EmbeddingClusterer(
            n_clusters=2, estimator=estimator, balance="pseudo_groups"
        ),
    }[user]
    with pytest.raises(ValueError, match=r"returned logits of shape .* for 40 rows and 2 class"):
        make().fit(X, y)


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "GroupBalancedSampler"])
def test_continuous_labels_get_the_fix(name):
    X, y, groups = toy()
    with pytest.raises(ValueError, match=r"y holds continuous values .*pass class labels"):
        fit_public(PUBLIC[name](), X, y + 0.25 * np.arange(40), groups)


def test_wrong_width_at_predict_suggests_the_fix():
    X, y, _ = toy()
    head = LastLayerRetrainer().fit(X, y)
    with pytest.raises(ValueError, match="is expecting 3 .*embeddings of the backbone and layer"):
        head.predict(X[:, :2])


def test_nan_in_features_names_the_rows():
    X, y, _ = toy()
    X[[3, 17], 1] = np.nan
    with pytest.raises(
        ValueError, match=r"Input X contains NaN \(rows \[3, 17\]\)\. .*finite embeddings"
    ):
        LastLayerRetrainer().fit(X, y)


def test_too_few_rows_suggests_the_fix():
    X, y, _ = toy()
    with pytest.raises(ValueError, match="minimum of 2 is required.*keep more rows"):
        ClassBalancedSampler().fit_resample(X[:1], y[:1])
