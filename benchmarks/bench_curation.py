"""Curation rules side by side on tabular tasks with a planted shortcut (2 and 3 classes).

For each rule of ``midlogit_search`` (``balance`` x ``sampling``) and each seed: an ERM
head trained on 4,000 biased rows (bias 0.95), every method of ``compare_methods``
retrained on 2,000 biased held-out rows, scored on 4,000 unbiased test rows. Reports
worst-group and mean test accuracy (mean ± std over seeds) and the minority share of
each method's retraining set beside DFR's. midlogit's setting is chosen with no group
labels (pseudo-group scorer on a validation half of the held-out rows).

Run: ``python benchmarks/bench_curation.py`` (about 3 minutes on 2 cores).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from midlogit.datasets import make_spurious_gaussians
from midlogit.experiments.comparison import compare_methods
from midlogit.retraining import LastLayerRetrainer

RULES = {
    "clusters, oversample (previous default)": {"balance": "clusters", "sampling": "oversample"},
    "pseudo-groups, weight (default)": {"balance": "pseudo_groups", "sampling": "weight"},
    "pseudo-groups, undersample": {"balance": "pseudo_groups", "sampling": "undersample"},
}


def run(n_classes, rule, seed):
    train = make_spurious_gaussians(4000, bias=0.95, n_classes=n_classes, random_state=10 * seed)
    held = make_spurious_gaussians(
        2000, bias=0.95, n_classes=n_classes, random_state=10 * seed + 1
    )
    test = make_spurious_gaussians(4000, bias=0.0, n_classes=n_classes, random_state=10 * seed + 2)
    head = LastLayerRetrainer(random_state=seed).fit(train.data, train.target)
    result = compare_methods(
        held.data,
        held.target,
        test.data,
        test.target,
        test.groups,
        head=head,
        groups=held.groups,
        random_state=seed,
        **RULES[rule],
    )
    return result.methods


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    runs, lines = (
        [],
        [
            "# Curation rules on tabular tasks (bias 0.95)",
            "",
            "Produced by `python benchmarks/bench_curation.py`; "
            f"{args.seeds} seeds, mean ± std; share = minority share of the "
            "retraining set (weighted where the rule weights).",
            "",
        ],
    )
    for n_classes in (2, 3):
        for rule in RULES:
            methods = [run(n_classes, rule, seed) for seed in range(args.seeds)]
            runs.append({"n_classes": n_classes, "rule": rule, "methods": methods})
            lines += [
                f"## {n_classes} classes, midlogit rule: {rule}",
                "",
                "| method | worst-group acc. | mean acc. | minority share |",
                "|---|---|---|---|",
            ]
            for name in methods[0]:
                wga = np.array([m[name]["worst_group_accuracy"] for m in methods])
                acc = np.array([m[name]["mean_accuracy"] for m in methods])
                shares = [m[name]["minority_share"] for m in methods]
                share = "–" if shares[0] is None else f"{np.mean(shares):.2f}"
                lines.append(
                    f"| {name} | {wga.mean():.3f} ± {wga.std():.3f} | "
                    f"{acc.mean():.3f} ± {acc.std():.3f} | {share} |"
                )
            choices = "; ".join(
                f"{m['midlogit']['params']['retrain_from']}, band "
                f"{m['midlogit']['params']['band_width']}, "
                f"{m['midlogit']['params']['n_clusters']} clusters"
                for m in methods
            )
            lines += ["", f"midlogit's choices: {choices}.", ""]
            print("\n".join(lines[-(len(methods[0]) + 6) :]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "curation.json").write_text(json.dumps(runs, indent=1))
    (out / "curation.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
