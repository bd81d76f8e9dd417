"""Quality benchmark: every retraining method on every built-in dataset, several seeds.

For each (dataset, bias, seed): train the ERM backbone, embed a held-out retraining
split and an unbiased test split once, retrain the last layer by every method of
``midlogit.comparison.compare_methods`` and record worst-group and mean test accuracy.
Writes ``results/quality.md`` (mean ± std over seeds, the labels each method used, and
whether midlogit met the targets) and ``results/quality.json`` (every run).

Run: ``python benchmarks/bench_quality.py`` (about an hour on 2 cores) or
``--quick`` for a smoke run.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import sklearn
import torch

from midlogit.comparison import compare_methods
from midlogit.demo import _backbone, format_table, load_demo_data

CONFIGS = [
    ("dsprites", 0.9),
    ("dsprites", 0.95),
    ("dsprites", 0.99),
    ("digits", 0.95),
    ("gaussians", 0.95),
]

# Targets of the issue, for midlogit trained with no group labels.
GAIN_OVER_ERM = 0.15
GAP_TO_DFR = 0.03
MEAN_ACC_GAP_TO_ERM = 0.03


def run_one(dataset, bias, seed, quick):
    splits = load_demo_data(dataset, bias=bias, seed=seed, quick=quick)
    train, heldout, test = splits["train"], splits["heldout"], splits["test"]
    start = time.perf_counter()
    embedder = _backbone(dataset, train, seed=seed, quick=quick, verbose=0)
    embedder.fit(train.data, train.target)
    E_heldout, E_test = embedder.transform(heldout.data), embedder.transform(test.data)
    comparison = compare_methods(
        E_heldout, heldout.target, E_test, test.target, test.groups,
        head=embedder.head(), groups=heldout.groups, random_state=seed,
    )
    return {
        "dataset": dataset,
        "bias": bias,
        "seed": seed,
        "seconds": round(time.perf_counter() - start, 1),
        "methods": comparison.methods,
    }


def summarise(runs):
    """Mean ± std per (dataset, bias, method) and the target verdicts."""
    by_config = {}
    for run in runs:
        by_config.setdefault((run["dataset"], run["bias"]), []).append(run)
    lines = []
    verdicts = []
    for (dataset, bias), config_runs in by_config.items():
        lines += [f"### {dataset}, bias {bias} ({len(config_runs)} seeds)", "",
                  "| method | labels used | worst-group acc. | mean acc. |", "|---|---|---|---|"]
        stats = {}
        for name in config_runs[0]["methods"]:
            wga = np.array([r["methods"][name]["worst_group_accuracy"] for r in config_runs])
            acc = np.array([r["methods"][name]["mean_accuracy"] for r in config_runs])
            stats[name] = (wga.mean(), acc.mean())
            labels = config_runs[0]["methods"][name]["labels_used"]
            lines.append(f"| {name} | {labels} | {wga.mean():.3f} ± {wga.std():.3f} "
                         f"| {acc.mean():.3f} ± {acc.std():.3f} |")
        gain = stats["midlogit"][0] - stats["erm"][0]
        gap = stats["dfr"][0] - stats["midlogit"][0] if "dfr" in stats else float("nan")
        mean_gap = stats["erm"][1] - stats["midlogit"][1]
        met = gain >= GAIN_OVER_ERM and gap <= GAP_TO_DFR and mean_gap <= MEAN_ACC_GAP_TO_ERM
        verdicts.append(f"| {dataset} | {bias} | {gain:+.3f} | {gap:+.3f} | {mean_gap:+.3f} | "
                        f"{'yes' if met else 'no'} |")
        choices = [r["methods"]["midlogit"].get("params") for r in config_runs]
        if all(choices):
            shown = "; ".join(
                f"seed {r['seed']}: {c['retrain_from']}, band {c['band_width']}, "
                f"{c['n_clusters']} clusters"
                + (", head projected out" if c.get("project_out_head") else "")
                for r, c in zip(config_runs, choices)
            )
            lines += ["", f"midlogit's choice (no group labels): {shown}."]
        lines.append("")
    header = [
        "## Targets for midlogit (no group labels)", "",
        f"Worst-group gain over ERM ≥ {GAIN_OVER_ERM}, gap to DFR (group labels) ≤ "
        f"{GAP_TO_DFR}, mean-accuracy drop vs ERM ≤ {MEAN_ACC_GAP_TO_ERM}.", "",
        "| dataset | bias | WGA gain vs ERM | WGA gap to DFR | mean-acc. drop vs ERM | met |",
        "|---|---|---|---|---|---|",
        *verdicts, "",
    ]
    return "\n".join(header + lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small data, 1 seed, 2 configs")
    parser.add_argument("--configs", nargs="*", default=None,
                        help="dataset:bias pairs, e.g. dsprites:0.95 digits:0.95")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (1 when another job shares the cores)")
    args = parser.parse_args(argv)

    configs = CONFIGS
    if args.configs:
        configs = [(c.split(":")[0], float(c.split(":")[1])) for c in args.configs]
    seeds = range(1 if args.quick else args.seeds)
    if args.quick and not args.configs:
        configs = [("gaussians", 0.95), ("digits", 0.95)]
    torch.set_num_threads(args.threads)

    runs = []
    for dataset, bias in configs:
        for seed in seeds:
            run = run_one(dataset, bias, seed, args.quick)
            runs.append(run)
            print(f"{dataset} bias={bias} seed={seed} ({run['seconds']} s)")
            print(format_table(run["methods"]), flush=True)
            # Written after every run, so an interrupted benchmark keeps what it measured.
            text = write_results(runs, Path(args.out), args.quick)
    print(text)


def write_results(runs, out, quick):
    out.mkdir(parents=True, exist_ok=True)
    stem = "quality-quick" if quick else "quality"
    (out / f"{stem}.json").write_text(json.dumps(runs, indent=1))
    machine = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
               f"threads, Python {platform.python_version()}, torch {torch.__version__}, "
               f"scikit-learn {sklearn.__version__}")
    text = "\n".join([
        "# Quality benchmark: worst-group and mean test accuracy", "",
        f"Machine: {machine}. Produced by `python benchmarks/bench_quality.py"
        f"{' --quick' if quick else ''}`; test splits are unbiased; mean ± std over seeds.",
        "", summarise(runs),
    ])
    (out / f"{stem}.md").write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
