"""Plots of examples and representations: extremal vs mid-range images, RSM pairs, clusters."""

import numpy as np
from sklearn.utils import check_random_state

from ..analysis import (
    _check_activations,
    _check_labels,
    _check_square,
    extremal_and_midrange_indices,
    representational_similarity,
    rsm_block_contrast,
    sort_rsm,
)
from ._common import (
    _display_names,
    _new_figure,
)


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
