"""Moved to :mod:`midlogit.experiments.cli`; this path works until 0.3, with a
``FutureWarning``."""

from ._validation import moved_module

__getattr__ = moved_module("midlogit.cli", "midlogit.experiments.cli")

if __name__ == "__main__":  # pragma: no cover
    import sys

    from .experiments.cli import main

    sys.exit(main())
