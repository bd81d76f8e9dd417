"""Coloured digits: scikit-learn's 8 x 8 digits with a colour shortcut."""

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._sampling import _group_names, _shortcut
from ._validation import _check_fraction, _check_n_samples

_COLOURS_2 = (("red", (1.0, 0.0, 0.0)), ("green", (0.0, 1.0, 0.0)))
_COLOURS_10 = (
    ("blue", (0.12, 0.47, 0.71)),
    ("orange", (1.0, 0.5, 0.05)),
    ("green", (0.17, 0.63, 0.17)),
    ("red", (0.84, 0.15, 0.16)),
    ("purple", (0.58, 0.4, 0.74)),
    ("brown", (0.55, 0.34, 0.29)),
    ("pink", (0.89, 0.47, 0.76)),
    ("gray", (0.5, 0.5, 0.5)),
    ("olive", (0.74, 0.74, 0.13)),
    ("cyan", (0.09, 0.75, 0.81)),
)
# load_digits rows [0, 1198) are the "train" subset and [1198, 1797) the "test" subset:
# a contiguous two-thirds split, so the two share no image and mostly no writer.
_DIGITS_TRAIN_ROWS = 1198


# ------------------------------------------------------------------------------- digits


def make_colored_digits(n_samples=None, *, bias=0.9, n_classes=2, subset="all", random_state=None):
    """scikit-learn's 8 x 8 digits tinted with a colour that can give the label away.

    Like Coloured-MNIST, the strokes of each digit are painted in one colour of a
    palette (black stays black). In the biased subset the colour is the label's colour;
    in the control it is independent of the label (balanced within every class). The
    images come from :func:`sklearn.datasets.load_digits` (bundled, nothing is
    downloaded).

    Parameters
    ----------
    n_samples : int or None, default=None
        ``None`` uses every digit of ``subset`` once. Otherwise digits are drawn at
        random from ``subset``, without replacement while there are enough, with
        replacement beyond (the same image may then appear in two colours).
    bias : float in [0, 1], default=0.9
        Fraction of rows whose colour is the label's colour (exactly
        ``round(bias * n)``, spread over the classes in proportion). ``0.0`` gives
        unbiased data.
    n_classes : {2, 10}, default=2
        2: digit < 5 versus digit >= 5, coloured red and green. 10: the digit itself,
        ten colours.
    subset : {"all", "train", "test"}, default="all"
        Which of the 1797 digits to use: ``"train"`` the first 1198, ``"test"`` the last
        599 (a fixed contiguous split, so train and test never share an image,
        whatever ``random_state``).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws and colours.

    Returns
    -------
    data : Bunch
        Dictionary-like object with

        data : ndarray of shape (n, 3, 8, 8), float32
            RGB images in [0, 1].
        target : ndarray of shape (n,)
            Class label.
        spurious : ndarray of shape (n,)
            Colour id (the colour of class ``k`` is ``k``).
        groups : ndarray of shape (n,)
            ``target * n_classes + spurious``.
        group_names, target_names, spurious_names : ndarray of str
            E.g. ``"0-4@red"``; ``["0-4", "5-9"]``; ``["red", "green"]``.
        palette : ndarray of shape (n_classes, 3), float32
            RGB of every colour.
        digit : ndarray of shape (n,)
            The digit (0-9) shown.
        image_index : ndarray of shape (n,)
            Row of the image in ``load_digits()``.
        from_biased_subset : ndarray of bool, shape (n,)
            Whether the row was drawn from the shortcut-aligned subset.

    Examples
    --------
    >>> from midlogit.datasets import make_colored_digits
    >>> train = make_colored_digits(bias=0.9, subset="train", random_state=0)
    >>> train.data.shape, train.data.dtype
    ((1198, 3, 8, 8), dtype('float32'))
    >>> test = make_colored_digits(bias=0.0, subset="test", random_state=0)
    >>> set(train.image_index.tolist()) & set(test.image_index.tolist())
    set()
    """
    from sklearn.datasets import load_digits

    if n_samples is not None:
        n_samples = _check_n_samples(n_samples)
    bias = _check_fraction(bias, "bias")
    if n_classes not in (2, 10) or isinstance(n_classes, bool):
        raise ValueError(
            f"n_classes must be 2 (digit < 5 versus >= 5) or 10 (the digit), got {n_classes!r}."
        )
    subsets = {
        "all": slice(None),
        "train": slice(0, _DIGITS_TRAIN_ROWS),
        "test": slice(_DIGITS_TRAIN_ROWS, None),
    }
    if not isinstance(subset, str) or subset not in subsets:
        raise ValueError(f"subset must be 'all', 'train' or 'test', got {subset!r}.")
    rng = check_random_state(random_state)

    digits = load_digits()
    available = np.arange(digits.target.size)[subsets[subset]]
    if n_samples is None:
        rows = rng.permutation(available)
    else:
        rows = rng.choice(available, size=n_samples, replace=n_samples > available.size)
    digit = digits.target[rows]
    target = digit if n_classes == 10 else (digit >= 5).astype(digit.dtype)
    colour, from_biased = _shortcut(target, n_classes, bias, rng)

    names, rgb = zip(*(_COLOURS_2 if n_classes == 2 else _COLOURS_10))
    palette = np.array(rgb, dtype=np.float32)
    grey = digits.images[rows].astype(np.float32) / 16.0
    images = grey[:, None, :, :] * palette[colour][:, :, None, None]
    target_names = (
        np.array(["0-4", "5-9"]) if n_classes == 2 else np.array([str(d) for d in range(10)])
    )
    spurious_names = np.array(names)
    return Bunch(
        data=images,
        target=target,
        spurious=colour,
        groups=target * n_classes + colour,
        group_names=_group_names(target_names, spurious_names),
        target_names=target_names,
        spurious_names=spurious_names,
        palette=palette,
        digit=digit,
        image_index=rows,
        from_biased_subset=from_biased,
    )
