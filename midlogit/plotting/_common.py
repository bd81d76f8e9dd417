"""Shared helpers of the plots: matplotlib on demand, axes, colours, display names."""

import numpy as np

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
