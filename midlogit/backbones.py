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

This is the only midlogit module that imports torch and skorch at import time.
"""

import contextlib
import copy
import functools
import hashlib
import threading
from collections import OrderedDict

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet, NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit
from torch import nn

from .base import LinearHeadMixin, check_class_labels, validate
from .clustering import EmbeddingClusterer
from .pipeline import make_pipeline
from .retraining import LastLayerRetrainer
from .selection import LogitBandSelector

__all__ = [
    "SkorchEmbedder",
    "LinearHead",
    "ConvNet",
    "MLP",
    "make_net",
    "make_midlogit_pipeline",
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


# --------------------------------------------------------------------------- modules


def _pair(size):
    if isinstance(size, int | np.integer):
        return int(size), int(size)
    height, width = size
    return int(height), int(width)


class ConvNet(nn.Module):
    """LeNet-style CNN for image tensors (N × C × H × W), as in the dSprites study.

    Two convolution blocks (5 × 5 kernels; batch-norm, ReLU, average pooling), then
    dense layers 120 → 84 → ``penultimate`` with ReLU and dropout, then a linear layer
    to the logits. Images smaller than 32 pixels are zero-padded inside the
    convolutions so that 8 × 8 inputs work; images of 64 pixels or more are strided
    (``size // 32``) by the first convolution, so a 64 × 64 input costs about as much
    as a 32 × 32 one.

    Parameters
    ----------
    in_channels : int, default=1
        Image channels.
    n_classes : int, default=3
        Output logits.
    image_size : int or (int, int), default=64
        Height and width of the input images.
    width : float, default=1.0
        Multiplies the convolution channels (6 and 16 at 1.0).
    penultimate : int, default=84
        Width of the penultimate layer (the embedding).
    dropout : float, default=0.2
        Dropout probability after the convolutions and the first dense layer.
    channels : pair of int or None, default=None
        Channels of the two convolutions; ``None`` uses ``width`` (6 and 16 at 1.0).
    pooling : {"avg", "max"}, default="avg"
        Pooling after each convolution (see :func:`sprite_convnet`).
    conv_dropout : float or None, default=None
        Dropout after the convolutions; ``None`` uses ``dropout``.

    Attributes
    ----------
    features : nn.Sequential
        The convolution blocks, ending with a flatten.
    dense : nn.Sequential
        The dense layers; its output is the penultimate embedding.
    head : nn.Linear
        The final layer (``penultimate`` → ``n_classes``).

    Examples
    --------
    >>> import torch
    >>> from midlogit.backbones import ConvNet
    >>> net = ConvNet(in_channels=3, n_classes=10, image_size=8, penultimate=32)
    >>> net(torch.zeros(2, 3, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels=1,
        n_classes=3,
        image_size=64,
        width=1.0,
        penultimate=84,
        dropout=0.2,
        *,
        channels=None,
        pooling="avg",
        conv_dropout=None,
    ):
        super().__init__()
        height, width_px = _pair(image_size)
        if min(height, width_px) < 4:
            raise ValueError(f"image_size must be at least 4 pixels, got {image_size!r}.")
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}.")
        if channels is None:
            channels = [max(1, round(6 * width)), max(1, round(16 * width))]
        elif len(channels) != 2 or any(int(c) < 1 for c in channels):
            raise ValueError(f"channels must be two positive ints, got {channels!r}.")
        channels = [int(c) for c in channels]
        pool = nn.AvgPool2d if pooling == "avg" else nn.MaxPool2d
        padding = 0 if min(height, width_px) >= 32 else 2
        strides = [max(1, min(height, width_px) // 32), 1]
        blocks = []
        previous = in_channels
        for out, stride in zip(channels, strides):
            blocks += [
                nn.Conv2d(previous, out, kernel_size=5, stride=stride, padding=padding),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                pool(2),
            ]
            height = ((height + 2 * padding - 5) // stride + 1) // 2
            width_px = ((width_px + 2 * padding - 5) // stride + 1) // 2
            previous = out
        if min(height, width_px) < 1:
            raise ValueError(
                f"image_size={image_size!r} is too small for two 5 x 5 "
                "convolutions; use images of at least 4 pixels."
            )
        conv_dropout = dropout if conv_dropout is None else conv_dropout
        self.features = nn.Sequential(*blocks, nn.Dropout(conv_dropout), nn.Flatten())
        self.dense = nn.Sequential(
            nn.Linear(previous * height * width_px, 120),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, penultimate),
            nn.ReLU(),
        )
        self.head = nn.Linear(penultimate, n_classes)

    def forward(self, X):
        X = X.to(self.head.weight.dtype)
        return self.head(self.dense(self.features(X)))


class MLP(nn.Module):
    """Multi-layer perceptron for tables.

    Parameters
    ----------
    n_features : int
        Input columns.
    n_classes : int, default=2
        Output logits.
    hidden : tuple of int, default=(64, 64)
        Widths of the hidden layers; the last one is the embedding.
    dropout : float, default=0.1
        Dropout after each hidden layer.

    Attributes
    ----------
    body : nn.Sequential
        Hidden layers (Linear, ReLU, Dropout); its output is the embedding.
    head : nn.Linear
        The final layer.

    Examples
    --------
    >>> import torch
    >>> from midlogit.backbones import MLP
    >>> MLP(n_features=5, n_classes=3, hidden=(16,))(torch.zeros(4, 5)).shape
    torch.Size([4, 3])
    """

    def __init__(self, n_features, n_classes=2, hidden=(64, 64), dropout=0.1):
        super().__init__()
        layers = []
        previous = n_features
        for size in hidden:
            layers += [nn.Linear(previous, size), nn.ReLU(), nn.Dropout(dropout)]
            previous = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(previous, n_classes)

    def forward(self, X):
        X = X.to(self.head.weight.dtype)
        return self.head(self.body(X))


def _reset_parameters(module):
    for sub in module.modules():
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()


def _seed_from(random_state):
    """An int seed for torch from an int, a RandomState or None (None stays None)."""
    if random_state is None:
        return None
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def make_net(
    module,
    *,
    max_epochs=10,
    lr=1e-3,
    batch_size=128,
    random_state=None,
    verbose=1,
    device="cpu",
    valid_fraction=None,
    lr_schedule=None,
    reset_parameters=False,
    **kwargs,
):
    """A :class:`skorch.NeuralNetClassifier` configured for midlogit (Adam, cross-entropy).

    Parameters
    ----------
    module : nn.Module instance or class
        The network; it must return logits. A class is instantiated by skorch with the
        ``module__*`` entries of ``kwargs``.
    max_epochs : int, default=10
        Training epochs.
    lr : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=128
        Training batch size.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split and, with ``reset_parameters=True``, the new initial
        weights. A module instance keeps the weights it has (a trained module is never
        re-initialised). Training itself (shuffling, dropout) is seeded by
        :class:`SkorchEmbedder`'s ``random_state``, or by ``torch.manual_seed`` before
        calling ``net.fit`` yourself.
    verbose : int, default=1
        1 prints skorch's epoch table; 0 trains silently.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.
    valid_fraction : float or None, default=None
        ``None`` trains on every row (``train_split=None``); a fraction holds that
        share out (stratified, seeded by ``random_state``) for the validation loss.
    lr_schedule : {None, "cosine"}, default=None
        ``"cosine"`` anneals every learning rate to 0 over ``max_epochs`` (appended to
        ``callbacks``). On unbiased dSprites it lifted :func:`sprite_convnet`'s
        worst-group accuracy from 0.62-0.90 to 0.95 over two seeds
        (``benchmarks/results/pretraining.md``).
    reset_parameters : bool, default=False
        With a module instance, train a copy whose weights are re-initialised under
        ``random_state`` (``reset_parameters()`` of every submodule), so that two nets
        built from fresh modules start from the same weights. Needs ``random_state``.
        ``False`` keeps the instance's weights: fine-tuning a trained module starts
        from what it learnt.
    **kwargs
        Further :class:`skorch.NeuralNetClassifier` parameters (``module__*``,
        ``optimizer__weight_decay``, ``callbacks``, ...).

    Returns
    -------
    net : skorch.NeuralNetClassifier
        Not yet initialised.

    Examples
    --------
    >>> from midlogit.backbones import MLP, make_net
    >>> net = make_net(MLP(n_features=4, n_classes=2), max_epochs=3, random_state=0,
    ...                reset_parameters=True, verbose=0)
    >>> net.max_epochs, net.train_split is None
    (3, True)
    """
    seed = _seed_from(random_state)
    if reset_parameters not in (True, False):
        raise ValueError(f"reset_parameters must be True or False, got {reset_parameters!r}.")
    if reset_parameters and not isinstance(module, nn.Module):
        raise ValueError(
            "reset_parameters=True re-initialises a module instance; a module class is "
            "initialised by skorch anyway (seed it with SkorchEmbedder's random_state)."
        )
    if reset_parameters and seed is None:
        raise ValueError(
            "reset_parameters=True needs random_state=<int>: the new weights are drawn "
            "under that seed."
        )
    if reset_parameters:
        module = copy.deepcopy(module)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _reset_parameters(module)
    if valid_fraction is None:
        train_split = None
    else:
        if not 0 < valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in (0, 1) or None, got {valid_fraction!r}.")
        train_split = ValidSplit(float(valid_fraction), stratified=True, random_state=seed)
    params = {
        "criterion": nn.CrossEntropyLoss,
        "optimizer": torch.optim.Adam,
        "lr": lr,
        "max_epochs": max_epochs,
        "batch_size": batch_size,
        "train_split": train_split,
        "iterator_train__shuffle": True,
        "device": device,
        "verbose": verbose,
    }
    params.update(kwargs)
    if lr_schedule is not None:
        if lr_schedule != "cosine":
            raise ValueError(f"lr_schedule must be None or 'cosine', got {lr_schedule!r}.")
        from skorch.callbacks import LRScheduler
        from torch.optim.lr_scheduler import CosineAnnealingLR

        callbacks = list(params.get("callbacks") or [])
        callbacks.append(("lr_schedule", LRScheduler(CosineAnnealingLR, T_max=max_epochs)))
        params["callbacks"] = callbacks
    return NeuralNetClassifier(module, **params)


# ----------------------------------------------------------------------------- cache

_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SHIFTS = np.uint64(30), np.uint64(27), np.uint64(31)
_HASH_CHUNK = 1 << 16  # 64-bit words per step: 512 kB temporaries stay in cache


@functools.lru_cache(maxsize=8)
def _position_salts(n_words):
    return np.random.default_rng(0x6D69646C).integers(
        0, np.iinfo(np.uint64).max, size=n_words, dtype=np.uint64, endpoint=True
    )


def _row_keys(X):
    """A 64-bit content fingerprint of every row of a float32 array.

    The row's bytes are read as 64-bit words; each word is salted with a constant of
    its position and passed through splitmix64's finaliser (a bijection, so a changed
    word always changes its term); the terms are summed modulo 2**64. Not
    cryptographic: two distinct rows share a key with probability about 2**-64.
    """
    rows = X.reshape(X.shape[0], -1)
    if rows.shape[1] % 2:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], 1), rows.dtype)], axis=1)
    words = np.ascontiguousarray(rows).view(np.uint64)
    n, m = words.shape
    salts = _position_salts(m)
    keys = np.empty(n, dtype=np.uint64)
    step = max(1, _HASH_CHUNK // max(m, 1))
    for start in range(0, n, step):
        z = words[start : start + step] ^ salts
        z ^= z >> _SHIFTS[0]
        z *= _MIX1
        z ^= z >> _SHIFTS[1]
        z *= _MIX2
        z ^= z >> _SHIFTS[2]
        keys[start : start + step] = z.sum(axis=1, dtype=np.uint64)
    return keys


def _net_key(module, layer, row_shape, device):
    """Fingerprint of everything that decides a forward pass: weights, layer, input."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((type(module).__qualname__, layer, row_shape, str(device))).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        flat = tensor.detach().reshape(-1).cpu().contiguous()
        digest.update(str(flat.dtype).encode())
        digest.update(flat.view(torch.uint8).numpy())
    return digest.hexdigest()


class _EmbeddingCache:
    """Embeddings and logits of rows already pushed through a backbone, LRU by bytes.

    Entries are blocks: the sorted row keys of one forward pass, their embeddings and
    their logits. A lookup searches a net's blocks with ``np.searchsorted``; a block
    that served a row becomes the most recently used; the least recently used blocks
    are dropped while the total exceeds ``max_bytes``.
    """

    def __init__(self, max_bytes):
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self.clear()

    def clear(self):
        with self._lock:
            self._blocks = OrderedDict()
            self._next_id = 0
            self.n_bytes = 0
            self.rows_computed = 0
            self.rows_reused = 0

    def lookup(self, net_key, keys):
        """Rows of ``keys`` held for ``net_key``: (their indices, embeddings, logits)."""
        found = np.zeros(keys.shape[0], dtype=bool)
        parts = []
        with self._lock:
            for block_id in [b for b in self._blocks if b[0] == net_key]:
                block_keys, block_embeddings, block_logits = self._blocks[block_id]
                position = np.searchsorted(block_keys, keys)
                position[position == block_keys.shape[0]] = 0
                hit = ~found & (block_keys[position] == keys)
                if hit.any():
                    rows = np.flatnonzero(hit)
                    parts.append(
                        (rows, block_embeddings[position[rows]], block_logits[position[rows]])
                    )
                    found |= hit
                    self._blocks.move_to_end(block_id)
        if not parts:
            return np.empty(0, dtype=np.intp), None, None
        rows, embeddings, logits = zip(*parts)
        return np.concatenate(rows), np.concatenate(embeddings), np.concatenate(logits)

    def add(self, net_key, keys, embeddings, logits):
        size = keys.nbytes + embeddings.nbytes + logits.nbytes
        with self._lock:
            if size > self.max_bytes:
                return
            self._blocks[(net_key, self._next_id)] = (keys, embeddings, logits)
            self._next_id += 1
            self.n_bytes += size
            self._evict()

    def _evict(self):
        while self.n_bytes > self.max_bytes and self._blocks:
            _, (keys, embeddings, logits) = self._blocks.popitem(last=False)
            self.n_bytes -= keys.nbytes + embeddings.nbytes + logits.nbytes

    def resize(self, max_bytes):
        with self._lock:
            self.max_bytes = int(max_bytes)
            self._evict()

    def count(self, computed, reused):
        with self._lock:
            self.rows_computed += int(computed)
            self.rows_reused += int(reused)

    def info(self):
        with self._lock:
            return {
                "rows_computed": self.rows_computed,
                "rows_reused": self.rows_reused,
                "n_bytes": self.n_bytes,
                "max_bytes": self.max_bytes,
                "n_blocks": len(self._blocks),
            }


_CACHE = _EmbeddingCache(max_bytes=256 * 2**20)


def cache_info():
    """Counters and size of the process-wide embedding cache.

    Returns
    -------
    info : dict
        ``rows_computed``: rows pushed through a backbone by any
        :class:`SkorchEmbedder` (with or without the cache) since the last
        :func:`clear_cache`; ``rows_reused``: rows served from the cache instead
        (including repeats within one call); ``n_bytes`` and ``max_bytes``: memory
        held and its bound; ``n_blocks``: cached forward passes.

    Examples
    --------
    >>> from midlogit.backbones import cache_info
    >>> sorted(cache_info())
    ['max_bytes', 'n_blocks', 'n_bytes', 'rows_computed', 'rows_reused']
    """
    return _CACHE.info()


def clear_cache():
    """Empty the embedding cache and reset its counters.

    Examples
    --------
    >>> from midlogit.backbones import cache_info, clear_cache
    >>> clear_cache()
    >>> cache_info()["n_bytes"]
    0
    """
    _CACHE.clear()


def set_cache_limit(max_bytes):
    """Bound the memory of the embedding cache (default 256 MiB; 0 keeps nothing).

    Parameters
    ----------
    max_bytes : int
        Bytes of keys, embeddings and logits kept; least recently used forward passes
        are dropped first.

    Examples
    --------
    >>> from midlogit.backbones import cache_info, set_cache_limit
    >>> set_cache_limit(64 * 2**20)
    >>> cache_info()["max_bytes"]
    67108864
    >>> set_cache_limit(256 * 2**20)
    """
    if not (isinstance(max_bytes, int | np.integer) and max_bytes >= 0):
        raise ValueError(f"max_bytes must be a non-negative int, got {max_bytes!r}.")
    _CACHE.resize(max_bytes)


# ---------------------------------------------------------------------- linear head


class LinearHead(LinearHeadMixin, ClassifierMixin, BaseEstimator):
    """A linear classifier on embeddings: the final layer of a network, for scikit-learn.

    :meth:`SkorchEmbedder.head` builds one from the net's last ``nn.Linear`` (see
    :meth:`from_weights`); its ``decision_function`` on the embeddings reproduces the
    net's logits, in the layer's float type (a float32 layer on float32 embeddings
    gives float32 logits). A head built from weights is *frozen*: cloning it (as
    :class:`~sklearn.model_selection.GridSearchCV` does) returns the head itself and
    ``fit`` leaves it as it is, as :class:`sklearn.frozen.FrozenEstimator` does, so
    ``LogitBandSelector(estimator=embedder.head())`` works inside a search; wrapping it
    in ``FrozenEstimator`` works too. With ``frozen=False`` (the default of
    ``LinearHead()``), ``fit`` fits a fresh linear head by L2 logistic regression and a
    clone is a plain scikit-learn classifier.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength used by ``fit``.
    max_iter : int, default=1000
        Iterations of the logistic regression used by ``fit``.
    frozen : bool, default=False
        Keep the fitted weights through ``clone`` and ``fit`` (set by
        :meth:`from_weights`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights; one row for two classes (class 1 minus class 0).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Biases.
    n_features_in_ : int
        Embedding dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.backbones import LinearHead
    >>> head = LinearHead.from_weights([[0.0, -1.0], [0.0, 1.0]], [0.0, 0.5], [0, 1])
    >>> head.coef_, head.intercept_
    (array([[0., 2.]]), array([0.5]))
    >>> head.predict(np.array([[1.0, 1.0], [1.0, -1.0]]))
    array([1, 0])
    >>> from sklearn.base import clone
    >>> clone(head) is head, head.frozen
    (True, True)
    """

    def __init__(self, C=1.0, max_iter=1000, frozen=False):
        self.C = C
        self.max_iter = max_iter
        self.frozen = frozen

    def __sklearn_clone__(self):
        if self.frozen:
            return self
        return super().__sklearn_clone__()

    @classmethod
    def from_weights(cls, weight, bias, classes):
        """A fitted head from the weight and bias of a linear layer with K outputs.

        Parameters
        ----------
        weight : array-like of shape (n_classes, n_features)
            One row per class, as ``nn.Linear.weight``.
        bias : array-like of shape (n_classes,)
            As ``nn.Linear.bias`` (zeros when the layer has none).
        classes : array-like of shape (n_classes,)
            Label of each output.

        Returns
        -------
        head : LinearHead
            Fitted and frozen; for two classes ``coef_`` is ``weight[1] - weight[0]``,
            so the decision function is the logit of class 1 minus the logit of class 0.
            float32 weights stay float32, anything else becomes float64.
        """
        weight = np.asarray(weight)
        dtype = np.float32 if weight.dtype == np.float32 else np.float64
        weight = weight.astype(dtype, copy=False)
        bias = np.asarray(bias, dtype=dtype)
        classes = np.asarray(classes)
        if weight.ndim != 2 or weight.shape[0] < 2:
            raise ValueError(
                f"weight must have shape (n_classes >= 2, n_features), got {weight.shape}."
            )
        if bias.shape != (weight.shape[0],) or classes.shape != (weight.shape[0],):
            raise ValueError(
                f"bias and classes must have shape ({weight.shape[0]},), one entry per "
                f"row of weight; got {bias.shape} and {classes.shape}."
            )
        head = cls(frozen=True)
        if weight.shape[0] == 2:
            head.coef_ = (weight[1] - weight[0])[None, :]
            head.intercept_ = np.array([bias[1] - bias[0]])
        else:
            head.coef_ = weight
            head.intercept_ = bias
        head.classes_ = classes
        head.n_features_in_ = weight.shape[1]
        return head

    def fit(self, X, y):
        """Fit a linear head by L2 logistic regression.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : array-like of shape (n_samples,)
            Class labels.

        With ``frozen=True`` the head is left as it is (it must be fitted).

        Returns
        -------
        self : LinearHead
        """
        if self.frozen:
            check_is_fitted(self, "coef_")
            return self
        X, y = validate(self, X, y, dtype=[np.float64, np.float32])
        check_class_labels(y)
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(f"y holds 1 class ({classes[0]!r}); a classifier needs at least two.")
        model = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(X, y)
        self.classes_ = model.classes_
        self.coef_ = model.coef_.astype(X.dtype)
        self.intercept_ = model.intercept_.astype(X.dtype)
        self.n_iter_ = model.n_iter_
        return self


# ------------------------------------------------------------------------- embedder


def _last_linear(module):
    name = None
    for candidate, sub in module.named_modules():
        if isinstance(sub, nn.Linear):
            name = candidate
    return name


def _output_linear(module, X, device):
    """Name of the ``nn.Linear`` whose output is the module's output on two rows of ``X``.

    Registration order says nothing about the order of the forward pass (a hand-written
    module may register its output layer first), so the layer is found by a forward
    hook on every ``nn.Linear``. ``None`` when no ``nn.Linear`` gives the output (for
    example when the module applies a softmax after it) or the rows do not fit the
    module (the forward pass proper then reports it).
    """
    outputs = {}
    output = _probe(module, X, device, outputs)
    if output is None:
        return None
    for name, value in outputs.items():
        if value is output:
            return name
    for name, value in reversed(outputs.items()):
        if value.shape == output.shape and torch.equal(value, output):
            return name
    return None


def _probe(module, X, device, outputs=None):
    """The module's output on the first rows of ``X`` in eval mode (``None`` if the rows
    do not fit it); with ``outputs``, every ``nn.Linear``'s output is recorded in it."""
    handles = []
    if outputs is not None:
        handles = [
            sub.register_forward_hook(
                lambda _m, _i, out, name=name: outputs.__setitem__(name, out)
            )
            for name, sub in module.named_modules()
            if isinstance(sub, nn.Linear)
        ]
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            batch = torch.from_numpy(np.require(X[:_PROBE_ROWS], requirements="CW"))
            output = module(batch.to(device))
    except RuntimeError:
        return None
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    if isinstance(output, tuple | list):
        output = output[0]
    return output


# Rows run through a module to find its output layer and check that it returns logits.
_PROBE_ROWS = 8


def _check_logit_output(module, X, device):
    """Refuse a module whose outputs look like probabilities: every row in [0, 1] and
    summing to 1, as after a softmax (logits of two or more classes almost never do)."""
    output = _probe(module, X, device)
    if output is None or output.ndim != 2 or output.shape[1] < 2:
        return
    values = output.detach().double().cpu()
    sums = values.sum(dim=1)
    if bool(((values >= 0) & (values <= 1)).all()) and bool(
        torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
    ):
        raise ValueError(
            f"The module {type(module).__name__} returns probabilities (on {len(values)} "
            "rows every output is in [0, 1] and each row sums to 1: a softmax at the "
            "end), but midlogit needs logits (the band is cut on them, head() is the "
            "layer that gives them). Remove the final softmax from forward (train with "
            "criterion=torch.nn.CrossEntropyLoss, as make_net does, which applies it)."
        )


def _layer_names(module):
    return [name for name, _ in module.named_modules() if name]


class SkorchEmbedder(TransformerMixin, BaseEstimator):
    """Penultimate-layer embeddings (and logits) of a torch network, as a transformer.

    With ``frozen=False``, ``fit`` trains a clone of ``net`` by ERM (the ``net`` you
    pass is never modified; the trained clone is ``net_``). With ``frozen=True``,
    ``net`` must already be trained: ``fit`` does not touch it and cloning the
    embedder (as :class:`~sklearn.model_selection.GridSearchCV` does) returns the
    embedder itself, as :class:`sklearn.frozen.FrozenEstimator` does, so a search
    never retrains or alters the backbone.

    ``transform`` runs the module in eval mode without gradients, in batches, on the
    net's device, and returns float32 embeddings: the input of the module's output
    layer, or the flattened output of the submodule ``layer``. The output layer is the
    ``nn.Linear`` whose output is the module's output, found with a forward hook on two
    rows at ``fit`` (registration order says nothing about it: a hand-written module may
    register its output layer first); before ``fit``, :meth:`head` takes the last
    registered ``nn.Linear`` and refuses when its width does not match the net's
    classes. The same pass gives the logits (:meth:`logits`).

    **Cache.** Embeddings and logits are kept in a process-wide cache (LRU, bounded
    by bytes: :func:`set_cache_limit`) keyed on a fingerprint of the module's weights
    and buffers, the layer, the input shape and the device, and on a 64-bit hash of
    each row's float32 content. A row seen before under the same weights is never
    pushed through the backbone again, whichever embedder object asks, so in a grid
    search over a pipeline that starts with a frozen embedder each distinct row is
    computed once. :func:`cache_info` counts rows computed and reused. The weights
    are fingerprinted on every call (cost linear in the parameter count), so a net
    changed in place is never served stale results. Worker processes of a parallel
    search each hold their own cache.

    A frozen embedder is shared by every clone, so a search over its own parameters
    (``skorchembedder__layer``) must not run candidates in threads at once; process
    workers (joblib's default) and ``n_jobs=1`` are fine.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier or None, default=None
        The network; its module must return logits. ``None`` (``frozen=False`` only)
        trains a small :class:`MLP` (one hidden layer of 16 units, 10 epochs, silent)
        sized to the data, for 2-D tables.
    layer : str or None, default=None
        Name (as in ``module.named_modules()``) of the submodule whose output is the
        embedding. ``None`` takes the input of the output ``nn.Linear``.
    frozen : bool, default=False
        Use ``net`` as trained; ``fit`` only checks the input.
    batch_size : int, default=256
        Rows per forward pass.
    cache : bool, default=True
        Use the embedding cache.
    random_state : int, RandomState instance or None, default=None
        With ``frozen=False``, seeds torch during training (weight initialisation of a
        module given as a class, shuffling, dropout) and a fractional ``train_split``,
        so two fits give identical embeddings. A module given as an instance starts
        from its current weights (:func:`make_net` seeds those). The global torch RNG
        is left as it was.

    Attributes
    ----------
    net_ : skorch.NeuralNetClassifier
        The trained net (``net`` itself when frozen).
    classes_ : ndarray of shape (n_classes,)
        Labels of the logits, in column order.
    layer_ : str
        Name of the submodule that gives the embedding (for ``layer=None`` the output
        ``nn.Linear``, whose input is taken).
    n_features_in_ : int
        Columns of ``X`` (channels for images).
    n_embedding_dims_ : int
        Width of the embeddings; :meth:`get_feature_names_out` names them, so
        ``set_output(transform="pandas")`` works.

    See Also
    --------
    make_midlogit_pipeline : the curation pipeline on a frozen embedder.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.backbones import MLP, SkorchEmbedder, make_net
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 4)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> net = make_net(MLP(4, 2, hidden=(8,)), max_epochs=2, verbose=0, random_state=0)
    >>> embedder = SkorchEmbedder(net, random_state=0).fit(X, y)
    >>> embedder.transform(X).shape, embedder.transform(X).dtype
    ((60, 8), dtype('float32'))
    >>> embedder.logits(X).shape
    (60, 2)
    """

    def __init__(
        self, net=None, layer=None, frozen=False, batch_size=256, cache=True, random_state=None
    ):
        self.net = net
        self.layer = layer
        self.frozen = frozen
        self.batch_size = batch_size
        self.cache = cache
        self.random_state = random_state

    @classmethod
    def from_module(
        cls,
        module,
        classes=None,
        *,
        frozen=True,
        layer=None,
        device="cpu",
        batch_size=256,
        cache=True,
        random_state=None,
        **net_params,
    ):
        """An embedder for a trained plain ``torch.nn.Module`` (no skorch net needed).

        The module is wrapped, as it is, in a :class:`skorch.NeuralNetClassifier`
        (cross-entropy, as :func:`make_net`) that is initialised without training, so
        its weights are the module's own: a torchvision-style model one already has
        goes straight into a pipeline. Its forward pass must return logits, one per
        class.

        Parameters
        ----------
        module : torch.nn.Module
            The trained network (an instance). Used in eval mode for embeddings; its
            weights are not copied or changed (with ``frozen=False``, ``fit`` trains a
            copy, starting from these weights).
        classes : array-like of shape (n_outputs,) or None, default=None
            The label of each output of the module, in order. ``None``: ``0, 1, ...``.
        frozen : bool, default=True
            Use the module as trained (see :class:`SkorchEmbedder`); ``False``
            fine-tunes a copy by ERM in ``fit``.
        layer : str or None, default=None
            As in :class:`SkorchEmbedder`.
        device : str, default="cpu"
            Torch device the module is moved to (e.g. ``"cuda"``).
        batch_size : int, default=256
            Rows per forward pass (and per training batch).
        cache : bool, default=True
            Use the embedding cache.
        random_state : int, RandomState instance or None, default=None
            As in :class:`SkorchEmbedder` (training only).
        **net_params
            Further :func:`make_net` parameters for ``frozen=False`` (``max_epochs``,
            ``lr``, ...).

        Returns
        -------
        embedder : SkorchEmbedder
            Unfitted; with ``frozen=True`` ``transform`` and :meth:`head` work at once.

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from midlogit.backbones import SkorchEmbedder
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
        ...                             torch.nn.Linear(8, 3))  # trained elsewhere
        >>> embedder = SkorchEmbedder.from_module(model, classes=["cat", "dog", "fox"])
        >>> X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
        >>> embedder.transform(X).shape
        (5, 8)
        >>> embedder.head().classes_.tolist()
        ['cat', 'dog', 'fox']
        """
        if not isinstance(module, nn.Module):
            raise ValueError(
                f"module must be a torch.nn.Module instance, got {type(module).__name__}"
                "; for a skorch net use SkorchEmbedder(net, frozen=True)."
            )
        params = {"max_epochs": 10, "verbose": 0, **net_params}
        if classes is not None:
            params["classes"] = np.asarray(classes)
        net = make_net(module, batch_size=batch_size, device=device, **params)
        if frozen:
            net.initialize()
            n_outputs = _logit_count(net.module_)
            if classes is not None and n_outputs is not None and n_outputs != len(classes):
                raise ValueError(
                    f"classes names {len(classes)} labels but the module's last nn.Linear "
                    f"has {n_outputs} outputs; pass one label per output, in order."
                )
        return cls(
            net,
            layer=layer,
            frozen=frozen,
            batch_size=batch_size,
            cache=cache,
            random_state=random_state,
        )

    # -- cloning and fitted state

    def __sklearn_clone__(self):
        if self.frozen:
            return self
        return super().__sklearn_clone__()

    def __sklearn_is_fitted__(self):
        if hasattr(self, "net_"):
            return True
        return bool(self.frozen) and getattr(self.net, "initialized_", False)

    def _check_net(self, net):
        if isinstance(net, nn.Module):
            raise ValueError(
                f"net is a plain torch module ({type(net).__name__}); wrap it with "
                "SkorchEmbedder.from_module(module, classes=...), or pass a "
                "skorch.NeuralNetClassifier (see make_net)."
            )
        if not isinstance(net, NeuralNet):
            raise ValueError(
                f"net must be a skorch.NeuralNetClassifier (see make_net), got "
                f"{type(net).__name__}."
            )
        if not getattr(net, "initialized_", False):
            raise ValueError(
                "frozen=True needs a trained net, but net is not initialized: call "
                "net.fit(X, y) first, or pass frozen=False to train it here."
            )
        return net

    def _fitted_net(self):
        if hasattr(self, "net_"):
            return self.net_
        if self.frozen and self.net is not None:
            return self._check_net(self.net)
        raise NotFittedError(
            "This SkorchEmbedder is not fitted yet; call fit(X, y) first (or pass a "
            "trained net with frozen=True)."
        )

    def _resolve_layer(self, module, X=None, device="cpu"):
        """The embedding layer's name; for ``layer=None`` the net's output ``nn.Linear``,
        found by a forward pass on ``X`` when given, else the last registered one."""
        if self.layer is None:
            name = None if X is None else _output_linear(module, X, device)
            if name is None:
                name = _last_linear(module)
            if name is None:
                raise ValueError(
                    f"The module {type(module).__name__} has no nn.Linear layer, so "
                    "there is no default embedding; pass layer=<name> naming the "
                    f"submodule whose output to use, one of {_layer_names(module)}."
                )
            return name
        names = _layer_names(module)
        if self.layer not in names:
            raise ValueError(
                f"layer={self.layer!r} is not a submodule of {type(module).__name__}; "
                f"use one of {names} (or None for the input of the last nn.Linear)."
            )
        return self.layer

    def _classes(self, net, n_outputs):
        """Labels of the logits: the fitted ``classes_``, else the net's own."""
        if hasattr(self, "classes_"):
            return self.classes_
        return _net_classes(net, n_outputs)

    def _validate_X(self, X, reset):
        return validate(
            self, X, reset=reset, dtype=np.float32, allow_nd=True, ensure_all_finite=True
        )

    # -- fit

    def fit(self, X, y=None):
        """Train a clone of the net by ERM, or (frozen) check the input only.

        Training prints skorch's epoch table unless the net has ``verbose=0``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Raw inputs: a table (n_samples, n_features) or image tensors
            (n_samples, channels, height, width).
        y : array-like of shape (n_samples,), default=None
            Class labels; required unless ``frozen=True``.

        Returns
        -------
        self : SkorchEmbedder
        """
        self._check_params()
        if self.frozen:
            net = self._check_net(self.net)
            if y is None:
                X = self._validate_X(X, reset=True)
            else:
                X, y = validate(
                    self, X, y, dtype=np.float32, allow_nd=True, ensure_all_finite=True
                )
            _check_logit_output(net.module_, X, net.device)
            layer = self._resolve_layer(net.module_, X, net.device)
            output = layer if self.layer is None else _output_linear(net.module_, X, net.device)
            classes = _net_classes(net, _logit_count(net.module_, output))
            if y is not None:
                check_class_labels(y)
                unknown = np.setdiff1d(np.unique(y), classes)
                if unknown.size:
                    raise ValueError(
                        f"y holds labels {unknown.tolist()} the frozen net does not "
                        f"predict (its classes are {classes.tolist()}); pass y in the "
                        "net's labels."
                    )
            self.net_ = net
            self.layer_ = layer
            self.classes_ = classes
            self._record_width(X)
            return self

        X, y = validate(self, X, y, dtype=np.float32, allow_nd=True, ensure_all_finite=True)
        check_class_labels(y)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y holds 1 class ({classes[0]!r}); ERM training needs at least two.")
        seed = _seed_from(self.random_state)
        if self.net is None:
            if X.ndim != 2:
                raise ValueError(
                    f"net=None builds an MLP for 2-D tables, but X has shape {X.shape}; "
                    "pass net=make_net(ConvNet(...)) for images."
                )
            net = make_net(
                MLP(X.shape[1], classes.size, hidden=(16,), dropout=0.0),
                max_epochs=10,
                lr=1e-2,
                verbose=0,
                random_state=seed,
                reset_parameters=seed is not None,
            )
        else:
            if not isinstance(self.net, NeuralNet):
                self._check_net(self.net)
            net = clone(self.net)
        if seed is not None:
            split = net.train_split
            if (
                isinstance(split, ValidSplit)
                and split.random_state is None
                and (isinstance(split.cv, float))
            ):
                net.set_params(
                    train_split=ValidSplit(
                        split.cv, stratified=split.stratified, random_state=seed
                    )
                )
        with torch.random.fork_rng(devices=_cuda_devices(net.device)):
            if seed is not None:
                torch.manual_seed(seed)
            net.fit(X, codes.astype(np.int64))
        _check_logit_output(net.module_, X, net.device)
        layer = self._resolve_layer(net.module_, X, net.device)
        output = layer if self.layer is None else _output_linear(net.module_, X, net.device)
        n_outputs = _logit_count(net.module_, output)
        if n_outputs is not None and n_outputs != classes.size:
            raise ValueError(
                f"The module's output layer has {n_outputs} outputs but y holds "
                f"{classes.size} classes; build the module with n_classes={classes.size}."
            )
        self.net_ = net
        self.layer_ = layer
        self.classes_ = classes
        self._record_width(X)
        return self

    def _check_params(self):
        if not (isinstance(self.batch_size, int | np.integer) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}.")
        if self.frozen and self.net is None:
            raise ValueError(
                "frozen=True needs a trained net; pass net=<a fitted "
                "skorch.NeuralNetClassifier> or frozen=False."
            )

    # -- forward

    def embed(self, X):
        """Embeddings and logits of ``X`` from one forward pass (or the cache).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Raw inputs.

        Returns
        -------
        embeddings : ndarray of float32, shape (n_samples, n_dims)
        logits : ndarray of float32, shape (n_samples, n_outputs)
        """
        net = self._fitted_net()
        self._check_params()
        X = self._validate_X(X, reset=False)
        module = net.module_
        layer = (
            self.layer_ if hasattr(self, "net_") else self._resolve_layer(module, X, net.device)
        )
        if not self.cache:
            embeddings, logits = _forward(
                module, layer, self.layer is None, X, self.batch_size, net.device
            )
            _CACHE.count(X.shape[0], 0)
            return embeddings, logits

        net_key = _net_key(module, (layer, self.layer is None), X.shape[1:], net.device)
        unique_keys, first, inverse = np.unique(
            _row_keys(X), return_index=True, return_inverse=True
        )
        hit_rows, hit_embeddings, hit_logits = _CACHE.lookup(net_key, unique_keys)
        missing = np.setdiff1d(np.arange(unique_keys.size), hit_rows, assume_unique=True)
        if not missing.size:
            embeddings, logits = hit_embeddings, hit_logits
            order = np.argsort(hit_rows)
        else:
            new_embeddings, new_logits = _forward(
                module,
                layer,
                self.layer is None,
                X[first[missing]],
                self.batch_size,
                net.device,
            )
            _CACHE.add(net_key, unique_keys[missing], new_embeddings, new_logits)
            if hit_rows.size:
                embeddings = np.concatenate([hit_embeddings, new_embeddings])
                logits = np.concatenate([hit_logits, new_logits])
                order = np.argsort(np.concatenate([hit_rows, missing]))
            else:
                embeddings, logits, order = new_embeddings, new_logits, None
        _CACHE.count(missing.size, X.shape[0] - missing.size)
        rows = inverse if order is None else order[inverse]
        return embeddings[rows], logits[rows]

    def transform(self, X):
        """Embeddings of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Raw inputs.

        Returns
        -------
        embeddings : ndarray of float32, shape (n_samples, n_dims)
        """
        return self.embed(X)[0]

    def logits(self, X):
        """The module's outputs (logits) for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Raw inputs.

        Returns
        -------
        logits : ndarray of float32, shape (n_samples, n_outputs)
        """
        return self.embed(X)[1]

    def get_feature_names_out(self, input_features=None):
        """Names of the embedding dimensions: ``skorchembedder0``, ``skorchembedder1``, ...

        Parameters
        ----------
        input_features : None
            Ignored; the embedding dimensions are not input columns.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        self._fitted_net()  # NotFittedError before fit (or without a frozen net)
        if hasattr(self, "n_embedding_dims_"):
            width = self.n_embedding_dims_
        elif self.layer is None:
            width = self._final_linear("get_feature_names_out()")[2].in_features
        else:
            raise NotFittedError(
                f"The width of layer {self.layer!r} is known after fit; call fit(X) first."
            )
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(width)], dtype=object)

    def _record_width(self, X):
        """Set ``n_embedding_dims_`` (one row through the net when ``layer`` is set)."""
        module = self.net_.module_
        if self.layer is None:
            self.n_embedding_dims_ = module.get_submodule(self.layer_).in_features
        else:
            self.n_embedding_dims_ = self.embed(X[:1])[0].shape[1]

    # -- the final layer

    def _final_linear(self, what):
        net = self._fitted_net()
        if self.layer is not None:
            raise ValueError(
                f"{what} needs the default embedding (the input of the last nn.Linear), "
                f"but layer={self.layer!r}; use SkorchEmbedder(net, layer=None)."
            )
        if hasattr(self, "net_"):
            name = self.layer_
        else:
            name = self._resolve_layer(net.module_)
            self._check_unfitted_head(net, name, what)
        return net, name, net.module_.get_submodule(name)

    def _check_unfitted_head(self, net, name, what):
        """Before fit (no rows to run), the last registered nn.Linear must fit the net."""
        try:
            n_classes = len(net.classes_)
        except (AttributeError, TypeError):
            return
        linear = net.module_.get_submodule(name)
        if linear.out_features != n_classes:
            raise ValueError(
                f"{what}: the last registered nn.Linear ({name!r}) has "
                f"{linear.out_features} outputs but the net predicts {n_classes} classes, "
                "so it is not the output layer (a module may register its output layer "
                "before its body). Call fit(X) on the embedder first: it finds the output "
                "layer with a forward pass. (make_midlogit_pipeline calls head() before "
                "any fit, so there register the output layer last.)"
            )

    def head(self):
        """The net's final layer as a fitted :class:`LinearHead`.

        Its ``decision_function`` on :meth:`transform`'s embeddings reproduces the
        logits (for two classes: the logit of class 1 minus that of class 0), so
        ``LogitBandSelector(estimator=embedder.head())`` cuts its band on the ERM
        model's own logits. The head is frozen (``LinearHead(frozen=True)``): cloning
        returns it fitted, so the selector works inside
        :class:`~sklearn.model_selection.GridSearchCV` (wrapping it in
        :class:`sklearn.frozen.FrozenEstimator` works as well). Its weights keep the
        layer's float type (float32 for a float32 net). Works on a frozen embedder
        before ``fit``.

        Returns
        -------
        head : LinearHead
        """
        net, name, linear = self._final_linear("head()")
        # float32 stays float32, so logits of float32 embeddings take no more memory
        dtype = torch.float32 if linear.weight.dtype == torch.float32 else torch.float64
        weight = linear.weight.detach().cpu().to(dtype).numpy()
        if linear.bias is None:
            bias = np.zeros(weight.shape[0], dtype=weight.dtype)
        else:
            bias = linear.bias.detach().cpu().to(dtype).numpy()
        if weight.shape[0] < 2:
            raise ValueError(
                f"The last nn.Linear ({name!r}) has {weight.shape[0]} output; head() "
                "needs one logit per class, as a NeuralNetClassifier with "
                "CrossEntropyLoss has."
            )
        return LinearHead.from_weights(weight, bias, self._classes(net, weight.shape[0]))

    def with_head(self, retrainer):
        """A copy of the net whose last layer is ``retrainer``'s head.

        Parameters
        ----------
        retrainer : midlogit.retraining.LastLayerRetrainer
            Fitted on this embedder's embeddings (any fitted classifier with
            ``to_torch()`` returning an ``nn.Linear`` works).

        Returns
        -------
        net : skorch.NeuralNetClassifier
            A deep copy; the embedder's net is untouched. Its ``predict`` returns class
            indices (skorch's convention): ``retrainer.classes_[net.predict(X)]`` are
            the retrained pipeline's predictions.
        """
        net, name, linear = self._final_linear("with_head()")
        check_is_fitted(retrainer, "coef_")
        if not hasattr(retrainer, "to_torch"):
            raise ValueError(
                f"retrainer must have to_torch() (a LastLayerRetrainer), got "
                f"{type(retrainer).__name__}."
            )
        if getattr(retrainer, "n_features_in_", linear.in_features) != linear.in_features:
            raise ValueError(
                f"retrainer was fitted on {retrainer.n_features_in_} features but the "
                f"net's last layer takes {linear.in_features}; fit it on this "
                "embedder's transform(X)."
            )
        classes = self._classes(net, linear.out_features)
        new_classes = np.asarray(retrainer.classes_)
        if new_classes.shape != classes.shape or not np.array_equal(new_classes, classes):
            raise ValueError(
                f"retrainer.classes_ {new_classes.tolist()} differ from the net's "
                f"classes {classes.tolist()}; retrain on labels of every class."
            )
        layer = retrainer.to_torch().to(device=linear.weight.device, dtype=linear.weight.dtype)
        new_net = copy.deepcopy(net)
        parent_name, _, child = name.rpartition(".")
        parent = new_net.module_.get_submodule(parent_name) if parent_name else (new_net.module_)
        setattr(parent, child, layer)
        new_net.initialize_optimizer()
        return new_net

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = not self.frozen
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = self.random_state is None and not self.frozen
        return tags


def _cuda_devices(device):
    if torch.cuda.is_available() and str(device).startswith("cuda"):
        return [torch.device(device).index or 0]
    return []


def _net_classes(net, n_outputs):
    """The net's ``classes_`` when they match its outputs, else ``0 .. n_outputs - 1``."""
    try:
        classes = np.asarray(net.classes_)
    except AttributeError:
        classes = None
    if n_outputs is None or classes is None or classes.shape != (n_outputs,):
        return np.arange(n_outputs or 0)
    return classes


def _logit_count(module, name=None):
    """Outputs of the ``nn.Linear`` ``name`` (default: the last registered one)."""
    name = _last_linear(module) if name is None else name
    if name is None or not isinstance(module.get_submodule(name), nn.Linear):
        return None
    return module.get_submodule(name).out_features


def _forward(module, layer, take_input, X, batch_size, device):
    """Embeddings and logits of ``X`` in eval mode, batched, through a forward hook."""
    target = module.get_submodule(layer)
    captured = []

    def hook(_module, inputs, output):
        captured.append(inputs[0] if take_input else output)

    handle = target.register_forward_hook(hook)
    was_training = module.training
    module.eval()
    n = X.shape[0]
    embeddings = logits = None
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                batch = X[start : start + batch_size]
                captured.clear()
                try:
                    inputs = torch.from_numpy(np.require(batch, requirements="CW"))
                    output = module(inputs.to(device))
                except RuntimeError as exc:
                    raise ValueError(
                        f"The backbone could not take inputs of shape {X.shape[1:]} per "
                        f"row ({exc}); pass X shaped as the net was trained on."
                    ) from exc
                if isinstance(output, tuple | list):
                    output = output[0]
                if not captured:
                    raise ValueError(
                        f"layer {layer!r} was not called in the module's forward pass; "
                        "name a submodule that forward uses."
                    )
                emb = captured[-1].reshape(batch.shape[0], -1)
                out = output.reshape(batch.shape[0], -1)
                if embeddings is None:
                    embeddings = np.empty((n, emb.shape[1]), dtype=np.float32)
                    logits = np.empty((n, out.shape[1]), dtype=np.float32)
                embeddings[start : start + batch.shape[0]] = emb.float().cpu().numpy()
                logits[start : start + batch.shape[0]] = out.float().cpu().numpy()
    finally:
        handle.remove()
        module.train(was_training)
    return embeddings, logits


# ------------------------------------------------------------------------- pipeline


def make_midlogit_pipeline(
    net,
    band_width=0.4,
    n_clusters=4,
    *,
    band_center=0.5,
    batch_size=256,
    random_state=None,
    **retrainer_params,
):
    """The mid-range logit curation pipeline on a trained net.

    ``make_pipeline(SkorchEmbedder(net, frozen=True), LogitBandSelector(
    estimator=FrozenEstimator(embedder.head()), ...), EmbeddingClusterer(...),
    LastLayerRetrainer(...))``: raw inputs in, a retrained last layer out; the band is
    cut on the ERM net's own logits.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier
        Trained (ERM) network; used frozen.
    band_width : float, default=0.4
        Width of the logit band, in quantiles.
    n_clusters : int, default=4
        Clusters per class.
    band_center : float, default=0.5
        Centre of the band, in quantiles.
    batch_size : int, default=256
        Rows per forward pass.
    random_state : int, RandomState instance or None, default=None
        Seeds the clustering, the resampling and the retrained head.
    **retrainer_params
        Passed to :class:`~midlogit.retraining.LastLayerRetrainer` (``C``,
        ``penalty``, ``n_subsamples``, ...).

    Returns
    -------
    pipeline : midlogit.pipeline.Pipeline
        Steps ``skorchembedder``, ``logitbandselector``, ``embeddingclusterer``,
        ``lastlayerretrainer``.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.backbones import MLP, make_midlogit_pipeline, make_net
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)).astype(np.float32)
    >>> y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    >>> net = make_net(MLP(4, 2, hidden=(8,)), max_epochs=3, verbose=0, random_state=0)
    >>> net = net.fit(X, y)
    >>> pipe = make_midlogit_pipeline(net, band_width=0.6, n_clusters=2, random_state=0)
    >>> pipe.fit(X, y).predict(X[:5]).shape
    (5,)
    """
    embedder = SkorchEmbedder(net, frozen=True, batch_size=batch_size)
    return make_pipeline(
        embedder,
        LogitBandSelector(
            estimator=FrozenEstimator(embedder.head()),
            band_center=band_center,
            band_width=band_width,
            random_state=random_state,
        ),
        EmbeddingClusterer(n_clusters=n_clusters, random_state=random_state),
        LastLayerRetrainer(random_state=random_state, **retrainer_params),
    )


# ---------------------------------------------------------------------- pretraining

# Bump when the pretraining recipe changes, so that cached weights of an older recipe
# are never served for the new one.
_PRETRAIN_VERSION = 1
_PRETRAIN_LABELS = ("kind", "kind+x", "kind+x+background")
_N_X_BINS = 3


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run a block with torch limited to ``n_threads`` threads, then restore the setting.

    Measured here: on two shared cores, one thread trained the sprite net about 6x
    faster than two.

    Parameters
    ----------
    n_threads : int
        Threads for torch's intra-op parallelism inside the block.

    Examples
    --------
    >>> import torch
    >>> from midlogit.backbones import torch_threads
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class EpochProgress(Callback):
    """A skorch callback drawing a progress bar over the epochs (tqdm).

    Shows the epoch count out of ``max_epochs``, the elapsed and remaining time and
    the last training loss; skorch's own epoch table (``verbose=1``) shows neither a
    total nor the time left.

    Parameters
    ----------
    description : str, default="training"
        Label of the bar.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.backbones import MLP, EpochProgress, make_net
    >>> net = make_net(MLP(n_features=4, n_classes=2), max_epochs=2, verbose=0,
    ...                callbacks=[EpochProgress("demo")], random_state=0)
    >>> X = np.random.default_rng(0).random((32, 4), dtype=np.float32)
    >>> net = net.fit(X, np.arange(32) % 2)  # the bar is drawn on stderr
    >>> net.callbacks[0].bar_.n
    2
    """

    def __init__(self, description="training"):
        self.description = description

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, desc=self.description, unit="epoch")

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1].get("train_loss")
        if loss is not None:
            self.bar_.set_postfix(loss=f"{loss:.3f}")
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()


def sprite_convnet(n_classes=3, *, image_size=32, in_channels=1, penultimate=84):
    """The :class:`ConvNet` recipe measured for sprites (issue 11).

    16 and 32 convolution channels, max pooling and no dropout on the convolutions.
    Trained from scratch on 10,000 unbiased 32-pixel dSprites for 30 epochs with
    ``make_net(..., lr_schedule="cosine")`` it reached 0.95 worst-group accuracy on two
    seeds (today's default ``ConvNet``: 0.66 and 0.90 at a constant learning rate).
    See ``benchmarks/results/pretraining.md``.

    Parameters
    ----------
    n_classes : int, default=3
        Output logits.
    image_size : int, default=32
        Height and width of the input images.
    in_channels : int, default=1
        Image channels.
    penultimate : int, default=84
        Width of the embedding.

    Returns
    -------
    module : ConvNet

    Examples
    --------
    >>> import torch
    >>> from midlogit.backbones import sprite_convnet
    >>> sprite_convnet(4)(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 4])
    """
    return ConvNet(
        in_channels=in_channels,
        n_classes=n_classes,
        image_size=image_size,
        penultimate=penultimate,
        channels=(16, 32),
        pooling="max",
        conv_dropout=0.0,
    )


def default_cache_dir():
    """Where midlogit caches pretrained weights.

    ``$MIDLOGIT_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/midlogit``, else
    ``~/.cache/midlogit``. The directory is not created here.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import os
    >>> from midlogit.backbones import default_cache_dir
    >>> own = os.environ.get("MIDLOGIT_CACHE_DIR")
    >>> str(default_cache_dir()) == own if own else default_cache_dir().name == "midlogit"
    True
    """
    import os
    from pathlib import Path

    if os.environ.get("MIDLOGIT_CACHE_DIR"):
        return Path(os.environ["MIDLOGIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "midlogit"


def _pretraining_labels(sprites, label):
    kind = sprites.target
    n_kinds = sprites.target_names.size
    if label == "kind":
        return kind, n_kinds
    x_bin = np.minimum((sprites.latents["pos_x"] * _N_X_BINS).astype(np.intp), _N_X_BINS - 1)
    joint = kind * _N_X_BINS + x_bin
    if label == "kind+x":
        return joint, n_kinds * _N_X_BINS
    n_backgrounds = sprites.background_names.size
    return joint * n_backgrounds + sprites.background, n_kinds * _N_X_BINS * n_backgrounds


def pretrained_sprite_net(
    *,
    image_size=32,
    n_samples=24000,
    max_epochs=25,
    label="kind+x+background",
    backgrounds=True,
    lr=1e-3,
    batch_size=128,
    random_state=0,
    cache_dir=None,
    cache=True,
    verbose=0,
):
    """A :func:`sprite_convnet` pretrained on :func:`~midlogit.datasets.make_pretraining_sprites`.

    The offline stand-in for an ImageNet-pretrained backbone: trained on sprites of
    eight kinds with no shortcut, it holds the shape in its penultimate layer, ready
    to be fine-tuned on a biased task (:func:`make_finetune_net`). The weights depend
    only on the parameters (training is seeded by ``random_state``), so they are
    cached on disk under ``cache_dir`` in a file named by a hash of the parameters: a
    second call with the same parameters loads them instead of training.

    Parameters
    ----------
    image_size : int, default=32
        Image size of the pretraining sprites and of the net's input.
    n_samples : int, default=24000
        Pretraining images.
    max_epochs : int, default=25
        Pretraining epochs.
    label : {"kind", "kind+x", "kind+x+background"}, default="kind+x+background"
        What the net is trained to predict. ``"kind"``: the 8 kinds. ``"kind+x"``: the
        kind and the third of the image the sprite's x-position falls in (24 classes).
        ``"kind+x+background"``: also the background (96 classes). Position and
        background must be linearly readable in the embedding, as backgrounds are in
        ImageNet features, or a new head trained by ERM has no shortcut to take (with
        ``"kind"`` the frozen body's ERM head stayed at 0.36-0.64 worst-group
        accuracy on biased dSprites).
    backgrounds : bool, default=True
        Textured backgrounds in the pretraining images.
    lr, batch_size : float and int, default=1e-3 and 128
        Adam learning rate and batch size.
    random_state : int, default=0
        Seeds the pretraining images, the initial weights and the training.
    cache_dir : str, Path or None, default=None
        Cache directory; ``None`` uses :func:`default_cache_dir`.
    cache : bool, default=True
        ``False`` always trains and writes nothing.
    verbose : int, default=0
        1 shows a progress bar over the epochs (with the loss and the time left), 2
        prints skorch's epoch table.

    Returns
    -------
    module : ConvNet
        In eval mode, its head predicting the pretraining labels. ``module.pretraining_``
        is a dict with the ``params``, the cache ``path`` (or None), whether the weights
        were ``loaded`` from the cache, the ``seconds`` this call spent training (0 when
        loaded) and the ``train_seconds`` the weights took when they were trained.

    See Also
    --------
    make_finetune_net : the pretrained body with a new head, to fine-tune by ERM.

    Examples
    --------
    >>> import tempfile
    >>> from midlogit.backbones import pretrained_sprite_net
    >>> cache = tempfile.mkdtemp()
    >>> net = pretrained_sprite_net(n_samples=64, max_epochs=1, cache_dir=cache)
    >>> net.pretraining_["loaded"], net.head.out_features
    (False, 96)
    >>> pretrained_sprite_net(n_samples=64, max_epochs=1, cache_dir=cache).pretraining_["loaded"]
    True
    """
    import json
    import os
    import tempfile
    import time
    from pathlib import Path

    from .datasets import make_pretraining_sprites

    if label not in _PRETRAIN_LABELS:
        raise ValueError(f"label must be one of {_PRETRAIN_LABELS}, got {label!r}.")
    if not isinstance(random_state, int | np.integer) or isinstance(random_state, bool):
        raise ValueError(
            f"random_state must be an int (it names the cached weights), got {random_state!r}."
        )
    params = {
        "version": _PRETRAIN_VERSION,
        "image_size": int(image_size),
        "n_samples": int(n_samples),
        "max_epochs": int(max_epochs),
        "label": label,
        "backgrounds": bool(backgrounds),
        "lr": float(lr),
        "batch_size": int(batch_size),
        "random_state": int(random_state),
    }
    n_kinds = 8
    n_outputs = {"kind": n_kinds, "kind+x": n_kinds * _N_X_BINS}.get(
        label, n_kinds * _N_X_BINS * 4
    )
    module = sprite_convnet(n_outputs, image_size=image_size)
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = None
    if cache:
        path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        path = path / f"sprite_net-{key}.pt"
        if path.is_file():
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored.get("params") == params:
                module.load_state_dict(stored["state_dict"])
                module.eval()
                module.pretraining_ = {
                    "params": params,
                    "path": str(path),
                    "loaded": True,
                    "seconds": 0.0,
                    "train_seconds": float(stored.get("train_seconds", float("nan"))),
                }
                return module

    start = time.perf_counter()
    sprites = make_pretraining_sprites(
        n_samples, image_size=image_size, backgrounds=backgrounds, random_state=random_state
    )
    target, _ = _pretraining_labels(sprites, label)
    net = make_net(
        module,
        max_epochs=max_epochs,
        lr=lr,
        batch_size=batch_size,
        random_state=random_state,
        reset_parameters=random_state is not None,
        verbose=int(verbose >= 2),
        callbacks=[EpochProgress("pretraining")] if verbose == 1 else None,
    )
    # Every label must be present for skorch's classes to match the head's outputs;
    # the classes are fixed by the head, so train on the codes directly.
    net.set_params(classes=np.arange(n_outputs))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        net.fit(sprites.data, target.astype(np.int64))
    module = net.module_
    module.eval()
    seconds = time.perf_counter() - start
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(handle)
        stored = {"params": params, "state_dict": module.state_dict(), "train_seconds": seconds}
        torch.save(stored, tmp)
        os.replace(tmp, path)
    module.pretraining_ = {
        "params": params,
        "path": None if path is None else str(path),
        "loaded": False,
        "seconds": seconds,
        "train_seconds": seconds,
    }
    return module


def make_finetune_net(
    pretrained,
    n_classes,
    *,
    max_epochs=5,
    lr=1e-3,
    body_lr=None,
    batch_size=128,
    random_state=None,
    verbose=0,
    **kwargs,
):
    """A pretrained module with a new head, as a skorch net to fine-tune by ERM.

    The usual transfer recipe: copy the pretrained body, replace its last
    ``nn.Linear`` by a fresh one with ``n_classes`` outputs, and train. ``body_lr``
    sets how far the body may move: ``0`` freezes it (only the head is trained, batch
    norm statistics stay as pretrained), a small value gives a gentle fine-tune,
    ``None`` trains every layer at ``lr``. Pass the result to :class:`SkorchEmbedder`.

    Parameters
    ----------
    pretrained : nn.Module
        E.g. :func:`pretrained_sprite_net`; it is copied, never modified. Its last
        registered ``nn.Linear`` must be an attribute named ``head``.
    n_classes : int
        Classes of the new task.
    max_epochs : int, default=5
        Fine-tuning epochs.
    lr : float, default=1e-3
        Adam learning rate of the new head.
    body_lr : float or None, default=None
        Learning rate of every other layer; ``None`` uses ``lr``, ``0`` freezes them.
    batch_size : int, default=128
        Training batch size.
    random_state : int or None, default=None
        Seeds the new head's initial weights (fine-tuning itself is seeded by
        :class:`SkorchEmbedder`'s ``random_state``).
    verbose : int, default=0
        1 prints skorch's epoch table.
    **kwargs
        Further :func:`make_net` parameters.

    Returns
    -------
    net : skorch.NeuralNetClassifier
        Not yet initialised; its module holds the pretrained body.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.backbones import SkorchEmbedder, make_finetune_net, sprite_convnet
    >>> body = sprite_convnet(8, image_size=16)
    >>> net = make_finetune_net(body, 2, body_lr=0.0, max_epochs=1, random_state=0)
    >>> X = np.random.default_rng(0).random((20, 1, 16, 16), dtype=np.float32)
    >>> embedder = SkorchEmbedder(net, random_state=0).fit(X, np.arange(20) % 2)
    >>> embedder.transform(X).shape
    (20, 84)
    """
    if not isinstance(getattr(pretrained, "head", None), nn.Linear):
        raise ValueError(
            "pretrained must have its final nn.Linear as the attribute 'head' (as ConvNet "
            f"and MLP have); got {type(pretrained).__name__}."
        )
    if body_lr is not None and body_lr < 0:
        raise ValueError(f"body_lr must be None or >= 0, got {body_lr!r}.")
    module = copy.deepcopy(pretrained)
    module.train()
    seed = _seed_from(random_state)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        module.head = nn.Linear(module.head.in_features, n_classes)
    body = [name for name, _ in module.named_parameters() if not name.startswith("head.")]
    if body_lr == 0:
        for name, parameter in module.named_parameters():
            parameter.requires_grad_(name.startswith("head."))
        for sub in module.modules():
            if isinstance(sub, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
                sub.momentum = 0.0
    elif body_lr is not None:
        kwargs.setdefault("optimizer__param_groups", [(name, {"lr": body_lr}) for name in body])
    # random_state=None: make_net must not re-initialise the pretrained weights.
    return make_net(
        module, max_epochs=max_epochs, lr=lr, batch_size=batch_size, verbose=verbose, **kwargs
    )
