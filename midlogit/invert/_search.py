"""The beam search over formulas, many units at once."""

import numpy as np
import scipy.sparse as sp

from ._ranking import _check_pack, _doubled_ranks

# Below this fraction of samples covered, beam indicators are multiplied as sparse.
_SPARSE_WEIGHTS = 0.1


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
