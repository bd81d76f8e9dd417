"""Sphinx configuration for midlogit's documentation."""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

# The gallery runs the examples while the docs build; quick mode keeps that to minutes.
# `MIDLOGIT_DOCS_QUICK=0 make docs` runs them at full size.
os.environ.setdefault("MIDLOGIT_DOCS_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# One OpenMP thread unless told otherwise: the examples are small, and on a busy 2-core
# machine spinning OpenMP threads slowed k-means 100-fold and torch training 6-fold.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import midlogit  # noqa: E402

project = "midlogit"
author = "the midlogit developers"
copyright = "2026, the midlogit developers"
release = midlogit.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
    "auto_examples/*.zip",
]

autosummary_generate = True
autodoc_typehints = "none"
# A method without a docstring of its own (``forward`` of a torch module) stays out.
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "furo"
html_title = f"midlogit {release}"
html_static_path = []

pygments_style = "sphinx"

# Every cross-reference to midlogit must resolve. References to other projects cannot be
# checked offline (intersphinx would download their inventories), so they are exempt.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(sklearn|skorch|torch|numpy|scipy|matplotlib|joblib)(\..*)?"),
]

# Examples run when the docs build (see MIDLOGIT_DOCS_QUICK above).
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("midlogit",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"midlogit": None},
    "show_memory": False,
}


# --------------------------------------------------------------------------- API pages
def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document only members midlogit defines, not those inherited from scikit-learn.

    Inherited members stay when a midlogit class defines them (``fit_resample`` comes
    from :class:`midlogit.base.SamplerMixin`); ``get_params``, ``set_*_request`` and
    the like come from scikit-learn and are documented there.
    """
    if skip or what != "class":
        return skip
    target = obj.fget if isinstance(obj, property) else obj
    module = getattr(target, "__module__", None)
    if module is None:
        # methods of builtins (``count`` and ``index`` of a NamedTuple) say where they live
        # only through the class that owns them
        module = getattr(getattr(target, "__objclass__", None), "__module__", None)
    if module is None:
        return None
    return None if module.split(".")[0] == "midlogit" else True


# ------------------------------------------------------------------ benchmark results
BENCHMARK_PLACEHOLDER = ".. midlogit-benchmark-results::"
BENCHMARK_ORDER = ("quality", "core", "invert", "backbones", "bias_sweep")


def _benchmark_results_rst():
    """reST that shows every committed ``benchmarks/results/*.md``, known ones first."""
    results = ROOT / "benchmarks" / "results"
    files = sorted(results.glob("*.md")) if results.is_dir() else []
    rank = {name: i for i, name in enumerate(BENCHMARK_ORDER)}
    files.sort(key=lambda p: (rank.get(p.stem, len(rank)), p.stem))
    if not files:
        return (
            "No benchmark results are committed yet. Run ``python benchmarks/bench_<name>.py`` "
            "from a source checkout to write them to ``benchmarks/results/``.\n"
        )
    blocks = []
    for path in files:
        relative = os.path.relpath(path, DOCS).replace(os.sep, "/")
        blocks.append(f".. include:: {relative}\n   :parser: myst_parser.sphinx_\n\n")
    return "".join(blocks)


def _inject_benchmark_results(app, docname, source):
    if docname == "benchmarks" and BENCHMARK_PLACEHOLDER in source[0]:
        source[0] = source[0].replace(BENCHMARK_PLACEHOLDER, _benchmark_results_rst())


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.connect("source-read", _inject_benchmark_results)
    # A new results file must rebuild the page even when benchmarks.rst is unchanged.
    app.connect(
        "env-get-outdated",
        lambda app, env, added, changed, removed: ["benchmarks"],
    )
    return {"parallel_read_safe": True}

