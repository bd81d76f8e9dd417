"""The main job: train an ERM backbone on biased data, then compare retrained heads.

``midlogit demo`` runs :func:`run_demo`: it trains a small network by ERM on data with a
planted shortcut, embeds a held-out retraining split and an unbiased test split once,
retrains the last layer by every method of :func:`midlogit.comparison.compare_methods`
and writes a report, the raw numbers and the figures.
"""

import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import FitFailedWarning

from .comparison import compare_methods

__all__ = ["DATASETS", "load_demo_data", "make_backbone", "run_demo", "format_table"]

DATASETS = ("dsprites", "waterbirds", "digits", "gaussians")

# Sizes chosen so the default run finishes in a few minutes on 2 CPU cores.
_SIZES = {
    "dsprites": {"train": 10000, "heldout": 5000, "test": 3000},
    "waterbirds": {"train": 4795, "heldout": 4795, "test": 4000},
    "gaussians": {"train": 4000, "heldout": 2000, "test": 4000},
}
_QUICK_SIZES = {
    "dsprites": {"train": 600, "heldout": 400, "test": 600},
    "waterbirds": {"train": 600, "heldout": 600, "test": 400},
    "gaussians": {"train": 800, "heldout": 400, "test": 800},
}


def load_demo_data(dataset, *, bias, seed=0, quick=False):
    """Train, held-out and unbiased test splits of a built-in dataset.

    Parameters
    ----------
    dataset : {"dsprites", "waterbirds", "digits", "gaussians"}
        Which data. ``"waterbirds"`` is :func:`~midlogit.datasets.make_waterbirds_like`
        (Waterbirds' group proportions in the training and held-out splits; ``bias``
        does not apply).
    bias : float
        Fraction of training and held-out rows drawn from the shortcut-aligned subset.
    seed : int, default=0
        Seeds the three splits (each with its own seed).
    quick : bool, default=False
        Smaller splits, for tests and smoke runs.

    Returns
    -------
    splits : dict
        ``{"train", "heldout", "test"}`` → Bunch with ``data``, ``target``, ``groups``
        and ``group_names``.

    Examples
    --------
    >>> from midlogit.demo import load_demo_data
    >>> splits = load_demo_data("gaussians", bias=0.9, quick=True)
    >>> sorted(splits)
    ['heldout', 'test', 'train']
    """
    from . import datasets

    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}.")
    sizes = dict((_QUICK_SIZES if quick else _SIZES).get(dataset, {}))
    seeds = {"train": seed * 3, "heldout": seed * 3 + 1, "test": seed * 3 + 2}
    if dataset == "digits":
        return _digits_splits(bias, seeds)
    splits = {}
    for split, size in sizes.items():
        split_bias = 0.0 if split == "test" else bias
        if dataset == "dsprites":
            splits[split] = datasets.make_biased_dsprites(
                size, bias=split_bias, image_size=32, random_state=seeds[split]
            )
        elif dataset == "waterbirds":
            splits[split] = datasets.make_waterbirds_like(
                size, split="test" if split == "test" else "train", random_state=seeds[split]
            )
        else:
            splits[split] = datasets.make_spurious_gaussians(
                size, bias=split_bias, random_state=seeds[split]
            )
    return splits


def _digits_splits(bias, seeds):
    """Coloured digits: the training images split 60/40 into train and held-out rows."""
    from sklearn.model_selection import train_test_split
    from sklearn.utils import Bunch

    from .datasets import make_colored_digits

    pool = make_colored_digits(bias=bias, subset="train", random_state=seeds["train"])
    train_rows, heldout_rows = train_test_split(
        np.arange(pool.target.size),
        test_size=0.4,
        stratify=pool.groups,
        random_state=seeds["heldout"],
    )

    def rows(indices):
        return Bunch(
            data=pool.data[indices],
            target=pool.target[indices],
            spurious=pool.spurious[indices],
            groups=pool.groups[indices],
            group_names=pool.group_names,
            target_names=pool.target_names,
            spurious_names=pool.spurious_names,
        )

    test = make_colored_digits(bias=0.0, subset="test", random_state=seeds["test"])
    return {"train": rows(train_rows), "heldout": rows(heldout_rows), "test": test}


# The pretrained protocol (benchmarks/results/pretraining.md): one checkpoint pretrained
# on sprites of 8 kinds with no shortcut, then a short ERM fine-tune on the biased task
# with a 10x lower learning rate for the body.
PRETRAINING = {"image_size": 32, "n_samples": 24000, "max_epochs": 25}
FINE_TUNE = {"max_epochs": 5, "body_lr": 1e-4}


def make_backbone(dataset, data, *, seed=0, quick=False, pretrained=True, verbose=0):
    """The ERM backbone of the demo and the benchmarks, unfitted, for one dataset.

    Sprite images (``"dsprites"``, ``"waterbirds"``) get the pretrained protocol: a
    :func:`~midlogit.backbones.pretrained_sprite_net` (cached on disk after its first
    training) whose body is fine-tuned by ERM with a lower learning rate, as users
    fine-tune an ImageNet model. ``pretrained=False``, and the other datasets, train a
    :class:`~midlogit.backbones.ConvNet` or :class:`~midlogit.backbones.MLP` from
    scratch.

    Parameters
    ----------
    dataset : str
        One of :data:`DATASETS`.
    data : Bunch
        The training split (its ``data`` and ``target`` size the network).
    seed : int, default=0
        Seeds the new head and the training.
    quick : bool, default=False
        A tiny pretraining and few epochs, for tests.
    pretrained : bool, default=True
        Use the pretrained protocol for sprite images.
    verbose : int, default=0
        1 shows progress bars over the epochs.

    Returns
    -------
    embedder : SkorchEmbedder
        Fit it on the training split.

    Examples
    --------
    >>> from midlogit.demo import load_demo_data, make_backbone
    >>> train = load_demo_data("gaussians", bias=0.9, quick=True)["train"]
    >>> embedder = make_backbone("gaussians", train, quick=True).fit(train.data, train.target)
    >>> embedder.transform(train.data).shape[0] == train.target.size
    True
    """
    from .backbones import (
        MLP,
        ConvNet,
        EpochProgress,
        SkorchEmbedder,
        make_finetune_net,
        make_net,
        pretrained_sprite_net,
    )

    n_classes = int(np.unique(data.target).size)
    progress = {"verbose": 0, "callbacks": [EpochProgress("ERM training")] if verbose else None}
    if dataset in ("dsprites", "waterbirds") and pretrained:
        settings = dict(PRETRAINING, n_samples=512, max_epochs=1) if quick else PRETRAINING
        body = pretrained_sprite_net(**settings, verbose=int(bool(verbose)))
        fine_tune = dict(FINE_TUNE, max_epochs=1) if quick else FINE_TUNE
        net = make_finetune_net(body, n_classes, random_state=seed, **fine_tune, **progress)
        return SkorchEmbedder(net, random_state=seed)
    if data.data.ndim == 4:
        _, channels, height, _ = data.data.shape
        module = ConvNet(in_channels=channels, n_classes=n_classes, image_size=height)
        epochs = 4 if quick else 30
    else:
        module = MLP(n_features=data.data.shape[1], n_classes=n_classes)
        epochs = 10 if quick else 30
    net = make_net(
        module,
        max_epochs=epochs,
        random_state=seed,
        reset_parameters=seed is not None,
        **progress,
    )
    return SkorchEmbedder(net, random_state=seed)


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
    >>> from midlogit.demo import format_table
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


def run_demo(
    dataset="dsprites",
    *,
    bias=0.95,
    seed=0,
    out="midlogit-demo",
    quick=False,
    verbose=1,
    plots=True,
):
    """Fine-tune (or train) a backbone by ERM on biased data, retrain the last layer, report.

    The steps, each with progress shown when ``verbose``: the backbone (pretrained on
    unbiased sprites and cached, then fine-tuned by ERM, for sprite images; trained from
    scratch otherwise, see :func:`make_backbone`); embeddings of a held-out and an
    unbiased test split; every method of
    :func:`~midlogit.comparison.compare_methods`; then INVERT explains each class logit
    of the ERM head and of midlogit's head over all held-out rows and over its mid band
    (:func:`~midlogit.concepts.explain_logit`).

    Parameters
    ----------
    dataset : {"dsprites", "waterbirds", "digits", "gaussians"}, default="dsprites"
        Built-in data (nothing is downloaded).
    bias : float, default=0.95
        Shortcut strength of the training and held-out splits; the test split is
        unbiased. Ignored by ``"waterbirds"`` (Waterbirds' own group proportions).
    seed : int, default=0
        Seeds data, backbone and methods.
    out : str or Path, default="midlogit-demo"
        Folder for ``report.md``, ``results.json`` and the figures.
    quick : bool, default=False
        Smaller data and fewer epochs (for tests).
    verbose : int, default=1
        0 silences progress and the printed table.
    plots : bool, default=True
        Write figures (needs matplotlib).

    Returns
    -------
    results : dict
        What ``results.json`` holds.

    Examples
    --------
    >>> import tempfile
    >>> from midlogit.demo import run_demo
    >>> results = run_demo("gaussians", quick=True, verbose=0, plots=False,
    ...                    out=tempfile.mkdtemp())
    >>> sorted(results["methods"])
    ['class_balanced', 'dfr', 'erm', 'error_set', 'midlogit', 'random']
    """
    from .backbones import torch_threads

    start = time.perf_counter()
    with torch_threads(1):  # measured: on 2 shared cores 1 thread trains fastest
        return _run(dataset, bias, seed, Path(out), quick, verbose, plots, start)


def _run(dataset, bias, seed, out, quick, verbose, plots, start):
    out.mkdir(parents=True, exist_ok=True)
    say = print if verbose else (lambda *a, **k: None)
    seconds = {}
    clock = time.perf_counter()

    def lap(step):
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 1)
        clock = now

    splits = load_demo_data(dataset, bias=bias, seed=seed, quick=quick)
    train, heldout, test = splits["train"], splits["heldout"], splits["test"]
    say(
        f"[midlogit] {dataset}: ERM backbone on {len(train.target)} training rows"
        + ("" if dataset == "waterbirds" else f" (bias {bias})")
    )
    embedder = make_backbone(dataset, train, seed=seed, quick=quick, verbose=verbose)
    embedder.fit(train.data, train.target)
    lap("backbone")
    say(f"[midlogit] embedding {len(heldout.target)} held-out and {len(test.target)} test rows")
    E_heldout = embedder.transform(heldout.data)
    E_test = embedder.transform(test.data)
    head = embedder.head()
    lap("embeddings")

    scorer, bar = _search_progress(head, heldout.target, verbose)
    with warnings.catch_warnings():
        # settings whose band holds fewer rows than clusters fail and score NaN; counted
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.filterwarnings("ignore", message="One or more of the test scores")
        comparison = compare_methods(
            E_heldout,
            heldout.target,
            E_test,
            test.target,
            test.groups,
            head=head,
            groups=heldout.groups,
            random_state=seed,
            scoring=scorer,
        )
    bar.close()
    lap("retraining")
    search = comparison.midlogit_search
    n_failed = int(np.isnan(search.cv_results_["mean_test_score"]).sum())
    midlogit = search.best_estimator_
    say("[midlogit] explaining the class logits with INVERT (all rows, mid band)")
    selector, _ = _clustered(midlogit)
    # the band the curation cut: the chosen selector's quantiles of each class logit
    band = {"band_center": float(selector.band_center_), "band_width": float(selector.band_width)}
    tracks, explanations = _what_logits_track(dataset, test, E_test, head, midlogit, band, seed)
    lap("explanations")
    group_names = {str(i): str(name) for i, name in enumerate(test.group_names)}
    results = {
        "dataset": dataset,
        "bias": None if dataset == "waterbirds" else bias,
        "seed": seed,
        "sizes": {k: int(len(v.target)) for k, v in splits.items()},
        "backbone": _backbone_summary(embedder),
        "group_names": group_names,
        "methods": comparison.methods,
        "settings": {"searched": len(search.cv_results_["params"]), "failed": n_failed},
        "clusters": _minority_clusters(midlogit, heldout),
        "what_the_logit_tracks": tracks,
        "explained_band": band,
        "step_seconds": seconds,
    }
    figures = []
    if plots:
        figures = _write_figures(out, comparison, heldout, group_names, explanations, dataset)
    results["seconds"] = round(time.perf_counter() - start, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_plain))
    (out / "report.md").write_text(_report(results, figures))
    say(format_table(comparison.methods))
    say(
        f"[midlogit] wrote {out / 'report.md'} and {out / 'results.json'} "
        f"in {results['seconds']} s"
    )
    return results


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


def _search_progress(head, y, verbose):
    """The pseudo-group scorer of the search, and a progress bar it advances per setting
    (settings that fail to fit are not scored: close the bar after the search)."""
    from sklearn.model_selection import ParameterGrid
    from tqdm.auto import tqdm

    from .metrics import make_pseudo_group_scorer
    from .recipes import midlogit_search

    n_settings = len(ParameterGrid(midlogit_search(head).param_grid))
    bar = tqdm(total=n_settings, desc="midlogit search", unit="setting", disable=not verbose)
    score = make_pseudo_group_scorer(head)

    def scorer(estimator, X, y_true):
        value = score(estimator, X, y_true)
        bar.update(1)
        return value

    return scorer, bar


def _backbone_summary(embedder):
    module = embedder.net_.module_
    info = getattr(embedder.net.module, "pretraining_", None) or getattr(
        module, "pretraining_", None
    )
    return {"module": type(module).__name__, "pretraining": info}


def _clustered(pipeline):
    """The band selector that found the clusters, and the input rows the clusterer saw."""
    clusterer = pipeline.named_steps["embeddingclusterer"]
    band = pipeline.named_steps["logitbandselector"]
    if isinstance(band, str):  # the band found the clusters; every row joined one
        return clusterer.selector_, np.arange(clusterer.labels_.size)
    return band, band.sample_indices_


def _minority_clusters(pipeline, heldout):
    """The clusters midlogit selected, with the true counterexample share of each."""
    clusterer = pipeline.named_steps["embeddingclusterer"]
    _, clustered = _clustered(pipeline)
    counter = np.asarray(heldout.target != heldout.spurious)[clustered]
    report = clusterer.cluster_report_
    names = np.asarray(heldout.target_names)
    out = []
    for k in np.flatnonzero(report["selected"]):
        members = clusterer.labels_ == k
        out.append(
            {
                "cluster": int(k),
                "class": str(names[report["class"][k]]),
                "rows": int(report["size"][k]),
                "erm_error_rate": float(report["error_rate"][k]),
                "mistaken_for": str(names[report["confused_with"][k]]),
                "counterexample_share": float(counter[members].mean()) if members.any() else None,
            }
        )
    return out


def _concepts(split, dataset):
    from .concepts import dataset_concepts

    target_word, attribute_word, _ = _WORDS[dataset]
    latents = split.get("latents")
    fields = () if latents is None else latents.dtype.names
    # pos_x is left out: the x-band (the shortcut) already bins it
    factors = [f for f in ("pos_y", "scale", "orientation") if f in fields]
    return dataset_concepts(split, target=target_word, spurious=attribute_word, factors=factors)


def _what_logits_track(dataset, split, E, head, retrained, band, seed):
    """Each class logit of the ERM head and of midlogit's head, explained twice.

    On the unbiased test split, where the shortcut attribute is independent of the
    class: there a logit that tracks the attribute is told apart from one that tracks
    the class (on biased rows the two concepts nearly coincide).
    """
    from .concepts import explain_logit
    from .selection import class_logits

    concepts = _concepts(split, dataset)
    names = list(concepts.concept_names)
    _, attribute_word, _ = _WORDS[dataset]
    rows, explanations = [], {}
    for model_name, model in (("ERM head", head), ("midlogit head", retrained)):
        logits, classes = class_logits(model, E, split.target)
        for k, label in enumerate(classes):
            result = explain_logit(logits[:, k], concepts, random_state=seed, **band)
            class_name = str(split.target_names[label])
            shortcut = f"{attribute_word}={split.spurious_names[label]}"
            column = names.index(shortcut)
            explanations[(model_name, class_name)] = result
            rows.append(
                {
                    "model": model_name,
                    "class": class_name,
                    "top": _finding(result.all.best),
                    "band": _finding(result.band.best),
                    "shortcut": shortcut,
                    "shortcut_auc_all": float(result.all.concept_auc[column]),
                    "shortcut_auc_band": float(result.band.concept_auc[column]),
                }
            )
    return rows, explanations


def _finding(explanation):
    if explanation is None:
        return None
    return {
        "formula": str(explanation.formula),
        "auc": explanation.auc,
        "p_value": explanation.p_value,
        "fraction": explanation.fraction,
    }


def _write_figures(out, comparison, heldout, group_names, explanations, dataset):
    import matplotlib.pyplot as plt

    from . import plotting

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
        band=tuple(selector.thresholds_[0]),
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
        "from midlogit.comparison import midlogit_search",
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
