"""Moved to :mod:`midlogit.experiments.comparison`; this path works until 0.3, with a
``FutureWarning``."""

from ._validation import moved_module

# Each name comes from the new module on use, with the warning (a star-import too).
__getattr__, __all__, _moved_to = moved_module(
    "midlogit.comparison", "midlogit.experiments.comparison"
)
