"""Plots of results: group accuracies, curated-set composition, bias sweeps, explanations."""

import numpy as np

from ..analysis import (
    _check_activations,
    _check_labels,
)
from ._common import (
    _colors,
    _crosstab,
    _display_names,
    _new_axes,
    _new_figure,
)


def plot_group_accuracies(results, *, group_names=None, methods=None, title=None, ax=None):
    """Per-group test accuracy of several methods as grouped bars.

    Parameters
    ----------
    results : dict
        ``{method: {"group_accuracies": {group: acc}, "worst_group_accuracy": w,
        "mean_accuracy": m}}`` — the ``methods`` of
        :func:`midlogit.experiments.comparison.compare_methods` and of the demo's ``results.json``
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
