"""midlogit: find and remove the spurious shortcuts a trained network relies on.

The core (selection, clustering, retraining, baselines, metrics, invert, analysis)
works on NumPy arrays and imports without torch; :mod:`midlogit.backbones` wraps torch
models through skorch.
"""

__version__ = "0.1.0"
