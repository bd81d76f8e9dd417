"""Figures for the analyses of :mod:`midlogit.analysis` and for method comparisons.

Needs matplotlib, the optional extra ``[plot]`` (``pip install "midlogit[plot]"``); it is
imported when a function is called, so ``import midlogit.plotting`` always works. Every
function draws on a new figure, or on the ``ax`` / ``fig`` it is given, and returns the
:class:`~matplotlib.figure.Figure`; none calls ``plt.show()``.
"""

import numpy as np
from sklearn.utils import check_random_state

from .analysis import (
    _check_activations,
    _check_labels,
    _check_square,
    band_composition,
    extremal_and_midrange_indices,
    representational_similarity,
    rsm_block_contrast,
    sort_rsm,
)

__all__ = [
    "plot_band_composition",
    "plot_band_projection",
    "plot_bias_sweep",
    "plot_cluster_examples",
    "plot_curated_composition",
    "plot_extremal_vs_midrange",
    "plot_group_accuracies",
    "plot_logit_histogram",
    "plot_logit_explanation",
    "plot_rsm_pair",
]

_METHOD_NAMES = {"pca": "PC", "tsne": "t-SNE", "umap": "UMAP"}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            'midlogit.plotting needs matplotlib; install it with pip install "midlogit[plot]".'
        ) from exc
    return plt


def _new_axes(ax, figsize):
    if ax is None:
        fig, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def _new_figure(fig, figsize):
    if fig is None:
        return _pyplot().figure(figsize=figsize, layout="constrained")
    return fig


def _colors(n):
    plt = _pyplot()
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return [plt.get_cmap("viridis")(v) for v in np.linspace(0, 1, n)]


def _display_names(values, names, param):
    """Labels to show for ``values``: from a dict, an aligned sequence, or ``str``."""
    if names is None:
        return [str(v.item() if isinstance(v, np.generic) else v) for v in values]
    if isinstance(names, dict):
        return [str(names.get(v.item() if isinstance(v, np.generic) else v, v)) for v in values]
    names = list(names)
    if len(names) != len(values):
        raise ValueError(
            f"{param} has {len(names)} names for {len(values)} distinct values; pass one "
            f"name per value (in sorted order) or a dict {{value: name}}."
        )
    return [str(n) for n in names]


def _crosstab(rows, cols):
    row_names, row_codes = np.unique(rows, return_inverse=True)
    col_names, col_codes = np.unique(cols, return_inverse=True)
    counts = np.bincount(
        row_codes * col_names.size + col_codes, minlength=row_names.size * col_names.size
    ).reshape(row_names.size, col_names.size)
    return counts, row_names, col_names


def plot_logit_histogram(
    logits,
    groups=None,
    *,
    band=None,
    group_names=None,
    bins=40,
    stacked=True,
    xlabel="logit",
    title=None,
    ax=None,
):
    """Histogram of a class logit, coloured by group, with the selected band shaded.

    Parameters
    ----------
    logits : array-like of shape (n_samples,)
        One class's logit (or any unit's activation) on every sample.
    groups : array-like of shape (n_samples,) or None, default=None
        Group of each sample; one colour per group. ``None`` draws one histogram.
    band : tuple of float or None, default=None
        ``(lo, hi)`` logit thresholds to shade, e.g.
        ``LogitBandSelector().thresholds_[k]``.
    group_names : dict or sequence or None, default=None
        Legend labels: ``{group: name}`` or one name per group in sorted order.
    bins : int or sequence, default=40
        Bins shared by all groups (see :func:`numpy.histogram_bin_edges`).
    stacked : bool, default=True
        Stack the groups' histograms; ``False`` overlays them, half transparent.
    xlabel : str, default="logit"
        Axis label: say which logit, e.g. ``"logit of class 'heart'"``.
    title : str or None, default=None
        Axes title.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; ``None`` makes a new figure.

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.plotting import plot_logit_histogram
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=200)
    >>> fig = plot_logit_histogram(logits, logits > 0.5, band=(-0.3, 0.3))
    >>> fig.axes[0].get_xlabel()
    'logit'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    logits = _check_activations(logits, "logits")
    edges = np.histogram_bin_edges(logits, bins=bins)
    if band is not None:
        band = _check_threshold_band(band)
    fig, ax = _new_axes(ax, (6.0, 3.5))
    if groups is None:
        ax.hist(logits, bins=edges, color=_colors(1)[0], label="all samples")
    else:
        groups = _check_labels(groups, logits.shape[0], "groups")
        values, codes = np.unique(groups, return_inverse=True)
        labels = _display_names(values, group_names, "group_names")
        ax.hist(
            [logits[codes == g] for g in range(values.size)],
            bins=edges,
            stacked=stacked,
            histtype="barstacked" if stacked else "stepfilled",
            alpha=1.0 if stacked else 0.5,
            color=_colors(values.size),
            label=labels,
        )
    if band is not None:
        ax.axvspan(
            *band, color="0.3", alpha=0.15, zorder=0, label=f"band [{band[0]:.3g}, {band[1]:.3g}]"
        )
        for edge in band:
            ax.axvline(edge, color="0.2", linestyle="--", linewidth=1.0, zorder=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    if title:
        ax.set_title(title)
    ax.legend(title=None if groups is None else "group", fontsize="small")
    return fig


def _check_threshold_band(band):
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(
            f"band must be a pair of logit thresholds (lo, hi), got {band!r}."
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"band must hold finite thresholds with lo < hi, got {band!r}.")
    return lo, hi


def _as_display_images(images):
    """(k, H, W) grayscale or (k, H, W, C) colour in [0, 1] from N×H×W or N×C×H×W."""
    images = np.asarray(images)
    if images.ndim == 4:
        if images.shape[1] in (1, 3, 4):
            images = np.moveaxis(images, 1, -1)
        elif images.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"images of shape {images.shape[1:]} per sample: expected C x H x W or "
                "H x W x C with 1, 3 or 4 channels, or H x W."
            )
        if images.shape[-1] == 1:
            images = images[..., 0]
    elif images.ndim != 3:
        raise ValueError(f"images must be N x H x W or N x C x H x W, got shape {images.shape}.")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    images = images.astype(np.float32)
    if not np.all(np.isfinite(images)):
        raise ValueError("images hold NaN or infinite values.")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        images = (images - lo) / max(hi - lo, np.finfo(np.float32).tiny)
    return images


def plot_extremal_vs_midrange(
    images,
    a,
    k=8,
    band=(0.4, 0.6),
    *,
    strategy="center",
    random_state=None,
    cmap="gray",
    fig=None,
):
    """Grid of a unit's maximal images above images from its mid-range band.

    Parameters
    ----------
    images : array-like of shape (n_samples, H, W) or (n_samples, C, H, W)
        Images in the order of ``a``; C is 1 or 3 (channels-last ``(n, H, W, C)`` is
        accepted too). ``uint8`` is read as 0–255; other values outside [0, 1] are
        rescaled jointly over the images shown. Only the shown rows are read, so a
        memory-mapped array works.
    a : array-like of shape (n_samples,)
        The unit's activation (or a class logit).
    k : int, default=8
        Images per row.
    band : tuple of float, default=(0.4, 0.6)
        Mid-range band in quantiles, see
        :func:`midlogit.analysis.extremal_and_midrange_indices`.
    strategy : {"center", "random"}, default="center"
        How the mid-range images are picked.
    random_state : int, RandomState instance or None, default=None
        Seeds ``strategy="random"``.
    cmap : str, default="gray"
        Colormap of grayscale images.
    fig : matplotlib Figure or None, default=None
        Empty figure (or subfigure) to draw on.

    Returns
    -------
    fig : matplotlib Figure
        Two rows of ``k`` axes, each image titled with its activation.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.plotting import plot_extremal_vs_midrange
    >>> images = np.random.default_rng(0).random((50, 8, 8))
    >>> fig = plot_extremal_vs_midrange(images, images.mean(axis=(1, 2)), k=4)
    >>> len(fig.axes)
    8
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    a = _check_activations(a)
    if len(images) != a.shape[0]:
        raise ValueError(
            f"images has {len(images)} samples but a has {a.shape[0]}; pass one "
            "activation per image."
        )
    top, mid = extremal_and_midrange_indices(
        a, k, band, strategy=strategy, random_state=random_state
    )
    shown = np.concatenate([top, mid])
    picked = images[shown] if hasattr(images, "shape") else np.asarray(images)[shown]
    picked = _as_display_images(picked)
    lo, hi = band
    fig = _new_figure(fig, (1.3 * k + 0.8, 3.4))
    axes = np.asarray(fig.subplots(2, k, squeeze=False))
    row_names = ["top", f"mid q{lo:.2f}–{hi:.2f}"]
    for pos, (ax, index) in enumerate(zip(axes.ravel(), shown)):
        image = picked[pos]
        if image.ndim == 2:
            ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0)
        else:
            ax.imshow(image)
        ax.set_title(f"{a[index]:.2f}", fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if pos % k == 0:
            ax.set_ylabel(row_names[pos // k])
    return fig


def plot_rsm_pair(
    X,
    labels_a,
    labels_b,
    *,
    metric="cosine",
    names=("shape", "x-position"),
    max_samples=2000,
    random_state=0,
    cmap="viridis",
    fig=None,
):
    """Similarity matrix sorted by two attributes, side by side, with block contrasts.

    A representation organised by an attribute shows bright diagonal blocks when sorted
    by it; the titles give :func:`midlogit.analysis.rsm_block_contrast` for each.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples, n_samples)
        Embeddings, or a similarity matrix when ``metric="precomputed"``.
    labels_a, labels_b : array-like of shape (n_samples,)
        The two attributes (bin a continuous one, e.g. x-position into a few bins).
    metric : {"cosine", "correlation", "linear", "precomputed"}, default="cosine"
        Passed to :func:`midlogit.analysis.representational_similarity`.
    names : tuple of str, default=("shape", "x-position")
        Names of the two attributes, used in the titles.
    max_samples : int or None, default=2000
        Draw at most this many samples at random (without replacement) before
        computing the matrix; a screen cannot show more. ``None`` keeps all.
    random_state : int, RandomState instance or None, default=0
        Seeds the subsample.
    cmap : str, default="viridis"
        Colormap of the matrices.
    fig : matplotlib Figure or None, default=None
        Empty figure (or subfigure) to draw on.

    Returns
    -------
    fig : matplotlib Figure
        Two heatmap axes and a shared colorbar.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.plotting import plot_rsm_pair
    >>> rng = np.random.default_rng(0)
    >>> shape, x = np.repeat([0, 1, 2], 20), rng.integers(0, 4, 60)
    >>> E = np.eye(3)[shape] + 0.3 * rng.normal(size=(60, 3))
    >>> fig = plot_rsm_pair(E, shape, x)
    >>> fig.axes[0].get_title().splitlines()[0]
    'sorted by shape'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    if metric == "precomputed":
        X = _check_square(X)
    else:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(
                f"X must be 2-D embeddings (or an n x n matrix with "
                f"metric='precomputed'), got shape {X.shape}."
            )
    n = X.shape[0]
    labels_a = _check_labels(labels_a, n, "labels_a")
    labels_b = _check_labels(labels_b, n, "labels_b")
    if len(names) != 2:
        raise ValueError(f"names must hold two attribute names, got {names!r}.")
    if max_samples is not None and n > max_samples:
        keep = np.sort(check_random_state(random_state).choice(n, max_samples, replace=False))
        labels_a, labels_b = labels_a[keep], labels_b[keep]
        X = X[np.ix_(keep, keep)] if metric == "precomputed" else X[keep]
    rsm = X if metric == "precomputed" else representational_similarity(X, metric)

    fig = _new_figure(fig, (10.0, 4.6))
    axes = fig.subplots(1, 2)
    vmin, vmax = float(rsm.min()), float(rsm.max())
    for ax, labels, name in zip(axes, (labels_a, labels_b), names):
        sorted_rsm, order = sort_rsm(rsm, labels)
        contrast = rsm_block_contrast(rsm, labels)
        image = ax.imshow(sorted_rsm, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        values, starts, sizes = np.unique(labels[order], return_index=True, return_counts=True)
        if values.size <= 50:
            for edge in starts[1:] - 0.5:
                ax.axhline(edge, color="white", linewidth=0.6)
                ax.axvline(edge, color="white", linewidth=0.6)
        if values.size <= 12:
            centres = starts + sizes / 2 - 0.5
            tick_labels = _display_names(values, None, "labels")
            ax.set_xticks(centres, tick_labels, fontsize="small")
            ax.set_yticks(centres, tick_labels, fontsize="small")
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(f"sorted by {name}\nblock contrast {contrast:.3f}")
    fig.colorbar(
        image,
        ax=axes,
        shrink=0.8,
        label="similarity" if metric == "precomputed" else f"{metric} similarity",
    )
    return fig


def plot_band_projection(
    E,
    cluster_labels,
    groups,
    *,
    method="pca",
    group_names=None,
    random_state=0,
    projection_params=None,
    fig=None,
):
    """2-D projection of band samples, coloured by cluster and, beside it, by group.

    Shows whether the clusters found without group labels line up with the groups.

    Parameters
    ----------
    E : array-like of shape (n_samples, n_features)
        Embeddings of the band's samples; at least 2 features.
    cluster_labels : array-like of shape (n_samples,)
        Cluster of each sample, e.g. ``EmbeddingClusterer().labels_``.
    groups : array-like of shape (n_samples,)
        Group of each sample (e.g. class × spurious attribute).
    method : {"pca", "tsne", "umap"}, default="pca"
        :class:`~sklearn.decomposition.PCA`, :class:`~sklearn.manifold.TSNE`
        (perplexity capped below ``n_samples / 3``), or ``umap.UMAP`` (needs the
        ``umap-learn`` package).
    group_names : dict or sequence or None, default=None
        Legend labels of the groups.
    random_state : int or None, default=0
        Seeds t-SNE, UMAP and randomised PCA.
    projection_params : dict or None, default=None
        Extra parameters of the projection's estimator.
    fig : matplotlib Figure or None, default=None
        Empty figure (or subfigure) to draw on.

    Returns
    -------
    fig : matplotlib Figure
        Two axes, "clusters" and "groups".

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.plotting import plot_band_projection
    >>> rng = np.random.default_rng(0)
    >>> E = rng.normal(size=(40, 5))
    >>> fig = plot_band_projection(E, E[:, 0] > 0, rng.integers(0, 3, 40))
    >>> [ax.get_title() for ax in fig.axes]
    ['clusters', 'groups']
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    E = np.asarray(E)
    if E.ndim != 2 or E.shape[1] < 2:
        raise ValueError(
            f"E must be 2-D with at least 2 features to project, got shape {E.shape}."
        )
    if E.shape[0] < 3:
        raise ValueError(f"E has {E.shape[0]} samples; a projection needs at least 3.")
    if not np.all(np.isfinite(E)):
        raise ValueError("E holds NaN or infinite values; drop or impute those rows first.")
    n = E.shape[0]
    cluster_labels = _check_labels(cluster_labels, n, "cluster_labels")
    groups = _check_labels(groups, n, "groups")
    coords = _project(E, method, random_state, dict(projection_params or {}))

    fig = _new_figure(fig, (10.0, 4.4))
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    panels = (("clusters", cluster_labels, None), ("groups", groups, group_names))
    for ax, (title, labels, names) in zip(axes, panels):
        values, codes = np.unique(labels, return_inverse=True)
        legend = _display_names(values, names, "group_names")
        for code, (color, text) in enumerate(zip(_colors(values.size), legend)):
            mask = codes == code
            ax.scatter(
                coords[mask, 0],
                coords[mask, 1],
                s=10,
                color=color,
                label=text,
                alpha=0.8,
                linewidths=0,
            )
        ax.set_title(title)
        ax.set_xlabel(f"{_METHOD_NAMES[method]} 1")
        ax.legend(fontsize="small", markerscale=1.5, loc="best")
    axes[0].set_ylabel(f"{_METHOD_NAMES[method]} 2")
    return fig


def _project(E, method, random_state, params):
    if method == "pca":
        from sklearn.decomposition import PCA

        params.setdefault("random_state", random_state)
        return PCA(n_components=2, **params).fit_transform(E)
    if method == "tsne":
        from sklearn.manifold import TSNE

        params.setdefault("perplexity", min(30.0, max(1.0, (E.shape[0] - 1) / 3)))
        params.setdefault("random_state", random_state)
        params.setdefault("init", "pca")
        return TSNE(n_components=2, **params).fit_transform(E)
    if method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise ImportError(
                "method='umap' needs the umap-learn package (pip install umap-learn); "
                "or use method='pca' or 'tsne'."
            ) from exc
        params.setdefault("random_state", random_state)
        return umap.UMAP(n_components=2, **params).fit_transform(E)
    raise ValueError(f"method must be 'pca', 'tsne' or 'umap', got {method!r}.")


def plot_group_accuracies(results, *, group_names=None, methods=None, title=None, ax=None):
    """Per-group test accuracy of several methods as grouped bars.

    Parameters
    ----------
    results : dict
        ``{method: {"group_accuracies": {group: acc}, "worst_group_accuracy": w,
        "mean_accuracy": m}}`` — the ``methods`` of
        :func:`midlogit.comparison.compare_methods` and of the demo's ``results.json``
        (a dict holding such a mapping under ``"methods"`` is accepted too).
    group_names : dict or sequence or None, default=None
        Tick labels of the groups (in first-seen order when a sequence).
    methods : sequence of str or None, default=None
        Methods to draw, in order; ``None`` draws all.
    title : str or None, default=None
        Axes title.
    ax : matplotlib Axes or None, default=None
        Axes to draw on. A new figure is at most 11 inches wide whatever the number
        of groups; with more than 6 groups the tick labels are slanted.

    Returns
    -------
    fig : matplotlib Figure
        One bar container per method; legend labels carry worst-group and mean
        accuracy.

    Examples
    --------
    >>> from midlogit.plotting import plot_group_accuracies
    >>> results = {
    ...     "erm": {"group_accuracies": {"0": 0.9, "1": 0.4},
    ...             "worst_group_accuracy": 0.4, "mean_accuracy": 0.8},
    ...     "midlogit": {"group_accuracies": {"0": 0.85, "1": 0.7},
    ...                  "worst_group_accuracy": 0.7, "mean_accuracy": 0.82},
    ... }
    >>> fig = plot_group_accuracies(results)
    >>> len(fig.axes[0].containers)
    2
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict {method: metrics}.")
    inner = results.get("methods")
    if (
        isinstance(inner, dict)
        and inner
        and all(
            isinstance(entry, dict) and "group_accuracies" in entry for entry in inner.values()
        )
    ):
        results = inner
    methods = list(results) if methods is None else list(methods)
    unknown = [m for m in methods if m not in results]
    if unknown:
        raise ValueError(f"methods names {unknown}, not in results ({list(results)}).")
    required = ("group_accuracies", "worst_group_accuracy", "mean_accuracy")
    for method in methods:
        entry = results[method]
        missing = [key for key in required if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise ValueError(
                f"results[{method!r}] lacks {missing}; each method needs "
                "'group_accuracies', 'worst_group_accuracy' and 'mean_accuracy'."
            )
    groups = list(dict.fromkeys(g for m in methods for g in results[m]["group_accuracies"]))
    tick_labels = _display_names(groups, group_names, "group_names")
    accuracy = np.array(
        [[results[m]["group_accuracies"].get(g, np.nan) for g in groups] for m in methods],
        dtype=float,
    )

    fig, ax = _new_axes(ax, (min(11.0, max(4.0, 0.3 * len(groups) * len(methods)) + 3.5), 4.2))
    width = 0.8 / len(methods)
    x = np.arange(len(groups))
    for i, (method, color) in enumerate(zip(methods, _colors(len(methods)))):
        entry = results[method]
        label = (
            f"{method} (worst {entry['worst_group_accuracy']:.1%}, "
            f"mean {entry['mean_accuracy']:.1%})"
        )
        ax.bar(
            x + (i - (len(methods) - 1) / 2) * width, accuracy[i], width, color=color, label=label
        )
    slanted = {"rotation": 30, "ha": "right"} if len(groups) > 6 else {}
    ax.set_xticks(x, tick_labels, **slanted)
    ax.set_xlabel("group")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.0, 1.0)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", bbox_to_anchor=(1.0, 1.0), loc="upper left")
    return fig


def plot_curated_composition(
    clusters,
    groups,
    *,
    cluster_names=None,
    group_names=None,
    normalize=False,
    title=None,
    ax=None,
):
    """Cluster × group make-up of a curated set as stacked bars.

    Parameters
    ----------
    clusters : array-like of shape (n_samples,)
        Cluster of each curated sample.
    groups : array-like of shape (n_samples,)
        Group of each curated sample (known for evaluation, not used to curate).
    cluster_names, group_names : dict or sequence or None, default=None
        Tick and legend labels.
    normalize : bool, default=False
        Show each cluster's group shares instead of counts (of whole rows).
    title : str or None, default=None
        Axes title.
    ax : matplotlib Axes or None, default=None
        Axes to draw on.

    Returns
    -------
    fig : matplotlib Figure
        One bar container per group, one bar per cluster.

    Examples
    --------
    >>> from midlogit.plotting import plot_curated_composition
    >>> fig = plot_curated_composition([0, 0, 1, 1, 1], ["a", "b", "a", "a", "b"])
    >>> len(fig.axes[0].containers)
    2
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    clusters = np.asarray(clusters)
    if clusters.ndim != 1 or clusters.size == 0:
        raise ValueError(
            f"clusters must be a non-empty 1-D array of labels, got shape {clusters.shape}."
        )
    groups = _check_labels(groups, clusters.shape[0], "groups")
    counts, cluster_values, group_values = _crosstab(clusters, groups)
    heights = counts / counts.sum(axis=1, keepdims=True) if normalize else counts
    fig, ax = _new_axes(ax, (max(4.5, 0.6 * cluster_values.size + 2.0), 3.8))
    x = np.arange(cluster_values.size)
    bottom = np.zeros(cluster_values.size)
    legend = _display_names(group_values, group_names, "group_names")
    for column, color, text in zip(heights.T, _colors(group_values.size), legend):
        ax.bar(x, column, bottom=bottom, color=color, label=text)
        bottom += column
    slanted = {"rotation": 45, "ha": "right"} if cluster_values.size > 8 else {}
    ax.set_xticks(x, _display_names(cluster_values, cluster_names, "cluster_names"), **slanted)
    ax.set_xlabel("cluster")
    ax.set_ylabel("share of the cluster" if normalize else "rows")
    if title:
        ax.set_title(title)
    ax.legend(title="group", fontsize="small", bbox_to_anchor=(1.0, 1.0), loc="upper left")
    return fig


def plot_band_composition(a, groups, n_bands=10, *, group_names=None, ax=None):
    """Share of each group in each quantile band of a unit or logit, as stacked bars.

    Parameters
    ----------
    a : array-like of shape (n_samples,)
        Activation of one unit (or one class logit).
    groups : array-like of shape (n_samples,)
        Group of each sample.
    n_bands : int, default=10
        Equal-count bands, see :func:`midlogit.analysis.band_composition`.
    group_names : dict or sequence or None, default=None
        Legend labels of the groups.
    ax : matplotlib Axes or None, default=None
        Axes to draw on.

    Returns
    -------
    fig : matplotlib Figure
        One bar container per group, one bar per band (lowest band on the left).

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.plotting import plot_band_composition
    >>> a = np.linspace(-1, 1, 30)
    >>> fig = plot_band_composition(a, a > 0, n_bands=5)
    >>> len(fig.axes[0].containers[0])
    5
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    composition, values = band_composition(a, groups, n_bands)
    fig, ax = _new_axes(ax, (max(5.0, 0.45 * n_bands + 2.5), 3.6))
    x = np.arange(n_bands)
    bottom = np.zeros(n_bands)
    legend = _display_names(values, group_names, "group_names")
    for column, color, text in zip(composition.T, _colors(values.size), legend):
        ax.bar(x, column, bottom=bottom, width=0.9, color=color, label=text)
        bottom += column
    ax.set_xticks(x)
    ax.set_xlabel("quantile band (low → high)")
    ax.set_ylabel("share of the band")
    ax.set_ylim(0.0, 1.0)
    ax.legend(title="group", fontsize="small", bbox_to_anchor=(1.0, 1.0), loc="upper left")
    return fig


def _sweep_curves(curves, n_levels, param):
    if not isinstance(curves, dict):
        curves = {"accuracy" if param == "accuracy" else "block contrast": curves}
    out = {}
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        if values.ndim not in (1, 2) or values.shape[-1] != n_levels:
            raise ValueError(
                f"{param}[{label!r}] has shape {values.shape}; expected ({n_levels},) or "
                f"(n_seeds, {n_levels}), one value per bias level."
            )
        out[label] = np.atleast_2d(values)
    return out


def plot_bias_sweep(bias, accuracy, *, contrast=None, chance=None, fig=None):
    """Accuracy (and representational block contrast) against the training bias level.

    Parameters
    ----------
    bias : array-like of shape (n_levels,)
        Bias levels, e.g. ``0.0, 0.1, ..., 1.0``.
    accuracy : array-like or dict
        One curve of shape ``(n_levels,)`` or ``(n_seeds, n_levels)``, or
        ``{label: curve}``; with several seeds the mean is drawn with a ±1 standard
        deviation band. Published numbers can be passed as one more curve.
    contrast : array-like or dict or None, default=None
        Block-contrast curves (e.g. ``{"shape": ..., "x-position": ...}``) for a
        second panel; ``None`` draws one panel.
    chance : float or None, default=None
        Chance accuracy, drawn as a dotted line.
    fig : matplotlib Figure or None, default=None
        Empty figure (or subfigure) to draw on.

    Returns
    -------
    fig : matplotlib Figure
        One axes per panel, one line per curve.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.plotting import plot_bias_sweep
    >>> bias = np.linspace(0, 1, 11)
    >>> fig = plot_bias_sweep(bias, {"ERM": 0.9 - 0.5 * bias ** 3}, chance=1 / 3,
    ...                       contrast={"shape": 0.6 - 0.4 * bias, "x": 0.5 * bias})
    >>> len(fig.axes)
    2
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    bias = _check_activations(bias, "bias")
    panels = [("accuracy", _sweep_curves(accuracy, bias.size, "accuracy"))]
    if contrast is not None:
        panels.append(("block contrast", _sweep_curves(contrast, bias.size, "contrast")))
    fig = _new_figure(fig, (5.0 * len(panels), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (ylabel, curves) in zip(axes, panels):
        for (label, values), color in zip(curves.items(), _colors(len(curves))):
            mean = values.mean(axis=0)
            ax.plot(bias, mean, marker="o", markersize=3, color=color, label=label)
            if values.shape[0] > 1:
                spread = values.std(axis=0)
                ax.fill_between(
                    bias, mean - spread, mean + spread, color=color, alpha=0.2, linewidth=0
                )
        ax.set_xlabel("bias level")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    if chance is not None:
        axes[0].axhline(chance, color="0.4", linestyle=":", linewidth=1)
    if contrast is not None:
        axes[1].axhline(0.0, color="0.4", linewidth=0.8)
    return fig


def plot_cluster_examples(
    clusterer, images, *, clusters=None, class_names=None, n_examples=6, random_state=0, fig=None
):
    """A row of example images per cluster, titled with what the ERM head does there.

    The paper's real-data selection was made by a person looking at the band's
    clusters: this figure is that look. Each row is one cluster of a fitted
    :class:`~midlogit.clustering.EmbeddingClusterer` with its class, size, the ERM
    head's error rate and margin, and whether it was selected as the pseudo-minority;
    pass the ids you choose as ``selected_clusters``.

    Parameters
    ----------
    clusterer : fitted EmbeddingClusterer
        Its ``labels_`` index ``images``.
    images : array-like of shape (n_samples, H, W) or (n_samples, C, H, W)
        The rows the clusterer was fitted on, as images. For tabular rows, pass them
        as ``X[:, None, :]`` (one 1-pixel-high image per row).
    clusters : array-like of int or None, default=None
        Cluster ids to show, in order (e.g. the selected ones); ``None`` shows all.
    class_names : dict or sequence or None, default=None
        Names of the classes in the titles: ``{label: name}`` or indexed by label.
    n_examples : int, default=6
        Images shown per cluster (drawn at random).
    random_state : int, RandomState instance or None, default=0
        Seeds the draw.
    fig : matplotlib Figure or None, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.clustering import EmbeddingClusterer
    >>> from midlogit.plotting import plot_cluster_examples
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.randn(40, 4), np.arange(40) % 2
    >>> clusterer = EmbeddingClusterer(n_clusters=2, random_state=0).fit(X, y)
    >>> fig = plot_cluster_examples(clusterer, X.reshape(40, 2, 2), n_examples=3)
    >>> len(fig.axes)
    12
    """
    report = clusterer.cluster_report_
    images = _as_display_images(images)
    if images.shape[0] != clusterer.labels_.size:
        raise ValueError(
            f"images has {images.shape[0]} rows but the clusterer was fitted on "
            f"{clusterer.labels_.size}; pass the images of the rows it clustered."
        )
    rng = check_random_state(random_state)
    shown_clusters = report["cluster"] if clusters is None else np.asarray(clusters, dtype=int)

    def name(label):
        return label if class_names is None else class_names[label]

    if shown_clusters.size == 0:
        raise ValueError("clusters is empty; pass at least one cluster id, or None for all.")
    n_clusters = shown_clusters.size
    fig = _new_figure(fig, (1.3 * n_examples + 0.5, 1.5 * n_clusters + 0.5))
    axes = fig.subplots(n_clusters, n_examples, squeeze=False)
    for row, k in enumerate(shown_clusters):
        members = np.flatnonzero(clusterer.labels_ == k)
        shown = rng.choice(members, size=min(n_examples, members.size), replace=False)
        for j, ax in enumerate(axes[row]):
            ax.set_axis_off()
            if j < shown.size:
                ax.imshow(images[shown[j]], cmap="gray", vmin=0, vmax=1)
        mark = (
            f" (selected; mistaken for {name(report['confused_with'][k])})"
            if report["selected"][k]
            else ""
        )
        title = axes[row, 0].set_title(
            f"cluster {k}{mark}: class {name(report['class'][k])}, {report['size'][k]} rows, "
            f"ERM error {report['error_rate'][k]:.2f}, margin {report['margin'][k]:.2f}",
            loc="left",
            fontsize=8,
        )
        title.set_in_layout(False)  # a long title must not widen the first column
    fig.suptitle("Examples per cluster (pick the pseudo-minority by eye)")
    return fig


def plot_logit_explanation(result, *, n_concepts=10, title=None, fig=None):
    """Concept AUCs of one logit over all rows and over its mid band, side by side.

    Each panel shows the concepts whose AUC is furthest from 0.5 (in either panel), as
    bars from 0.5, and is titled with its best significant formula, its held-out AUC and
    its support, or says that no formula was significant.

    Parameters
    ----------
    result : Bunch
        The result of :func:`midlogit.concepts.explain_logit`.
    n_concepts : int, default=10
        Concepts shown.
    title : str or None, default=None
        Figure title, e.g. which model's logit for which class.
    fig : matplotlib Figure or None, default=None
        Figure to draw on; a new one by default.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.concepts import explain_logit
    >>> from midlogit.plotting import plot_logit_explanation
    >>> rng = np.random.default_rng(0)
    >>> C = rng.random((600, 4)) < 0.4
    >>> result = explain_logit(3.0 * C[:, 0] + rng.normal(size=600), C, max_length=1)
    >>> fig = plot_logit_explanation(result, n_concepts=3, title="a logit")
    >>> [ax.get_title(loc="left").split(":")[0] for ax in fig.axes]
    ['all rows', 'mid band (quantiles 0.30-0.70)']
    """
    names = np.asarray(result.concept_names)
    both = np.c_[result.all.concept_auc, result.band.concept_auc]
    distance = np.nan_to_num(np.abs(both - 0.5), nan=0.0).max(axis=1)
    shown = np.argsort(-distance, kind="stable")[: max(1, int(n_concepts))][::-1]
    fig = _new_figure(fig, (10.0, 0.35 * shown.size + 1.8))
    axes = fig.subplots(1, 2, sharey=True)
    lo, hi = result.band_range
    panels = (("all rows", result.all), (f"mid band (quantiles {lo:.2f}-{hi:.2f})", result.band))
    for ax, (label, part) in zip(axes, panels):
        auc = part.concept_auc[shown]
        ax.barh(
            np.arange(shown.size),
            np.nan_to_num(auc - 0.5),
            left=0.5,
            color=np.where(auc >= 0.5, "tab:blue", "tab:red"),
        )
        ax.axvline(0.5, color="black", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_xlabel("AUC of the logit against the concept")
        best = part.best
        finding = (
            "no significant formula"
            if best is None
            else f"{best.formula} (AUC {best.auc:.2f}, {best.fraction:.0%} of rows)"
        )
        ax.set_title(f"{label}: {finding}", fontsize=9, loc="left")
    axes[0].set_yticks(np.arange(shown.size), names[shown])
    fig.suptitle(title or "What the logit tracks")
    return fig
