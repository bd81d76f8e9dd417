"""Torch modules: a LeNet-style :class:`ConvNet` and an :class:`MLP`."""

import numpy as np
from torch import nn

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
