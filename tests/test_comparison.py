"""midlogit_search: where the retraining rows come from, and the setting it reports."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from midlogit.datasets import make_spurious_gaussians
from midlogit.experiments.comparison import (
    AVERAGED_REFITS,
    DEFAULT_BAND_WIDTHS,
    DEFAULT_N_CLUSTERS,
    compare_methods,
    curated_rows,
    midlogit_search,
    search_choice,
)
from midlogit.metrics import worst_group_accuracy
from midlogit.retraining import LastLayerRetrainer


@pytest.fixture(scope="module")
def data():
    train = make_spurious_gaussians(600, bias=0.95, random_state=0)
    held = make_spurious_gaussians(600, bias=0.95, random_state=1)
    head = LogisticRegression().fit(train.data, train.target)
    return head, held.data, held.target


def test_grid_searches_both_sources_of_retraining_rows_and_the_projection(data):
    head, X, y = data
    search = midlogit_search(head, (0.2, 0.4), (2, 3), y=y, project_out_head=(False, True))
    candidates = search.fit(X, y).cv_results_["params"]
    assert len(candidates) == 2 * 2 * 2 * 2 * 2  # widths, k, sources, projection, sampling
    sources = [
        "all" if params.get("logitbandselector") == "passthrough" else "band"
        for params in candidates
    ]
    assert sources.count("all") == sources.count("band") == 16
    projected = [params["embeddingclusterer__project_out"] is not None for params in candidates]
    assert sum(projected) == 16
    # averaged refits go with sampling="average" only
    for params in candidates:
        averaged = params.get("lastlayerretrainer__n_subsamples") == AVERAGED_REFITS
        assert averaged == (params["embeddingclusterer__sampling"] == "average")
    for params in candidates:
        if params["embeddingclusterer__project_out"] is not None:
            np.testing.assert_array_equal(params["embeddingclusterer__project_out"], head.coef_)


def test_retraining_on_all_rows_clusters_the_band_only(data):
    head, X, y = data
    search = midlogit_search(
        head, (0.2,), (2,), y=y, retrain_from="all", project_out_head=False, sampling="weight"
    ).fit(X, y)
    best = search.best_estimator_
    assert best.named_steps["logitbandselector"] == "passthrough"
    clusterer = best.named_steps["embeddingclusterer"]
    band = clusterer.selector_.sample_indices_
    assert band.size == pytest.approx(0.2 * y.size, abs=2)
    assert np.setdiff1d(clusterer.sample_indices_, band).size > 0
    assert clusterer.labels_.size == y.size
    assert search_choice(search) == {
        "retrain_from": "all",
        "band_width": 0.2,
        "n_clusters": 2,
        "project_out_head": False,
        "balance": "pseudo_groups",
        "sampling": "weight",
    }


def test_weighted_pseudo_groups_reach_the_head_and_minority_share_is_reported():
    train = make_spurious_gaussians(2000, bias=0.95, random_state=0)
    held = make_spurious_gaussians(1000, bias=0.95, random_state=1)
    test = make_spurious_gaussians(1000, bias=0.0, random_state=2)
    head = LastLayerRetrainer().fit(train.data, train.target)
    result = compare_methods(
        held.data,
        held.target,
        test.data,
        test.target,
        test.groups,
        head=head,
        groups=held.groups,
        band_widths=(0.4,),
        n_clusters=(4,),
    )
    clusterer = result.models["midlogit"].named_steps["embeddingclusterer"]
    assert clusterer.sample_weight_ is not None
    # DFR's group-balanced set is half minority; the weighted pseudo-groups get most of
    # the way without group labels, the class-balanced set stays at the base rate.
    shares = {k: v["minority_share"] for k, v in result.methods.items()}
    assert shares["dfr"] == pytest.approx(0.5)
    assert shares["midlogit"] > 3 * shares["class_balanced"]


def test_retraining_on_the_band_keeps_band_rows_only(data):
    head, X, y = data
    search = midlogit_search(head, (0.2,), (2,), y=y, retrain_from="band").fit(X, y)
    best = search.best_estimator_
    band = best.named_steps["logitbandselector"].sample_indices_
    assert best.named_steps["embeddingclusterer"].labels_.size == band.size
    assert search_choice(search)["retrain_from"] == "band"


@pytest.mark.parametrize("retrain_from", ["everything", (), ("band", "middle")])
def test_unknown_retrain_from(data, retrain_from):
    head, _, y = data
    with pytest.raises(ValueError, match="retrain_from must be"):
        midlogit_search(head, y=y, retrain_from=retrain_from)


def test_projecting_out_the_head_needs_its_coefficients(data):
    _, _, y = data

    class NoCoef:
        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    with pytest.raises(ValueError, match="needs a linear head with coef_"):
        midlogit_search(NoCoef(), y=y, project_out_head=True)
    search = midlogit_search(NoCoef(), y=y, project_out_head=False)
    assert search.param_grid[0]["embeddingclusterer__project_out"] == [None]


def test_default_grid_keeps_the_head_directions_and_selects_automatically(data):
    head, _, y = data
    search = midlogit_search(head, y=y)
    for grid in search.param_grid:
        assert grid["embeddingclusterer__project_out"] == [None]
        assert grid["embeddingclusterer__n_clusters"] == list(DEFAULT_N_CLUSTERS)
    assert search.estimator.named_steps["embeddingclusterer"].n_selected == "auto"
    widths = search.param_grid[0]["logitbandselector__band_width"]
    assert widths == list(DEFAULT_BAND_WIDTHS) and 1.0 in widths


def test_worst_group_scoring_reads_the_validation_groups_only():
    train = make_spurious_gaussians(600, bias=0.95, random_state=0)
    held = make_spurious_gaussians(600, bias=0.95, random_state=1)
    head = LogisticRegression().fit(train.data, train.target)
    params = dict(band_widths=(0.4,), n_clusters=(2, 4), y=held.target, retrain_from="all")
    search = midlogit_search(head, scoring="worst_group", groups=held.groups, **params)
    search.fit(held.data, held.target)
    ((_, validation_rows),) = search.cv.split()
    # the score of every candidate is its worst-group accuracy on the validation rows
    for rank, candidate in enumerate(search.cv_results_["params"]):
        model = clone(search.estimator).set_params(**candidate)
        fit_rows = np.setdiff1d(np.arange(held.target.size), validation_rows)
        model.fit(held.data[fit_rows], held.target[fit_rows])
        expected = worst_group_accuracy(
            held.target[validation_rows],
            model.predict(held.data[validation_rows]),
            groups=held.groups[validation_rows],
        )
        assert search.cv_results_["split0_test_score"][rank] == pytest.approx(expected, abs=2e-6)
    with pytest.raises(ValueError, match="needs groups"):
        midlogit_search(head, scoring="worst_group", **params)
    with pytest.raises(ValueError, match="only used with scoring='worst_group'"):
        midlogit_search(head, groups=held.groups, **params)
    result = compare_methods(
        held.data,
        held.target,
        held.data,
        held.target,
        held.groups,
        head=head,
        groups=held.groups,
        band_widths=(0.4,),
        n_clusters=(2,),
        select_with_groups=True,
    )
    assert result.methods["midlogit"]["labels_used"] == "class (+ groups to choose)"


def test_curated_rows_of_averaged_refits_weigh_every_cell_equally(data):
    head, X, y = data
    search = midlogit_search(head, (0.4,), (4,), y=y, retrain_from="band", sampling="average").fit(
        X, y
    )
    rows, weight = curated_rows(search.best_estimator_)
    band = search.best_estimator_.named_steps["logitbandselector"]
    cells = search.best_estimator_.named_steps["embeddingclusterer"].sample_groups_
    np.testing.assert_array_equal(rows, band.sample_indices_)
    totals = np.bincount(cells, weight)
    np.testing.assert_allclose(totals[totals > 0], totals[totals > 0].mean())


def test_search_needs_y_only_at_fit(data):
    head, X, y = data
    grid = dict(band_widths=(0.2, 0.4), n_clusters=(2,), retrain_from=("band", "all"))
    given = midlogit_search(head, y=y, **grid).fit(X, y)
    at_fit = midlogit_search(head, **grid).fit(X, y)
    # the same stratified split either way, hence the same scores and choice
    np.testing.assert_array_equal(
        given.cv_results_["split0_test_score"], at_fit.cv_results_["split0_test_score"]
    )
    assert search_choice(given) == search_choice(at_fit)
    with pytest.raises(ValueError, match="scoring='worst_group' needs y="):
        midlogit_search(head, scoring="worst_group", groups=y)


def test_step_params_may_name_what_the_grid_sets(data):
    head, X, y = data
    search = midlogit_search(
        head,
        (0.4,),
        (2,),
        retrain_from="band",
        sampling="weight",
        selector_params={"band_width": 0.9},
        clusterer_params={"n_clusters": 5},
    ).fit(X, y)
    fitted = search.best_estimator_
    assert fitted.named_steps["logitbandselector"].band_width == 0.4  # the grid's
    assert fitted.named_steps["embeddingclusterer"].n_clusters == 2
