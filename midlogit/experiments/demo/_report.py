"""The demo's report: the table, the figures and the Markdown that explains them."""

import numpy as np


def format_table(methods):
    """A plain-text table of worst-group and mean accuracy per method.

    Parameters
    ----------
    methods : dict
        ``{name: {"worst_group_accuracy", "mean_accuracy", "labels_used", ...}}``.

    Returns
    -------
    table : str
        Markdown.

    Examples
    --------
    >>> from midlogit.experiments.demo import format_table
    >>> print(format_table({"erm": {"worst_group_accuracy": 0.5, "mean_accuracy": 0.9,
    ...                             "labels_used": "class", "n_rows": 0}}))
    | method | worst-group acc. | mean acc. | labels used | rows |
    |---|---|---|---|---|
    | erm | 0.500 | 0.900 | class | 0 |
    """
    lines = [
        "| method | worst-group acc. | mean acc. | labels used | rows |",
        "|---|---|---|---|---|",
    ]
    for name, row in methods.items():
        lines.append(
            f"| {name} | {row['worst_group_accuracy']:.3f} | {row['mean_accuracy']:.3f} "
            f"| {row['labels_used']} | {row['n_rows']} |"
        )
    return "\n".join(lines)


# What each dataset calls its class and its shortcut attribute, and what the images are.
_WORDS = {
    "dsprites": ("shape", "x-band", "dSprites: the shape of a sprite, its x-band the shortcut"),
    "waterbirds": ("bird", "background", "Waterbirds-like sprites: the bird kind, the background"),
    "digits": ("digit", "colour", "coloured digits: the digit, its colour the shortcut"),
    "gaussians": ("class", "attribute", "a tabular task: a weak core block, a strong shortcut"),
}


def _clustered(pipeline):
    """The band selector that found the clusters, and the input rows the clusterer saw."""
    clusterer = pipeline.named_steps["embeddingclusterer"]
    band = pipeline.named_steps["logitbandselector"]
    if isinstance(band, str):  # the band found the clusters; every row joined one
        return clusterer.selector_, np.arange(clusterer.labels_.size)
    return band, band.sample_indices_


def _write_figures(out, comparison, heldout, group_names, explanations, dataset):
    import matplotlib.pyplot as plt

    from ... import plotting

    best = comparison.midlogit_search.best_estimator_
    clusterer = best.named_steps["embeddingclusterer"]
    selector, clustered_rows = _clustered(best)
    names = {int(k): v for k, v in group_names.items()}
    class_names = [str(n) for n in heldout.target_names]
    target_word = _WORDS[dataset][0]
    figures = {}
    first = selector.band_classes_[0]
    column = list(selector.classes_).index(first)
    figures["logit_histogram.png"] = plotting.plot_logit_histogram(
        selector.logits_[:, column],
        heldout.groups,
        thresholds=tuple(selector.thresholds_[0]),
        group_names=names,
        xlabel=f"ERM logit of {target_word} {class_names[first]!r}",
        title=f"Held-out rows by group; shaded: the band (width {selector.band_width})",
    )
    figures["group_accuracies.png"] = plotting.plot_group_accuracies(
        comparison.methods, group_names=group_names, title="Unbiased test accuracy per group"
    )
    clustered_groups = np.asarray(heldout.groups)[clustered_rows]
    report = clusterer.cluster_report_
    cluster_names = {
        int(k): f"{k} ({class_names[report['class'][k]]}{'*' if report['selected'][k] else ''})"
        for k in report["cluster"]
    }
    figures["curated_composition.png"] = plotting.plot_curated_composition(
        clusterer.labels_,
        clustered_groups,
        cluster_names=cluster_names,
        group_names=names,
        title="Clusters midlogit found (class; * selected as pseudo-minority), true groups",
    )
    selected = np.flatnonzero(report["selected"])
    if selected.size and np.ndim(heldout.data) == 4:
        figures["minority_clusters.png"] = plotting.plot_cluster_examples(
            clusterer,
            heldout.data[clustered_rows],
            clusters=selected[:8],
            class_names=class_names,
            n_examples=8,
        )
    for (model_name, class_name), result in explanations.items():
        if class_name == class_names[0]:
            file = f"logit_explanation_{model_name.split()[0].lower()}.png"
            figures[file] = plotting.plot_logit_explanation(
                result, title=f"{model_name}: logit of {target_word} {class_name!r}"
            )
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(figure)
    return list(figures)


def _percent(value):
    return f"{100 * value:.0f} %"


def _report(results, figures):
    methods = results["methods"]
    dataset = results["dataset"]
    target_word, attribute_word, description = _WORDS[dataset]
    erm, mid = methods["erm"], methods["midlogit"]
    worst = min(erm["group_accuracies"], key=erm["group_accuracies"].get)
    worst_name = results["group_names"].get(worst, worst)
    pretrained = (results["backbone"] or {}).get("pretraining")
    origin = (
        "A network pretrained on unbiased sprites of eight kinds was fine-tuned by ERM"
        if pretrained
        else "A network was trained from scratch by ERM"
    )
    shortcut = (
        "in Waterbirds' proportions (most birds on their own background)"
        if results["bias"] is None
        else f"in which {_percent(results['bias'])} of the rows carry the shortcut"
    )
    story = [
        f"**What happened.** {origin} on {description}, {shortcut}. On the unbiased test "
        f"split its worst group ({worst_name}) is right {_percent(erm['worst_group_accuracy'])}"
        f" of the time. Retraining only the last layer on rows midlogit chose **with no group "
        f"labels** moves the worst group to {_percent(mid['worst_group_accuracy'])} (mean "
        f"accuracy {_percent(erm['mean_accuracy'])} → {_percent(mid['mean_accuracy'])}).",
    ]
    if "dfr" in methods:
        story.append(
            f"The JTT-style error set (class labels only) reaches "
            f"{_percent(methods['error_set']['worst_group_accuracy'])}; DFR, which needs the "
            f"group labels, {_percent(methods['dfr']['worst_group_accuracy'])}."
        )
    lines = [
        f"# midlogit demo: {dataset}, seed {results['seed']}",
        "",
        " ".join(story),
        "",
        "## Every method",
        "",
        f"Rows: {results['sizes']}. Worst-group accuracy is the lowest accuracy over "
        f"({target_word}, {attribute_word}) groups of the unbiased test split.",
        "",
        format_table(methods),
        "",
        f"midlogit's setting, chosen on a validation half with no group labels: {mid['params']}.",
        "",
    ]
    if mid["n_rows"] < 100:
        lines += [
            f"**Warning:** midlogit retrained its head on only {mid['n_rows']} rows; a head "
            "fitted on so few rows is fragile. Give it more held-out rows.",
            "",
        ]
    settings = results["settings"]
    if settings["failed"]:
        lines += [
            f"{settings['failed']} of {settings['searched']} settings could not be fitted "
            "(a band holding fewer rows of a class than clusters) and were skipped.",
            "",
        ]
    lines += _cluster_section(results, figures)
    lines += _tracks_section(results, figures)
    shown = [f for f in figures if not f.startswith("logit_explanation")]
    lines += ["## Figures", ""] + [
        f"![{name}]({name})" for name in shown if name != "minority_clusters.png"
    ]
    lines += [
        "",
        "## Run it on your own model",
        "",
        "```python",
        "from midlogit.backbones import SkorchEmbedder",
        "from midlogit.recipes import midlogit_search",
        "",
        "embedder = SkorchEmbedder(net, frozen=True)  # your trained skorch net",
        "E = embedder.fit(X_heldout, y_heldout).transform(X_heldout)",
        "search = midlogit_search(embedder.head()).fit(E, y_heldout)",
        "new_head = search.best_estimator_  # predicts from embeddings; no group labels used",
        "```",
        "",
        f"Run time: {results['seconds']} s ({results['step_seconds']}).",
    ]
    return "\n".join(lines) + "\n"


def _cluster_section(results, figures):
    clusters = results["clusters"]
    lines = ["## The minority clusters midlogit found", ""]
    if not clusters:
        return lines + [
            "The ERM head errs on no cluster often enough to select one: the retraining "
            "set is balanced over the classes only.",
            "",
        ]
    lines += [
        "Clusters of the held-out embeddings on which the ERM head errs at least 30 % of "
        "the time; each is balanced as its own cell. The last column uses the true groups "
        "(for this report only): the share of the cluster's rows that contradict the "
        "shortcut.",
        "",
        "| cluster | class | rows | ERM error rate | mistaken for | counterexamples |",
        "|---|---|---|---|---|---|",
    ]
    for c in clusters:
        share = "–" if c["counterexample_share"] is None else f"{c['counterexample_share']:.2f}"
        lines.append(
            f"| {c['cluster']} | {c['class']} | {c['rows']} | {c['erm_error_rate']:.2f} | "
            f"{c['mistaken_for']} | {share} |"
        )
    if "minority_clusters.png" in figures:
        lines += ["", "![minority_clusters.png](minority_clusters.png)"]
    return lines + [""]


def _tracks_section(results, figures):
    rows = results["what_the_logit_tracks"]
    band = results["explained_band"]
    lo = max(band["band_center"] - band["band_width"] / 2, 0.0)
    hi = min(band["band_center"] + band["band_width"] / 2, 1.0)
    where = (
        f"over its mid band (quantiles {lo:.2f}–{hi:.2f}, the band the chosen midlogit "
        "setting cut on the held-out rows)"
        if band["band_width"] < 1
        else "over its mid band (the chosen midlogit setting used no band, width 1.0, so "
        "both columns read every row)"
    )
    lines = [
        "## What the logit tracks",
        "",
        "INVERT labels each class logit with the concept formula it ranks highest, over "
        f"all unbiased test rows (the top of the logit) and {where}; on these rows the "
        "shortcut attribute is independent of the "
        "class, so a logit that tracks it is told apart from one that tracks the class. "
        "Formulas are chosen on half of the rows and tested on the other half. "
        "Only findings with a held-out p-value below 1e-3 are shown; the last two columns "
        "are the AUC of the shortcut concept aligned with the class (0.5: the logit does "
        "not track it).",
        "",
        "| model | class | top of the logit | mid band | shortcut | AUC all | AUC band |",
        "|---|---|---|---|---|---|---|",
    ]

    def shown(finding):
        if finding is None:
            return "no significant formula"
        return f"{finding['formula']} (AUC {finding['auc']:.2f}, p {finding['p_value']:.0e})"

    for r in rows:
        lines.append(
            f"| {r['model']} | {r['class']} | {shown(r['top'])} | {shown(r['band'])} | "
            f"{r['shortcut']} | {r['shortcut_auc_all']:.2f} | {r['shortcut_auc_band']:.2f} |"
        )
    before = [r for r in rows if r["model"] == "ERM head"]
    after = [r for r in rows if r["model"] == "midlogit head"]

    def moved(where):
        key = f"shortcut_auc_{where}"
        return sum(abs(a[key] - 0.5) < abs(b[key] - 0.5) for b, a in zip(before, after))

    lines += [
        "",
        f"After retraining, the shortcut concept's AUC moved towards 0.5 for {moved('all')} "
        f"of {len(before)} classes over all rows and for {moved('band')} of {len(before)} "
        "in the band.",
        "",
    ]
    lines += [f"![{name}]({name})" for name in figures if name.startswith("logit_explanation")]
    return lines + [""]
