"""LogitBandSelector against a NumPy reference, property tests, and where logits come from."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from midlogit.selection import LogitBandSelector, class_logits

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


class FixedLogits(ClassifierMixin, BaseEstimator):
    """A classifier whose logits are the first columns of X (one column for two classes)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X):
        X = np.asarray(X, dtype=float)
        return X[:, 0] if self.classes_.size == 2 else X[:, : self.classes_.size]


def reference_quantile(values, q):
    """Quantile by linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    low, high = math.floor(h), math.ceil(h)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def reference_band(logits, y, classes, center, width, per_class, band_classes=None):
    """Support and thresholds written out row by row (for logits without ties).

    A row's distance is, over the banded classes (its own only, with ``per_class``), the
    distance of its quantile position ``rank / (m - 1)`` in that class's logit (among the
    ``m`` rows of the class, with ``per_class``) to ``center``; the rows whose position lies
    in ``[center - width / 2, center + width / 2]`` of one column are counted, and that
    many rows of smallest distance are kept.
    """
    band_classes = list(classes) if band_classes is None else list(band_classes)
    lo, hi = max(center - width / 2, 0.0), min(center + width / 2, 1.0)
    n = len(y)
    distance = [[math.inf] * len(band_classes) for _ in range(n)]
    for j, label in enumerate(band_classes):
        k = list(classes).index(label)
        rows = [i for i in range(n) if y[i] == label or not per_class]
        ordered = sorted(rows, key=lambda i: logits[i, k])
        for rank, i in enumerate(ordered):
            distance[i][j] = abs(rank / max(len(rows) - 1, 1) - center)
    support = [False] * n
    populations = [[i for i in range(n) if y[i] == label] for label in band_classes]
    if not per_class:
        populations = [list(range(n))]
    for j, rows in enumerate(populations):
        m = len(rows)
        size = sum(lo <= r / max(m - 1, 1) <= hi for r in range(m))

        def closeness(i, j=j):
            return distance[i][j] if per_class else min(distance[i])

        for i in sorted(rows, key=closeness)[:size]:
            support[i] = True
    if per_class:
        for i in range(n):
            if y[i] not in band_classes:
                support[i] = True
    thresholds = []
    for j, label in enumerate(band_classes):
        k = list(classes).index(label)
        mine = [
            logits[i, k]
            for i in range(n)
            if support[i]
            and distance[i][j] < math.inf
            and distance[i].index(min(distance[i])) == j
        ]
        thresholds.append((min(mine), max(mine)))
    return np.array(support), np.array(thresholds)


def spurious_data(n=300, n_classes=2, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    attribute = np.where(rng.rand(n) < 0.9, y, rng.randint(0, n_classes, n))
    X = np.c_[0.5 * y + rng.randn(n), 2.0 * attribute + 0.5 * rng.randn(n), rng.randn(n, 3)]
    return X, y


@pytest.fixture(scope="module")
def binary():
    X, y = spurious_data()
    return X, y, LogisticRegression().fit(X, y)


@pytest.fixture(scope="module")
def three_classes():
    X, y = spurious_data(n_classes=3, seed=1)
    return X, y, LogisticRegression().fit(X, y)


def test_binary_logits_are_minus_and_plus_decision_function(binary):
    X, y, model = binary
    selector = LogitBandSelector(estimator=FrozenEstimator(model), within_class=True).fit(X, y)
    d = model.decision_function(X)
    np.testing.assert_allclose(selector.logits_, np.c_[-d, d])
    np.testing.assert_array_equal(selector.classes_, [0, 1])


@pytest.mark.parametrize("center, width", [(0.5, 0.4), (0.3, 0.2), (0.9, 0.5), (0.5, 1.0)])
def test_per_class_band_matches_reference(binary, center, width):
    X, y, model = binary
    selector = LogitBandSelector(
        estimator=FrozenEstimator(model),
        band_center=center,
        band_width=width,
        within_class=True,
    )
    X_band, y_band = selector.fit_resample(X, y)
    d = model.decision_function(X)
    support, thresholds = reference_band(np.c_[-d, d], y, [0, 1], center, width, True)
    np.testing.assert_array_equal(selector.support_, support)
    np.testing.assert_allclose(selector.thresholds_, thresholds)
    np.testing.assert_array_equal(X_band, X[support])
    np.testing.assert_array_equal(y_band, y[support])


def test_per_class_band_keeps_the_middle_forty_percent_of_each_class(binary):
    X, y, model = binary
    selector = LogitBandSelector(estimator=FrozenEstimator(model), within_class=True).fit(X, y)
    # 150 distinct logits per class: quantile 0.3 lies at order statistic 149 * 0.3 = 44.7,
    # 0.7 at 104.3, so order statistics 45 to 104 are kept: 60 rows of each class.
    assert np.bincount(y[selector.support_]).tolist() == [60, 60]


@pytest.mark.parametrize("per_class", [True, False])
@pytest.mark.parametrize("classes", [None, [1], [0, 2]])
def test_multiclass_band_matches_reference(three_classes, per_class, classes):
    X, y, model = three_classes
    selector = LogitBandSelector(
        estimator=FrozenEstimator(model),
        band_width=0.3,
        within_class=per_class,
        band_classes=classes,
    ).fit(X, y)
    support, thresholds = reference_band(
        model.decision_function(X), y, [0, 1, 2], 0.5, 0.3, per_class, classes
    )
    if per_class or (classes is not None and len(classes) == 1):
        np.testing.assert_array_equal(selector.support_, support)
        np.testing.assert_allclose(selector.thresholds_, thresholds)
    else:
        # Across several classes' logits two rows can lie at the same distance from the
        # centre (one in each column); which of them the last place goes to is random.
        assert selector.support_.sum() == support.sum()
        assert (selector.support_ != support).sum() <= 2
    expected_classes = [0, 1, 2] if classes is None else classes
    np.testing.assert_array_equal(selector.band_classes_, expected_classes)


def test_classes_subset_keeps_every_row_of_the_other_classes(three_classes):
    X, y, model = three_classes
    selector = LogitBandSelector(
        estimator=FrozenEstimator(model), band_classes=[1], within_class=True
    ).fit(X, y)
    assert selector.support_[y != 1].all()
    assert 0 < selector.support_[y == 1].sum() < (y == 1).sum()
    assert selector.thresholds_.shape == (1, 2)


def test_get_support_mask_and_indices(binary):
    X, y, model = binary
    selector = LogitBandSelector(estimator=FrozenEstimator(model)).fit(X, y)
    mask = selector.get_support()
    assert mask.dtype == bool and mask.shape == (y.size,)
    np.testing.assert_array_equal(selector.get_support(indices=True), np.flatnonzero(mask))
    np.testing.assert_array_equal(selector.sample_indices_, np.flatnonzero(mask))


def test_float32_embeddings_stay_float32(binary):
    X, y, model = binary
    X_band, _ = LogitBandSelector(estimator=FrozenEstimator(model)).fit_resample(
        X.astype(np.float32), y
    )
    assert X_band.dtype == np.float32


def test_plain_fitted_estimator_gives_the_same_band(binary):
    X, y, model = binary
    frozen = LogitBandSelector(estimator=FrozenEstimator(model)).fit(X, y)
    plain = LogitBandSelector(estimator=model).fit(X, y)
    np.testing.assert_array_equal(plain.support_, frozen.support_)
    np.testing.assert_array_equal(plain.logits_, frozen.logits_)


def test_frozen_estimator_survives_clone(binary):
    X, y, model = binary
    selector = clone(LogitBandSelector(estimator=FrozenEstimator(model))).fit(X, y)
    np.testing.assert_allclose(selector.logits_[:, 1], model.decision_function(X))


def test_plain_estimator_is_unfitted_after_clone(binary):
    X, y, model = binary
    with pytest.raises(NotFittedError, match="FrozenEstimator"):
        clone(LogitBandSelector(estimator=model)).fit(X, y)


def test_estimator_without_decision_function_uses_log_probabilities(three_classes):
    X, y, _ = three_classes
    model = GaussianNB().fit(X, y)
    selector = LogitBandSelector(estimator=FrozenEstimator(model)).fit(X, y)
    np.testing.assert_allclose(selector.logits_, np.log(model.predict_proba(X)))


def test_classifier_with_zero_probabilities_is_accepted(three_classes):
    X, y, _ = three_classes
    model = KNeighborsClassifier(n_neighbors=3).fit(X, y)
    assert (model.predict_proba(X) == 0).any()
    selector = LogitBandSelector(estimator=FrozenEstimator(model)).fit(X, y)
    assert np.isfinite(selector.logits_).all()


def test_estimator_with_more_classes_than_y(three_classes):
    X, y, model = three_classes
    present = y < 2
    selector = LogitBandSelector(estimator=FrozenEstimator(model)).fit(X[present], y[present])
    np.testing.assert_array_equal(selector.band_classes_, [0, 1])


def test_out_of_fold_logits_match_cross_val_predict(binary):
    X, y, _ = binary
    selector = LogitBandSelector(cv=4, random_state=7).fit(X, y)
    folds = StratifiedKFold(4, shuffle=True, random_state=7)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    d = cross_val_predict(model, X, y, cv=folds, method="decision_function")
    np.testing.assert_allclose(selector.logits_, np.c_[-d, d])


def test_out_of_fold_logits_never_come_from_a_model_that_saw_the_row():
    # Random labels in more dimensions than rows: a model that saw a row fits its label
    # perfectly; a model that did not is at chance.
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 200), np.repeat([0, 1], 30)
    in_sample = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    assert (in_sample.predict(X) == y).all()
    logits, _ = class_logits(None, X, y, cv=5, random_state=0)
    assert (logits.argmax(axis=1) == y).mean() < 0.75
    # The same selection with an in-sample estimator separates every row perfectly.
    logits, _ = class_logits(in_sample, X, y)
    assert (logits.argmax(axis=1) == y).all()


def test_out_of_fold_folds_shrink_to_smallest_class():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1], [40, 3])
    X = rng.randn(43, 2) + y[:, None]
    logits, classes = class_logits(None, X, y, cv=5, random_state=0)
    assert logits.shape == (43, 2) and np.isfinite(logits).all()


# --- properties ------------------------------------------------------------------------


@st.composite
def logit_problems(draw):
    n_classes = draw(st.sampled_from([2, 3]))
    n = draw(st.integers(2 * n_classes, 40))
    y = np.arange(n) % n_classes
    order = draw(st.permutations(range(n)))
    y = y[np.asarray(order)]
    columns = 1 if n_classes == 2 else n_classes
    logits = draw(
        arrays(
            np.float64,
            (n, columns),
            elements=st.floats(-8, 8, allow_nan=False, allow_subnormal=False),
        )
    )
    return logits, y


def fit_or_none(selector, logits, y):
    """support_ of a fit, or None when the band is too narrow to keep two classes."""
    try:
        return selector.fit(logits, y).support_
    except ValueError as exc:
        assert "band" in str(exc)
        return None


@PROPERTY_SETTINGS
@given(
    problem=logit_problems(),
    center=st.floats(0, 1),
    widths=st.tuples(st.floats(0.01, 1), st.floats(0.01, 1)).map(sorted),
    per_class=st.booleans(),
)
def test_wider_band_keeps_a_superset(problem, center, widths, per_class):
    logits, y = problem
    stub = FrozenEstimator(FixedLogits().fit(logits, y))

    def selector(width):
        return LogitBandSelector(
            estimator=stub,
            band_center=center,
            band_width=width,
            within_class=per_class,
            random_state=0,
        )

    narrow = fit_or_none(selector(widths[0]), logits, y)
    wide = fit_or_none(selector(widths[1]), logits, y)
    if narrow is not None:
        assert wide is not None
        assert wide[narrow].all()
        assert wide.sum() >= narrow.sum()


@PROPERTY_SETTINGS
@given(
    problem=logit_problems(),
    center=st.floats(0, 1),
    width=st.floats(0.05, 1),
    per_class=st.booleans(),
    band_first_class_only=st.booleans(),
)
def test_kept_rows_are_inside_their_thresholds_and_the_band_has_its_size(
    problem, center, width, per_class, band_first_class_only
):
    logits, y = problem
    selector = LogitBandSelector(
        estimator=FrozenEstimator(FixedLogits().fit(logits, y)),
        band_center=center,
        band_width=width,
        within_class=per_class,
        band_classes=[0] if band_first_class_only else None,
        random_state=0,
    )
    if fit_or_none(selector, logits, y) is None:
        return
    scores = selector.logits_
    inside = np.zeros_like(selector.support_)
    for (low, high), label in zip(selector.thresholds_, selector.band_classes_):
        assert low <= high
        in_band = (scores[:, label] >= low) & (scores[:, label] <= high)
        inside |= in_band & (y == label) if per_class else in_band
    if per_class:
        inside |= ~np.isin(y, selector.band_classes_)
    assert inside[selector.support_].all()
    lo, hi = max(center - width / 2, 0), min(center + width / 2, 1)
    # the band's edges are sums of floats: positions within 1e-9 of an edge count as in
    expected = sum(lo - 1e-9 <= r / max(y.size - 1, 1) <= hi + 1e-9 for r in range(y.size))
    if not per_class:
        assert selector.support_.sum() == expected


@settings(max_examples=8, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), data_seed=st.integers(0, 1000))
def test_same_random_state_same_selection(seed, data_seed):
    X, y = spurious_data(n=80, seed=data_seed)
    first = LogitBandSelector(random_state=seed).fit(X, y)
    second = LogitBandSelector(random_state=seed).fit(X, y)
    np.testing.assert_array_equal(first.logits_, second.logits_)
    np.testing.assert_array_equal(first.support_, second.support_)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
@pytest.mark.parametrize("width", [0.1, 0.4])
def test_band_keeps_band_width_of_the_rows_whatever_the_class_count(n_classes, width):
    rng = np.random.RandomState(n_classes)
    y = np.arange(600) % n_classes
    logits = rng.randn(600, n_classes) + 3 * np.eye(n_classes)[y]
    selector = LogitBandSelector(
        estimator=FrozenEstimator(FixedLogits().fit(logits, y)),
        band_width=width,
        random_state=0,
    ).fit(logits, y)
    assert abs(selector.support_.mean() - width) <= 1 / 600 + 1e-12


def test_tied_logits_keep_band_width_and_ties_are_broken_by_random_state():
    y = np.arange(1000) % 2
    logits = np.repeat(np.arange(4.0), 250)[:, None] * np.array([[-1.0, 1.0]])

    def support(seed):
        return (
            LogitBandSelector(
                estimator=FrozenEstimator(FixedLogits().fit(logits, y)),
                band_width=0.05,
                random_state=seed,
            )
            .fit(logits, y)
            .support_
        )

    assert support(0).sum() == 50
    np.testing.assert_array_equal(support(0), support(0))
    assert not np.array_equal(support(0), support(1))


def test_auto_band_centre_is_where_a_class_logit_meets_its_own_rows():
    rng = np.random.RandomState(0)
    for counts, centre in (((100, 100), 0.5), ((100, 100, 100), 2 / 3), ((77, 23), 0.77)):
        y = np.repeat(np.arange(len(counts)), counts)
        X = rng.normal(size=(y.size, 3)) + np.eye(3)[y % 3] * 2
        selector = LogitBandSelector(band_center="auto", band_width=0.2, random_state=0)
        selector.fit(X, y)
        assert selector.band_center_ == pytest.approx(centre)
        fixed = LogitBandSelector(band_center=centre, band_width=0.2, random_state=0).fit(X, y)
        np.testing.assert_array_equal(selector.support_, fixed.support_)
    with pytest.raises(ValueError, match="or 'auto'"):
        LogitBandSelector(band_center="middle").fit(X, y)


@pytest.mark.parametrize(
    "old, new, value",
    [("per_class", "within_class", True), ("classes", "band_classes", [1])],
)
def test_former_parameter_names_warn_and_give_the_same_band(three_classes, old, new, value):
    X, y, model = three_classes
    params = {"estimator": FrozenEstimator(model), "random_state": 0}
    current = LogitBandSelector(**params, **{new: value}).fit(X, y)
    with pytest.warns(FutureWarning, match=f"{old} was renamed {new}"):
        former = LogitBandSelector(**params, **{old: value}).fit(X, y)
    np.testing.assert_array_equal(former.support_, current.support_)
    with pytest.raises(ValueError, match=f"both {old} and {new}"):
        LogitBandSelector(**params, **{old: value, new: value}).fit(X, y)
