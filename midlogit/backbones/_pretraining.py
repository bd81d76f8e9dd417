"""Pretraining on sprites and fine-tuning: :func:`sprite_convnet`,
:func:`pretrained_sprite_net` (cached on disk) and :func:`make_finetune_net`.
"""

import copy
import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._modules import ConvNet
from ._training import EpochProgress, _seed_from, make_net

# ---------------------------------------------------------------------- pretraining

# Bump when the pretraining recipe changes, so that cached weights of an older recipe
# are never served for the new one.
_PRETRAIN_VERSION = 1
_PACKAGED_WEIGHTS = Path(__file__).resolve().parent / "weights"
_PRETRAIN_LABELS = ("kind", "kind+x", "kind+x+background")
_N_X_BINS = 3


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
        ``False`` always trains and writes nothing. With ``True``, weights are read
        from ``cache_dir`` or, for the demo's parameters, from the copy shipped in
        the package (``midlogit/backbones/weights/``, regenerated bit for bit by
        ``benchmarks/make_packaged_weights.py``), and trained only when neither holds
        them.
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

    from ..datasets import make_pretraining_sprites

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
        # the user's cache first, then the weights shipped with the package (the demo's)
        for stored_path in (path, _PACKAGED_WEIGHTS / path.name):
            if stored_path.is_file():
                stored = torch.load(stored_path, map_location="cpu", weights_only=True)
                if stored.get("params") == params:
                    module.load_state_dict(stored["state_dict"])
                    module.eval()
                    module.pretraining_ = {
                        "params": params,
                        "path": str(stored_path),
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
