"""Moved to :mod:`midlogit.experiments.demo`; this path works until 0.3, with a
``FutureWarning``."""

from ._validation import moved_module

__getattr__ = moved_module("midlogit.demo", "midlogit.experiments.demo")
