"""Check that ci/oldest.txt pins exactly the floors pyproject.toml declares and, run in
the oldest-versions environment (``make test-oldest``), that those are installed."""

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# Pinned at scikit-learn's own floor, not a dependency of midlogit itself.
TRANSITIVE = {"threadpoolctl"}


def pins():
    """``{name: version}`` of ci/oldest.txt."""
    lines = (ROOT / "ci" / "oldest.txt").read_text().splitlines()
    entries = (line.split("#")[0].strip() for line in lines)
    return dict(entry.split("==") for entry in entries if entry)


def floors():
    """``{name: version}`` of every ``"name>=version"`` in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    return dict(re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9][^",;]*)"', text))


def floor_mismatches():
    """Messages for every pin that is not the declared floor."""
    declared = floors()
    problems = []
    for name, version in pins().items():
        if name in TRANSITIVE:
            continue
        if name not in declared:
            problems.append(f"{name}: pinned in ci/oldest.txt, no floor in pyproject.toml")
        elif Version(declared[name]) != Version(version):
            problems.append(
                f"{name}: pyproject.toml declares >={declared[name]}, ci/oldest.txt pins {version}"
            )
    return problems


def main():
    problems = floor_mismatches()
    for name, version in pins().items():
        installed = metadata.version(name)
        print(f"{name}=={installed}")
        if Version(installed).base_version != Version(version).base_version:
            problems.append(f"{name}: {installed} installed, ci/oldest.txt pins {version}")
    if problems:
        sys.exit("\n".join(problems))


if __name__ == "__main__":
    main()
