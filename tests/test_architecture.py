"""The layers of midlogit: no module imports from a layer above its own.

Every ``import`` in every module of ``midlogit/`` is read with :mod:`ast` (those inside
functions too, since a lazy import is still a dependency) and its target's layer is
compared with the importer's.
"""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "midlogit"

# Lower number = lower layer: the data flow datasets -> backbones -> selection and
# clustering -> retraining, plumbing beside it, INVERT standalone, then the analysis,
# the recipes and the application on top (docs/design.rst, "Module map").
LAYERS = {
    "_validation": 0,
    "base": 0,
    "pipeline": 0,
    "metrics": 0,
    "datasets": 1,
    "backbones": 2,
    "invert": 2,
    "selection": 3,
    "clustering": 3,
    "retraining": 4,
    "baselines": 4,
    "concepts": 5,
    "analysis": 5,
    "plotting": 5,
    "recipes": 6,
    "experiments": 7,
    "comparison": 7,
    "demo": 7,
    "cli": 7,
}


def _top(module):
    """``midlogit.a.b`` -> ``a``; the layer a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if parts[0] == "midlogit" and len(parts) > 1 else None


def _module_name(path, root=PACKAGE.parent):
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path, root=PACKAGE.parent):
    """The ``midlogit.*`` modules a file under ``root`` imports (absolute names)."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target == "midlogit":  # from . import x: a module
                found.update(f"{target}.{alias.name}" for alias in node.names)
            else:
                found.add(target)
    return {m for m in found if m.split(".")[0] == "midlogit"}


# The deprecated alias midlogit.backbones.make_midlogit_pipeline imports the recipe
# lazily, on first use of the old name only (it warns); remove with the alias.
ALLOWED = {("midlogit.backbones", "midlogit.recipes")}

MODULES = sorted(
    p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE
)


def upward_imports(path, root=PACKAGE.parent):
    """The imports of ``path`` that reach a layer above its own."""
    own = _top(_module_name(path, root))
    assert own in LAYERS, f"{own!r} has no layer: add it to LAYERS in {__file__}"
    return sorted(
        target
        for target in imported_modules(path, root)
        if _top(target) in LAYERS
        and LAYERS[_top(target)] > LAYERS[own]
        and (_module_name(path, root), target) not in ALLOWED
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_higher_layer(path):
    upward = upward_imports(path)
    assert not upward, f"{_module_name(path)} imports from a layer above it: {upward}"


def test_the_check_can_fail(tmp_path):
    bad = tmp_path / "midlogit" / "backbones" / "_bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "from ..recipes import make_midlogit_pipeline\n"
        "def f():\n    from midlogit import demo\n    from .. import selection\n"
        "from ._head import LinearHead\nfrom ..datasets import make_dsprites\n"
    )
    assert upward_imports(bad, tmp_path) == [
        "midlogit.demo",
        "midlogit.recipes",
        "midlogit.selection",
    ]


@pytest.mark.parametrize(
    "old, new, name",
    [
        ("midlogit.comparison", "midlogit.experiments.comparison", "compare_methods"),
        ("midlogit.demo", "midlogit.experiments.demo", "run_demo"),
    ],
)
def test_the_applications_former_paths_warn_and_give_the_same_objects(old, new, name):
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    with pytest.warns(FutureWarning, match=f"{old} moved to {new}.*import {name} from {new}"):
        assert getattr(old_module, name) is getattr(new_module, name)
    with pytest.raises(AttributeError):
        old_module.no_such_name  # noqa: B018
    namespace = {}
    with pytest.warns(FutureWarning):
        exec(f"from {old} import *", namespace)
    assert set(new_module.__all__) <= set(namespace)
    assert old_module._moved_to == new  # the API reference lists the new paths only
