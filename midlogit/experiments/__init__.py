"""The application: experiments built on the library, above every other layer.

- :mod:`midlogit.experiments.comparison`: every retraining method on one backbone's
  embeddings, scored on the same test rows (``compare_methods``).
- :mod:`midlogit.experiments.demo`: the main job, a pretrained sprite network fine-tuned on
  a shortcut, then the comparison, INVERT and a report (``midlogit demo``).

The ``midlogit`` command (:mod:`midlogit.cli`) runs them. Nothing in the library imports
from here.
"""

__all__ = []
