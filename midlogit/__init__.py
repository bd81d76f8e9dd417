"""midlogit: find and remove the spurious shortcuts a trained network relies on.

The core (selection, clustering, retraining, baselines, metrics, invert, analysis)
works on NumPy arrays and imports without torch. The torch backbones
(:mod:`midlogit.backbones`) load on first use of one of their names.

Examples
--------
>>> import midlogit
>>> pipe = midlogit.make_pipeline(midlogit.LogitBandSelector(),
...                               midlogit.EmbeddingClusterer(),
...                               midlogit.LastLayerRetrainer())
>>> [name for name, _ in pipe.steps]
['logitbandselector', 'embeddingclusterer', 'lastlayerretrainer']
"""

import importlib

from .baselines import (
    ClassBalancedSampler,
    ErrorSetSelector,
    GroupBalancedSampler,
    RandomSubsetSampler,
)
from .clustering import EmbeddingClusterer
from .invert import ConceptLabeler, Explanation, Formula, concept_auc
from .metrics import (
    group_accuracies,
    make_pseudo_group_scorer,
    worst_class_accuracy,
    worst_class_scorer,
    worst_group_accuracy,
    worst_group_scorer,
)
from .pipeline import Pipeline, make_pipeline
from .retraining import LastLayerRetrainer
from .selection import LogitBandSelector

__version__ = "0.2.0.dev0"

_TORCH_NAMES = {
    "SkorchEmbedder",
    "LinearHead",
    "ConvNet",
    "MLP",
    "make_net",
}
_RECIPE_NAMES = {"make_midlogit_pipeline"}

__all__ = [
    "Pipeline",
    "make_pipeline",
    "LogitBandSelector",
    "EmbeddingClusterer",
    "LastLayerRetrainer",
    "ClassBalancedSampler",
    "RandomSubsetSampler",
    "ErrorSetSelector",
    "GroupBalancedSampler",
    "ConceptLabeler",
    "Explanation",
    "Formula",
    "concept_auc",
    "group_accuracies",
    "worst_group_accuracy",
    "worst_class_accuracy",
    "worst_group_scorer",
    "worst_class_scorer",
    "make_pseudo_group_scorer",
    *sorted(_TORCH_NAMES | _RECIPE_NAMES),
]


def __getattr__(name):
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(".backbones", __name__), name)
    if name in _RECIPE_NAMES:
        return getattr(importlib.import_module(".recipes", __name__), name)
    raise AttributeError(f"module 'midlogit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _TORCH_NAMES | _RECIPE_NAMES)
