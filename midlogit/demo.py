"""The main job: train an ERM backbone on biased data, then compare retrained heads.

``midlogit demo`` runs :func:`run_demo`: it trains a small network by ERM on data with a
planted shortcut, embeds a held-out retraining split and an unbiased test split once,
retrains the last layer by every method of :func:`midlogit.comparison.compare_methods`
and writes a report, the raw numbers and the figures.
"""

import json
import time
from pathlib import Path

import numpy as np

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
            groups=pool.groups[indices],
            group_names=pool.group_names,
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
    net = make_net(module, max_epochs=epochs, random_state=seed, **progress)
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
    """Train ERM on biased data, retrain the last layer by every method, report.

    Parameters
    ----------
    dataset : {"dsprites", "digits", "gaussians"}, default="dsprites"
        Built-in data (nothing is downloaded).
    bias : float, default=0.95
        Shortcut strength of the training and held-out splits; the test split is
        unbiased.
    seed : int, default=0
        Seeds data, backbone and methods.
    out : str or Path, default="midlogit-demo"
        Folder for ``report.md``, ``results.json`` and the figures.
    quick : bool, default=False
        Smaller data and fewer epochs (for tests).
    verbose : int, default=1
        0 silences training progress and the printed table.
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
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = load_demo_data(dataset, bias=bias, seed=seed, quick=quick)
    train, heldout, test = splits["train"], splits["heldout"], splits["test"]

    say = print if verbose else (lambda *a, **k: None)
    say(
        f"[midlogit] {dataset}: training the ERM backbone on {len(train.target)} rows "
        f"(bias {bias})"
    )
    embedder = make_backbone(dataset, train, seed=seed, quick=quick, verbose=verbose)
    embedder.fit(train.data, train.target)
    E_heldout = embedder.transform(heldout.data)
    E_test = embedder.transform(test.data)
    head = embedder.head()

    say(f"[midlogit] retraining last layers on {len(heldout.target)} held-out rows")
    comparison = compare_methods(
        E_heldout,
        heldout.target,
        E_test,
        test.target,
        test.groups,
        head=head,
        groups=heldout.groups,
        random_state=seed,
    )
    group_names = {str(i): str(name) for i, name in enumerate(test.group_names)}
    results = {
        "dataset": dataset,
        "bias": bias,
        "seed": seed,
        "sizes": {k: int(len(v.target)) for k, v in splits.items()},
        "group_names": group_names,
        "methods": comparison.methods,
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    figures = _write_figures(out, comparison, heldout, group_names, results) if plots else []
    (out / "report.md").write_text(_report(results, figures))
    say(format_table(comparison.methods))
    say(
        f"[midlogit] wrote {out / 'report.md'} and {out / 'results.json'} "
        f"in {results['seconds']} s"
    )
    return results


def _write_figures(out, comparison, heldout, group_names, results):
    from . import plotting

    best = comparison.midlogit_search.best_estimator_
    clusterer = best.named_steps["embeddingclusterer"]
    if clusterer.selector is None:  # the band's rows were retrained on
        selector = best.named_steps["logitbandselector"]
        clustered_rows = selector.sample_indices_
    else:  # the band found the clusters; all rows were retrained on
        selector = clusterer.selector_
        clustered_rows = np.arange(len(heldout.target))
    names = {int(k): v for k, v in group_names.items()}
    figures = {}
    column = selector.logits_.shape[1] - 1
    figures["logit_histogram.png"] = plotting.plot_logit_histogram(
        selector.logits_[:, column],
        heldout.groups,
        band=tuple(selector.thresholds_[-1]),
        group_names=names,
    )
    figures["group_accuracies.png"] = plotting.plot_group_accuracies(
        results["methods"], group_names=group_names
    )
    clustered_groups = np.asarray(heldout.groups)[clustered_rows]
    figures["curated_composition.png"] = plotting.plot_curated_composition(
        clusterer.labels_[clusterer.sample_indices_],
        clustered_groups[clusterer.sample_indices_],
        group_names=names,
    )
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    for figure in figures.values():
        plt.close(figure)
    return list(figures)


def _report(results, figures):
    lines = [
        f"# midlogit demo: {results['dataset']} (bias {results['bias']}, seed {results['seed']})",
        "",
        f"Rows: {results['sizes']}. The test split is unbiased; worst-group accuracy is "
        "the lowest accuracy over (class, spurious attribute) groups.",
        "midlogit chose its band width, cluster count and whether to retrain on the "
        "band's rows or on all rows (clusters found on the band) with no group labels "
        "(worst accuracy over (class, ERM head right or wrong) pseudo-groups on a "
        f"validation half): {results['methods']['midlogit']['params']}. DFR used group "
        "labels to choose C and to balance its refits.",
        "",
        format_table(results["methods"]),
        "",
    ]
    lines += [f"![{name}]({name})" for name in figures]
    lines += ["", f"Run time: {results['seconds']} s."]
    return "\n".join(lines) + "\n"
