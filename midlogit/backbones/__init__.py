"""Torch backbones for scikit-learn: embeddings, logits and the final layer of a network.

:class:`SkorchEmbedder` turns a :class:`skorch.NeuralNetClassifier` into a
scikit-learn transformer: it trains the net by ERM (or wraps a trained one, frozen)
and maps raw inputs to penultimate-layer embeddings. One forward pass gives both the
embeddings and the logits, and a bounded cache keyed on the net's weights and on each
row's content means that, in a grid search over a pipeline starting with a frozen
embedder, every distinct row goes through the backbone once. :meth:`SkorchEmbedder.head`
hands out the net's final layer as a fitted :class:`LinearHead`, so a selector can cut
its band on the ERM model's own logits, and :meth:`SkorchEmbedder.with_head` writes a
retrained head back into a copy of the net.

This is the only midlogit package that imports torch and skorch at import time.
:func:`~midlogit.recipes.make_midlogit_pipeline` moved to :mod:`midlogit.recipes`
(the old name here still works, with a ``FutureWarning``).
"""

# ruff: noqa: F401 -- the package re-exports; _net_key and _row_keys are kept for the
# benchmarks

from ._cache import _net_key, _row_keys, cache_info, clear_cache, set_cache_limit
from ._embedder import SkorchEmbedder
from ._head import LinearHead
from ._modules import MLP, ConvNet
from ._pretraining import (
    default_cache_dir,
    make_finetune_net,
    pretrained_sprite_net,
    sprite_convnet,
)
from ._training import EpochProgress, make_net, torch_threads

__all__ = [
    "SkorchEmbedder",
    "LinearHead",
    "ConvNet",
    "MLP",
    "make_net",
    "cache_info",
    "clear_cache",
    "set_cache_limit",
    "sprite_convnet",
    "pretrained_sprite_net",
    "make_finetune_net",
    "EpochProgress",
    "torch_threads",
    "default_cache_dir",
]


def __getattr__(name):
    # make_midlogit_pipeline moved to midlogit.recipes (it builds on selection,
    # clustering and retraining, layers above this one); imported lazily, so that
    # importing the backbones never imports the layers above them.
    if name == "make_midlogit_pipeline":
        import warnings

        from ..recipes import make_midlogit_pipeline

        warnings.warn(
            "midlogit.backbones.make_midlogit_pipeline moved to "
            "midlogit.recipes.make_midlogit_pipeline; import it from there. The old "
            "path will be removed in a future release.",
            FutureWarning,
            stacklevel=2,
        )
        return make_midlogit_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
