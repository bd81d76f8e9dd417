"""Every gallery example runs to completion in quick mode, as the docs build runs it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Examples that train several networks even in quick mode (about a minute on 2 cores).
SLOW = {"plot_dsprites_bias_sweep.py"}


def _example_params():
    return [
        pytest.param(path, id=path.stem, marks=[pytest.mark.slow] if path.name in SLOW else [])
        for path in sorted(EXAMPLES.glob("plot_*.py"))
    ]


def test_gallery_is_not_empty():
    assert {"plot_quickstart.py", "plot_invert_concepts.py", "plot_dsprites_bias_sweep.py"} <= {
        p.name for p in EXAMPLES.glob("plot_*.py")
    }


@pytest.mark.parametrize("script", _example_params())
def test_example_runs_in_quick_mode(script, tmp_path):
    env = dict(
        os.environ,
        MIDLOGIT_DOCS_QUICK="1",
        MPLBACKEND="Agg",
        # One OpenMP thread per process: under pytest-xdist two workers would otherwise
        # oversubscribe the cores, and spinning OpenMP threads then slow k-means and
        # torch down several-fold.
        OMP_NUM_THREADS="1",
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n--- stdout\n{result.stdout[-2000:]}"
        f"\n--- stderr\n{result.stderr[-4000:]}"
    )
    assert result.stdout.strip(), f"{script.name} printed nothing"
