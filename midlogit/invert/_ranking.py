"""Ranks, exact AUCs from rank sums, and Mann-Whitney U p-values."""

import math

import numpy as np
import scipy.sparse as sp
from scipy.special import log_ndtr, ndtr

from ._validation import _check_activations, _check_concepts

# Below this fraction of non-zeros a dense concept matrix is multiplied as a sparse one.
_SPARSE_DENSITY = 0.03


# --------------------------------------------------------------------------- ranking


def _sort_order(X):
    """``(order, sorted_keys)`` of every row of ``X``: an argsort and sortable keys that
    are equal exactly where the values are."""
    u, n = X.shape
    X = X + 0.0  # -0.0 becomes 0.0: equal values must get equal keys
    if X.dtype == np.float32 and n < 2**32:
        # Sort (key << 32 | position) as one uint64: much faster than an argsort.
        bits = X.view(np.uint32)
        keys = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))
        packed = (keys.astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
        packed.sort(axis=1)
        return (packed & np.uint64(0xFFFFFFFF)).astype(np.intp), packed >> np.uint64(32)
    order = np.argsort(X, axis=1)
    return order, np.take_along_axis(X, order, axis=1)


def _doubled_ranks(X, mask=None, block=4):
    """Twice the average ranks of each row of ``X``, exact integers.

    Returns ``(r2, n_used, tie_term)``: ``r2`` int64 of the shape of ``X`` (0 where
    ``mask`` is False), the number of ranked entries per row and ``sum(t**3 - t)`` over
    the tie groups of each row. Rows are ranked ``block`` at a time (cache-friendly).
    """
    X = np.asarray(X)
    if X.shape[0] > block:
        parts = [
            _doubled_ranks(X[s : s + block], None if mask is None else mask[s : s + block])
            for s in range(0, X.shape[0], block)
        ]
        return tuple(np.concatenate(p) for p in zip(*parts))
    if X.dtype != np.float32:
        X64 = X.astype(np.float64)
        X32 = X64.astype(np.float32)
        X = X32 if np.array_equal(X32, X64) else X64
    u, n = X.shape
    if mask is not None:
        X = np.where(mask, X, np.inf).astype(X.dtype)
        n_used = mask.sum(axis=1)
    else:
        n_used = np.full(u, n)
    order, srt = _sort_order(X)
    new = np.empty((u, n), dtype=bool)
    new[:, 0] = True
    np.not_equal(srt[:, 1:], srt[:, :-1], out=new[:, 1:])
    starts = np.flatnonzero(new)
    sizes = np.diff(starts, append=u * n)
    row, first = np.divmod(starts, n)
    r2 = np.empty((u, n), dtype=np.int64)
    np.put_along_axis(r2, order, np.repeat(2 * first + sizes + 1, sizes).reshape(u, n), 1)
    ties = sizes > 1
    counted = ties & (first < n_used[row])
    t = sizes[counted].astype(np.float64)
    tie_term = np.bincount(row[counted], weights=t**3 - t, minlength=u)
    if mask is not None:
        r2[~mask] = 0
    return r2, n_used, tie_term


class _Concepts:
    """The concept matrix in the forms the search needs: products and columns."""

    def __init__(self, C):
        self.n, self.K = C.shape
        nnz = C.nnz if sp.issparse(C) else int(np.count_nonzero(C))
        self.sparse = sp.issparse(C) or nnz < _SPARSE_DENSITY * self.n * self.K
        if self.sparse:
            csr = sp.csr_array(C, dtype=np.float64)
            self._T = csr.T.tocsr()
            csc = csr.tocsc()
            csc.sort_indices()
            self._ptr, self._idx = csc.indptr, csc.indices
        else:
            self._dense = np.asarray(C, dtype=bool)
            self._block = max(1, (1 << 24) // self.K)

    def __sizeof__(self):
        # Dask's sizeof reads this: joblib's Dask backend scatters an argument (once for
        # every task) only when it is larger than a kilobyte.
        parts = (self._T.data, self._T.indices, self._idx) if self.sparse else (self._dense,)
        return object.__sizeof__(self) + sum(part.nbytes for part in parts)

    def tdot(self, W):
        """``C.T @ W`` in float64 for ``W`` of shape (n, m), dense or CSC."""
        if sp.issparse(W):
            if self.sparse:
                return (self._T @ W).toarray()
            out = np.empty((self.K, W.shape[1]))
            for j in range(W.shape[1]):
                part = slice(W.indptr[j], W.indptr[j + 1])
                out[:, j] = W.data[part] @ self._dense[W.indices[part]]
            return out
        if self.sparse:
            return np.asarray(self._T @ W)
        out = np.zeros((self.K, W.shape[1]))
        for s in range(0, self.n, self._block):
            block = self._dense[s : s + self._block].astype(np.float64)
            out += block.T @ W[s : s + self._block]
        return out

    def column(self, k):
        if self.sparse:
            col = np.zeros(self.n, dtype=bool)
            col[self._idx[self._ptr[k] : self._ptr[k + 1]]] = True
            return col
        return self._dense[:, k].copy()


def _check_pack(n):
    """Whether rank sum and count fit one float64 column exactly: sum < 2**53."""
    return n * (2 * n * (n + 1) + 1) < 2**53


# --------------------------------------------------------------------------- concept_auc


def concept_auc(a, C):
    """Exact ROC-AUC of activations against every concept column at once.

    The activations are ranked once (ties get their average rank, so a tie counts one
    half); the AUC of concept ``c`` is ``(S_c - n1 (n1 + 1) / 2) / (n1 n0)`` with ``S_c``
    the rank sum of its samples. No squashing: any real values give the exact AUC.

    Parameters
    ----------
    a : array-like of shape (n_samples,) or (n_samples, n_units)
        Activations of one unit, or of several as columns.
    C : {array-like, sparse matrix} of shape (n_samples, n_concepts)
        Binary concept matrix (bool or 0/1).

    Returns
    -------
    auc : ndarray of shape (n_concepts,) or (n_units, n_concepts)
        NaN for a concept that covers no sample or every sample.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.invert import concept_auc
    >>> a = np.array([0.1, 0.4, 0.35, 0.8])
    >>> C = np.array([[0, 1], [0, 1], [1, 0], [1, 0]])
    >>> concept_auc(a, C)
    array([0.75, 0.25])
    """
    A = _check_activations(a, "a", allow_1d=True)
    C, _ = _check_concepts(C, A.shape[0], name="C")
    concepts = _Concepts(C)
    n = A.shape[0]
    r2, _, _ = _doubled_ranks(A.T)
    S2 = concepts.tdot(r2.T.astype(np.float64)).T
    n1 = concepts.tdot(np.ones((n, 1))).T
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (S2 - n1 * (n1 + 1)) / (2 * n1 * (n - n1))
    auc = np.where((n1 == 0) | (n1 == n), np.nan, auc)
    return auc[0] if np.ndim(a) == 1 else auc


# SciPy's ``mannwhitneyu(method="auto")`` rule: the exact null distribution when the
# smaller sample has at most this many members and no value is tied.
_EXACT_MAX_SMALLER = 8
# Longest table of exact null counts built (float64 entries); past it, the normal
# approximation is used even where SciPy would go exact (samples of millions).
_EXACT_MAX_TABLE = 1 << 22


def _mwu_null_cdf(m, n, kmax):
    """``P(U <= k)`` for ``k = 0 .. kmax`` under the null, samples of sizes ``m <= n``.

    The number of arrangements with ``U = k`` is the coefficient of ``q**k`` in the
    Gaussian binomial ``prod_{i=1..m} (1 - q**(n + i)) / (1 - q**i)``. Truncated at
    ``kmax``, dividing by ``1 - q**i`` is a running sum with stride ``i`` and
    multiplying by ``1 - q**a`` a shifted difference, which only matters once
    ``a <= kmax``: the tails (small p-values) are sums of positive terms.
    """
    counts = np.zeros(kmax + 1)
    counts[0] = 1.0
    for i in range(1, m + 1):
        padded = np.zeros(-(-(kmax + 1) // i) * i)
        padded[: kmax + 1] = counts
        counts = np.cumsum(padded.reshape(-1, i), axis=0).ravel()[: kmax + 1]
    for a in range(n + 1, n + m + 1):
        if a > kmax:
            break
        counts[a:] = counts[a:] - counts[: kmax + 1 - a]
    return np.cumsum(counts), math.comb(m + n, m)


def _mwu_exact_sf(U, m, n):
    """``P(U' >= U)`` and its log for integer ``U`` of one pair of sample sizes."""
    m, n = min(m, n), max(m, n)
    U = np.asarray(U, dtype=np.int64)
    # by symmetry P(U' >= U) = P(U' <= m n - U); the lower side needs the shorter table
    low = U > m * n - U
    k = np.where(low, m * n - U, U - 1)
    cdf, total = _mwu_null_cdf(m, n, int(max(k.max(), 0)))
    with np.errstate(divide="ignore"):
        below = np.where(k >= 0, cdf[np.maximum(k, 0)], 0.0)
        p = np.where(low, below / total, 1.0 - below / total)
        logp = np.where(low, np.log(below) - math.log(total), np.log1p(-below / total))
    return p, logp


def _mwu_pvalues(U, n1, N, tie_term, alternative="one-sided"):
    """Mann-Whitney p-value of ``U`` and its log, as SciPy's ``mannwhitneyu`` with
    ``method="auto"``: exact when the smaller sample has at most 8 members and no value
    is tied, else the tie-corrected normal approximation with continuity correction.

    ``alternative="one-sided"`` tests "the samples in the set are higher" (SciPy's
    ``"greater"`` with the set as ``x``), ``"two-sided"`` either direction.
    """
    U, n1, N, tie_term = np.broadcast_arrays(*map(np.asarray, (U, n1, N, tie_term)))
    U, n1, N = (np.asarray(v, dtype=np.float64) for v in (U, n1, N))
    n0 = N - n1
    two = alternative == "two-sided"
    if two:
        U = np.maximum(U, n1 * n0 - U)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = n1 * n0 / 12.0 * ((N + 1) - tie_term / (N * (N - 1.0)))
        z = (U - n1 * n0 / 2.0 - 0.5) / np.sqrt(var)
    p, logp = np.array(ndtr(-z)), np.array(log_ndtr(-z))
    small = np.minimum(n1, n0)
    exact = (small >= 1) & (small <= _EXACT_MAX_SMALLER) & (tie_term == 0)
    exact &= small * np.maximum(n1, n0) / 2 <= _EXACT_MAX_TABLE
    if exact.any():
        sizes = np.stack([n1[exact], n0[exact]], axis=1).astype(np.int64)
        pairs, which = np.unique(sizes, axis=0, return_inverse=True)
        pe, le = np.empty(sizes.shape[0]), np.empty(sizes.shape[0])
        for j, (m, n) in enumerate(pairs):
            rows = which.ravel() == j
            pe[rows], le[rows] = _mwu_exact_sf(np.rint(U[exact][rows]), int(m), int(n))
        p[exact], logp[exact] = pe, le
    if two:
        p, logp = np.minimum(2 * p, 1.0), np.minimum(logp + math.log(2), 0.0)
    return p, logp
