"""The ``midlogit`` command line as a user meets it: bad input, help, pipes, reports."""

import argparse
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from midlogit.cli import build_parser, main


def _write_files(tmp_path, n=200, units=1, names=("water", "land", "sky"), seed=0):
    rng = np.random.default_rng(seed)
    concepts = rng.random((n, len(names))) < 0.3
    activations = rng.normal(size=(n, units)) + 3.0 * concepts[:, :1]
    np.savez(tmp_path / "acts.npz", activations=activations)
    header = ",".join('"' + name.replace('"', '""') + '"' for name in names)
    rows = "\n".join(",".join(str(int(v)) for v in row) for row in concepts)
    (tmp_path / "concepts.csv").write_text(header + "\n" + rows + "\n", encoding="utf-8")
    return [str(tmp_path / "acts.npz"), str(tmp_path / "concepts.csv")]


def _assert_one_line_error(capsys, status, command, contains):
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"midlogit {command}: error: ")
    assert contains in lines[0]
    assert "Traceback" not in captured.err


def test_label_bad_input_is_one_line_and_status_2(tmp_path, capsys):
    files = _write_files(tmp_path)
    status = main(["label", str(tmp_path / "missing.npz"), files[1]])
    _assert_one_line_error(capsys, status, "label", "missing.npz")
    (tmp_path / "latin.csv").write_bytes("caf\xe9,land\n1,0\n".encode("latin-1"))
    status = main(["label", files[0], str(tmp_path / "latin.csv")])
    _assert_one_line_error(capsys, status, "label", "latin.csv, line 1: byte 0xe9 is not UTF-8")
    (tmp_path / "ragged.csv").write_text("water,land\n\n1,0\n1\n")  # blank lines count
    status = main(["label", files[0], str(tmp_path / "ragged.csv")])
    _assert_one_line_error(capsys, status, "label", "line 4 has 1 fields")
    status = main(["label", *files, "--test-size", "5000"])
    _assert_one_line_error(capsys, status, "label", "test_size=5000")
    status = main(["label", *files, "--spurious", "ocean"])
    _assert_one_line_error(capsys, status, "label", "['ocean']")
    status = main(["label", *files, "--out", str(tmp_path / "no" / "such" / "dir.md")])
    _assert_one_line_error(capsys, status, "label", "dir.md")


def test_demo_bad_input_is_one_line_and_status_2(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    out = str(tmp_path / "a-file" / "demo")
    status = main(["demo", "--dataset", "gaussians", "--quick", "--quiet", "--out", out])
    _assert_one_line_error(capsys, status, "demo", "a-file")
    # out-of-range values are refused by the parser before anything runs
    assert main(["demo", "--bias", "1.5"]) == 2
    assert "argument --bias: 1.5 is not in [0, 1]" in capsys.readouterr().err
    assert main(["demo", "--seed", "-1"]) == 2
    assert "argument --seed" in capsys.readouterr().err


def test_test_size_takes_a_row_count_or_a_fraction(tmp_path, capsys, monkeypatch):
    parse = build_parser().parse_args
    files = ["a.npz", "c.csv"]
    assert parse(["label", *files, "--test-size", "60"]).test_size == 60
    assert parse(["label", *files, "--test-size", "0.3"]).test_size == 0.3
    assert parse(["label", *files, "--test-size", "0"]).test_size is None
    assert parse(["label", *files]).test_size == 0.25
    for bad in ("1.0", "-3", "half", "1.5"):
        with pytest.raises(SystemExit):
            parse(["label", *files, "--test-size", bad])
    capsys.readouterr()

    seen = []
    import midlogit.invert

    real = midlogit.invert.ConceptLabeler.fit

    def spy(self, A, C, concept_names=None):
        out = real(self, A, C, concept_names)
        seen.append(out.test_indices_.size)
        return out

    monkeypatch.setattr(midlogit.invert.ConceptLabeler, "fit", spy)
    assert main(["label", *_write_files(tmp_path), "--test-size", "60"]) == 0
    assert seen == [60]
    assert "on held-out samples" in capsys.readouterr().out


def test_report_says_plainly_when_p_values_are_in_sample(tmp_path, capsys):
    files = _write_files(tmp_path, units=1)
    assert main(["label", *files, "--spurious", "water"]) == 0
    held = capsys.readouterr().out
    assert "significant (held-out p <= 0.05)" in held
    assert main(["label", *files, "--spurious", "water", "--test-size", "0"]) == 0
    in_sample = capsys.readouterr().out
    assert "with an in-sample p <= 0.05. In-sample p-values are not a test" in in_sample
    assert "significant" not in in_sample


def test_names_cannot_break_the_markdown_report(tmp_path, capsys):
    names = ("water\n| injected | row |", "a|b", "`tick`")
    files = _write_files(tmp_path, units=2, names=names)
    np.savez(
        tmp_path / "acts.npz",
        activations=np.load(files[0])["activations"],
        unit_names=np.array(["unit\n# heading", "x|y"]),
    )
    assert main(["label", *files, "--spurious", names[0], "--n-explanations", "3"]) == 0
    report = capsys.readouterr().out
    lines = report.splitlines()
    assert not any(line.startswith(("| injected", "# heading")) for line in lines)
    unescaped = re.compile(r"(?<!\\)\|")
    for block in re.split(r"\n(?!\|)", report):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:  # every row of a table has as many cells as its header
            assert {len(unescaped.findall(r)) for r in rows} == {len(unescaped.findall(rows[0]))}
    assert "## unit\\n# heading" in report and "## x\\|y" in report
    assert "water\\n\\| injected \\| row \\|" in report
    assert re.search(r"``[^`]*`tick`[^`]*``", report)  # a longer fence around the backticks


def test_every_option_shows_its_default_and_label_help_has_the_formats():
    parser = build_parser()
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    assert sorted(subparsers) == ["demo", "label"]
    for name, sub in subparsers.items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = formatter._get_help_string(action) or ""
            assert "(default: " in text, (name, action.dest, text)
    text = " ".join(subparsers["label"].format_help().split())
    for words in (
        "ACTIVATIONS an .npz file",
        "'activations'",
        "'unit_names'",
        "'ids'",
        "CONCEPTS a UTF-8 .csv file: a header row of concept names",
        "0/1 or true/false",
    ):
        assert words in text


def test_output_piped_into_head_ends_quietly(tmp_path):
    files = _write_files(tmp_path, n=120, units=400)  # a report far above a pipe's buffer
    code = "import sys; from midlogit.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "label", *files, "--max-length", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout.readline().startswith(b"# INVERT")
    proc.stdout.close()  # what head does after its lines
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
    assert proc.returncode == 0
