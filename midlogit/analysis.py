"""Analysis tools of O'Mahony et al. (WACV 2025) as NumPy functions.

The paper reads a unit or a logit over its whole range, not only at its maximum:
:func:`activation_bands` cuts the range into equal-count quantile bands,
:func:`extremal_and_midrange_indices` picks the samples at the top and in the middle,
:func:`band_composition` tabulates which groups fill each band, and
:func:`representational_similarity` with :func:`rsm_block_contrast` turns "the
similarity matrix sorted by shape looks blocky, sorted by x-position it does not" into
two numbers. Every function takes and returns NumPy arrays; none imports torch or
matplotlib (see :mod:`midlogit.plotting` for the figures).
"""

from typing import NamedTuple

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "ExtremalMidrange",
    "activation_bands",
    "band_composition",
    "extremal_and_midrange_indices",
    "representational_similarity",
    "rsm_block_contrast",
    "sort_rsm",
]

_METRICS = ("cosine", "correlation", "linear")


def _check_activations(a, name="a"):
    """A finite, non-empty 1-D float64 array."""
    arr = np.asarray(a)
    if arr.ndim == 2 and 1 in arr.shape:
        raise ValueError(
            f"{name} must be 1-D (one value per sample), got shape {arr.shape}; pass "
            f"{name}.ravel() or select one column, e.g. logits[:, k]."
        )
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one value per sample of a unit or logit), got "
            f"{arr.ndim}-D shape {arr.shape}; select one column, e.g. logits[:, k]."
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty; pass at least one sample.")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} holds NaN or infinite values; drop or impute those samples first."
        )
    return arr.astype(np.float64, copy=False)


def _check_labels(labels, n, name):
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per sample), got shape {arr.shape}.")
    if arr.shape[0] != n:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but there are {n} samples; pass one "
            "label per sample."
        )
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} holds NaN; every sample needs a label.")
    return arr


def _check_n_bands(n_bands, n):
    if isinstance(n_bands, bool) or not isinstance(n_bands, int | np.integer):
        raise ValueError(f"n_bands must be an integer, got {n_bands!r}.")
    if not 1 <= n_bands <= n:
        raise ValueError(
            f"n_bands must be between 1 and the number of samples ({n}), got {n_bands}; "
            "use fewer bands or more samples."
        )


def _check_square(rsm):
    arr = np.asarray(rsm)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(
            f"rsm must be a square n x n similarity matrix, got shape {arr.shape}; build "
            "one with representational_similarity(E)."
        )
    if arr.shape[0] == 0:
        raise ValueError("rsm is empty; pass at least one sample.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("rsm holds NaN or infinite values; check the embeddings.")
    return arr


def _ordinal_ranks(a):
    """0-based ranks, ties broken by sample order."""
    order = np.argsort(a, kind="stable")
    ranks = np.empty(a.shape[0], dtype=np.intp)
    ranks[order] = np.arange(a.shape[0])
    return ranks


def activation_bands(a, n_bands, *, ties="order"):
    """Quantile band of every sample of a unit or logit.

    Band ``b`` holds the samples whose rank lies in ``[b n / n_bands, (b + 1) n /
    n_bands)``, so band 0 holds the lowest activations and band ``n_bands - 1`` the
    highest.

    Parameters
    ----------
    a : array-like of shape (n_samples,)
        Activation of one unit (or one class logit) on every sample.
    n_bands : int
        Number of bands, between 1 and ``n_samples``.
    ties : {"order", "lowest"}, default="order"
        ``"order"`` breaks ties by sample order, so bands hold equal counts (within
        one) even when many values tie, e.g. the zeros of a ReLU unit. ``"lowest"``
        puts tied samples together in the band of the first of them; counts may then
        be unequal and some bands empty.

    Returns
    -------
    bands : ndarray of int, shape (n_samples,)
        Band index of each sample, 0 for the lowest.

    Examples
    --------
    >>> from midlogit.analysis import activation_bands
    >>> activation_bands([0.3, -1.0, 2.0, 0.1, 5.0, 0.0], n_bands=3)
    array([1, 0, 2, 1, 2, 0])
    >>> activation_bands([0, 0, 0, 0, 1, 2], n_bands=3, ties="lowest")
    array([0, 0, 0, 0, 2, 2])
    """
    a = _check_activations(a)
    n = a.shape[0]
    _check_n_bands(n_bands, n)
    if ties == "order":
        ranks = _ordinal_ranks(a)
    elif ties == "lowest":
        ranks = np.searchsorted(np.sort(a), a, side="left")
    else:
        raise ValueError(f"ties must be 'order' or 'lowest', got {ties!r}.")
    return (ranks * n_bands) // n


class ExtremalMidrange(NamedTuple):
    """Indices of a unit's top samples and of samples from its mid-range band.

    Returned by :func:`extremal_and_midrange_indices`; unpacks as ``top, mid``.

    Attributes
    ----------
    top : ndarray of int
        The samples with the highest activations, highest first.
    mid : ndarray of int
        Samples of the mid-range band, highest activation first.

    Examples
    --------
    >>> from midlogit.analysis import extremal_and_midrange_indices
    >>> result = extremal_and_midrange_indices([0.0, 3.0, 1.0, 2.0, 4.0], k=1)
    >>> result.top.tolist(), result.mid.tolist()
    ([4], [3])
    """

    top: np.ndarray
    mid: np.ndarray


def extremal_and_midrange_indices(a, k, band=(0.4, 0.6), *, strategy="center", random_state=None):
    """Indices of the top ``k`` samples of a unit and of ``k`` mid-range samples.

    The extremes give the unit's prototypical label; the mid-range holds the weaker,
    often confounded, associations the paper studies.

    Parameters
    ----------
    a : array-like of shape (n_samples,)
        Activation of one unit (or one class logit).
    k : int
        Samples to return from each end; at least 1.
    band : tuple of float, default=(0.4, 0.6)
        Mid-range band as quantiles ``(lo, hi)`` with ``0 <= lo < hi <= 1``. A sample
        belongs to it when its value lies between the ``lo`` and ``hi`` quantiles of
        ``a`` (inclusive), as in :class:`midlogit.selection.LogitBandSelector`.
    strategy : {"center", "random"}, default="center"
        ``"center"`` takes the ``k`` band members whose rank is closest to the band's
        centre quantile (deterministic; ties by rank). ``"random"`` draws ``k`` band
        members without replacement using ``random_state``.
    random_state : int, RandomState instance or None, default=None
        Seeds ``strategy="random"``; ignored otherwise.

    Returns
    -------
    result : ExtremalMidrange
        Named tuple ``(top, mid)`` of integer index arrays of length ``k``: ``top``
        ordered from the highest activation down (ties by sample order), ``mid``
        ordered by decreasing activation.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.analysis import extremal_and_midrange_indices
    >>> a = np.arange(10.0)
    >>> top, mid = extremal_and_midrange_indices(a, k=2)
    >>> top.tolist(), mid.tolist()
    ([9, 8], [5, 4])
    """
    a = _check_activations(a)
    n = a.shape[0]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    if k > n:
        raise ValueError(f"k={k} exceeds the number of samples ({n}); use a smaller k.")
    lo, hi = _check_band(band)
    if strategy not in ("center", "random"):
        raise ValueError(f"strategy must be 'center' or 'random', got {strategy!r}.")

    ranks = _ordinal_ranks(a)
    top = np.argsort(-a, kind="stable")[:k]

    q_lo, q_hi = np.quantile(a, [lo, hi])
    members = np.flatnonzero((a >= q_lo) & (a <= q_hi))
    if members.size < k:
        raise ValueError(
            f"The band {band} holds {members.size} samples, fewer than k={k}; widen "
            "band or lower k."
        )
    if strategy == "center":
        centre = 0.5 * (lo + hi) * (n - 1)
        distance = np.abs(ranks[members] - centre)
        chosen = members[np.lexsort((ranks[members], distance))[:k]]
    else:
        rng = check_random_state(random_state)
        chosen = rng.choice(members, size=k, replace=False)
    mid = chosen[np.argsort(-ranks[chosen], kind="stable")]
    return ExtremalMidrange(top=top.astype(np.intp), mid=mid.astype(np.intp))


def _check_band(band):
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(f"band must be a pair of quantiles (lo, hi), got {band!r}.") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"band must satisfy 0 <= lo < hi <= 1 (quantiles), got {band!r}.")
    return lo, hi


def band_composition(a, groups, n_bands):
    """Share of each group in each quantile band of a unit or logit.

    The paper's observation as a table: the mid-range of the "square" logit of a model
    trained with shape tied to x-position is full of non-squares at the squares'
    x-positions.

    Parameters
    ----------
    a : array-like of shape (n_samples,)
        Activation of one unit (or one class logit).
    groups : array-like of shape (n_samples,)
        Group of each sample (any sortable labels).
    n_bands : int
        Number of equal-count bands (see :func:`activation_bands`, ties by order).

    Returns
    -------
    composition : ndarray of shape (n_bands, n_groups)
        Row ``b`` holds the share of each group among the samples of band ``b``
        (band 0 lowest); rows sum to 1.
    group_names : ndarray of shape (n_groups,)
        Column order, ``np.unique(groups)``.

    Examples
    --------
    >>> from midlogit.analysis import band_composition
    >>> comp, names = band_composition([1, 2, 3, 4], ["x", "x", "y", "x"], n_bands=2)
    >>> comp
    array([[1. , 0. ],
           [0.5, 0.5]])
    >>> names.tolist()
    ['x', 'y']
    """
    a = _check_activations(a)
    n = a.shape[0]
    groups = _check_labels(groups, n, "groups")
    bands = activation_bands(a, n_bands)
    names, codes = np.unique(groups, return_inverse=True)
    counts = np.bincount(bands * names.size + codes, minlength=n_bands * names.size).reshape(
        n_bands, names.size
    )
    return counts / counts.sum(axis=1, keepdims=True), names


def representational_similarity(E, metric="cosine"):
    """Similarity matrix of embeddings (a representational similarity matrix, RSM).

    Parameters
    ----------
    E : array-like of shape (n_samples, n_features)
        Embeddings, e.g. penultimate-layer features of test images.
    metric : {"cosine", "correlation", "linear"}, default="cosine"
        ``"cosine"``: cosine of the angle between rows. ``"correlation"``: Pearson
        correlation between rows (cosine after centring each row). ``"linear"``: dot
        products. For cosine and correlation, a zero (or constant) row has similarity 0
        with every other row, and the diagonal is exactly 1.

    Returns
    -------
    rsm : ndarray of float32, shape (n_samples, n_samples)
        Symmetric. It takes ``4 n²`` bytes (1.6 GB for 20 000 samples); subsample
        before computing it for a large test set.

    Examples
    --------
    >>> from midlogit.analysis import representational_similarity
    >>> representational_similarity([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    array([[1., 1., 0.],
           [1., 1., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    E = np.asarray(E)
    if E.ndim != 2:
        raise ValueError(
            f"E must be 2-D (n_samples, n_features), got shape {E.shape}; reshape a "
            "single feature with E.reshape(-1, 1)."
        )
    if E.shape[0] == 0 or E.shape[1] == 0:
        raise ValueError(f"E must have at least one sample and one feature, got {E.shape}.")
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}.")
    E = E.astype(np.float32)  # a copy: the caller's array is never touched
    if not np.all(np.isfinite(E)):
        raise ValueError("E holds NaN or infinite values; drop or impute those rows first.")
    if metric == "linear":
        return _symmetrize(E @ E.T)
    scale = np.max(np.abs(E), axis=1)
    if metric == "correlation":
        E -= E.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(E, axis=1)
    # rows at rounding level of their own scale (zero, or constant after centring)
    nonzero = norms > 4 * np.finfo(np.float32).eps * np.sqrt(E.shape[1]) * scale
    nonzero &= norms > 0
    E[nonzero] /= norms[nonzero, None]
    E[~nonzero] = 0.0
    rsm = _symmetrize(E @ E.T)
    np.clip(rsm, -1.0, 1.0, out=rsm)
    np.fill_diagonal(rsm, 1.0)
    return rsm


def _symmetrize(S, block=256):
    """Average ``S`` with its transpose in place, tile by tile (cache-friendly)."""
    n = S.shape[0]
    for i in range(0, n, block):
        for j in range(i, n, block):
            upper, lower = S[i : i + block, j : j + block], S[j : j + block, i : i + block]
            mean = (upper + lower.T) * 0.5
            upper[...] = mean
            lower[...] = mean.T
    return S


def _block_codes(labels, n):
    labels = _check_labels(labels, n, "labels")
    names, codes = np.unique(labels, return_inverse=True)
    return names, codes


def rsm_block_contrast(rsm, labels):
    """Mean similarity within label blocks minus mean similarity between blocks.

    Within-block pairs exclude the diagonal (a sample with itself). A representation
    organised by ``labels`` scores high; labels it ignores score near 0. Comparing the
    contrast for shape with that for x-position tells which of the two a model encodes.

    Parameters
    ----------
    rsm : array-like of shape (n_samples, n_samples)
        Similarity matrix, e.g. from :func:`representational_similarity`.
    labels : array-like of shape (n_samples,)
        Attribute of each sample (e.g. shape, or binned x-position). Needs at least two
        distinct labels and at least one label shared by two samples.

    Returns
    -------
    contrast : float
        Mean over within-block off-diagonal pairs minus mean over between-block pairs,
        each pair of entries counted as it appears in ``rsm``.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.analysis import rsm_block_contrast
    >>> rsm = np.array([[1.0, 0.8, 0.1], [0.8, 1.0, 0.2], [0.1, 0.2, 1.0]])
    >>> rsm_block_contrast(rsm, [0, 0, 1])
    0.65
    """
    rsm = _check_square(rsm)
    n = rsm.shape[0]
    names, codes = _block_codes(labels, n)
    if names.size < 2:
        raise ValueError(
            "labels has a single value; block contrast needs at least two distinct labels."
        )
    sizes = np.bincount(codes)
    n_within = int(np.sum(sizes.astype(np.int64) ** 2)) - n
    if n_within == 0:
        raise ValueError(
            "every label occurs once, so there are no within-block pairs; pass coarser "
            "labels (e.g. bin a continuous attribute)."
        )
    dtype = rsm.dtype if rsm.dtype in (np.float32, np.float64) else np.float64
    onehot = np.zeros((n, names.size), dtype=dtype)
    onehot[np.arange(n), codes] = 1.0
    # n x n stays in its own dtype (no float64 copy of a large RSM); the small sums do not
    row_block_sums = (rsm.astype(dtype, copy=False) @ onehot).astype(np.float64)
    block_sums = onehot.T.astype(np.float64) @ row_block_sums
    total = block_sums.sum()
    within = np.trace(block_sums) - np.trace(rsm, dtype=np.float64)
    n_between = n * n - n_within - n
    return float(within / n_within - (total - np.trace(block_sums)) / n_between)


def sort_rsm(rsm, labels):
    """Reorder a similarity matrix so that samples with equal labels are adjacent.

    Parameters
    ----------
    rsm : array-like of shape (n_samples, n_samples)
        Similarity matrix.
    labels : array-like of shape (n_samples,)
        Sort key; equal labels keep their original order (stable sort).

    Returns
    -------
    rsm_sorted : ndarray of shape (n_samples, n_samples)
        ``rsm[order][:, order]`` (a new array).
    order : ndarray of int, shape (n_samples,)
        The permutation applied; ``labels[order]`` is sorted.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.analysis import sort_rsm
    >>> rsm = np.array([[1.0, 0.1, 0.9], [0.1, 1.0, 0.2], [0.9, 0.2, 1.0]])
    >>> sorted_rsm, order = sort_rsm(rsm, ["a", "b", "a"])
    >>> order.tolist()
    [0, 2, 1]
    >>> sorted_rsm[0].tolist()
    [1.0, 0.9, 0.1]
    """
    rsm = _check_square(rsm)
    labels = _check_labels(labels, rsm.shape[0], "labels")
    order = np.argsort(labels, kind="stable")
    return rsm[np.ix_(order, order)], order
