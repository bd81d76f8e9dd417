"""EmbeddingClusterer: per-class clusters, balanced resampling, any clusterer, predict."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from midlogit.base import SamplerMixin
from midlogit.clustering import EmbeddingClusterer
from midlogit.pipeline import make_pipeline
from midlogit.retraining import LastLayerRetrainer

# (class, blob) sizes: the blobs of a class sit at opposite ends of a "spurious" axis.
SIZES = {(0, 0): 40, (0, 1): 10, (1, 0): 30, (1, 1): 20}


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.RandomState(0)
    y = np.concatenate([np.full(n, label) for (label, _), n in SIZES.items()])
    blob = np.concatenate([np.full(n, b) for (_, b), n in SIZES.items()])
    centers = np.c_[5.0 * y, np.where(blob == 1, 3.0, -3.0)]
    X = centers + 0.5 * rng.randn(y.size, 2)
    order = rng.permutation(y.size)
    return X[order], y[order], (2 * y + blob)[order]


def test_cluster_ids_are_unique_across_classes(blobs):
    X, y, _ = blobs
    clusterer = EmbeddingClusterer(n_clusters=2, random_state=0).fit(X, y)
    assert set(clusterer.labels_[y == 0]) == {0, 1}
    assert set(clusterer.labels_[y == 1]) == {2, 3}
    np.testing.assert_array_equal(clusterer.cluster_classes_, [0, 0, 1, 1])
    np.testing.assert_array_equal(clusterer.cluster_classes_[clusterer.labels_], y)


def test_clusters_recover_the_planted_blobs(blobs):
    X, y, truth = blobs
    labels = EmbeddingClusterer(n_clusters=2, random_state=0).fit_predict(X, y)
    assert adjusted_rand_score(truth, labels) == 1.0


def test_undersample_gives_every_pseudo_group_the_smallest_size(blobs):
    X, y, _ = blobs
    clusterer = EmbeddingClusterer(n_clusters=2, sampling="undersample", random_state=0)
    X_res, y_res = clusterer.fit_resample(X, y)
    counts = np.bincount(clusterer.labels_)
    assert sorted(counts.tolist()) == [10, 20, 30, 40]
    assert np.bincount(clusterer.labels_[clusterer.sample_indices_]).tolist() == [10] * 4
    assert np.unique(clusterer.sample_indices_).size == 40
    np.testing.assert_array_equal(X_res, X[clusterer.sample_indices_])
    np.testing.assert_array_equal(y_res, y[clusterer.sample_indices_])


def test_oversample_gives_every_pseudo_group_the_largest_size(blobs):
    X, y, _ = blobs
    clusterer = EmbeddingClusterer(n_clusters=2, sampling="oversample", random_state=0)
    _, y_res = clusterer.fit_resample(X, y)
    assert np.bincount(clusterer.labels_[clusterer.sample_indices_]).tolist() == [40] * 4
    assert np.bincount(clusterer.sample_indices_, minlength=y.size).min() == 1
    assert np.bincount(y_res).tolist() == [80, 80]


def test_cluster_centers_are_the_means_of_their_rows(blobs):
    X, y, _ = blobs
    clusterer = EmbeddingClusterer(n_clusters=2, random_state=0).fit(X, y)
    for cluster, center in enumerate(clusterer.cluster_centers_):
        np.testing.assert_allclose(center, X[clusterer.labels_ == cluster].mean(axis=0))


def test_predict_is_nearest_centroid_in_the_clustering_space(blobs):
    X, y, _ = blobs
    clusterer = EmbeddingClusterer(n_clusters=2, random_state=0).fit(X, y)
    queries = np.random.RandomState(1).uniform(-4, 9, size=(50, 2))
    centers = (clusterer.cluster_centers_ - clusterer.mean_) / clusterer.scale_
    expected = [
        int(
            np.argmin(
                [np.sum(((q - clusterer.mean_) / clusterer.scale_ - c) ** 2) for c in centers]
            )
        )
        for q in queries
    ]
    np.testing.assert_array_equal(clusterer.predict(queries), expected)
    np.testing.assert_array_equal(clusterer.predict(X), clusterer.labels_)


def test_agglomerative_clustering_is_accepted_and_left_untouched(blobs):
    X, y, truth = blobs
    given = AgglomerativeClustering(n_clusters=7, linkage="ward")
    clusterer = EmbeddingClusterer(n_clusters=2, clusterer=given).fit(X, y)
    assert adjusted_rand_score(truth, clusterer.labels_) == 1.0
    assert given.get_params()["n_clusters"] == 7
    assert not hasattr(given, "labels_")


def test_gaussian_mixture_gets_n_components(blobs):
    X, y, truth = blobs
    given = GaussianMixture(n_components=5)
    clusterer = EmbeddingClusterer(n_clusters=2, clusterer=given, random_state=0).fit(X, y)
    assert set(clusterer.labels_) == {0, 1, 2, 3}
    assert adjusted_rand_score(truth, clusterer.labels_) == 1.0
    assert given.get_params()["n_components"] == 5


def test_clusterer_without_a_seed_is_seeded_by_random_state(blobs):
    X, y, _ = blobs
    rng = np.random.RandomState(3)
    X = np.r_[X, rng.randn(60, 2) * 4]
    y = np.r_[y, rng.randint(0, 2, 60)]

    def fit(seed):
        return EmbeddingClusterer(
            n_clusters=4, clusterer=KMeans(n_init=1), random_state=seed
        ).fit_resample(X, y)

    for first, second in zip(fit(5), fit(5)):
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("sampling", ["undersample", "oversample"])
def test_same_random_state_same_clusters_and_rows(blobs, sampling):
    X, y, _ = blobs
    first = EmbeddingClusterer(n_clusters=3, sampling=sampling, random_state=0).fit(X, y)
    second = EmbeddingClusterer(n_clusters=3, sampling=sampling, random_state=0).fit(X, y)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    np.testing.assert_array_equal(first.sample_indices_, second.sample_indices_)
    np.testing.assert_array_equal(first.cluster_centers_, second.cluster_centers_)


def test_without_per_class_all_rows_are_clustered_together(blobs):
    X, y, _ = blobs
    clusterer = EmbeddingClusterer(n_clusters=4, per_class=False, random_state=0).fit(X, y)
    assert set(clusterer.labels_) == {0, 1, 2, 3}
    assert clusterer.cluster_classes_.tolist() == [None] * 4
    # The blobs are far apart, so clustering all rows still finds them.
    _, _, truth = blobs
    assert adjusted_rand_score(truth, clusterer.labels_) == 1.0


def test_fit_without_labels_clusters_all_rows(blobs):
    X, _, truth = blobs
    labels = EmbeddingClusterer(n_clusters=4, random_state=0).fit_predict(X)
    assert adjusted_rand_score(truth, labels) == 1.0


def test_standardize_keeps_a_large_dimension_from_dominating():
    rng = np.random.RandomState(0)
    blob = np.repeat([0, 1], 50)
    X = np.c_[0.03 * (2 * blob - 1) + 0.005 * rng.randn(100), rng.uniform(-1, 1, 100)]
    y = np.zeros(100, dtype=int)
    scaled = EmbeddingClusterer(n_clusters=2, standardize=True, random_state=0).fit(X, y)
    raw = EmbeddingClusterer(n_clusters=2, standardize=False, random_state=0).fit(X, y)
    assert adjusted_rand_score(blob, scaled.labels_) == 1.0
    assert adjusted_rand_score(blob, raw.labels_) < 0.5


def test_float32_embeddings_stay_float32(blobs):
    X, y, _ = blobs
    X_res, _ = EmbeddingClusterer(n_clusters=2, random_state=0).fit_resample(
        X.astype(np.float32), y
    )
    assert X_res.dtype == np.float32


def test_n_components_finds_subgroups_hidden_among_noise_features(blobs):
    X, y, truth = blobs
    rng = np.random.RandomState(1)
    # the subgroup axis is the largest within-class direction; 60 weak noise features
    wide = np.c_[X, 0.3 * rng.randn(y.size, 60)]
    clusterer = EmbeddingClusterer(n_clusters=2, n_components=2, random_state=0)
    labels = clusterer.fit_predict(wide, y)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert clusterer.cluster_centers_.shape == (4, 62)


def test_n_components_not_below_the_feature_count_changes_nothing(blobs):
    X, y, _ = blobs
    plain = EmbeddingClusterer(n_clusters=2, n_components=None, random_state=0).fit(X, y)
    for n_components in (2, 5):
        same = EmbeddingClusterer(n_clusters=2, n_components=n_components, random_state=0)
        same.fit(X, y)
        np.testing.assert_array_equal(same.labels_, plain.labels_)
        np.testing.assert_array_equal(same.sample_indices_, plain.sample_indices_)


@pytest.mark.parametrize("n_components", [0, 2.5, "4"])
def test_n_components_must_be_a_positive_integer(blobs, n_components):
    X, y, _ = blobs
    with pytest.raises(ValueError, match="n_components must be a positive integer"):
        EmbeddingClusterer(n_components=n_components).fit(X, y)


class _KeepRows(SamplerMixin, BaseEstimator):
    """A sampler that keeps the rows it is told to keep."""

    def __init__(self, rows=None):
        self.rows = rows

    def _fit(self, X, y):
        self.sample_indices_ = np.asarray(self.rows)
        return X, y


def test_selector_finds_clusters_on_its_rows_and_labels_every_row(blobs):
    X, y, truth = blobs
    kept = np.flatnonzero(np.arange(y.size) % 3 == 0)
    selector = _KeepRows(rows=kept)
    clusterer = EmbeddingClusterer(
        n_clusters=2, selector=selector, sampling="undersample", random_state=0
    )
    clusterer.fit_resample(X, y)
    assert adjusted_rand_score(truth, clusterer.labels_) == 1.0
    np.testing.assert_array_equal(clusterer.selector_.sample_indices_, kept)
    assert not hasattr(selector, "sample_indices_")
    # the balanced set is drawn from all rows, not only from the kept ones
    assert np.setdiff1d(clusterer.sample_indices_, kept).size > 0
    assert np.bincount(clusterer.labels_[clusterer.sample_indices_]).tolist() == [10] * 4


def test_selector_clusters_are_found_on_its_rows_only():
    rng = np.random.RandomState(0)
    # class 0: the kept rows form two blobs along x, the other rows a far-off blob;
    # class 1: ten rows of their own
    X = np.r_[
        rng.randn(20, 2) + [-4, 0],
        rng.randn(20, 2) + [4, 0],
        rng.randn(60, 2) + [0, 30],
        rng.randn(10, 2) + [50, 50],
    ]
    y = np.r_[np.zeros(100, dtype=int), np.ones(10, dtype=int)]
    selector = _KeepRows(rows=np.r_[np.arange(40), np.arange(100, 110)])
    clusterer = EmbeddingClusterer(n_clusters=2, selector=selector, random_state=0)
    labels = clusterer.fit(X, y).labels_
    left, right = labels[:20], labels[20:40]
    assert np.unique(left).size == 1 and np.unique(right).size == 1
    assert left[0] != right[0]
    # without the selector the far-off blob gets a cluster of its own instead
    plain = EmbeddingClusterer(n_clusters=2, random_state=0).fit(X, y).labels_
    assert plain[0] == plain[20]


def test_selector_needs_labels(blobs):
    X, _, _ = blobs
    with pytest.raises(ValueError, match="selector needs y"):
        EmbeddingClusterer(selector=_KeepRows(rows=[0, 1, 2])).fit(X)


def test_too_few_selected_rows_name_the_selector(blobs):
    X, y, _ = blobs
    with pytest.raises(ValueError, match="rows kept by the selector"):
        EmbeddingClusterer(n_clusters=2, selector=_KeepRows(rows=[0])).fit(X, y)


def test_project_out_removes_a_direction_from_the_clustering(blobs):
    X, y, truth = blobs
    # the blobs differ along the second axis only: with it projected out they are lost
    kept = EmbeddingClusterer(n_clusters=2, random_state=0).fit_predict(X, y)
    lost = EmbeddingClusterer(n_clusters=2, project_out=[[0.0, 1.0]], random_state=0)
    assert adjusted_rand_score(truth, kept) == 1.0
    labels = lost.fit_predict(X, y)
    for label in (0, 1):
        assert adjusted_rand_score(truth[y == label], labels[y == label]) < 0.2
    # a direction the blobs do not differ along changes nothing
    other = EmbeddingClusterer(n_clusters=2, project_out=[[3.0, 0.0]], random_state=0)
    assert adjusted_rand_score(truth, other.fit_predict(X, y)) == 1.0


@pytest.mark.parametrize("directions", [[[1.0, 0.0, 0.0]], [[np.nan, 1.0]]])
def test_project_out_must_match_the_features_and_be_finite(blobs, directions):
    X, y, _ = blobs
    with pytest.raises(ValueError, match="project_out"):
        EmbeddingClusterer(project_out=directions).fit(X, y)


class _WeightSpy(LastLayerRetrainer):
    def fit(self, X, y, sample_weight=None):
        self.seen_weight_ = sample_weight
        return super().fit(X, y, sample_weight=sample_weight)


def _planted_minority(seed=0):
    """Two classes; in each, a small cluster (the minority) that the head gets wrong."""
    rng = np.random.RandomState(seed)
    y = np.r_[np.zeros(300, int), np.ones(300, int)]
    minority = np.r_[np.arange(300) < 20, np.arange(300) < 20]
    attribute = np.where(minority, 1 - y, y)
    X = np.c_[
        0.5 * y + 0.3 * rng.randn(600),
        3.0 * attribute + 0.3 * rng.randn(600),
        4.0 * minority + 0.3 * rng.randn(600),
    ]
    head = LogisticRegression().fit(X[:, :2] * [0, 1], y)  # the shortcut: attribute only
    return X, y, minority, FrozenEstimator(_Shortcut(head))


class _Shortcut(ClassifierMixin, BaseEstimator):
    def __init__(self, model=None):
        self.model = model

    def fit(self, X, y):
        self.classes_ = self.model.classes_
        return self

    def decision_function(self, X):
        return self.model.decision_function(np.asarray(X)[:, :2] * [0, 1])


def test_the_planted_minority_cluster_is_selected_and_weighted():
    X, y, minority, head = _planted_minority()
    head.estimator.fit(X, y)
    clusterer = EmbeddingClusterer(
        n_clusters=3,
        balance="pseudo_groups",
        estimator=head,
        sampling="weight",
        n_components=None,
        random_state=0,
    ).fit(X, y)
    report = clusterer.cluster_report_
    selected = report["selected"][clusterer.labels_]
    np.testing.assert_array_equal(selected, minority)
    assert report["error_rate"][report["selected"]].min() > 0.9
    assert (report["margin"][report["selected"]] < 0).all()
    # every (class, selected) cell carries the same total weight
    weight = clusterer.sample_weight_
    cells = [weight[(y == c) & (minority == m)].sum() for c in (0, 1) for m in (0, 1)]
    np.testing.assert_allclose(cells, cells[0])


def test_sampler_weights_reach_the_final_step_through_the_pipeline():
    X, y, minority, head = _planted_minority()
    head.estimator.fit(X, y)
    pipe = make_pipeline(
        EmbeddingClusterer(
            n_clusters=3,
            balance="pseudo_groups",
            estimator=head,
            sampling="weight",
            n_components=None,
            random_state=0,
        ),
        _WeightSpy(),
    ).fit(X, y)
    clusterer, spy = pipe.steps[0][1], pipe.steps[1][1]
    np.testing.assert_allclose(spy.seen_weight_, clusterer.sample_weight_)
    assert spy.seen_weight_[minority].mean() > 5 * spy.seen_weight_[~minority].mean()


def test_a_person_can_choose_the_clusters():
    X, y, minority, head = _planted_minority()
    clusterer = EmbeddingClusterer(n_clusters=3, n_components=None, random_state=0).fit(X, y)
    chosen = np.unique(clusterer.labels_[minority])
    chosen_by_hand = EmbeddingClusterer(
        n_clusters=3,
        n_components=None,
        balance="pseudo_groups",
        selected_clusters=chosen.tolist(),
        random_state=0,
    ).fit(X, y)
    np.testing.assert_array_equal(
        chosen_by_hand.cluster_report_["selected"][chosen_by_hand.labels_], minority
    )
    assert np.isnan(chosen_by_hand.cluster_report_["error_rate"]).all()


def _three_class_planted():
    """Three classes; each class's counterexamples carry the attribute of the two others."""
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], 200)
    attribute = y.copy()
    within = np.tile(np.arange(200), 3)
    attribute[within < 15] = (y[within < 15] + 1) % 3
    attribute[(within >= 15) & (within < 30)] = (y[(within >= 15) & (within < 30)] + 2) % 3
    X = 4.0 * np.eye(3)[attribute] + 0.3 * rng.randn(600, 3)
    head = LogisticRegression().fit(X, attribute)  # reads the attribute only
    return X, y, attribute, FrozenEstimator(head)


def test_each_kind_of_counterexample_gets_its_own_cell_with_three_classes():
    X, y, attribute, head = _three_class_planted()
    clusterer = EmbeddingClusterer(
        n_clusters=3,
        balance="pseudo_groups",
        estimator=head,
        n_selected="auto",
        sampling="weight",
        n_components=None,
        random_state=0,
    ).fit(X, y)
    report = clusterer.cluster_report_
    # two clusters per class are selected, each confused with its own attribute
    assert report["selected"].sum() == 6
    np.testing.assert_array_equal(
        report["confused_with"][clusterer.labels_][attribute != y], attribute[attribute != y]
    )
    # the cells are the (class, attribute) groups, and each gets equal total weight
    cells = clusterer.pseudo_groups_
    assert np.unique(cells).size == 9
    for group in np.unique(y * 3 + attribute):
        assert np.unique(cells[y * 3 + attribute == group]).size == 1
    totals = np.bincount(cells, clusterer.sample_weight_)
    np.testing.assert_allclose(totals[totals > 0], totals[totals > 0][0])


def test_auto_selection_follows_the_error_rate_threshold():
    X, y, minority, head = _planted_minority()
    head.estimator.fit(X, y)
    params = dict(
        n_clusters=3, balance="pseudo_groups", estimator=head, n_components=None, random_state=0
    )
    auto = EmbeddingClusterer(n_selected="auto", **params).fit(X, y)
    np.testing.assert_array_equal(auto.cluster_report_["selected"][auto.labels_], minority)
    # a head that reads the core feature errs on no cluster half the time: nothing is
    # selected at 0.5 and the classes alone are balanced
    fair = LogisticRegression().fit(X[:, :1], y)
    params["estimator"] = FrozenEstimator(_FirstColumn(fair).fit(X, y))
    some = EmbeddingClusterer(n_selected="auto", **params).fit(X, y)
    report = some.cluster_report_
    np.testing.assert_array_equal(report["selected"], report["error_rate"] >= 0.3)
    none = EmbeddingClusterer(n_selected="auto", min_error_rate=0.5, **params).fit(X, y)
    assert none.cluster_report_["error_rate"].max() < 0.5
    assert not none.cluster_report_["selected"].any()
    assert np.unique(none.pseudo_groups_).size == 2


class _FirstColumn(ClassifierMixin, BaseEstimator):
    def __init__(self, model=None):
        self.model = model

    def fit(self, X, y):
        self.classes_ = self.model.classes_
        return self

    def decision_function(self, X):
        return self.model.decision_function(np.asarray(X)[:, :1])


class _GroupsSpy(LastLayerRetrainer):
    def fit(self, X, y, sample_weight=None, groups=None):
        self.seen_groups_ = groups
        return super().fit(X, y, sample_weight=sample_weight, groups=groups)


def test_averaged_refits_receive_the_pseudo_groups_through_the_pipeline():
    X, y, minority, head = _planted_minority()
    head.estimator.fit(X, y)
    clusterer = EmbeddingClusterer(
        n_clusters=3,
        balance="pseudo_groups",
        estimator=head,
        sampling="average",
        n_components=None,
        random_state=0,
    )
    pipe = make_pipeline(clusterer, _GroupsSpy(n_subsamples=5, random_state=0)).fit(X, y)
    fitted, spy = pipe.steps[0][1], pipe.steps[1][1]
    assert fitted.sample_weight_ is None
    np.testing.assert_array_equal(spy.seen_groups_, fitted.pseudo_groups_)
    # the cells are (class, planted minority or not)
    for cell in np.unique(spy.seen_groups_):
        assert np.unique(minority[spy.seen_groups_ == cell]).size == 1
    # each refit was balanced over those cells: far better on the minority than one fit
    plain = LastLayerRetrainer(random_state=0).fit(X, y)
    assert spy.score(X[minority], y[minority]) > plain.score(X[minority], y[minority]) + 0.3
    with pytest.raises(ValueError, match="got groups from the caller"):
        make_pipeline(clone(clusterer), _GroupsSpy(n_subsamples=5)).fit(X, y, _groupsspy__groups=y)
