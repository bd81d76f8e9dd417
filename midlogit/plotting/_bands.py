"""Plots of the logit band: histogram with thresholds, band projection, band composition."""

import numpy as np

from .._validation import DEPRECATED, renamed
from ..analysis import (
    _check_activations,
    _check_labels,
    band_composition,
)
from ._common import (
    _METHOD_NAMES,
    _colors,
    _display_names,
    _new_axes,
    _new_figure,
)


def plot_logit_histogram(
    logits,
    groups=None,
    *,
    thresholds=None,
    group_names=None,
    bins=40,
    stacked=True,
    xlabel="logit",
    title=None,
    ax=None,
    band=DEPRECATED,
):
    """Histogram of a class logit, coloured by group, with the selected band shaded.

    Parameters
    ----------
    logits : array-like of shape (n_samples,)
        One class's logit (or any unit's activation) on every sample.
    groups : array-like of shape (n_samples,) or None, default=None
        Group of each sample; one colour per group. ``None`` draws one histogram.
    thresholds : tuple of float or None, default=None
        ``(lo, hi)`` logit values that bound the band, shaded, e.g.
        ``LogitBandSelector().thresholds_[k]``. (In midlogit a *band* is given in
        quantiles; its *thresholds* are the logit values where it starts and ends.)
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
    band : tuple of float
        Former name of ``thresholds`` (FutureWarning; removed in 0.3).

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.plotting import plot_logit_histogram
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=200)
    >>> fig = plot_logit_histogram(logits, logits > 0.5, thresholds=(-0.3, 0.3))
    >>> fig.axes[0].get_xlabel()
    'logit'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    thresholds = renamed("plot_logit_histogram", "band", "thresholds", band, thresholds, None)
    logits = _check_activations(logits, "logits")
    edges = np.histogram_bin_edges(logits, bins=bins)
    band = None if thresholds is None else _check_thresholds(thresholds)
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


def _check_thresholds(thresholds):
    try:
        lo, hi = (float(v) for v in thresholds)
    except (TypeError, ValueError):
        raise ValueError(
            f"thresholds must be a pair of logit thresholds (lo, hi), got {thresholds!r}."
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"thresholds must be finite with lo < hi, got {thresholds!r}.")
    return lo, hi


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
