"""The main job: train an ERM backbone on biased data, then compare retrained heads.

``midlogit demo`` runs :func:`run_demo`: it trains a small network by ERM on data with a
planted shortcut, embeds a held-out retraining split and an unbiased test split once,
retrains the last layer by every method of :func:`midlogit.experiments.comparison.compare_methods`
and writes a report, the raw numbers and the figures.
"""

from ._report import format_table
from ._run import DATASETS, load_demo_data, make_backbone, run_demo
from ._run import FINE_TUNE as FINE_TUNE
from ._run import PRETRAINING as PRETRAINING

__all__ = ["DATASETS", "load_demo_data", "make_backbone", "run_demo", "format_table"]
