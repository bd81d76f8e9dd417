"""Ablation of midlogit's open choices, one at a time from a base setting.

The paper leaves open how the band is cut (per class or over all samples), how the
clusters become the retraining set, how the clustering space is scaled, how the grid
is scored without group labels and which head is refitted. For each built-in dataset
and seed this trains the ERM backbone once, embeds a held-out and an unbiased test split
once, then runs midlogit's grid search under every variant. Writes
``results/ablation.md`` and ``docs/ablations.inc``.

Run: ``python benchmarks/bench_ablation.py [--seeds 3] [--datasets gaussians tabular3]``
(the tasks of ``bench_quality.py``).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from bench_quality import TASKS, embed

from midlogit.experiments.comparison import compare_methods
from midlogit.metrics import worst_group_accuracy
from midlogit.recipes import midlogit_search, search_choice

BASE = {
    "scoring": "pseudo_group",
    "selector_params": {},
    "clusterer_params": {},
    "retrainer_params": {},
}

# One change at a time from the defaults of ``midlogit_search``: a grid over band width
# (0.2, 0.4, 0.6 and 1.0, i.e. no band), 4/8/16 clusters per class and the source of the
# retraining rows (the band's, or all rows joined to the band's clusters); the clusters
# the ERM head errs on at least 30 % of the time are each class's pseudo-minority;
# (class, class the head mistakes them for) cells weighted equally; raw embeddings on at
# most 64 principal components; pseudo-group scoring; L2 head.
VARIANTS = {
    "defaults": {},
    "retrain on the band's rows only": {"retrain_from": "band"},
    "retrain on all rows, clusters found on the band": {"retrain_from": "all"},
    "never without a band (widths 0.2, 0.4, 0.6)": {"band_widths": (0.2, 0.4, 0.6)},
    "no band at all (width 1.0 only)": {"band_widths": (1.0,)},
    "band per class": {"selector_params": {"within_class": True}},
    "undersample the cells": {"sampling": "undersample"},
    "uniform balancing over clusters, oversampled (previous recipe)": {
        "balance": "clusters",
        "sampling": "oversample",
    },
    "one cluster per class selected (highest error rate)": {"clusterer_params": {"n_selected": 1}},
    "select clusters at error rate >= 0.5": {"clusterer_params": {"min_error_rate": 0.5}},
    "project out the head's directions": {"project_out_head": True},
    "cluster standardised embeddings": {"clusterer_params": {"standardize": True}},
    "worst-class scoring": {"scoring": "worst_class"},
    "L1 head averaged over 10 balanced subsamples": {
        "retrainer_params": {"penalty": "l1", "C": 0.3, "n_subsamples": 10}
    },
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--datasets",
        nargs="*",
        default=["gaussians", "tabular3", "digits"],
        choices=list(TASKS),
        help="tasks of bench_quality.py",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)

    rows = []
    for dataset in args.datasets:
        for seed in range(args.seeds):
            start = time.perf_counter()
            E, held, E_test, test, head = embed(dataset, seed, args.quick)
            reference = compare_methods(
                E,
                held.target,
                E_test,
                test.target,
                test.groups,
                head=head,
                groups=held.groups,
                random_state=seed,
            )
            for name in ("erm", "error_set", "dfr"):
                rows.append(
                    {
                        "dataset": dataset,
                        "seed": seed,
                        "variant": f"[{name}]",
                        "wga": reference.methods[name]["worst_group_accuracy"],
                        "acc": reference.methods[name]["mean_accuracy"],
                    }
                )
            for variant, change in VARIANTS.items():
                params = {**BASE, **change}
                search = midlogit_search(head, y=held.target, random_state=seed, **params)
                search.fit(E, held.target)
                y_pred = search.predict(E_test)
                rows.append(
                    {
                        "dataset": dataset,
                        "seed": seed,
                        "variant": variant,
                        "wga": worst_group_accuracy(test.target, y_pred, groups=test.groups),
                        "acc": float(np.mean(y_pred == test.target)),
                        "params": search_choice(search),
                    }
                )
            print(f"{dataset} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    header = "| variant | " + " | ".join(f"{d} WGA / acc." for d in datasets) + " |"
    lines = [header, "|---|" + "---|" * len(datasets)]
    for variant in variants:
        cells = []
        for dataset in datasets:
            picked = [r for r in rows if r["dataset"] == dataset and r["variant"] == variant]
            wga = np.mean([r["wga"] for r in picked])
            acc = np.mean([r["acc"] for r in picked])
            cells.append(f"{wga:.3f} / {acc:.3f}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    sizes = " (quick sizes)" if args.quick else ""
    biases = ", ".join(f"{d} {TASKS[d][1]}" for d in datasets)
    note = (
        f"Bias {biases}; {args.seeds} seed(s) each{sizes}; "
        "worst-group (WGA) and mean accuracy on the unbiased test split, mean over seeds. "
        "Rows in brackets are references: ERM's own head, the JTT-style error set and DFR "
        "(which uses group labels)."
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.md").write_text(f"# Ablation of midlogit's choices\n\n{note}\n\n{table}\n")
    (out / "ablation.json").write_text(json.dumps(rows, indent=1, default=str))
    rst_rows = [["variant", *[f"{d} WGA / acc." for d in datasets]]]
    for line in lines[2:]:
        rst_rows.append([c.strip() for c in line.strip("|").split("|")])
    rst = [".. list-table::", "   :header-rows: 1", ""]
    for row in rst_rows:
        rst.append(f"   * - {row[0]}")
        rst += [f"     - {cell}" for cell in row[1:]]
    inc = Path(__file__).resolve().parent.parent / "docs" / "ablations.inc"
    inc.write_text(note + "\n\n" + "\n".join(rst) + "\n")
    print(table)


if __name__ == "__main__":
    main()
