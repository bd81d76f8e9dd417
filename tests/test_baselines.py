"""Each baseline keeps exactly what it says it keeps."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from midlogit.baselines import (
    ClassBalancedSampler,
    ErrorSetSelector,
    GroupBalancedSampler,
    RandomSubsetSampler,
)


@pytest.fixture(scope="module")
def imbalanced():
    """Three classes of 50, 30 and 20 rows, a group attribute, a noisy label signal."""
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], [50, 30, 20])
    X = np.c_[y + rng.randn(100), rng.randn(100, 2)]
    groups = 3 * (X[:, 1] > 0) + y
    return X, y, groups


@pytest.fixture(scope="module")
def binary():
    """Two overlapping classes, so that a linear model makes some errors."""
    rng = np.random.RandomState(1)
    y = np.repeat([0, 1], [90, 60])
    X = np.c_[1.2 * y + rng.randn(150), rng.randn(150, 2)]
    return X, y


def test_class_balanced_undersample_equalises_to_smallest(imbalanced):
    X, y, _ = imbalanced
    sampler = ClassBalancedSampler(random_state=0)
    X_res, y_res = sampler.fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [20, 20, 20]
    assert np.unique(sampler.sample_indices_).size == 60
    np.testing.assert_array_equal(X_res, X[sampler.sample_indices_])
    np.testing.assert_array_equal(y_res, y[sampler.sample_indices_])


def test_class_balanced_oversample_equalises_to_largest(imbalanced):
    X, y, _ = imbalanced
    sampler = ClassBalancedSampler(sampling="oversample", random_state=0)
    _, y_res = sampler.fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [50, 50, 50]
    # Every original row is kept at least once; only the smaller classes repeat.
    multiplicity = np.bincount(sampler.sample_indices_, minlength=y.size)
    assert multiplicity.min() == 1
    assert multiplicity[y == 0].max() == 1
    assert multiplicity[y == 2].sum() == 50


def test_random_subset_count_is_exact(imbalanced):
    X, y, _ = imbalanced
    for n_samples in (7, 25, 61):
        sampler = RandomSubsetSampler(n_samples=n_samples, random_state=0)
        _, y_res = sampler.fit_resample(X, y)
        assert y_res.size == n_samples


def test_random_subset_count_is_exact_with_unrounded_strata():
    # 3 and 7 rows at half the data: 1.5 and 3.5 rows per stratum, 5 rows in all.
    X, y = np.zeros((10, 1)), np.repeat([0, 1], [3, 7])
    sampler = RandomSubsetSampler(n_samples=5, random_state=0).fit(X, y)
    assert sampler.sample_indices_.size == 5
    sampler = RandomSubsetSampler(n_samples=0.5, random_state=0).fit(X, y)
    assert sampler.sample_indices_.size == 5


def test_random_subset_fraction_is_stratified(imbalanced):
    X, y, _ = imbalanced
    sampler = RandomSubsetSampler(n_samples=0.4, random_state=0)
    _, y_res = sampler.fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [20, 12, 8]
    assert np.unique(sampler.sample_indices_).size == 40
    assert np.all(np.diff(sampler.sample_indices_) > 0)


def test_random_subset_without_stratification_draws_uniformly(imbalanced):
    X, y, _ = imbalanced
    kept = np.concatenate(
        [
            RandomSubsetSampler(n_samples=0.5, stratify=False, random_state=seed)
            .fit(X, y)
            .sample_indices_
            for seed in range(200)
        ]
    )
    assert kept.size == 200 * 50
    # Each row is kept with probability 1/2: about 100 times in 200 draws.
    frequency = np.bincount(kept, minlength=y.size) / 200
    assert np.abs(frequency - 0.5).max() < 0.2
    # Stratified draws never vary the class counts; unstratified ones do.
    class_counts = {
        tuple(
            np.bincount(
                y[
                    RandomSubsetSampler(n_samples=0.5, stratify=False, random_state=seed)
                    .fit(X, y)
                    .sample_indices_
                ],
                minlength=3,
            )
        )
        for seed in range(20)
    }
    assert len(class_counts) > 1


def test_random_subset_is_deterministic(imbalanced):
    X, y, _ = imbalanced
    first = RandomSubsetSampler(random_state=3).fit(X, y).sample_indices_
    second = RandomSubsetSampler(random_state=3).fit(X, y).sample_indices_
    np.testing.assert_array_equal(first, second)


def test_error_set_is_the_misclassified_rows(binary):
    X, y = binary
    model = LogisticRegression().fit(X, y)
    expected = np.flatnonzero(model.predict(X) != y)
    assert 5 < expected.size < 60
    selector = ErrorSetSelector(estimator=FrozenEstimator(model), upweight=None)
    X_res, y_res = selector.fit_resample(X, y)
    np.testing.assert_array_equal(selector.error_set_, expected)
    np.testing.assert_array_equal(selector.sample_indices_, expected)
    np.testing.assert_array_equal(X_res, X[expected])
    np.testing.assert_allclose(selector.logits_[:, 1], model.decision_function(X))


def test_error_set_multiclass_matches_predict(imbalanced):
    X, y, _ = imbalanced
    model = LogisticRegression().fit(X, y)
    selector = ErrorSetSelector(estimator=FrozenEstimator(model), upweight=None).fit(X, y)
    np.testing.assert_array_equal(selector.error_set_, np.flatnonzero(model.predict(X) != y))


def test_jtt_upweighting_multiplicities(binary):
    X, y = binary
    model = FrozenEstimator(LogisticRegression().fit(X, y))
    selector = ErrorSetSelector(estimator=model, upweight=5)
    _, y_res = selector.fit_resample(X, y)
    multiplicity = np.bincount(selector.sample_indices_, minlength=y.size)
    is_error = np.isin(np.arange(y.size), selector.error_set_)
    assert is_error.any()
    assert np.all(multiplicity[is_error] == 5)
    assert np.all(multiplicity[~is_error] == 1)
    assert y_res.size == y.size + 4 * selector.error_set_.size


def test_lowest_logit_keeps_each_class_lowest_own_logits(imbalanced):
    X, y, _ = imbalanced
    model = LogisticRegression().fit(X, y)
    selector = ErrorSetSelector(
        estimator=FrozenEstimator(model), selection="lowest_logit", fraction=0.2, upweight=None
    ).fit(X, y)
    own = model.decision_function(X)[np.arange(y.size), y]
    expected = []
    for label in (0, 1, 2):
        rows = np.flatnonzero(y == label)
        expected.extend(rows[np.argsort(own[rows])[: round(0.2 * rows.size)]])
    np.testing.assert_array_equal(selector.error_set_, np.sort(expected))
    assert np.bincount(y[selector.error_set_]).tolist() == [10, 6, 4]


def test_error_set_out_of_fold_by_default(binary):
    X, y = binary
    selector = ErrorSetSelector(upweight=None, random_state=0).fit(X, y)
    codes = selector.logits_.argmax(axis=1)
    np.testing.assert_array_equal(selector.error_set_, np.flatnonzero(codes != y))


@pytest.mark.parametrize("sampling, size", [("undersample", "min"), ("oversample", "max")])
def test_group_balanced_sampler_equalises_groups(imbalanced, sampling, size):
    X, y, groups = imbalanced
    sampler = GroupBalancedSampler(sampling=sampling, random_state=0)
    _, y_res = sampler.fit_resample(X, y, groups=groups)
    counts = np.bincount(groups)
    expected = getattr(counts, size)()
    assert np.bincount(groups[sampler.sample_indices_]).tolist() == [expected] * 6
    np.testing.assert_array_equal(y_res, y[sampler.sample_indices_])


def test_group_balanced_sampler_accepts_string_groups(imbalanced):
    X, y, groups = imbalanced
    names = np.array(list("abcdef"))[groups]
    sampler = GroupBalancedSampler(random_state=0).fit(X, y, groups=names)
    reference = GroupBalancedSampler(random_state=0).fit(X, y, groups=groups)
    np.testing.assert_array_equal(sampler.sample_indices_, reference.sample_indices_)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ClassBalancedSampler(random_state=0),
        lambda: RandomSubsetSampler(random_state=0),
        lambda: ErrorSetSelector(random_state=0),
    ],
    ids=["ClassBalancedSampler", "RandomSubsetSampler", "ErrorSetSelector"],
)
def test_baselines_are_deterministic(imbalanced, make):
    X, y, _ = imbalanced
    np.testing.assert_array_equal(
        make().fit(X, y).sample_indices_, make().fit(X, y).sample_indices_
    )


class ReversedClasses(ClassifierMixin, BaseEstimator):
    """A fitted logistic regression whose classes_ are listed in reverse order."""

    def fit(self, X, y):
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_[::-1]
        return self

    def decision_function(self, X):
        scores = self.model_.decision_function(X)
        return -scores if scores.ndim == 1 else scores[:, ::-1]


@pytest.mark.parametrize("selection", ["errors", "lowest_logit"])
@pytest.mark.parametrize("labels", [["a", "b"], ["a", "b", "c"]])
def test_error_set_does_not_depend_on_the_order_of_the_estimators_classes(
    imbalanced, selection, labels
):
    X, y, _ = imbalanced
    y = np.asarray(labels)[y % len(labels)]
    sorted_head = LogisticRegression().fit(X, y)
    reversed_head = ReversedClasses().fit(X, y)
    assert reversed_head.classes_.tolist() == labels[::-1]

    def error_set(head):
        selector = ErrorSetSelector(
            estimator=FrozenEstimator(head), selection=selection, upweight=2
        )
        return selector.fit(X, y).error_set_

    expected = error_set(sorted_head)
    if selection == "errors":
        np.testing.assert_array_equal(expected, np.flatnonzero(sorted_head.predict(X) != y))
    np.testing.assert_array_equal(error_set(reversed_head), expected)


# --- imbalanced-learn's sampler protocol ---------------------------------------------------


def test_group_balanced_sampler_refuses_continuous_y(imbalanced):
    X, _, groups = imbalanced
    y = np.linspace(0, 1, X.shape[0])
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        GroupBalancedSampler().fit_resample(X, y, groups=groups)


def test_group_balanced_sampler_takes_a_column_of_groups_and_names_a_wrong_shape(imbalanced):
    X, y, groups = imbalanced
    column = GroupBalancedSampler(random_state=0).fit_resample(X, y, groups=groups[:, None])
    flat = GroupBalancedSampler(random_state=0).fit_resample(X, y, groups=groups)
    np.testing.assert_array_equal(column[0], flat[0])
    with pytest.raises(ValueError, match="groups has 99 entries but X has 100 rows"):
        GroupBalancedSampler().fit_resample(X, y, groups=groups[:-1])
    with pytest.raises(ValueError, match=r"groups must be 1-D.*got shape \(100, 2\)"):
        GroupBalancedSampler().fit_resample(X, y, groups=np.c_[groups, groups])


def test_class_balanced_sampler_refuses_a_single_class(imbalanced):
    X, y, _ = imbalanced
    with pytest.raises(ValueError, match="at least two classes"):
        ClassBalancedSampler().fit_resample(X, np.zeros_like(y))


@pytest.mark.parametrize(
    "sampler",
    [ClassBalancedSampler(random_state=0), RandomSubsetSampler(random_state=0)],
    ids=type,
)
def test_samplers_return_lists_when_given_lists(imbalanced, sampler):
    X, y, _ = imbalanced
    X_res, y_res = sampler.fit_resample(X.tolist(), y.tolist())
    assert isinstance(X_res, list) and isinstance(y_res, list)
    rows = sampler.sample_indices_
    assert X_res == X[rows].tolist() and y_res == y[rows].tolist()


def test_group_balanced_sampler_in_imbalanced_learns_pipeline(imbalanced):
    import imblearn.pipeline
    import sklearn

    X, y, groups = imbalanced
    pipe = imblearn.pipeline.make_pipeline(
        GroupBalancedSampler(random_state=0), LogisticRegression()
    )
    # Without routing imbalanced-learn passes a sampler no fit parameter: say what to do.
    with pytest.raises(ValueError, match=r"imbalanced-learn's Pipeline.*enable metadata"):
        pipe.fit(X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe.fit(X, y, groups=groups)  # the sampler requests groups by default
        kept = pipe[0].sample_indices_
        counts = np.bincount(groups[kept])
        assert counts.min() == counts.max() == np.bincount(groups).min()
        # An explicit request wins over the default.
        refusing = GroupBalancedSampler().set_fit_request(groups=False)
        routing = refusing.get_metadata_routing()
        assert routing.fit.requests["groups"] is routing.fit_resample.requests["groups"] is False
