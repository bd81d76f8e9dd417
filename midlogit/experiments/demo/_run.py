"""The demo's run: data, backbone, the comparison, the figures and the report."""

import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import FitFailedWarning

from ..comparison import compare_methods
from ._report import _WORDS, _clustered, _report, _write_figures, format_table

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
    >>> from midlogit.experiments.demo import load_demo_data
    >>> splits = load_demo_data("gaussians", bias=0.9, quick=True)
    >>> sorted(splits)
    ['heldout', 'test', 'train']
    """
    from ... import datasets

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

    from ...datasets import make_colored_digits

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
    >>> from midlogit.experiments.demo import load_demo_data, make_backbone
    >>> train = load_demo_data("gaussians", bias=0.9, quick=True)["train"]
    >>> embedder = make_backbone("gaussians", train, quick=True).fit(train.data, train.target)
    >>> embedder.transform(train.data).shape[0] == train.target.size
    True
    """
    from ...backbones import (
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
    :func:`~midlogit.experiments.comparison.compare_methods`; then INVERT explains each class logit
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
    >>> from midlogit.experiments.demo import run_demo
    >>> results = run_demo("gaussians", quick=True, verbose=0, plots=False,
    ...                    out=tempfile.mkdtemp())
    >>> sorted(results["methods"])
    ['class_balanced', 'dfr', 'erm', 'error_set', 'midlogit', 'random']
    """
    from ...backbones import torch_threads

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

    from ...metrics import make_pseudo_group_scorer
    from ...recipes import midlogit_search

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
    from ...concepts import dataset_concepts

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
    from ...concepts import explain_logit
    from ...selection import class_logits

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
