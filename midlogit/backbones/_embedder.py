"""The embedder: :class:`SkorchEmbedder`."""

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from skorch import NeuralNet
from skorch.dataset import ValidSplit
from torch import nn

from ..base import check_class_labels, validate
from ._cache import _CACHE, _net_key, _row_keys
from ._final_layer import FinalLayerMixin
from ._memmap import _embed_to_npy
from ._modules import MLP
from ._nets import (
    _check_logit_output,
    _cuda_devices,
    _forward,
    _last_linear,
    _layer_names,
    _logit_count,
    _net_classes,
    _output_linear,
)
from ._training import _seed_from, make_net


class SkorchEmbedder(FinalLayerMixin, TransformerMixin, BaseEstimator):
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
    midlogit.recipes.make_midlogit_pipeline : the curation pipeline on a frozen embedder.

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
        self, net=None, *, layer=None, frozen=False, batch_size=256, cache=True, random_state=None
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
        return self._embed(X, self.cache)

    def _embed(self, X, cache):
        net = self._fitted_net()
        self._check_params()
        X = self._validate_X(X, reset=False)
        module = net.module_
        layer = (
            self.layer_ if hasattr(self, "net_") else self._resolve_layer(module, X, net.device)
        )
        if not cache:
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

    def embed_to_npy(self, X, embeddings_path, logits_path=None, *, progress=True):
        """Write the embeddings (and logits) of a large input to ``.npy`` files.

        Rows go through the net ``batch_size`` at a time, straight into memory-mapped
        files (the row cache is not used), so neither ``X`` nor its embeddings need fit
        in memory.

        Parameters
        ----------
        X : array-like, :class:`~midlogit.datasets.LazyImages` or torch Dataset
            Raw inputs, indexed by row; a ``torch.utils.data.Dataset`` is read through a
            ``DataLoader`` (of an item ``(x, y, ...)`` only ``x`` is used).
        embeddings_path, logits_path : str or Path
            Files to write; without ``logits_path`` no logits are kept.
        progress : bool, default=True
            Show a progress bar.

        Returns
        -------
        embeddings, logits : numpy.memmap (read-only)
            The files opened with ``np.load(path, mmap_mode="r")``; ``logits`` is None
            without ``logits_path``.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> import numpy as np
        >>> from midlogit.backbones import MLP, SkorchEmbedder, make_net
        >>> X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
        >>> net = make_net(MLP(4, 2, hidden=(8,)), max_epochs=1, verbose=0, random_state=0)
        >>> embedder = SkorchEmbedder(net, random_state=0).fit(X, X[:, 0] > 0)
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> E, L = embedder.embed_to_npy(X, folder / "E.npy", folder / "L.npy", progress=False)
        >>> E.shape, L.shape, bool(np.allclose(E, embedder.transform(X)))
        ((50, 8), (50, 2), True)
        """
        return _embed_to_npy(self, X, embeddings_path, logits_path, progress)

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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = not self.frozen
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = self.random_state is None and not self.frozen
        return tags
