"""Balanced and shortcut sampling: which rows a biased data set keeps."""

import numpy as np

# --------------------------------------------------------------------- balanced sampling


def _group_ranks(labels, rng):
    """Random rank of every row within its label, label codes and label counts."""
    _, codes = np.unique(labels, return_inverse=True)
    perm = rng.permutation(codes.size)
    order = perm[np.argsort(codes[perm], kind="stable")]
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ranks = np.empty(codes.size, dtype=np.intp)
    ranks[order] = np.arange(codes.size) - starts[codes[order]]
    return ranks, codes, counts


def _balanced_labels(n, k, rng):
    """``n`` labels in ``range(k)`` whose counts differ by at most one, shuffled."""
    return rng.permutation((np.arange(n) + rng.randint(k)) % k)


def _stratified_mask(labels, n_select, rng):
    """Mask of exactly ``n_select`` rows, spread over the labels in proportion."""
    mask = np.zeros(len(labels), dtype=bool)
    if n_select == 0:
        return mask
    ranks, codes, counts = _group_ranks(labels, rng)
    quantile = (ranks + 0.5) / counts[codes]
    mask[np.lexsort((rng.random_sample(len(labels)), quantile))[:n_select]] = True
    return mask


def _balanced_within(labels, k, rng):
    """Values in ``range(k)`` balanced (counts within one) inside every label."""
    ranks, codes, counts = _group_ranks(labels, rng)
    offsets = rng.randint(k, size=counts.size)
    return (ranks + offsets[codes]) % k


def _shortcut(target, n_spurious, bias, rng):
    """The spurious attribute: equal to ``target`` on the biased subset, else balanced."""
    n_biased = int(np.floor(bias * target.size + 0.5))
    from_biased = _stratified_mask(target, n_biased, rng)
    spurious = np.empty(target.size, dtype=np.intp)
    spurious[from_biased] = target[from_biased]
    control = ~from_biased
    if control.any():
        spurious[control] = _balanced_within(target[control], n_spurious, rng)
    return spurious, from_biased


def _group_names(target_names, spurious_names):
    return np.array([f"{t}@{s}" for t in target_names for s in spurious_names])
