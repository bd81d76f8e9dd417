import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from midlogit.analysis import (  # noqa: E402
    band_composition,
    extremal_and_midrange_indices,
    representational_similarity,
    rsm_block_contrast,
    sort_rsm,
)
from midlogit.plotting import (  # noqa: E402
    plot_band_composition,
    plot_band_projection,
    plot_bias_sweep,
    plot_curated_composition,
    plot_extremal_vs_midrange,
    plot_group_accuracies,
    plot_logit_histogram,
    plot_rsm_pair,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def bar_heights(container):
    return np.array([patch.get_height() for patch in container])


def legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


# ---------------------------------------------------------------- logit histogram


def test_logit_histogram_stacked_by_group(rng):
    logits = rng.normal(size=120)
    groups = rng.integers(0, 3, size=120)
    fig = plot_logit_histogram(
        logits, groups, thresholds=(-0.2, 0.4), group_names={0: "square", 1: "ellipse", 2: "heart"}
    )
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.containers) == 3
    per_group = [bar_heights(c).sum() for c in ax.containers]
    np.testing.assert_array_equal(per_group, np.bincount(groups))
    texts = legend_texts(ax)
    assert texts[:3] == ["square", "ellipse", "heart"]
    assert texts[3].startswith("band [")
    assert ax.get_xlabel() == "logit"


def test_logit_histogram_without_groups_on_given_axes(rng):
    logits = rng.normal(size=50)
    fig, ax = plt.subplots()
    assert plot_logit_histogram(logits, bins=10, ax=ax) is fig
    assert len(ax.containers) == 1
    assert bar_heights(ax.containers[0]).sum() == 50


def test_logit_histogram_overlaid(rng):
    logits, groups = rng.normal(size=40), rng.integers(0, 2, 40)
    fig = plot_logit_histogram(logits, groups, bins=8, stacked=False)
    (ax,) = fig.axes
    # One half-transparent filled outline per group, not stacked: each outline's peak is
    # its own group's tallest bin.
    assert len(ax.patches) == 2
    assert [p.get_alpha() for p in ax.patches] == [0.5, 0.5]
    edges = np.histogram_bin_edges(logits, bins=8)
    for g, patch in enumerate(ax.patches):
        expected = np.histogram(logits[groups == g], bins=edges)[0].max()
        assert patch.get_xy()[:, 1].max() == expected
    assert sorted(legend_texts(ax)) == ["0", "1"]


def test_logit_histogram_band_is_the_former_name_of_thresholds(rng):
    logits = rng.normal(size=30)
    with pytest.warns(FutureWarning, match="band was renamed thresholds"):
        fig = plot_logit_histogram(logits, band=(-0.5, 0.5))
    assert legend_texts(fig.axes[0]) == ["all samples", "band [-0.5, 0.5]"]
    with pytest.raises(ValueError, match="both band and thresholds"):
        plot_logit_histogram(logits, band=(-0.5, 0.5), thresholds=(-0.5, 0.5))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"thresholds": (1.0, 0.0)}, "lo < hi"),
        ({"thresholds": 0.5}, "pair of logit thresholds"),
        ({"groups": [0, 1]}, "groups has 2 entries"),
        ({"groups": np.zeros(10), "group_names": ["a", "b"]}, "group_names has 2 names"),
    ],
)
def test_logit_histogram_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_logit_histogram(np.arange(10.0), **kwargs)


# ---------------------------------------------------------------- extremal vs mid


def test_extremal_grid_layout_and_titles(rng):
    images = rng.random((60, 10, 10))
    a = rng.normal(size=60)
    fig = plot_extremal_vs_midrange(images, a, k=5)
    assert len(fig.axes) == 10
    top, mid = extremal_and_midrange_indices(a, 5)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"{a[i]:.2f}" for i in np.concatenate([top, mid])]
    assert fig.axes[0].get_ylabel() == "top"
    assert fig.axes[5].get_ylabel().startswith("mid")
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), images[top[0]], rtol=1e-6)


def test_extremal_grid_rgb_channels_first_uint8(rng):
    images = rng.integers(0, 256, size=(30, 3, 6, 7), dtype=np.uint8)
    a = rng.normal(size=30)
    fig = plot_extremal_vs_midrange(images, a, k=3, band=(0.3, 0.7))
    top, _ = extremal_and_midrange_indices(a, 3, band=(0.3, 0.7))
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert shown.shape == (6, 7, 3)
    np.testing.assert_allclose(shown, images[top[0]].transpose(1, 2, 0) / 255.0, rtol=1e-6)


def test_extremal_grid_rescales_out_of_range_values(rng):
    images = rng.normal(size=(20, 1, 4, 4)) * 10
    fig = plot_extremal_vs_midrange(images, rng.normal(size=20), k=2)
    values = np.concatenate([np.ravel(ax.images[0].get_array()) for ax in fig.axes])
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert fig.axes[0].images[0].get_array().ndim == 2


def test_extremal_grid_draws_on_given_figure(rng):
    fig = plt.figure()
    assert (
        plot_extremal_vs_midrange(rng.random((12, 4, 4)), rng.normal(size=12), k=2, fig=fig) is fig
    )


def test_extremal_grid_errors(rng):
    with pytest.raises(ValueError, match="images has 5 samples but a has 6"):
        plot_extremal_vs_midrange(rng.random((5, 4, 4)), rng.normal(size=6), k=2)
    with pytest.raises(ValueError, match="N x H x W or N x C x H x W"):
        plot_extremal_vs_midrange(rng.random((6, 16)), rng.normal(size=6), k=2)
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        plot_extremal_vs_midrange(rng.random((6, 5, 4, 5)), rng.normal(size=6), k=2)


# ---------------------------------------------------------------- RSM pair


def blocky_embeddings(rng, n=90):
    shape = np.repeat([0, 1, 2], n // 3)
    x_pos = rng.integers(0, 4, size=n)
    E = np.eye(3)[shape] * 2 + rng.normal(size=(n, 3)) * 0.5
    return E, shape, x_pos


def test_rsm_pair_titles_carry_block_contrast(rng):
    E, shape, x_pos = blocky_embeddings(rng)
    fig = plot_rsm_pair(E, shape, x_pos)
    assert len(fig.axes) == 3  # two heatmaps and the colorbar
    rsm = representational_similarity(E)
    for ax, labels, name in zip(fig.axes[:2], (shape, x_pos), ("shape", "x-position")):
        title = ax.get_title().splitlines()
        assert title[0] == f"sorted by {name}"
        assert title[1] == f"block contrast {rsm_block_contrast(rsm, labels):.3f}"
        np.testing.assert_allclose(ax.images[0].get_array(), sort_rsm(rsm, labels)[0])
    assert fig.axes[2].get_ylabel() == "cosine similarity"


def test_rsm_pair_precomputed_and_subsampled(rng):
    E, shape, x_pos = blocky_embeddings(rng)
    rsm = representational_similarity(E, "correlation")
    fig = plot_rsm_pair(
        rsm, shape, x_pos, metric="precomputed", names=("a", "b"), max_samples=30, random_state=1
    )
    assert fig.axes[0].images[0].get_array().shape == (30, 30)
    assert fig.axes[1].get_title().startswith("sorted by b")
    again = plot_rsm_pair(rsm, shape, x_pos, metric="precomputed", max_samples=30, random_state=1)
    np.testing.assert_array_equal(
        again.axes[0].images[0].get_array(), fig.axes[0].images[0].get_array()
    )


def test_rsm_pair_errors(rng):
    E, shape, x_pos = blocky_embeddings(rng)
    with pytest.raises(ValueError, match="labels_b has 3 entries"):
        plot_rsm_pair(E, shape, x_pos[:3])
    with pytest.raises(ValueError, match="names must hold two"):
        plot_rsm_pair(E, shape, x_pos, names=("shape",))
    with pytest.raises(ValueError, match="rsm must be a square"):
        plot_rsm_pair(E, shape, x_pos, metric="precomputed")
    with pytest.raises(ValueError, match="X must be 2-D"):
        plot_rsm_pair(E[:, 0], shape, x_pos)


# ---------------------------------------------------------------- projection


@pytest.mark.parametrize("method, xlabel", [("pca", "PC 1"), ("tsne", "t-SNE 1")])
def test_band_projection_two_panels(rng, method, xlabel):
    E = rng.normal(size=(40, 6))
    clusters = rng.integers(0, 4, size=40)
    groups = rng.integers(0, 2, size=40)
    # exact gradients: no OpenMP threads, quick at n=40
    tsne_params = {"max_iter": 250, "method": "exact"}
    fig = plot_band_projection(
        E,
        clusters,
        groups,
        method=method,
        group_names=["land", "water"],
        projection_params=tsne_params if method == "tsne" else None,
    )
    left, right = fig.axes
    assert (left.get_title(), right.get_title()) == ("clusters", "groups")
    assert len(left.collections) == 4 and len(right.collections) == 2
    assert legend_texts(right) == ["land", "water"]
    assert left.get_xlabel() == xlabel
    points = sum(len(c.get_offsets()) for c in left.collections)
    assert points == 40


def test_band_projection_pca_coordinates(rng):
    from sklearn.decomposition import PCA

    E = rng.normal(size=(25, 4))
    fig = plot_band_projection(E, np.zeros(25), np.zeros(25))
    expected = PCA(n_components=2, random_state=0).fit_transform(E)
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), expected)


def test_band_projection_umap_missing(rng, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match="pip install umap-learn"):
        plot_band_projection(rng.normal(size=(10, 3)), np.zeros(10), np.zeros(10), method="umap")


def test_band_projection_errors(rng):
    E = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="method must be"):
        plot_band_projection(E, np.zeros(10), np.zeros(10), method="mds")
    with pytest.raises(ValueError, match="at least 2 features"):
        plot_band_projection(E[:, :1], np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="cluster_labels has 9 entries"):
        plot_band_projection(E, np.zeros(9), np.zeros(10))
    E[0, 0] = np.nan
    with pytest.raises(ValueError, match="E holds NaN"):
        plot_band_projection(E, np.zeros(10), np.zeros(10))


# ---------------------------------------------------------------- group accuracies


@pytest.fixture
def results():
    return {
        "erm": {
            "group_accuracies": {"0": 0.95, "1": 0.30, "2": 0.60},
            "worst_group_accuracy": 0.30,
            "mean_accuracy": 0.85,
        },
        "midlogit": {
            "group_accuracies": {"0": 0.90, "1": 0.75, "2": 0.80},
            "worst_group_accuracy": 0.75,
            "mean_accuracy": 0.86,
        },
    }


def test_group_accuracies_bars(results):
    fig = plot_group_accuracies(results, group_names=["a", "b", "c"])
    (ax,) = fig.axes
    assert len(ax.containers) == 2
    for container, method in zip(ax.containers, results):
        expected = list(results[method]["group_accuracies"].values())
        np.testing.assert_allclose(bar_heights(container), expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert legend_texts(ax)[0] == "erm (worst 30.0%, mean 85.0%)"


def test_group_accuracies_accepts_wrapped_results_and_method_subset(results):
    fig = plot_group_accuracies({"methods": results, "seed": 0}, methods=["midlogit"])
    (ax,) = fig.axes
    assert len(ax.containers) == 1
    assert legend_texts(ax)[0].startswith("midlogit")


def test_group_accuracies_missing_group_is_blank(results):
    del results["erm"]["group_accuracies"]["2"]
    fig = plot_group_accuracies(results)
    assert np.isnan(bar_heights(fig.axes[0].containers[0])[2])


def test_group_accuracies_errors(results):
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_group_accuracies({})
    with pytest.raises(ValueError, match=r"methods names \['dfr'\]"):
        plot_group_accuracies(results, methods=["dfr"])
    del results["erm"]["mean_accuracy"]
    with pytest.raises(ValueError, match=r"results\['erm'\] lacks \['mean_accuracy'\]"):
        plot_group_accuracies(results)


# ---------------------------------------------------------------- compositions


def test_curated_composition_counts_match_loop(rng):
    clusters = rng.integers(0, 4, size=80)
    groups = rng.choice(["lw", "ll", "ww"], size=80)
    fig = plot_curated_composition(clusters, groups)
    (ax,) = fig.axes
    group_values = sorted(set(groups))
    assert len(ax.containers) == len(group_values)
    for container, g in zip(ax.containers, group_values):
        expected = [np.sum((clusters == c) & (groups == g)) for c in range(4)]
        np.testing.assert_array_equal(bar_heights(container), expected)
    assert legend_texts(ax) == group_values


def test_curated_composition_normalized(rng):
    clusters = rng.integers(0, 3, size=50)
    fig = plot_curated_composition(
        clusters,
        rng.integers(0, 2, size=50),
        normalize=True,
        cluster_names={0: "c0", 1: "c1", 2: "c2"},
    )
    ax = fig.axes[0]
    totals = sum(bar_heights(c) for c in ax.containers)
    np.testing.assert_allclose(totals, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c0", "c1", "c2"]


def test_curated_composition_errors():
    with pytest.raises(ValueError, match="clusters must be a non-empty 1-D"):
        plot_curated_composition([], [])
    with pytest.raises(ValueError, match="groups has 1 entries"):
        plot_curated_composition([0, 1], [0])


def test_band_composition_bars(rng):
    a = rng.normal(size=70)
    groups = rng.integers(0, 3, size=70)
    fig = plot_band_composition(a, groups, n_bands=7, group_names=["s", "e", "h"])
    ax = fig.axes[0]
    composition, _ = band_composition(a, groups, 7)
    for column, container in zip(composition.T, ax.containers):
        np.testing.assert_allclose(bar_heights(container), column)
    assert legend_texts(ax) == ["s", "e", "h"]


# ---------------------------------------------------------------- bias sweep


def test_bias_sweep_accuracy_and_contrast(rng):
    bias = np.linspace(0, 1, 6)
    seeds = 0.8 - 0.4 * bias + rng.normal(scale=0.02, size=(3, 6))
    fig = plot_bias_sweep(
        bias,
        {"ours": seeds, "paper": 0.8 - 0.4 * bias},
        chance=1 / 3,
        contrast={"shape": 0.5 - 0.4 * bias, "x-position": 0.4 * bias},
    )
    acc_ax, con_ax = fig.axes
    lines = [line for line in acc_ax.get_lines() if line.get_label() in ("ours", "paper")]
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), seeds.mean(axis=0))
    assert len(acc_ax.collections) == 1  # the ±1 s.d. band of the seeded curve
    assert legend_texts(con_ax) == ["shape", "x-position"]
    assert con_ax.get_ylabel() == "block contrast"


def test_bias_sweep_single_panel():
    fig = plot_bias_sweep([0.0, 0.5, 1.0], [0.9, 0.7, 0.4])
    assert len(fig.axes) == 1
    assert legend_texts(fig.axes[0]) == ["accuracy"]


def test_bias_sweep_errors():
    with pytest.raises(ValueError, match=r"accuracy\['a'\] has shape \(2,\)"):
        plot_bias_sweep([0.0, 0.5, 1.0], {"a": [0.9, 0.7]})
    with pytest.raises(ValueError, match="bias holds NaN"):
        plot_bias_sweep([0.0, np.nan], [0.9, 0.7])


# ---------------------------------------------------------------- general


def test_missing_matplotlib_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"midlogit\[plot\]"):
        plot_logit_histogram(np.arange(5.0))


def test_inputs_are_not_modified(rng):
    E, shape, x_pos = blocky_embeddings(rng, n=30)
    images = rng.random((30, 4, 4)) * 5
    saved = [E.copy(), shape.copy(), x_pos.copy(), images.copy()]
    plot_rsm_pair(E, shape, x_pos, metric="correlation")
    plot_extremal_vs_midrange(images, E[:, 0], k=2)
    for before, after in zip(saved, [E, shape, x_pos, images]):
        np.testing.assert_array_equal(before, after)


def test_cluster_examples_show_one_row_per_cluster_with_its_report():
    from midlogit.clustering import EmbeddingClusterer
    from midlogit.plotting import plot_cluster_examples

    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 4), np.arange(60) % 2
    clusterer = EmbeddingClusterer(n_clusters=3, random_state=0).fit(X, y)
    fig = plot_cluster_examples(clusterer, X.reshape(60, 2, 2), n_examples=4)
    titled = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert len(fig.axes) == 6 * 4
    assert len(titled) == 6
    assert all(f"{n} rows" in t for n, t in zip(clusterer.cluster_report_["size"], titled))
    with pytest.raises(ValueError, match="images has 10 rows"):
        plot_cluster_examples(clusterer, X[:10].reshape(10, 2, 2))


def test_logit_explanation_panels_name_their_findings():
    from midlogit.concepts import explain_logit
    from midlogit.plotting import plot_logit_explanation

    rng = np.random.default_rng(0)
    C = rng.random((800, 5)) < 0.4
    result = explain_logit(3.0 * C[:, 2] + rng.normal(size=800), C, max_length=1)
    fig = plot_logit_explanation(result, n_concepts=4, title="ERM logit of class 1")
    left, right = fig.axes[:2]
    assert fig._suptitle.get_text() == "ERM logit of class 1"
    assert left.get_title(loc="left").startswith("all rows: c2 (AUC")
    assert len(left.patches) == 4 and len(left.get_yticklabels()) == 4
    # the strongest concept is listed, drawn to the right of 0.5
    labels = [t.get_text() for t in left.get_yticklabels()]
    bar = left.patches[labels.index("c2")]
    assert bar.get_x() == 0.5 and bar.get_width() > 0.3
    noise = explain_logit(rng.normal(size=800), C, max_length=1)
    fig = plot_logit_explanation(noise)
    assert "no significant formula" in fig.axes[0].get_title(loc="left")
    plt.close("all")


def test_figures_say_what_they_show_and_stay_readable():
    from midlogit.clustering import EmbeddingClusterer
    from midlogit.plotting import plot_cluster_examples

    rng = np.random.default_rng(0)
    fig = plot_logit_histogram(
        rng.normal(size=100), xlabel="logit of class 'heart'", title="ERM head"
    )
    assert fig.axes[0].get_xlabel() == "logit of class 'heart'"
    assert fig.axes[0].get_title() == "ERM head"
    groups = {str(g): 0.5 for g in range(9)}
    results = {
        m: {"group_accuracies": groups, "worst_group_accuracy": 0.5, "mean_accuracy": 0.5}
        for m in ("a", "b", "c", "d", "e", "f")
    }
    fig = plot_group_accuracies(results, title="accuracy per group")
    assert fig.get_figwidth() <= 11.0
    assert fig.axes[0].get_xticklabels()[0].get_rotation() == 30
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 2
    clusterer = EmbeddingClusterer(n_clusters=3, random_state=0).fit(X, y)
    fig = plot_cluster_examples(clusterer, X.reshape(60, 2, 2), clusters=[4, 1], n_examples=2)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert [t.split(":")[0] for t in titles] == ["cluster 4", "cluster 1"]
    named = plot_cluster_examples(
        clusterer, X.reshape(60, 2, 2), clusters=[4], class_names=["cat", "dog"]
    )
    assert "class dog," in named.axes[0].get_title(loc="left")
    with pytest.raises(ValueError, match="clusters is empty"):
        plot_cluster_examples(clusterer, X.reshape(60, 2, 2), clusters=[])
    plt.close("all")
