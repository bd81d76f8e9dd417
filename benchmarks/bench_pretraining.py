"""Pretraining before ERM: does the shortcut move into the last layer? (issue 11)

The protocol of the real benchmarks, offline: a :func:`~midlogit.backbones.sprite_convnet`
is pretrained on :func:`~midlogit.datasets.make_pretraining_sprites` (8 kinds, no
shortcut), then fine-tuned by ERM on a biased task through ``SkorchEmbedder``, in
three ways (``make_finetune_net``): the body frozen and only a new head trained, a
gentle fine-tune (body learning rate 1e-4, head 1e-3), and a full fine-tune (every
layer at 1e-3), 5 epochs each. Tasks: biased dSprites at bias 0.9 / 0.95 / 0.99
(10,000 train, 5,000 held-out at the same bias, 3,000 unbiased test rows, 32 px, the
splits of ``midlogit.experiments.demo.load_demo_data``) and the Waterbirds-like task
(``make_waterbirds_like``: train in Waterbirds' proportions 3498/184/56/1057; held-out
rows drawn in the same proportions, 4,795 of them; 4,000 group-balanced test rows).

For every (task, seed, fine-tune): the ERM head's worst-group (WGA) and mean test
accuracy; DFR with group labels on the held-out embeddings (``baselines.fit_dfr``: C by
WGA on a validation half, 20 group-balanced refits); the minority share of the
mid-range band (``LogitBandSelector`` at ``band_width=0.4`` on the ERM head's logits,
the library default band, and the same band per class) against the base rate of the
held-out rows. For the chosen recipe, ``compare_methods`` adds the label-free midlogit
search and the error set. Ceilings: the network trained from scratch on *unbiased*
dSprites (today's ``ConvNet`` and ``sprite_convnet``, 30 epochs, and
``sprite_convnet`` with a cosine learning rate), and the pretrained net given the
chosen fine-tune on unbiased data of the same size. The hard case of today's demo (``ConvNet`` by
ERM from scratch on biased dSprites, 30 epochs) is kept beside them.

Torch and BLAS run one thread (``OMP_NUM_THREADS=1``): on the shared 2-core machine
two threads were about 6x slower. Run: ``python benchmarks/bench_pretraining.py``
(about 35 minutes on the loaded 2-core machine, pretraining included); ``--quick``
for a smoke run. Writes ``benchmarks/results/pretraining.md`` and ``pretraining.json``.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from midlogit.backbones import (  # noqa: E402
    ConvNet,
    SkorchEmbedder,
    make_finetune_net,
    make_net,
    pretrained_sprite_net,
    sprite_convnet,
)
from midlogit.baselines import fit_dfr  # noqa: E402
from midlogit.datasets import make_biased_dsprites, make_waterbirds_like  # noqa: E402
from midlogit.experiments.comparison import compare_methods  # noqa: E402
from midlogit.metrics import worst_group_accuracy  # noqa: E402
from midlogit.selection import LogitBandSelector  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PRETRAIN = {"n_samples": 24000, "max_epochs": 25, "label": "kind+x+background", "image_size": 32}
ABLATION = ("kind+x", "kind")
FINETUNE = {
    "frozen": {"body_lr": 0.0, "max_epochs": 5},
    "gentle": {"body_lr": 1e-4, "max_epochs": 5},
    "full": {"body_lr": None, "max_epochs": 5},
}
CHOSEN = "gentle"
TARGETS = {"dfr_wga": ">= 0.75", "erm_wga": "<= 0.35", "band_share": ">= 2x base rate"}


def machine_info():
    import sklearn
    import skorch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }


def splits(task, seed, quick):
    if task.startswith("dsprites"):
        bias = float(task.split("@")[1])
        n = (600, 1500, 600) if quick else (10000, 5000, 3000)
        return (
            make_biased_dsprites(n[0], bias=bias, image_size=32, random_state=seed * 3),
            make_biased_dsprites(n[1], bias=bias, image_size=32, random_state=seed * 3 + 1),
            make_biased_dsprites(n[2], bias=0.0, image_size=32, random_state=seed * 3 + 2),
        )
    n = (800, 800, 400) if quick else (None, None, 4000)
    return (
        make_waterbirds_like(n[0], split="train", random_state=seed * 3),
        make_waterbirds_like(n[1], split="train", random_state=seed * 3 + 1),
        make_waterbirds_like(n[2], split="test", random_state=seed * 3 + 2),
    )


def unbiased_train(task, train, seed):
    """Training rows of the same size with the shortcut independent of the label."""
    if task.startswith("dsprites"):
        return make_biased_dsprites(
            train.target.size, bias=0.0, image_size=32, random_state=seed * 3
        )
    return make_waterbirds_like(train.target.size, split="test", random_state=seed * 3)


def wga(y, y_pred, groups):
    return float(worst_group_accuracy(y, y_pred, groups=groups))


def scores(embedder, held, test, seed, compare):
    """ERM head, DFR and band shares on one fine-tuned embedder."""
    E_held, E_test = embedder.transform(held.data), embedder.transform(test.data)
    head = embedder.head()
    y_pred = head.predict(E_test)
    dfr = fit_dfr(E_held, held.target, held.groups, random_state=seed)
    dfr_params = {"C": dfr.C}
    # Minority rows are the counterexamples (target and shortcut disagree); the
    # count rule of comparison.minority_share would call Waterbirds' waterbird@water
    # (1057 of 4795 rows) a minority group too.
    counter = held.target != held.spurious
    base = float(counter.mean())
    bands = {}
    boundary = 1.0 - np.bincount(held.target).min() / held.target.size
    variants = (
        ("band", {}),
        ("band_per_class", {"within_class": True}),
        ("band_boundary", {"band_center": boundary}),
    )
    for name, params in variants:
        band = LogitBandSelector(
            estimator=FrozenEstimator(head), band_width=0.4, random_state=seed, **params
        ).fit(E_held, held.target)
        bands[name] = float(counter[band.sample_indices_].mean())
    row = {
        "erm_wga": wga(test.target, y_pred, test.groups),
        "erm_mean": float(np.mean(y_pred == test.target)),
        "dfr_wga": wga(test.target, dfr.predict(E_test), test.groups),
        "dfr_mean": float(np.mean(dfr.predict(E_test) == test.target)),
        "dfr_C": dfr_params["C"],
        "base_share": base,
        "band_share": bands["band"],
        "band_per_class_share": bands["band_per_class"],
        "band_boundary_center": boundary,
        "band_boundary_share": bands["band_boundary"],
    }
    if compare:
        start = time.perf_counter()
        result = compare_methods(
            E_held,
            held.target,
            E_test,
            test.target,
            test.groups,
            head=head,
            groups=held.groups,
            random_state=seed,
        )
        row["compare"] = {
            name: {
                "worst_group_accuracy": m["worst_group_accuracy"],
                "mean_accuracy": m["mean_accuracy"],
                "minority_share": m["minority_share"],
            }
            for name, m in result.methods.items()
        }
        row["compare_seconds"] = time.perf_counter() - start
    return row


def unbiased_ceiling(module, seed, quick, epochs, lr_schedule=None):
    train = make_biased_dsprites(
        600 if quick else 10000, bias=0.0, image_size=32, random_state=seed * 3
    )
    test = make_biased_dsprites(
        600 if quick else 3000, bias=0.0, image_size=32, random_state=seed * 3 + 2
    )
    net = make_net(
        module,
        max_epochs=epochs,
        random_state=seed,
        reset_parameters=True,
        verbose=0,
        lr_schedule=lr_schedule,
    )
    start = time.perf_counter()
    embedder = SkorchEmbedder(net, random_state=seed).fit(train.data, train.target)
    seconds = time.perf_counter() - start
    y_pred = embedder.net_.predict(test.data)
    return {
        "wga": wga(test.target, y_pred, test.groups),
        "mean": float(np.mean(y_pred == test.target)),
        "seconds": seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="pretrained-weights cache (default: a fresh temp dir, so the "
        "pretraining time is measured)",
    )
    parser.add_argument("--no-compare", action="store_true")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument(
        "--ceiling-only",
        action="store_true",
        help="add missing ceiling rows to the saved results, nothing else",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(1)
    quick = args.quick
    pretrain = dict(PRETRAIN, n_samples=600, max_epochs=2) if quick else dict(PRETRAIN)
    epochs = 2 if quick else 30
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="midlogit-bench-")
    out = {
        "machine": machine_info(),
        "load_average_start": os.getloadavg()[0],
        "pretrain": pretrain,
        "finetune": FINETUNE,
        "chosen": CHOSEN,
        "targets": TARGETS,
        "seeds": args.seeds,
        "sizes": {
            "dsprites": "10000 train / 5000 held-out (same bias) / 3000 unbiased test, 32 px",
            "waterbirds_like": "4795 train, 4795 held-out (train proportions), 4000 balanced test",
        },
        "pretraining": {},
        "ceiling": [],
        "rows": [],
    }
    RESULTS.mkdir(exist_ok=True)
    stem = "pretraining_quick" if quick else "pretraining"

    def save():
        (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=1))
        (RESULTS / f"{stem}.md").write_text(report(out))

    def ceilings():
        done = {(r["name"], r["seed"]) for r in out["ceiling"]}
        for seed in args.seeds:
            for name, module, schedule in (
                (
                    "ConvNet (today's default), scratch, unbiased",
                    ConvNet(1, 3, image_size=32),
                    None,
                ),
                ("sprite_convnet, scratch, unbiased", sprite_convnet(3, image_size=32), None),
                (
                    "sprite_convnet + cosine lr, scratch, unbiased",
                    sprite_convnet(3, image_size=32),
                    "cosine",
                ),
            ):
                if (name, seed) in done:
                    continue
                row = unbiased_ceiling(module, seed, quick, epochs, lr_schedule=schedule)
                out["ceiling"].append({"name": name, "seed": seed, **row})
                print(out["ceiling"][-1], flush=True)
                save()

    if args.ceiling_only:  # add missing ceiling rows to an earlier run's results
        out = json.loads((RESULTS / f"{stem}.json").read_text())
        ceilings()
        return

    labels = [pretrain["label"]] + ([] if args.no_ablation else list(ABLATION))
    nets = {}
    for label in labels:
        nets[label] = pretrained_sprite_net(**dict(pretrain, label=label), cache_dir=cache_dir)
        out["pretraining"][label] = nets[label].pretraining_["train_seconds"]
        print(f"pretrained {label}: {out['pretraining'][label]:.0f} s", flush=True)
    save()

    ceilings()

    tasks = ["dsprites@0.95", "waterbirds_like", "dsprites@0.9", "dsprites@0.99"]
    if quick:  # too few minority rows at 0.99 in the small splits
        tasks = tasks[:3]
    for task in tasks:
        for seed in args.seeds:
            train, held, test = splits(task, seed, quick)
            configs = [(pretrain["label"], mode) for mode in FINETUNE]
            headline = task in ("dsprites@0.95", "waterbirds_like")
            if not args.no_ablation and headline:
                configs += [(label, CHOSEN) for label in ABLATION]
            if task == "dsprites@0.95":
                configs.append(("scratch", "ConvNet 30 epochs"))
            if headline:
                configs.append((pretrain["label"], f"{CHOSEN}, unbiased data"))
            for label, mode in configs:
                start = time.perf_counter()
                if label == "scratch":
                    net = make_net(
                        ConvNet(1, 3, image_size=32),
                        max_epochs=epochs,
                        random_state=seed,
                        reset_parameters=True,
                        verbose=0,
                    )
                    fit_on = train
                elif mode.endswith("unbiased data"):
                    net = make_finetune_net(
                        nets[label], len(train.target_names), **FINETUNE[CHOSEN], random_state=seed
                    )
                    fit_on = unbiased_train(task, train, seed)
                else:
                    net = make_finetune_net(
                        nets[label], len(train.target_names), **FINETUNE[mode], random_state=seed
                    )
                    fit_on = train
                embedder = SkorchEmbedder(net, random_state=seed).fit(fit_on.data, fit_on.target)
                seconds = time.perf_counter() - start
                compare = (
                    not args.no_compare
                    and mode == CHOSEN
                    and label == pretrain["label"]
                    and task in ("dsprites@0.95", "waterbirds_like")
                )
                row = {
                    "task": task,
                    "seed": seed,
                    "pretraining": label,
                    "finetune": mode,
                    "finetune_seconds": seconds,
                    **scores(embedder, held, test, seed, compare),
                }
                row["load_average"] = os.getloadavg()[0]
                out["rows"].append(row)
                print(
                    {
                        k: (round(v, 3) if isinstance(v, float) else v)
                        for k, v in row.items()
                        if k != "compare"
                    },
                    flush=True,
                )
                save()
    out["load_average_end"] = os.getloadavg()[0]
    save()


NOTES = """
## Notes (read with the tables; written by hand, kept in the script)

- **Recipe.** `pretrained_sprite_net(label="kind+x+background", n_samples=24000,
  max_epochs=25, image_size=32, random_state=0)`, then `make_finetune_net(pretrained,
  n_classes, lr=1e-3, body_lr=1e-4, max_epochs=5, random_state=seed)` through
  `SkorchEmbedder(net, random_state=seed)`. A full fine-tune (every layer at 1e-3, 5
  epochs) did as well within the seed spread; a frozen body let DFR fall to 0.74 at
  bias 0.95. Pretraining is bit-for-bit reproducible from `random_state` (the cached
  weights of two runs were equal).
- **Why the joint pretraining label.** The penultimate layer must hold the shortcut as
  well as the shape, or ERM on top of it has no shortcut to take. Pretrained on the
  kind alone, the Waterbirds-like ERM head kept 0.35-0.48 WGA (the background is not
  linearly readable enough) and dSprites DFR reached only 0.68; with kind x position
  third, dSprites was best (DFR 0.81) but the Waterbirds-like ERM stayed at 0.37; kind x
  position x background (96 classes) gives the shortcut on both tasks.
- **The band target is missed with the library's default band**, on every backbone,
  including from scratch. When the ERM head's WGA is near 0 the counterexamples are
  confidently wrong, and over all rows a class's logit has the other classes' rows
  (2/3 of them with 3 balanced classes) below its own: the median lies inside the
  other classes' mass, where few counterexamples are. Centred at 1 - (smallest class
  share) instead, the same width-0.4 band holds about 2x the base rate on every task
  (column `boundary band`): a finding for the curation issue, not a change made here.
- **Bias 0.99 misses DFR >= 0.75** (0.59-0.65): the 5,000 held-out rows hold about 6
  rows per minority group, 3 in DFR's validation half (DFR is short of data, as the
  3k/12k/24k measurement in references.md showed).
- **Ceiling.** With a constant learning rate the from-scratch WGA on unbiased dSprites
  swings with the seed (0.66 and 0.90 for today's `ConvNet`, 0.90 and 0.62 for
  `sprite_convnet`: one of the nine groups falls behind);
  `make_net(..., lr_schedule="cosine")` with `sprite_convnet` (16/32 channels, max
  pooling, no dropout on the convolutions) reached 0.95 on both seeds. The pretrained
  net fine-tuned on unbiased data is the ceiling of the protocol itself (rows
  `..., unbiased data`: DFR 0.85 on dSprites, 0.83 on the Waterbirds-like task).
- **Time.** Pretraining took 146-221 s at one thread on this shared machine (load
  average 2.4-5 while the other engineer's benchmarks ran), over the 2-minute aim;
  with 16,000 images it was faster but DFR fell to 0.66 with the gentle fine-tune
  (0.78 full; bias 0.95, seed 0, exploratory), and 8/16 channels lost the ceiling
  (0.70 at a constant learning rate), so neither was taken. The fine-tune takes 6-30 s
  (loaded machine).
"""


def _mean_std(values):
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if values.size == 0:
        return "–"
    if values.size == 1:
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std():.3f}"


def _mark(value, ok):
    return f"{value} {'✓' if ok else '✗ missed'}"


def report(out):
    m = out["machine"]
    p = out["pretrain"]
    lines = [
        "# Pretraining before ERM (issue 11)",
        "",
        "Written by `benchmarks/bench_pretraining.py`; the method is described in its docstring.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores shared with another job, torch "
        f"{m['torch']} on {m['torch_threads']} thread; Python {m['python']}, skorch "
        f"{m['skorch']}, scikit-learn {m['scikit-learn']}, NumPy {m['numpy']}. Load "
        f"average at start {out['load_average_start']:.2f}"
        + (f", at end {out['load_average_end']:.2f}." if "load_average_end" in out else "."),
        "",
        f"Seeds {out['seeds']}. Sizes: dSprites {out['sizes']['dsprites']}; Waterbirds-like "
        f"{out['sizes']['waterbirds_like']}.",
        "",
        f"Pretraining: `pretrained_sprite_net(n_samples={p['n_samples']}, "
        f"max_epochs={p['max_epochs']}, label=...)`, {p['image_size']} px, seed 0 "
        "(one checkpoint, as users share one ImageNet checkpoint). Wall time at one "
        "thread: "
        + ", ".join(f"label `{k}` {v:.0f} s" for k, v in out["pretraining"].items())
        + ".",
        "",
        "Fine-tune (`make_finetune_net`, Adam, batch 128, head lr 1e-3): "
        + "; ".join(
            f"**{k}** body_lr={v['body_lr']}, {v['max_epochs']} epochs"
            for k, v in out["finetune"].items()
        )
        + f". Chosen recipe: **{out['chosen']}**.",
        "",
        "## Ceiling: trained on unbiased dSprites (target WGA >= 0.85)",
        "",
        "| network | WGA | mean acc | train seconds |",
        "|---|---|---|---|",
    ]
    names = list(dict.fromkeys(r["name"] for r in out["ceiling"]))
    for name in names:
        rows = [r for r in out["ceiling"] if r["name"] == name]
        lines.append(
            f"| {name} | {_mean_std(r['wga'] for r in rows)} | "
            f"{_mean_std(r['mean'] for r in rows)} | "
            f"{_mean_std(r['seconds'] for r in rows)} |"
        )
    lines += [
        "",
        "## Fine-tune recipes (mean ± std over seeds)",
        "",
        "Targets (issue 11): DFR WGA >= 0.75 and ERM WGA <= 0.35 at dSprites bias 0.95 and "
        "on the Waterbirds-like task; band (width 0.4) minority share >= 2x the base "
        "rate. Shares count the counterexample rows (label and shortcut disagree) among "
        "the held-out rows each band keeps; `base share` is their share of all held-out "
        "rows. `band`: the library's default band (centre 0.5, within_class=False); `per "
        "class`: the same width within each class; `boundary`: the default band centred "
        "at 1 - (smallest class share) instead (2/3 for 3 balanced classes), where a "
        "class's logit passes from the other classes' mass to its own.",
        "",
        "| task | pretraining | fine-tune | ERM WGA | ERM mean | DFR WGA | DFR C | "
        "base share | band share | per-class band | boundary band | fine-tune s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys((r["task"], r["pretraining"], r["finetune"]) for r in out["rows"]))
    for task, label, mode in keys:
        rows = [
            r
            for r in out["rows"]
            if (r["task"], r["pretraining"], r["finetune"]) == (task, label, mode)
        ]
        lines.append(
            f"| {task} | {label} | {mode} | {_mean_std(r['erm_wga'] for r in rows)} | "
            f"{_mean_std(r['erm_mean'] for r in rows)} | "
            f"{_mean_std(r['dfr_wga'] for r in rows)} | "
            f"{'/'.join(str(r['dfr_C']) for r in rows)} | "
            f"{_mean_std(r['base_share'] for r in rows)} | "
            f"{_mean_std(r['band_share'] for r in rows)} | "
            f"{_mean_std(r['band_per_class_share'] for r in rows)} | "
            f"{_mean_std(r['band_boundary_share'] for r in rows)} | "
            f"{_mean_std(r['finetune_seconds'] for r in rows)} |"
        )
    lines += [
        "",
        "## Targets, chosen recipe",
        "",
        "| task | ERM WGA (<= 0.35) | DFR WGA (>= 0.75) | band share / base (>= 2) | "
        "boundary band / base (not a target) |",
        "|---|---|---|---|---|",
    ]
    for task in dict.fromkeys(r["task"] for r in out["rows"]):
        rows = [
            r
            for r in out["rows"]
            if r["task"] == task
            and r["finetune"] == out["chosen"]
            and r["pretraining"] == p["label"]
        ]
        if not rows:
            continue
        erm = np.mean([r["erm_wga"] for r in rows])
        dfr = np.mean([r["dfr_wga"] for r in rows])
        ratio = np.mean([r["band_share"] / r["base_share"] for r in rows])
        boundary = np.mean([r["band_boundary_share"] / r["base_share"] for r in rows])
        lines.append(
            f"| {task} | {_mark(f'{erm:.3f}', erm <= 0.35)} | {_mark(f'{dfr:.3f}', dfr >= 0.75)}"
            f" | {_mark(f'{ratio:.2f}', ratio >= 2)} | {boundary:.2f} |"
        )
    compared = [r for r in out["rows"] if "compare" in r]
    if compared:
        lines += [
            "",
            "## compare_methods on the chosen recipe (WGA / minority share)",
            "",
            "midlogit's setting is chosen without group labels; the minority share here is "
            "`comparison.minority_share` (groups smaller than the mean group, which on the "
            "Waterbirds-like task also counts waterbird@water).",
            "",
            "| task | seed | " + " | ".join(compared[0]["compare"]) + " | seconds |",
            "|---|---|" + "---|" * (len(compared[0]["compare"]) + 1),
        ]
        for r in compared:
            cells = []
            for v in r["compare"].values():
                share = "–" if v["minority_share"] is None else f"{v['minority_share']:.2f}"
                cells.append(f"{v['worst_group_accuracy']:.3f} / {share}")
            lines.append(
                f"| {r['task']} | {r['seed']} | "
                + " | ".join(cells)
                + f" | {r['compare_seconds']:.0f} |"
            )
    return "\n".join(lines) + "\n" + NOTES


if __name__ == "__main__":
    main()
