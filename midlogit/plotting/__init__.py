"""Figures for the analyses of :mod:`midlogit.analysis` and for method comparisons.

Needs matplotlib, the optional extra ``[plot]`` (``pip install "midlogit[plot]"``); it is
imported when a function is called, so ``import midlogit.plotting`` always works. Every
function draws on a new figure, or on the ``ax`` / ``fig`` it is given, and returns the
:class:`~matplotlib.figure.Figure`; none calls ``plt.show()``.
"""

from ._bands import plot_band_composition, plot_band_projection, plot_logit_histogram
from ._examples import plot_cluster_examples, plot_extremal_vs_midrange, plot_rsm_pair
from ._results import (
    plot_bias_sweep,
    plot_curated_composition,
    plot_group_accuracies,
    plot_logit_explanation,
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
