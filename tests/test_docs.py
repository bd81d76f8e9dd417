"""The documentation: its code runs, its API reference is complete, its docstrings have
examples, and (slow) Sphinx builds it without a warning."""

import doctest
import importlib
import inspect
import io
import pkgutil
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import sklearn

import midlogit

DOCS = Path(__file__).resolve().parents[1] / "docs"

# Pages whose ``>>>`` examples are run.
DOCTEST_PAGES = ["getting_started.rst", "user_guide.rst", "scaling.rst"]

# Public objects without an Examples section, each with the reason. The test below fails
# when a new object lacks one, and when an object listed here gains one (drop it then).
MISSING_EXAMPLES = {}


def _public_modules():
    """Every module whose dotted name has no private part (``midlogit.experiments.demo``
    is one; ``midlogit.pipeline._steps`` is not)."""
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(midlogit.__path__, "midlogit.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    # a former path (midlogit.comparison) is documented at its new place only
    return [module for module in modules if not hasattr(module, "_moved_to")]


def _public_objects():
    for module in _public_modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj


@pytest.mark.parametrize("page", DOCTEST_PAGES)
def test_page_examples_run(page):
    out = io.StringIO()
    with sklearn.config_context(), redirect_stdout(out):
        result = doctest.testfile(
            str(DOCS / page),
            module_relative=False,
            optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
        )
    assert result.attempted > 0, f"{page} has no >>> examples"
    assert result.failed == 0, out.getvalue()


def test_api_reference_lists_every_public_name():
    # one page per module (docs/api/*.rst), so the sidebar groups the objects by module
    pages = sorted((DOCS / "api").glob("*.rst"))
    index = (DOCS / "api.rst").read_text()
    for page in pages:
        assert f"   api/{page.stem}\n" in index, f"docs/api.rst does not list {page.name}"
    text = "\n".join(page.read_text() for page in pages)
    listed = set()
    module = None
    for line in text.splitlines():
        found = re.match(r"\.\. currentmodule:: (\S+)", line)
        if found:
            module = found.group(1)
        entry = re.match(r"   ([A-Za-z_][A-Za-z0-9_]*)$", line)
        if entry and module:
            listed.add(f"{module}.{entry.group(1)}")
    public = {
        f"{m.__name__}.{name}" for m in _public_modules() for name in getattr(m, "__all__", [])
    }
    assert public - listed == set(), "add these to their module's page in docs/api/"
    assert listed - public == set(), "docs/api/ lists names that are not public"


def test_every_public_object_has_an_example():
    objects = dict(_public_objects())
    lacking = {
        name
        for name, obj in objects.items()
        if "Examples\n--------" not in (inspect.getdoc(obj) or "")
    }
    assert lacking - set(MISSING_EXAMPLES) == set(), "add an Examples section"
    documented = {name for name in MISSING_EXAMPLES if name in objects} - lacking
    assert documented == set(), "now documented: drop from MISSING_EXAMPLES"


@pytest.mark.slow
def test_sphinx_builds_without_warnings(tmp_path):
    sphinx_build = shutil.which("sphinx-build", path=str(Path(sys.executable).parent))
    assert sphinx_build is not None, "sphinx is not installed: pip install -e '.[docs]'"
    # The gallery is not executed here (its scripts have their own test); everything
    # else — autosummary, numpydoc, cross-references, the benchmark page — is built.
    result = subprocess.run(
        [
            sphinx_build,
            "-b",
            "html",
            "-W",
            "--keep-going",
            "-q",
            "-E",
            "-D",
            "plot_gallery=0",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-6000:]


def test_every_parameter_is_documented():
    from numpydoc.docscrape import ClassDoc, FunctionDoc

    undocumented = {}
    for name, obj in _public_objects():
        if inspect.isclass(obj):
            signature, doc = inspect.signature(obj.__init__), ClassDoc(obj)
        else:
            signature, doc = inspect.signature(obj), FunctionDoc(obj)
        documented = {
            part.strip().lstrip("*")
            for param in doc["Parameters"]
            for part in param.name.split(",")
        }
        wanted = {
            p.name
            for p in signature.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        if wanted - documented:
            undocumented[name] = sorted(wanted - documented)
    assert undocumented == {}, "document these parameters"


def test_readme_example_runs_and_helps_the_worst_group():
    """The README's Python example, on a task with a planted shortcut."""
    from sklearn.linear_model import LogisticRegression

    from midlogit.datasets import make_spurious_gaussians
    from midlogit.metrics import worst_group_accuracy

    readme = (DOCS.parent / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[:1]
    train = make_spurious_gaussians(2000, bias=0.95, random_state=0)
    held = make_spurious_gaussians(1000, bias=0.95, random_state=1)
    test = make_spurious_gaussians(2000, bias=0.0, random_state=2)
    head = LogisticRegression().fit(train.data, train.target)
    namespace = {"head": head, "embeddings": held.data, "y": held.target}
    exec(compile(code, "README.md", "exec"), namespace)

    def worst(model):
        return worst_group_accuracy(test.target, model.predict(test.data), groups=test.groups)

    assert worst(namespace["search"]) > worst(head) + 0.3


def test_index_example_cuts_the_band_on_the_models_own_head():
    """The front page's snippet, run on a small trained skorch net."""
    pytest.importorskip("skorch")
    from midlogit.backbones import MLP, LinearHead, make_net
    from midlogit.datasets import make_spurious_gaussians

    index = (DOCS / "index.rst").read_text()
    (block,) = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", index)
    code = "\n".join(line[3:] for line in block.splitlines())
    train = make_spurious_gaussians(1000, bias=0.95, random_state=0)
    held = make_spurious_gaussians(600, bias=0.95, random_state=1)
    test = make_spurious_gaussians(300, bias=0.0, random_state=2)
    net = make_net(
        MLP(n_features=train.data.shape[1], n_classes=2, hidden=(16,)),
        max_epochs=3,
        random_state=0,
        verbose=0,
    ).fit(train.data.astype("float32"), train.target)
    namespace = {
        "net": net,
        "X_held_out": held.data.astype("float32"),
        "y_held_out": held.target,
        "X_test": test.data.astype("float32"),
    }
    exec(compile(code, "index.rst", "exec"), namespace)
    band = namespace["pipe"][0]
    assert isinstance(band.estimator.estimator, LinearHead)  # FrozenEstimator(head)
    assert namespace["new_net"].predict(namespace["X_test"]).shape == (300,)
