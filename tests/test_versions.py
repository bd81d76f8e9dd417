"""The declared version floors are the versions CI tests (ci/oldest.txt)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _checker():
    spec = importlib.util.spec_from_file_location("check_oldest", ROOT / "ci" / "check_oldest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_declared_floor_is_pinned_in_the_oldest_environment():
    checker = _checker()
    assert checker.floor_mismatches() == []
    required = {
        "numpy", "scipy", "scikit-learn", "joblib", "tqdm", "torch", "skorch",
        "imbalanced-learn", "pandas", "matplotlib", "pillow",
    }  # fmt: skip
    assert required <= set(checker.pins())


def test_scikit_learn_floor_honours_sample_weight_with_balanced_classes():
    # scikit-learn 1.6.x ignores sample_weight in class_weight="balanced"
    from packaging.version import Version

    assert Version(_checker().floors()["scikit-learn"]) >= Version("1.7")


def test_the_version_is_written_once():
    import importlib.metadata
    import re

    import midlogit

    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]\n", 1)[1].split("\n[", 1)[0]
    assert re.search(r"^version\s*=", project, re.MULTILINE) is None
    assert 'dynamic = ["version"]' in project
    assert importlib.metadata.version("midlogit") == midlogit.__version__
