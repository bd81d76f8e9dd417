"""Run scikit-learn's and imbalanced-learn's own pipeline tests against midlogit's Pipeline.

The installed ``sklearn/tests/test_pipeline.py`` and ``imblearn/tests/test_pipeline.py``
are imported with one change: where they import ``Pipeline`` and ``make_pipeline`` from
their own ``pipeline`` module, they get :class:`midlogit.pipeline.Pipeline` and
:func:`midlogit.pipeline.make_pipeline` instead. Everything else they import is left as
it is (``FeatureUnion`` stays scikit-learn's), and pytest runs them as their authors do.

This file is two things:

* a pytest plugin (``-p outside_suites``, with this folder on ``PYTHONPATH``) that does
  the substitution and, when ``MIDLOGIT_OUTSIDE_RESULTS`` names a file, writes every
  test's outcome there as JSON;
* a script: ``python tests/outside_suites.py [sklearn|imblearn ...]`` runs the suites and
  prints the failing tests and the counts.

``tests/test_outside_parity.py`` compares the failures with the documented differences.
"""

import builtins
import importlib.abc
import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

RESULTS_ENV = "MIDLOGIT_OUTSIDE_RESULTS"

# Test module -> the module whose Pipeline and make_pipeline it gets from midlogit.
SUBSTITUTED_MODULES = {
    "sklearn.tests.test_pipeline": "sklearn.pipeline",
    "imblearn.tests.test_pipeline": "imblearn.pipeline",
}
SUITES = {"sklearn": "sklearn.tests.test_pipeline", "imblearn": "imblearn.tests.test_pipeline"}
SUBSTITUTED_NAMES = ("Pipeline", "make_pipeline")


def _midlogit_view(module):
    """A copy of ``module``'s namespace with midlogit's Pipeline and make_pipeline."""
    import midlogit.pipeline

    view = types.ModuleType(module.__name__)
    view.__dict__.update(module.__dict__)
    for name in SUBSTITUTED_NAMES:
        setattr(view, name, getattr(midlogit.pipeline, name))
    return view


def _substituting_import(substituted):
    """An ``__import__`` that hands midlogit's names out in place of ``substituted``'s."""
    real_import = builtins.__import__

    def substituting_import(name, globals=None, locals=None, fromlist=(), level=0):
        module = real_import(name, globals, locals, fromlist, level)
        if level == 0 and name == substituted and fromlist:
            return _midlogit_view(module)
        return module

    return substituting_import


class _SubstitutingLoader(importlib.abc.Loader):
    """Runs a test module with builtins whose ``__import__`` substitutes the pipeline.

    The module's code (and every function it defines, which shares its builtins) then
    imports midlogit's Pipeline, also from inside a test function. The wrapped loader is
    pytest's assertion-rewriting one, so assertion messages stay informative.
    """

    def __init__(self, wrapped, substituted):
        self.wrapped = wrapped
        self.substituted = substituted

    def create_module(self, spec):
        return self.wrapped.create_module(spec)

    def exec_module(self, module):
        module_builtins = dict(vars(builtins))
        module_builtins["__import__"] = _substituting_import(self.substituted)
        module.__builtins__ = module_builtins
        self.wrapped.exec_module(module)


class _SubstitutingFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in SUBSTITUTED_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                spec.loader = _SubstitutingLoader(spec.loader, SUBSTITUTED_MODULES[fullname])
                return spec
        return None


# --- pytest plugin hooks ------------------------------------------------------------------
_outcomes = {}
_skip_reasons = {}


def pytest_configure(config):
    # First in the list, ahead of pytest's assertion rewriter, which it then wraps.
    sys.meta_path.insert(0, _SubstitutingFinder())


def pytest_runtest_logreport(report):
    # A test fails if any phase fails; it is skipped if its setup or call skipped.
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and _outcomes.get(report.nodeid) != "failed":
        _outcomes[report.nodeid] = "skipped"
        if isinstance(report.longrepr, tuple):  # (file, line, reason)
            _skip_reasons[report.nodeid] = f"{report.longrepr[0]}: {report.longrepr[2]}"
    elif report.when == "call" and report.nodeid not in _outcomes:
        _outcomes[report.nodeid] = "passed"


def pytest_sessionfinish(session, exitstatus):
    results_path = os.environ.get(RESULTS_ENV)
    if not results_path:
        return
    import midlogit.pipeline

    # Whether each suite that was imported really holds midlogit's names.
    substituted = {
        module_name: all(
            getattr(sys.modules[module_name], name, None) is getattr(midlogit.pipeline, name)
            for name in SUBSTITUTED_NAMES
        )
        for module_name in SUBSTITUTED_MODULES
        if module_name in sys.modules
    }
    results = {"outcomes": _outcomes, "skip_reasons": _skip_reasons, "substituted": substituted}
    Path(results_path).write_text(json.dumps(results, indent=1, sort_keys=True))


# --- running the suites -------------------------------------------------------------------
def suite_path(suite):
    """The installed test file of ``suite`` (``"sklearn"`` or ``"imblearn"``)."""
    return Path(importlib.util.find_spec(SUITES[suite]).origin)


def test_name(nodeid):
    """``test_pipeline.py::test_x[param]`` -> ``test_x[param]``."""
    return nodeid.split("::", 1)[1]


def run_suite(suite, results_path, *, selection=None, timeout=1200):
    """Run one suite under pytest in a subprocess.

    Parameters
    ----------
    suite : {"sklearn", "imblearn"}
        Which installed test file to run.
    results_path : path-like
        Where the plugin writes the outcomes (JSON).
    selection : list of str or None, default=None
        Test names (as :func:`test_name` gives them) to run; ``None`` runs all.
    timeout : float, default=1200
        Seconds before the run is abandoned.

    Returns
    -------
    results : dict
        ``"outcomes"``: ``"passed"``, ``"failed"`` or ``"skipped"`` by test name;
        ``"skip_reasons"``: where and why each skipped test skipped; ``"substituted"``:
        whether the suite's module held midlogit's ``Pipeline`` and ``make_pipeline``.
    """
    path = suite_path(suite)
    targets = [str(path)] if selection is None else [f"{path}::{name}" for name in selection]
    env = {
        **os.environ,
        RESULTS_ENV: str(results_path),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        *targets,
        "-p",
        "outside_suites",
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        "-o",
        "addopts=",
        # The folder holding the package, so that its own conftest.py files load.
        "--rootdir",
        str(path.parents[2]),
    ]
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if not Path(results_path).exists():
        raise RuntimeError(
            f"pytest wrote no results for the {suite} suite (exit {completed.returncode}):\n"
            f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    results = json.loads(Path(results_path).read_text())
    for key in ("outcomes", "skip_reasons"):
        results[key] = {test_name(nodeid): value for nodeid, value in results[key].items()}
    results["substituted"] = results["substituted"].get(SUITES[suite], False)
    return results


def main(argv):
    import tempfile

    import imblearn
    import sklearn

    versions = {"sklearn": sklearn.__version__, "imblearn": imblearn.__version__}
    with tempfile.TemporaryDirectory() as folder:
        for suite in argv or list(SUITES):
            outcomes = run_suite(suite, Path(folder) / f"{suite}.json")["outcomes"]
            failed = sorted(name for name, outcome in outcomes.items() if outcome == "failed")
            skipped = sum(outcome == "skipped" for outcome in outcomes.values())
            print(
                f"== {suite} {versions[suite]}: {len(failed)} of {len(outcomes)} failed, "
                f"{skipped} skipped"
            )
            for name in failed:
                print(f"  {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
