"""The main job end to end: `midlogit demo` on built-in data, and the command line."""

import json

import matplotlib
import numpy as np
import pytest

from midlogit.cli import build_parser, main
from midlogit.experiments.demo import format_table, load_demo_data, run_demo

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def gaussian_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    results = run_demo("gaussians", bias=0.95, seed=0, out=out, quick=True, verbose=0)
    return out, results


def test_demo_writes_report_results_and_figures(gaussian_demo):
    out, results = gaussian_demo
    saved = json.loads((out / "results.json").read_text())
    assert saved["methods"].keys() == results["methods"].keys()
    assert {"erm", "midlogit", "dfr", "error_set", "class_balanced", "random"} <= set(
        saved["methods"]
    )
    for row in saved["methods"].values():
        accuracies = row["group_accuracies"].values()
        assert row["worst_group_accuracy"] == pytest.approx(min(accuracies))
        assert 0.0 <= row["worst_group_accuracy"] <= row["mean_accuracy"] <= 1.0
    report = (out / "report.md").read_text()
    for name in ("logit_histogram.png", "group_accuracies.png", "curated_composition.png"):
        assert (out / name).stat().st_size > 1000
        assert name in report
    assert "| midlogit |" in report


def test_demo_labels_used(gaussian_demo):
    _, results = gaussian_demo
    methods = results["methods"]
    assert methods["midlogit"]["labels_used"] == "class"
    assert methods["dfr"]["labels_used"] == "class + groups"


def test_erm_learns_the_shortcut(gaussian_demo):
    # The planted shortcut must hurt ERM on unbiased test data, or the demo shows nothing.
    _, results = gaussian_demo
    erm = results["methods"]["erm"]
    assert erm["worst_group_accuracy"] < erm["mean_accuracy"] - 0.2


def test_demo_splits_are_disjoint_and_test_is_unbiased():
    splits = load_demo_data("digits", bias=0.95, seed=0)
    train, heldout, test = splits["train"], splits["heldout"], splits["test"]
    train_rows = {row.tobytes() for row in train.data}
    assert not any(row.tobytes() in train_rows for row in heldout.data)
    counts = np.bincount(test.groups, minlength=4)
    assert counts.min() > 0.15 * counts.sum()


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_demo_data("mnist", bias=0.9)


def test_format_table_lists_every_method():
    methods = {
        "erm": {
            "worst_group_accuracy": 0.125,
            "mean_accuracy": 0.875,
            "labels_used": "class (ERM)",
            "n_rows": 0,
        },
        "dfr": {
            "worst_group_accuracy": 0.5,
            "mean_accuracy": 0.75,
            "labels_used": "class + groups",
            "n_rows": 42,
        },
    }
    header, rule, *rows = format_table(methods).split("\n")
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells == ["method", "worst-group acc.", "mean acc.", "labels used", "rows"]
    assert rule == "|---|---|---|---|---|"
    assert len(rows) == len(methods)
    for line, (name, row) in zip(rows, methods.items()):
        method, worst, mean, labels, n_rows = (c.strip() for c in line.strip("|").split("|"))
        assert method == name
        assert float(worst) == round(row["worst_group_accuracy"], 3)
        assert float(mean) == round(row["mean_accuracy"], 3)
        assert labels == row["labels_used"]
        assert int(n_rows) == row["n_rows"]


def test_cli_demo_passes_its_options(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        "midlogit.experiments.demo.run_demo",
        lambda dataset, **kwargs: seen.update(dataset=dataset, **kwargs),
    )
    status = main(
        [
            "demo",
            "--dataset",
            "digits",
            "--bias",
            "0.9",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--quick",
            "--no-plots",
            "--quiet",
        ]
    )
    assert status == 0
    assert seen == {
        "dataset": "digits",
        "bias": 0.9,
        "seed": 3,
        "out": str(tmp_path),
        "quick": True,
        "verbose": 0,
        "plots": False,
    }


def test_cli_rejects_unknown_command():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fly"])


def test_cli_has_no_bench_command(capsys):
    # benchmarks are scripts of a source checkout (python benchmarks/bench_x.py)
    assert main(["bench", "core"]) == 2
    assert "invalid choice: 'bench'" in capsys.readouterr().err


@pytest.mark.slow
def test_default_dsprites_demo(tmp_path):
    results = run_demo("dsprites", out=tmp_path, verbose=0)
    assert results["methods"]["erm"]["worst_group_accuracy"] < 0.5


def test_cli_label_writes_a_report(tmp_path, capsys):
    rng = np.random.default_rng(0)
    concepts = rng.random((400, 4)) < 0.3
    activations = rng.normal(size=(400, 2))
    activations[:, 0] += 3.0 * concepts[:, 2]
    np.savez(
        tmp_path / "acts.npz",
        activations=activations,
        unit_names=np.array(["waterbird", "landbird"]),
    )
    header = "water,land,sky,tree"
    rows = "\n".join(",".join(str(int(v)) for v in row) for row in concepts)
    (tmp_path / "concepts.csv").write_text(header + "\n" + rows + "\n")
    status = main(
        [
            "label",
            str(tmp_path / "acts.npz"),
            str(tmp_path / "concepts.csv"),
            "--max-length",
            "2",
            "--spurious",
            "sky",
        ]
    )
    assert status == 0
    report = capsys.readouterr().out
    assert "| waterbird | `sky` |" in report
    out = tmp_path / "report.md"
    main(
        [
            "label",
            str(tmp_path / "acts.npz"),
            str(tmp_path / "concepts.csv"),
            "--out",
            str(out),
            "--test-size",
            "0.5",
            "--random-state",
            "0",
        ]
    )
    assert "| waterbird | `sky` |" in out.read_text()


def test_cli_label_band_reports_all_rows_and_the_mid_band(tmp_path, capsys):
    rng = np.random.default_rng(3)
    concepts = rng.random((2000, 3)) < 0.5
    logit = 2.0 * concepts[:, 0] + rng.normal(size=2000)
    lo, hi = np.quantile(logit, [0.3, 0.7])
    middle = (logit >= lo) & (logit <= hi)
    logit[middle & concepts[:, 2]] += 0.3 * (hi - lo)  # only the band tracks "tree"
    np.savez(tmp_path / "acts.npz", activations=logit, unit_names=np.array(["logit"]))
    rows = "\n".join(",".join(str(int(v)) for v in row) for row in concepts)
    (tmp_path / "concepts.csv").write_text("water,land,tree\n" + rows + "\n")
    args = ["label", str(tmp_path / "acts.npz"), str(tmp_path / "concepts.csv")]
    assert main([*args, "--max-length", "1", "--band", "0.4"]) == 0
    report = capsys.readouterr().out
    everything, band = report.split("# Over the mid band (quantiles 0.30-0.70 of each unit)")
    # over all rows "tree" ranks nothing; within the band it is a significant runner-up
    assert "| logit | `water` |" in everything and "`tree`" not in everything
    assert "| 2 | `tree` | 1 |" in band
    assert main([*args, "--band", "1.5"]) == 2
    assert "argument --band: 1.5 is not in (0, 1]" in capsys.readouterr().err
