"""Sphinx configuration for midlogit's documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import midlogit  # noqa: E402

project = "midlogit"
author = "the midlogit developers"
copyright = "2026, the midlogit developers"
release = midlogit.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "furo"
html_title = "midlogit"
templates_path = []
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]

intersphinx_mapping = {}

# Examples run when the docs build; MIDLOGIT_DOCS_QUICK=1 makes them use small data.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
}
