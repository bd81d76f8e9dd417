"""INVERT: label neural representations with compositional concepts.

Bykov et al., "Labeling Neural Representations with Inverse Recognition" (NeurIPS
2023). For a unit (a neuron, a pooled channel or a class logit) and a binary concept
matrix ``C`` (samples x concepts), INVERT searches formulas over the concepts -- literals
``c`` and ``~c`` joined left to right by ``&`` and ``|`` -- for the one whose indicator the
unit ranks highest, measured by ROC-AUC, and tests it with a Mann-Whitney U test.

How it is computed here: each unit's activations are ranked once (average ranks for
ties). The AUC of any indicator ``f`` then follows from its size ``n1`` and the rank sum
``S`` of its samples, ``AUC = (S - n1 (n1 + 1) / 2) / (n1 n0)``. The rank sums of
every "beam entry AND concept" for all concepts, all beam entries and many units at once
are one product ``C.T @ (ranks * F)`` (sparse or BLAS); AND-NOT follows by subtraction and
OR by inclusion-exclusion. Doubled ranks are integers and the products run in float64,
where integer sums stay exact, so every AUC is exact. Equal supports have equal counts
and rank sums; only candidates whose (count, rank sum) collide have their indicators
compared, so the beam never holds two formulas with one support.
"""

import csv
import io
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from joblib import effective_n_jobs
from scipy.special import log_ndtr, ndtr
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from .datasets import _read_lines

__all__ = [
    "ConceptLabeler",
    "Explanation",
    "Formula",
    "concept_auc",
    "label_files",
]

# Below this fraction of non-zeros a dense concept matrix is multiplied as a sparse one.
_SPARSE_DENSITY = 0.03
# Most units processed together in one matrix product.
_MAX_CHUNK_UNITS = 64
# Below this fraction of samples covered, beam indicators are multiplied as sparse.
_SPARSE_WEIGHTS = 0.1


# --------------------------------------------------------------------------- formulas


@dataclass(frozen=True)
class Formula:
    """A formula over concepts: literals joined left to right by ``&`` and ``|``.

    ``((l0 op1 l1) op2 l2) ...``, where each literal is a concept or its negation.

    Parameters
    ----------
    literals : tuple of (int, bool)
        ``(concept_index, negated)`` per literal, indices into the columns of ``C``.
    operators : tuple of str
        ``"&"`` or ``"|"``, one fewer than ``literals``.
    names : tuple of str
        The concept name of each literal, used by ``str``.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.invert import Formula
    >>> f = Formula(((0, False), (1, True), (2, False)), ("&", "|"),
    ...             ("water", "land", "boat"))
    >>> str(f), f.length
    ('(water & ~land) | boat', 3)
    >>> C = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=bool)
    >>> f.evaluate(C)
    array([ True, False,  True, False])
    """

    literals: tuple
    operators: tuple = ()
    names: tuple = ()

    def __post_init__(self):
        literals = tuple((int(k), bool(neg)) for k, neg in self.literals)
        operators = tuple(self.operators)
        if not literals:
            raise ValueError("literals is empty: a formula needs at least one literal.")
        if len(operators) != len(literals) - 1 or any(op not in "&|" for op in operators):
            raise ValueError(
                "operators must hold one '&' or '|' between consecutive literals; got "
                f"{operators!r} for {len(literals)} literals."
            )
        names = tuple(str(n) for n in self.names) or tuple(f"c{k}" for k, _ in literals)
        if len(names) != len(literals):
            raise ValueError(
                f"names must hold one name per literal ({len(literals)}), got {len(names)}."
            )
        object.__setattr__(self, "literals", literals)
        object.__setattr__(self, "operators", operators)
        object.__setattr__(self, "names", names)

    @property
    def length(self):
        """Number of literals."""
        return len(self.literals)

    @property
    def concepts(self):
        """Names of the concepts used, in order of first use."""
        return tuple(dict.fromkeys(self.names))

    def evaluate(self, C):
        """Indicator of the formula on the rows of ``C``.

        Parameters
        ----------
        C : {array-like, sparse matrix} of shape (n_samples, n_concepts)
            Binary concept matrix with the columns used in ``fit``.

        Returns
        -------
        indicator : ndarray of bool of shape (n_samples,)
        """
        if sp.issparse(C):
            C = sp.csc_array(C)
        else:
            C = np.asarray(C)
        if C.ndim != 2:
            raise ValueError(f"C must be 2-D (n_samples, n_concepts), got shape {C.shape}.")
        top = max(k for k, _ in self.literals)
        if top >= C.shape[1]:
            raise ValueError(
                f"C has {C.shape[1]} columns but the formula uses concept index {top}: "
                "pass the concept matrix the labeler was fitted on."
            )

        def literal(k, neg):
            col = (C[:, [k]].toarray().ravel() if sp.issparse(C) else C[:, k]) != 0
            return ~col if neg else col

        out = literal(*self.literals[0])
        for op, lit in zip(self.operators, self.literals[1:]):
            out = (out & literal(*lit)) if op == "&" else (out | literal(*lit))
        return out

    def __str__(self):
        text, prev = None, None
        for i, ((_, neg), name) in enumerate(zip(self.literals, self.names)):
            lit = f"~{name}" if neg else name
            if i == 0:
                text = lit
                continue
            op = self.operators[i - 1]
            if prev is not None and prev != op:
                text = f"({text})"
            text, prev = f"{text} {op} {lit}", op
        return text


class Explanation(NamedTuple):
    """One labeled formula for one unit.

    Attributes
    ----------
    formula : Formula
    auc : float
        ROC-AUC of the unit's activations against the formula's indicator (held-out rows
        when ``test_size`` is set).
    p_value : float
        Mann-Whitney U p-value, one-sided by default (higher on the formula's samples in
        positive mode, lower in negative mode; see ``ConceptLabeler(alternative=...)``);
        exact for small formulas on tie-free activations. May underflow to 0, see
        ``log_p_value``.
    fraction : float
        Fraction of the samples (of the band, when ``activation_range`` is set) covered.
    length : int
        Number of literals.
    log_p_value : float
        Natural logarithm of ``p_value``, finite far below 1e-300.
    selection_auc : float
        AUC on the rows the formula was selected on (equals ``auc`` without
        ``test_size``).

    Examples
    --------
    >>> from midlogit.invert import Explanation, Formula
    >>> e = Explanation(Formula(((0, False),), (), ("water",)), 0.9, 1e-5, 0.25, 1,
    ...                 -11.5, 0.9)
    >>> str(e.formula), e.auc
    ('water', 0.9)
    """

    formula: Formula
    auc: float
    p_value: float
    fraction: float
    length: int
    log_p_value: float
    selection_auc: float


# --------------------------------------------------------------------------- validation


def _check_activations(A, name="A", *, allow_1d=False):
    if sp.issparse(A):
        raise ValueError(f"{name} must be a dense array of activations, got a sparse matrix.")
    A = np.asarray(A)
    if A.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {A.dtype}.")
    if A.ndim == 1 and allow_1d:
        A = A[:, None]
    if A.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_units), got shape {A.shape}; "
            "for a single unit pass a.reshape(-1, 1)."
        )
    if A.shape[0] < 2:
        raise ValueError(f"{name} has {A.shape[0]} sample(s); an AUC needs at least 2.")
    if A.shape[1] == 0:
        raise ValueError(f"{name} has no units (0 columns).")
    if not np.all(np.isfinite(A)):
        raise ValueError(
            f"{name} contains NaN or infinite activations; drop or impute those samples first."
        )
    return A


def _check_concepts(C, n_samples, concept_names=None, name="C"):
    """Return ``(C, names)``: a bool ndarray or a CSR matrix of 0/1 and the names."""
    if C is None:
        raise ValueError(
            "ConceptLabeler requires y to be passed, but the target y is None: pass the "
            f"concept matrix {name} of shape (n_samples, n_concepts)."
        )
    names = None
    if hasattr(C, "columns") and getattr(C, "ndim", 2) == 2:
        names = [str(c) for c in C.columns]
    if sp.issparse(C):
        C = sp.csr_array(C, dtype=np.float64)
        if C.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {C.shape}.")
        C.sum_duplicates()
        if not np.all(np.isin(C.data, (0.0, 1.0))):
            raise ValueError(
                f"{name} must be binary: every entry 0/1 or True/False; threshold or "
                "one-hot encode the concepts first."
            )
        C.eliminate_zeros()
    else:
        C = np.asarray(C)
        if C.ndim == 1:
            C, names = _labels_to_concepts(C, name)
        elif C.ndim != 2:
            raise ValueError(
                f"{name} must be 2-D of shape (n_samples, n_concepts), got shape {C.shape}."
            )
        elif C.dtype != bool:
            if C.dtype.kind not in "biuf" or not np.all((C == 0) | (C == 1)):
                raise ValueError(
                    f"{name} must be binary: every entry 0/1 or True/False (got dtype "
                    f"{C.dtype}); threshold or one-hot encode the concepts first."
                )
            C = C != 0
    if C.shape[0] != n_samples:
        raise ValueError(
            f"A has {n_samples} samples but {name} has {C.shape[0]} rows: pass one row of "
            "concepts per sample, in the same order."
        )
    if C.shape[1] == 0:
        raise ValueError(f"{name} has no concepts (0 columns): pass at least one concept.")
    if concept_names is not None:
        names = [str(c) for c in concept_names]
        if len(names) != C.shape[1]:
            raise ValueError(
                f"concept_names has {len(names)} names but {name} has {C.shape[1]} concepts."
            )
    if names is None:
        names = [f"c{k}" for k in range(C.shape[1])]
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})[:5]
        raise ValueError(f"concept names must be unique; repeated: {dup}.")
    return C, np.asarray(names, dtype=object)


def _labels_to_concepts(y, name):
    """A 1-D label vector: 0/1 or bool is one concept, other labels one concept each."""
    kind = type_of_target(y, input_name=name, raise_unknown=True)
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"a 1-D {name} must hold class labels (one concept per class) or 0/1 for one "
            f"concept; got target type {kind!r}. Pass a binary (n_samples, n_concepts) "
            "matrix instead."
        )
    labels, codes = np.unique(y, return_inverse=True)
    if y.dtype == bool or set(labels.tolist()) <= {0, 1}:
        return (y == 1).reshape(-1, 1), ["y"]
    onehot = codes[:, None] == np.arange(labels.size)
    return onehot, [f"y={v}" for v in labels.tolist()]


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


# --------------------------------------------------------------------------- search


class _Entry:
    """A formula kept in a unit's pool: literal ids (``l < K`` is ``c_l``, ``l >= K`` is
    ``~c_(l-K)``), operators, count, doubled rank sum and indicator."""

    __slots__ = ("lits", "ops", "n1", "S2", "ind")

    def __init__(self, lits, ops, n1, S2, ind):
        self.lits, self.ops, self.n1, self.S2, self.ind = lits, ops, n1, S2, ind

    @property
    def length(self):
        return len(self.lits)


class _UnitSearch:
    """Beam search state of one unit."""

    def __init__(self, params, concepts, mask, N, lit_n, lit_S):
        self.p, self.concepts, self.mask, self.N = params, concepts, mask, N
        self.lit_n, self.lit_S = lit_n, lit_S
        self.lit_score = self._score(lit_n, lit_S, np.ones_like(lit_n, dtype=bool))
        self.pool, self.done, self._cols = [], False, {}

    def _score(self, n1, S2, valid):
        N, p = self.N, self.p
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = n1 / N
            auc = (S2 - n1 * (n1 + 1)) / (2 * n1 * (N - n1))
        valid = (
            valid & (n1 > 0) & (n1 < N) & (frac >= p["min_fraction"]) & (frac <= p["max_fraction"])
        )
        return np.where(valid, auc, -np.inf)

    def literal(self, lit):
        col = self._cols.get(lit)
        if col is None:
            K = self.concepts.K
            col = self.concepts.column(lit % K)
            if lit >= K:
                col = ~col
            if self.mask is not None:
                col &= self.mask
            self._cols[lit] = col
        return col

    def beam(self):
        return self.pool[: self.p["beam_size"]]

    def start(self):
        """Level 1: the best single literals."""
        lengths = np.ones(self.lit_n.size, dtype=int)
        self._select(self.lit_score, self.lit_n, self.lit_S, lengths, None)
        self.done = not self.pool

    def extend(self, and_n, and_S):
        """One level: ``and_n``/``and_S`` of shape (n_beam, K) are the counts and rank
        sums of ``beam_entry & c`` for every concept ``c``."""
        beam, pool = self.beam(), self.pool
        f_n = np.array([e.n1 for e in beam], dtype=np.float64)[:, None]
        f_S = np.array([e.S2 for e in beam], dtype=np.float64)[:, None]
        # beam_entry & literal, for the literals c then ~c
        a_n = np.concatenate([and_n, f_n - and_n], axis=1)
        a_S = np.concatenate([and_S, f_S - and_S], axis=1)
        # the result equals the parent or the literal: a shorter formula has it already
        redundant = (a_n == f_n) | (a_n == self.lit_n)
        o_n = f_n + self.lit_n - a_n
        o_S = f_S + self.lit_S - a_S
        comb_n = np.stack([a_n, o_n], axis=1).ravel()
        comb_S = np.stack([a_S, o_S], axis=1).ravel()
        keep = ~np.broadcast_to(redundant[:, None, :], (len(beam), 2, a_n.shape[1])).ravel()
        comb_score = self._score(comb_n, comb_S, keep)
        p_n = np.array([e.n1 for e in pool], dtype=np.float64)
        p_S = np.array([e.S2 for e in pool], dtype=np.float64)
        p_score = self._score(p_n, p_S, np.ones(len(pool), dtype=bool))
        score = np.concatenate([p_score, self.lit_score, comb_score])
        # formulas already in the pool come first; drop their later copies
        K2, parents = self.lit_n.size, {e.lits + e.ops: b for b, e in enumerate(beam)}
        for e in pool:
            if e.length == 1:
                score[len(pool) + e.lits[0]] = -np.inf
            else:
                b = parents.get(e.lits[:-1] + e.ops[:-1])
                if b is not None:
                    op_i = "&|".index(e.ops[-1])
                    score[len(pool) + K2 + (2 * b + op_i) * K2 + e.lits[-1]] = -np.inf
        n1 = np.concatenate([p_n, self.lit_n, comb_n])
        S2 = np.concatenate([p_S, self.lit_S, comb_S])
        lengths = np.concatenate(
            [
                [e.length for e in pool],
                np.ones(self.lit_n.size, dtype=int),
                np.repeat([e.length + 1 for e in beam], 2 * a_n.shape[1]),
            ]
        ).astype(int)
        old = [e.lits + e.ops for e in beam]
        self._select(score, n1, S2, lengths, beam)
        self.done = [e.lits + e.ops for e in self.beam()] == old

    def _candidate(self, i, beam):
        """Literal ids, operators and indicator (lazily) of candidate ``i``: the old pool,
        the literals, then every beam entry combined by ``&`` then ``|`` with every
        literal; only literals when ``beam`` is None."""
        n_pool, K2 = len(self.pool), self.lit_n.size
        if beam is not None and i < n_pool:
            e = self.pool[i]
            return e.lits, e.ops, lambda: e.ind
        j = i - n_pool if beam is not None else i
        if j < K2:
            return (j,), (), lambda: self.literal(j)
        b, rest = divmod(j - K2, 2 * K2)
        op_i, lit = divmod(rest, K2)
        parent, op = beam[b], "&|"[op_i]

        def indicator():
            col = self.literal(lit)
            return (parent.ind & col) if op == "&" else (parent.ind | col)

        return parent.lits + (lit,), parent.ops + (op,), indicator

    def _select(self, score, n1, S2, lengths, beam):
        """New pool: the best candidates by (AUC, shorter, earlier), one per support.

        Equal supports have equal counts and rank sums, so indicators are compared only
        among candidates whose ``(n1, S2)`` collide."""
        size = max(self.p["beam_size"], self.p["n_explanations"])
        finite = np.flatnonzero(np.isfinite(score))
        new_pool, by_key = [], {}
        m = min(finite.size, 4 * size + 16)
        done_upto = 0
        while len(new_pool) < size and done_upto < finite.size:
            if m < finite.size:
                thr = np.partition(score[finite], finite.size - m)[finite.size - m]
                sel = finite[score[finite] >= thr]
            else:
                sel = finite
            order = sel[np.lexsort((sel, lengths[sel], -score[sel]))]
            for i in order[done_upto:]:
                key = (n1[i], S2[i])
                same = by_key.get(key, [])
                lits, ops, indicator = self._candidate(int(i), beam)
                ind = None
                if same:
                    ind = indicator()
                    if any(np.array_equal(ind, e.ind) for e in same):
                        continue
                entry = _Entry(lits, ops, float(n1[i]), float(S2[i]), ind)
                entry.ind = indicator() if ind is None else ind
                new_pool.append(entry)
                by_key.setdefault(key, []).append(entry)
                if len(new_pool) == size:
                    break
            done_upto = order.size
            m = 2 * m
        self.pool = new_pool


def _search_chunk(X, mask, concepts, params):
    """Beam search for the units in the rows of ``X`` (internal orientation: higher is
    better). Returns per unit ``(pool, N, tie_term)`` plus the atoms' counts and sums."""
    u, n = X.shape
    r2, N, tie = _doubled_ranks(X, mask)
    m_ind = np.ones((u, n)) if mask is None else mask.astype(np.float64)
    # Packed: one column per indicator, rank * (n + 1) + 1 summed, i.e. S2 * P + n1.
    packed = _check_pack(n)
    P = n + 1
    parts = [r2 * float(P) + m_ind] if packed else [r2.astype(np.float64), m_ind]
    del m_ind

    def weights(cols):
        """``W`` with columns ``part * indicator`` for (unit, indicator) pairs: dense,
        or CSC when the indicators cover few samples."""
        per = len(parts)
        rows = [np.flatnonzero(ind) for _, ind in cols]
        covered = sum(r.size for r in rows)
        if covered < _SPARSE_WEIGHTS * n * len(cols):
            idx = [r for r in rows for _ in range(per)]
            data = [part[k][r] for (k, _), r in zip(cols, rows) for part in parts]
            ptr = np.zeros(len(idx) + 1, dtype=np.int64)
            np.cumsum([r.size for r in idx], out=ptr[1:])
            return sp.csc_array(
                (np.concatenate(data), np.concatenate(idx), ptr), shape=(n, len(idx))
            )
        W = np.empty((len(cols) * per, n))
        for j, (k, ind) in enumerate(cols):
            for q, part in enumerate(parts):
                np.multiply(part[k], ind, out=W[per * j + q])
        return W.T

    def decode(G):
        """Counts and doubled rank sums from ``C.T @ W``."""
        if packed:
            S2, n1 = np.divmod(G.astype(np.int64), P)
            return n1.astype(np.float64), S2.astype(np.float64)
        return G[:, 1::2], G[:, 0::2]

    if packed:
        atom_n, atom_S = decode(concepts.tdot(parts[0].T))
    else:
        atom_n, atom_S = decode(concepts.tdot(np.stack(parts, axis=1).reshape(u * 2, n).T))
    units = []
    for k in range(u):
        lit_n = np.concatenate([atom_n[:, k], N[k] - atom_n[:, k]])
        T = float(N[k]) * (N[k] + 1)
        lit_S = np.concatenate([atom_S[:, k], T - atom_S[:, k]])
        unit = _UnitSearch(
            params, concepts, None if mask is None else mask[k], float(N[k]), lit_n, lit_S
        )
        unit.start()
        units.append(unit)
    for _ in range(2, params["max_length"] + 1):
        active = [k for k in range(u) if not units[k].done]
        if not active:
            break
        cols = [(k, e.ind) for k in active for e in units[k].beam()]
        and_n, and_S = decode(concepts.tdot(weights(cols)))
        j = 0
        for k in active:
            nb = len(units[k].beam())
            units[k].extend(and_n[:, j : j + nb].T, and_S[:, j : j + nb].T)
            j += nb
    return [(unit.pool, float(N[k]), float(tie[k])) for k, unit in enumerate(units)], (
        atom_n,
        atom_S,
        N,
    )


def _evaluate_entries(pools, X, mask, concepts):
    """Counts and doubled rank sums of the pool formulas on other rows (held-out)."""
    r2, N, tie = _doubled_ranks(X, mask)
    out = []
    K = concepts.K
    for k, pool in enumerate(pools):
        cache, stats = {}, []
        for e in pool:
            ind = None
            for i, lit in enumerate(e.lits):
                col = cache.get(lit)
                if col is None:
                    col = concepts.column(lit % K)
                    col = ~col if lit >= K else col
                    if mask is not None:
                        col = col & mask[k]
                    cache[lit] = col
                ind = col if i == 0 else (ind & col if e.ops[i - 1] == "&" else ind | col)
            stats.append((float(ind.sum()), float(r2[k][ind].sum())))
        out.append((stats, float(N[k]), float(tie[k])))
    return out


# --------------------------------------------------------------------------- estimator


class ConceptLabeler(BaseEstimator):
    """Label units with the concept formulas they rank highest (INVERT).

    For every unit (column of ``A``), a beam search of width ``beam_size`` grows formulas
    one literal at a time up to ``max_length`` literals: concepts and negated concepts
    joined left to right by AND / OR. It starts from the best admissible single
    literals; at each level every beam entry is combined with every literal by AND and
    by OR, the old entries compete with the new ones, and the best by ROC-AUC survive.
    A formula is admissible when the fraction of samples it covers lies in
    ``[min_fraction, max_fraction]`` and it is neither empty nor everything. Formulas
    with the same support are kept once (the shortest, then the first found): ``c``,
    ``c | ~d`` and ``c & ~e`` never fill the beam together.

    Parameters
    ----------
    max_length : int, default=3
        Most literals in a formula (``L``).
    beam_size : int, default=3
        Beam width (``B``).
    min_fraction, max_fraction : float, default=0.0, 0.5
        Admissible range of the fraction of samples a formula covers.
    mode : {"positive", "negative"}, default="positive"
        Search formulas the unit ranks highest (maximise AUC) or lowest (minimise it).
    activation_range : tuple of (float, float) or None, default=None
        Quantiles ``(lo, hi)``: label each unit using only the samples whose activation
        lies between its ``lo`` and ``hi`` quantiles (over all samples), e.g.
        ``(0.25, 0.75)`` for the mid-range.
    n_explanations : int or None, default=None
        Formulas kept per unit (best first); ``None`` keeps ``beam_size``.
    test_size : float, int or None, default=None
        Choosing the best of thousands of formulas makes an in-sample p-value
        optimistic. With ``test_size``, formulas are selected on a random part of the
        samples and their AUC, p-value and fraction are computed on the held-out
        ``test_size`` part (as in :func:`sklearn.model_selection.train_test_split`).
        Without it all are in-sample: read the p-values as a ranking, not a test.
    alternative : {"one-sided", "two-sided"}, default="one-sided"
        The Mann-Whitney test behind ``p_value``: one-sided asks whether the unit is
        higher on the formula's samples (lower in negative mode), two-sided whether it
        differs in either direction (the p-value the reference INVERT code reports;
        twice the one-sided one where the AUC points the searched way).
    random_state : int, RandomState instance or None, default=None
        Seeds the held-out split.
    n_jobs : int or None, default=None
        Threads over groups of units (``None`` means 1, ``-1`` all cores).

    Attributes
    ----------
    explanations_ : list of list of Explanation
        Per unit, the formulas found, best first, no two with the same support.
    auc_ : ndarray of shape (n_units, n_concepts)
        AUC of every unit against every single concept (on the selection samples,
        within the activation band); NaN where a concept covers none or all of them.
    concept_names_ : ndarray of str
        Names of the concepts (columns of ``C``).
    n_features_in_ : int
        Number of units.
    feature_names_in_ : ndarray of str
        Unit names, when ``A`` is a DataFrame with string columns.
    activation_thresholds_ : ndarray of shape (n_units, 2)
        The activation values of the band per unit (only with ``activation_range``).
    selection_indices_, test_indices_ : ndarray of int
        The rows used to select and to test (only with ``test_size``).

    Notes
    -----
    ``fit(A, C)`` takes the activations as ``X`` and the concepts as ``y``. ``C`` may be
    a bool or 0/1 array, a sparse matrix or a DataFrame (its columns name the concepts).
    A 1-D ``C`` is read as class labels: 0/1 or bool is one concept, any other labels
    give one concept ``"y=label"`` per class. ``A`` must be 2-D; for one unit pass
    ``a.reshape(-1, 1)``.

    The AUC is exact for any real activations and equals
    :func:`sklearn.metrics.roc_auc_score` of the formula's indicator. The p-value is the
    Mann-Whitney U test as ``scipy.stats.mannwhitneyu(..., method="auto")`` computes
    it: from the exact null distribution when the formula covers at most 8 samples (or
    all but at most 8) and the unit's activations have no ties, otherwise from the
    tie-corrected normal approximation with continuity correction. (Past about four
    million table entries, e.g. 8 samples against a million, the approximation is used
    throughout to bound memory.)

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.invert import ConceptLabeler
    >>> rng = np.random.default_rng(0)
    >>> C = rng.random((400, 6)) < 0.3
    >>> a = rng.normal(size=400) + 2 * (C[:, 1] & ~C[:, 4])
    >>> lab = ConceptLabeler(max_length=2).fit(a.reshape(-1, 1), C)
    >>> best = lab.explanations_[0][0]
    >>> str(best.formula), best.auc > 0.9
    ('c1 & ~c4', True)
    """

    def __init__(
        self,
        max_length=3,
        beam_size=3,
        min_fraction=0.0,
        max_fraction=0.5,
        mode="positive",
        activation_range=None,
        n_explanations=None,
        test_size=None,
        alternative="one-sided",
        random_state=None,
        n_jobs=None,
    ):
        self.max_length = max_length
        self.beam_size = beam_size
        self.min_fraction = min_fraction
        self.max_fraction = max_fraction
        self.mode = mode
        self.activation_range = activation_range
        self.n_explanations = n_explanations
        self.test_size = test_size
        self.alternative = alternative
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_params(self):
        for name in ("max_length", "beam_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        k = self.n_explanations
        if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
            raise ValueError(f"n_explanations must be None or an integer >= 1, got {k!r}.")
        lo, hi = self.min_fraction, self.max_fraction
        if not (0.0 <= lo <= hi <= 1.0):
            raise ValueError(
                "min_fraction and max_fraction must satisfy 0 <= min_fraction <= "
                f"max_fraction <= 1, got {lo!r} and {hi!r}."
            )
        if self.mode not in ("positive", "negative"):
            raise ValueError(f"mode must be 'positive' or 'negative', got {self.mode!r}.")
        if self.alternative not in ("one-sided", "two-sided"):
            raise ValueError(
                f"alternative must be 'one-sided' or 'two-sided', got {self.alternative!r}."
            )
        band = self.activation_range
        if band is not None:
            ok = np.ndim(band) == 1 and len(band) == 2
            if not ok or not (0.0 <= band[0] < band[1] <= 1.0):
                raise ValueError(
                    "activation_range must be None or quantiles (lo, hi) with "
                    f"0 <= lo < hi <= 1, got {band!r}; e.g. (0.25, 0.75)."
                )
        return {
            "max_length": int(self.max_length),
            "beam_size": int(self.beam_size),
            "n_explanations": int(k if k is not None else self.beam_size),
            "min_fraction": float(lo),
            "max_fraction": float(hi),
        }

    def fit(self, A, C, concept_names=None):
        """Search the best formulas for every unit.

        Parameters
        ----------
        A : array-like of shape (n_samples, n_units)
            Activations (real values; ranks are all that matter).
        C : {array-like, sparse matrix} of shape (n_samples, n_concepts)
            Binary concept matrix, or 1-D class labels (see Notes).
        concept_names : sequence of str, optional
            Names of the concepts; default the DataFrame columns or ``c0, c1, ...``.

        Returns
        -------
        self : ConceptLabeler
        """
        params = self._check_params()
        if C is None:
            _check_concepts(None, 0)
        A = validate_data(self, A, reset=True, ensure_min_samples=2, ensure_all_finite=False)
        A = _check_activations(A)
        C, names = _check_concepts(C, A.shape[0], concept_names)
        n, units = A.shape
        mask = None
        if self.activation_range is not None:
            thr = np.quantile(A, list(self.activation_range), axis=0).T
            mask = (A.T >= thr[:, :1]) & (A.T <= thr[:, 1:])
            self.activation_thresholds_ = thr
        sel_rows = test_rows = None
        if self.test_size is not None:
            sel_rows, test_rows = train_test_split(
                np.arange(n), test_size=self.test_size, random_state=self.random_state
            )
            sel_rows, test_rows = np.sort(sel_rows), np.sort(test_rows)
            self.selection_indices_, self.test_indices_ = sel_rows, test_rows
        concepts = _Concepts(C if sel_rows is None else C[sel_rows])
        test_concepts = None if test_rows is None else _Concepts(C[test_rows])
        dtype = A.dtype if A.dtype.kind == "f" else np.float64
        sign = 1 if self.mode == "positive" else -1

        def unit_rows(idx, rows):
            """Activations (higher is better) and band of units ``idx`` on ``rows``."""
            X = A[:, idx] if rows is None else A[rows][:, idx]
            m = None if mask is None else mask[idx] if rows is None else mask[idx][:, rows]
            return sign * np.asarray(X.T, dtype=dtype), m

        def run(idx):
            res, atoms = _search_chunk(*unit_rows(idx, sel_rows), concepts, params)
            held = None
            if test_concepts is not None:
                held = _evaluate_entries(
                    [pool for pool, _, _ in res], *unit_rows(idx, test_rows), test_concepts
                )
            for pool, _, _ in res:
                for e in pool:
                    e.ind = None
            return res, atoms, held

        workers = max(1, effective_n_jobs(self.n_jobs))
        size = int(min(_MAX_CHUNK_UNITS, max(1, math.ceil(units / workers))))
        chunks = [np.arange(s, min(s + size, units)) for s in range(0, units, size)]
        if workers > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(workers) as ex:
                results = list(ex.map(run, chunks))
        else:
            results = [run(idx) for idx in chunks]

        K = C.shape[1]
        auc = np.empty((units, K))
        explanations = []
        for idx, (res, (atom_n, atom_S, N), held) in zip(chunks, results):
            a = self._orient((atom_S - atom_n * (atom_n + 1)) / 2, atom_n, N)
            a[(atom_n == 0) | (atom_n == N)] = np.nan
            auc[idx] = a.T
            for j, (pool, N_u, tie) in enumerate(res):
                explanations.append(
                    self._explanations(
                        pool, N_u, tie, names, params, None if held is None else held[j]
                    )
                )
        self.explanations_ = explanations
        self.auc_ = auc
        self.concept_names_ = names
        return self

    def _explanations(self, pool, N, tie, names, params, held):
        pool = pool[: params["n_explanations"]]
        if not pool:
            return []
        K = len(names)
        n1 = np.array([e.n1 for e in pool])
        U = (np.array([e.S2 for e in pool]) - n1 * (n1 + 1)) / 2
        sel_auc = self._orient(U, n1, N)
        if held is None:
            auc, frac = sel_auc, n1 / N
            p, logp = _mwu_pvalues(U, n1, N, tie, self.alternative)
        else:
            stats, Nt, tie_t = held
            n1t = np.array([s[0] for s in stats])
            Ut = (np.array([s[1] for s in stats]) - n1t * (n1t + 1)) / 2
            auc, frac = self._orient(Ut, n1t, Nt), n1t / Nt
            p, logp = _mwu_pvalues(Ut, n1t, Nt, tie_t, self.alternative)
            undefined = (n1t == 0) | (n1t == Nt)
            auc, p, logp = (np.where(undefined, np.nan, v) for v in (auc, p, logp))
        out = []
        for i, e in enumerate(pool):
            lits = tuple((lit % K, lit >= K) for lit in e.lits)
            formula = Formula(lits, e.ops, tuple(names[k] for k, _ in lits))
            out.append(
                Explanation(
                    formula,
                    float(auc[i]),
                    float(p[i]),
                    float(frac[i]),
                    formula.length,
                    float(logp[i]),
                    float(sel_auc[i]),
                )
            )
        return out

    def _orient(self, U, n1, N):
        """AUC of the original activations from the internal ``U``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            pairs = n1 * (N - n1)
            return (U if self.mode == "positive" else pairs - U) / pairs

    def to_markdown(
        self, unit_names=None, spurious=None, title="INVERT concept labels", alpha=0.05
    ):
        """A readable report: a summary row per unit, then each unit's formulas.

        Parameters
        ----------
        unit_names : sequence of str, optional
            Names of the units; default ``feature_names_in_`` or ``unit 0, unit 1, ...``.
        spurious : sequence of str, optional
            Concept names to flag when a unit's best explanation uses one.
        title : str, default="INVERT concept labels"
        alpha : float, default=0.05
            A best explanation with a p-value above ``alpha`` is not flagged (the unit
            is marked as using the concept without significance).

        Returns
        -------
        report : str
            Markdown.

        Examples
        --------
        >>> import numpy as np
        >>> from midlogit.invert import ConceptLabeler
        >>> C = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0]], dtype=bool)
        >>> a = np.array([[3.0], [2.0], [1.0], [0.0], [-1.0], [0.5]])
        >>> lab = ConceptLabeler(max_length=1).fit(a, C, concept_names=["water", "land"])
        >>> print(lab.to_markdown(["logit"], spurious=["water"]).splitlines()[6])
        | logit | `water` | 1.0000 | 0.0667 | uses water, p > 0.05 |
        >>> print(lab.to_markdown(["logit"], spurious=["water"], alpha=0.1).splitlines()[6])
        | logit | `water` | 1.0000 | 0.0667 | FLAG: water |
        """
        check_is_fitted(self, "explanations_")
        units = len(self.explanations_)
        if unit_names is None:
            unit_names = getattr(self, "feature_names_in_", None)
        if unit_names is None:
            unit_names = [f"unit {i}" for i in range(units)]
        unit_names = [str(u) for u in unit_names]
        if len(unit_names) != units:
            raise ValueError(f"unit_names has {len(unit_names)} names for {units} units.")
        spurious = [str(s) for s in (spurious or [])]
        unknown = sorted(set(spurious) - set(self.concept_names_.tolist()))
        if unknown:
            raise ValueError(
                f"spurious names concepts that are not in the concept matrix: {unknown}."
            )
        held = self.test_size is not None
        band = self.activation_range
        lines = [
            f"# {_md_text(title)}",
            "",
            f"{units} unit(s), {len(self.concept_names_)} concept(s); formulas of at most "
            f"{self.max_length} literals, beam {self.beam_size}, fraction in "
            f"[{self.min_fraction:g}, {self.max_fraction:g}], mode {self.mode}"
            + (f", activation band quantiles ({band[0]:g}, {band[1]:g})" if band else "")
            + (
                "; AUC, p-value and fraction on held-out samples"
                if held
                else "; p-values are in-sample (optimistic after the search)"
            )
            + ".",
            "",
            "| unit | best explanation | AUC | p-value | flag |",
            "|---|---|---|---|---|",
        ]
        flagged = []
        for name, exps in zip(unit_names, self.explanations_):
            if not exps:
                lines.append(f"| {_md_text(name)} | (no admissible formula) | | | |")
                continue
            best = exps[0]
            hits = [c for c in best.formula.concepts if c in spurious]
            significant = best.log_p_value <= np.log(alpha)
            flag = ""
            used = ", ".join(_md_text(c) for c in hits)
            if hits and significant:
                flag = f"FLAG: {used}"
                flagged.append(_md_text(name))
            elif hits:
                flag = f"uses {used}, p > {alpha:g}"
            lines.append(
                f"| {_md_text(name)} | {_md_code(best.formula)} | {_fmt_auc(best.auc)} | "
                f"{_fmt_p(best.log_p_value)} | {flag} |"
            )
        if spurious:
            which = f"a flagged concept ({', '.join(_md_text(c) for c in spurious)})"
            if held:
                summary = (
                    f"{len(flagged)} of {units} unit(s) have a significant (held-out p <= "
                    f"{alpha:g}) best explanation using {which}"
                )
            else:
                summary = (
                    f"{len(flagged)} of {units} unit(s) have a best explanation using {which} "
                    f"with an in-sample p <= {alpha:g}. In-sample p-values are not a test: "
                    "they were computed on the rows the formula was chosen on, and choosing "
                    "the best of many formulas makes them small even for noise (set "
                    "test_size for held-out p-values)"
                )
            lines += ["", summary + (": " + ", ".join(flagged) if flagged else "") + "."]
        for name, exps in zip(unit_names, self.explanations_):
            lines += ["", f"## {_md_text(name)}", ""]
            if not exps:
                lines.append("No formula covers an admissible fraction of the samples.")
                continue
            lines += [
                "| # | formula | length | AUC | p-value | fraction |"
                + (" selection AUC |" if held else ""),
                "|---|---|---|---|---|---|" + ("---|" if held else ""),
            ]
            for i, e in enumerate(exps, 1):
                lines.append(
                    f"| {i} | {_md_code(e.formula)} | {e.length} | {_fmt_auc(e.auc)} | "
                    f"{_fmt_p(e.log_p_value)} | {e.fraction:.4f} |"
                    + (f" {_fmt_auc(e.selection_auc)} |" if held else "")
                )
        return "\n".join(lines) + "\n"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags


_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _visible_controls(text):
    """Newlines and other control characters as their escapes (``\\n``), so that a
    name cannot end a table row or a heading."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _md_text(text):
    """``text`` for a Markdown table cell or heading, shown as written."""
    return _visible_controls(_MARKDOWN_SPECIAL.sub(r"\\\1", str(text)))


def _md_code(text):
    """``text`` as a Markdown code span inside a table cell, shown as written."""
    text = _visible_controls(str(text)).replace("|", "\\|")
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fmt_auc(x):
    return "n/a" if not np.isfinite(x) else f"{x:.4f}"


def _fmt_p(log_p):
    """A p-value from its natural log, readable far below 1e-300."""
    if not np.isfinite(log_p):
        return "n/a"
    log10 = log_p / math.log(10)
    if log10 > -4:
        return f"{math.exp(log_p):.3g}"
    exp = math.floor(log10)
    mant = 10 ** (log10 - exp)
    if round(mant, 1) >= 10:
        mant, exp = mant / 10, exp + 1
    return f"{mant:.1f}e{exp}"


# --------------------------------------------------------------------------- files

_TRUE = {"1", "true", "t", "yes", "1.0"}
_FALSE = {"0", "false", "f", "no", "0.0"}


def _load_activations(path):
    path = os.fspath(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read as a .npz file of arrays ({exc}).") from exc
    if not hasattr(data, "files"):
        A, unit_names, ids = data, None, None
    else:
        with data:
            arrays = {k: data[k] for k in data.files}
        unit_names = arrays.pop("unit_names", None)
        ids = arrays.pop("ids", None)
        if "activations" in arrays:
            A = arrays["activations"]
        elif len(arrays) == 1:
            (A,) = arrays.values()
        else:
            raise ValueError(
                f"{path}: found arrays {sorted(arrays)}; name the activations "
                "'activations' (optional extras: 'unit_names', 'ids')."
            )
    A = np.asarray(A)
    if A.dtype.kind not in "biuf" or A.ndim not in (1, 2):
        raise ValueError(
            f"{path}: activations must be a numeric array of shape (n,) or (n, units), got "
            f"dtype {A.dtype} and shape {A.shape}."
        )
    A = A.reshape(len(A), -1)
    if not np.all(np.isfinite(A)):
        bad = np.flatnonzero(~np.isfinite(A).all(axis=1))
        raise ValueError(
            f"{path}: activations contain NaN or infinite values (rows {bad[:5].tolist()}"
            f"{'...' if bad.size > 5 else ''})."
        )
    if unit_names is not None:
        unit_names = [str(u) for u in np.asarray(unit_names).ravel()]
        if len(unit_names) != A.shape[1]:
            raise ValueError(
                f"{path}: 'unit_names' has {len(unit_names)} names for {A.shape[1]} units."
            )
    if ids is not None:
        ids = [str(i) for i in np.asarray(ids).ravel()]
        if len(ids) != A.shape[0]:
            raise ValueError(f"{path}: 'ids' has {len(ids)} entries for {A.shape[0]} rows.")
    return A, unit_names, ids


def _load_concepts(path, id_column="id"):
    path = os.fspath(path)
    try:
        text = _read_lines(path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read as a CSV file ({exc}).") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        numbered = [(reader.line_num, r) for r in reader if r]
    except csv.Error as exc:
        raise ValueError(f"{path}: line {reader.line_num} is not valid CSV ({exc}).") from None
    if not numbered:
        raise ValueError(f"{path}: the file is empty; expected a header row of concept names.")
    header = [h.strip() for h in numbered[0][1]]
    body = [r for _, r in numbered[1:]]
    if not body:
        raise ValueError(f"{path}: the file has a header but no data rows.")
    lines = [line for line, _ in numbered[1:]]
    for line, r in zip(lines, body):
        if len(r) != len(header):
            raise ValueError(
                f"{path}: line {line} has {len(r)} fields but the header has {len(header)}."
            )
    table = np.array(body, dtype=str)
    ids = None
    lower = [h.lower() for h in header]
    if id_column is not None and id_column.lower() in lower:
        j = lower.index(id_column.lower())
        ids = [s.strip() for s in table[:, j]]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{path}: column {header[j]!r} has repeated ids.")
        table = np.delete(table, j, axis=1)
        header = header[:j] + header[j + 1 :]
    if not header:
        raise ValueError(f"{path}: no concept columns besides the id column.")
    if any(h == "" for h in header):
        raise ValueError(f"{path}: a concept column has an empty name in the header.")
    values = np.char.lower(np.char.strip(table))
    true = np.isin(values, list(_TRUE))
    bad = ~true & ~np.isin(values, list(_FALSE))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: column {header[j]!r}, line {lines[i]}: value {str(table[i, j])!r} is not "
            "0/1 or true/false."
        )
    return true, header, ids


def label_files(
    activations_path,
    concepts_path,
    out=None,
    *,
    spurious=None,
    id_column="id",
    **labeler_params,
):
    """Label units from files and return (and optionally write) a markdown report.

    Parameters
    ----------
    activations_path : str or path-like
        A ``.npz`` (or ``.npy``) file. The activations are the array named
        ``activations``, or the only array; shape (n_samples,) for one unit or
        (n_samples, n_units). Optional arrays: ``unit_names`` (one per unit) and ``ids``
        (one per sample, matched against the concept file's id column).
    concepts_path : str or path-like
        A CSV file with a header row of concept names and one row per sample of
        0/1 or true/false values (any case). A column named ``id_column`` holds sample
        ids: with ``ids`` in the activations file the rows are matched by id, otherwise
        they must be in the same order.
    out : str or path-like, optional
        Where to write the report.
    spurious : sequence of str, optional
        Concept names to flag when a unit's best explanation uses one.
    id_column : str or None, default="id"
        Name of the id column (case-insensitive); ``None`` reads every column as a
        concept.
    **labeler_params
        Passed to :class:`ConceptLabeler` (``max_length``, ``beam_size``,
        ``min_fraction``, ``max_fraction``, ``mode``, ``activation_range``,
        ``n_explanations``, ``test_size``, ``alternative``, ``random_state``, ``n_jobs``).

    Returns
    -------
    report : str
        The markdown report.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from midlogit.invert import label_files
    >>> d = tempfile.mkdtemp()
    >>> a = np.array([3.0, 2.5, 0.1, 0.2, 2.8, 0.3])
    >>> np.savez(os.path.join(d, "act.npz"), activations=a, unit_names=["waterbird"])
    >>> with open(os.path.join(d, "c.csv"), "w") as fh:
    ...     _ = fh.write("id,water,land\\n1,1,0\\n2,1,0\\n3,0,1\\n4,0,1\\n5,1,0\\n6,0,1\\n")
    >>> report = label_files(os.path.join(d, "act.npz"), os.path.join(d, "c.csv"),
    ...                      spurious=["water"], max_length=1)
    >>> "FLAG: water" in report
    True
    """
    A, unit_names, a_ids = _load_activations(activations_path)
    C, names, c_ids = _load_concepts(concepts_path, id_column)
    cpath = os.fspath(concepts_path)
    if a_ids is not None and c_ids is not None:
        where = {v: i for i, v in enumerate(c_ids)}
        missing = [v for v in a_ids if v not in where]
        if missing:
            raise ValueError(
                f"{cpath}: {len(missing)} sample id(s) of the activations file are missing "
                f"from column {id_column!r}, e.g. {missing[:3]}."
            )
        C = C[[where[v] for v in a_ids]]
    elif C.shape[0] != A.shape[0]:
        raise ValueError(
            f"{cpath}: {C.shape[0]} data rows but {os.fspath(activations_path)} has "
            f"{A.shape[0]} samples; give one concept row per sample (or matching ids)."
        )
    if spurious is not None:
        unknown = [s for s in spurious if s not in names]
        if unknown:
            raise ValueError(
                f"{cpath}: spurious concept(s) {unknown} are not columns of the file; "
                f"columns: {names[:10]}{'...' if len(names) > 10 else ''}."
            )
    labeler = ConceptLabeler(**labeler_params).fit(A, C, concept_names=names)
    report = labeler.to_markdown(unit_names, spurious=spurious)
    if out is not None:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(report)
    return report
