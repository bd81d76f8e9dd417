"""The estimator: :class:`ConceptLabeler`."""

import math

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn import get_config
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted, validate_data

from ._formulas import Explanation, Formula
from ._ranking import _Concepts, _mwu_pvalues
from ._report import _fmt_auc, _fmt_p, _md_code, _md_text
from ._search import _evaluate_entries, _search_chunk
from ._validation import _check_activations, _check_concepts

# Most units processed together in one matrix product.
_MAX_CHUNK_UNITS = 64
# Bytes of ranks, sort keys and bands per (sample, unit) of a block, as measured.
_BYTES_PER_ENTRY = 64


# --------------------------------------------------------------------------- blocks of units


def _unit_chunks(n_samples, units, n_jobs):
    """Column slices of the blocks of units: at least one block per worker, each at most
    ``_MAX_CHUNK_UNITS`` units and ``working_memory`` (scikit-learn's setting) of ranks."""
    workers = max(1, effective_n_jobs(n_jobs))
    budget = get_config()["working_memory"] * 2**20 // (_BYTES_PER_ENTRY * n_samples)
    size = int(min(_MAX_CHUNK_UNITS, max(1, math.ceil(units / workers)), max(1, budget)))
    return [slice(s, min(s + size, units)) for s in range(0, units, size)]


def _label_units(X, concepts, test_concepts, selection_rows, test_rows, task):
    """Search one block ``X`` (n_samples, n_block_units) of units: the beam search on the
    selection rows, the held-out statistics on the test rows, and the band thresholds."""
    raw = np.asarray(X.T, dtype=X.dtype if X.dtype.kind == "f" else np.float64)
    mask = thresholds = None
    if task["band"] is not None:
        thresholds = np.quantile(X, list(task["band"]), axis=0).T
        mask = (raw >= thresholds[:, :1]) & (raw <= thresholds[:, 1:])
    X = task["sign"] * raw

    def on(rows):
        if rows is None:
            return X, mask
        return X[:, rows], None if mask is None else mask[:, rows]

    res, atoms = _search_chunk(*on(selection_rows), concepts, task["params"])
    held = None
    if test_concepts is not None:
        held = _evaluate_entries([pool for pool, _, _ in res], *on(test_rows), test_concepts)
    for pool, _, _ in res:
        for e in pool:
            e.ind = None
    return res, atoms, held, thresholds


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
        Workers over blocks of units (``None`` means 1, ``-1`` all cores): threads, or
        under ``joblib.parallel_backend("dask")`` a Dask cluster's workers.

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

    Units are searched in blocks, each read from ``A`` only when a worker takes it, so
    ``A`` may be a ``numpy.memmap`` of a layer larger than memory (``np.load(path,
    mmap_mode="r")``): the explanations are the same, and memory is bounded by the
    blocks, not by ``A``. A block holds at most 64 units and about ``working_memory``
    (:func:`sklearn.set_config`, 1 GiB by default) of ranks, some 64 bytes per sample
    and unit; lower it with ``sklearn.config_context(working_memory=...)``. Under
    joblib's Dask backend the concept matrix is sent to each worker once. See the
    "Scaling out" page of the user guide.

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
        *,
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
        sel_rows = test_rows = None
        if self.test_size is not None:
            sel_rows, test_rows = train_test_split(
                np.arange(n), test_size=self.test_size, random_state=self.random_state
            )
            sel_rows, test_rows = np.sort(sel_rows), np.sort(test_rows)
            self.selection_indices_, self.test_indices_ = sel_rows, test_rows
        concepts = _Concepts(C if sel_rows is None else C[sel_rows])
        test_concepts = None if test_rows is None else _Concepts(C[test_rows])
        task = {
            "sign": 1 if self.mode == "positive" else -1,
            "band": self.activation_range,
            "params": params,
        }
        chunks = _unit_chunks(n, units, self.n_jobs)
        # A generator: each block of units is read (from a memmap too) only when a worker
        # is ready for it. The concepts and the row indices are the same objects for
        # every block, which joblib's Dask backend scatters once.
        results = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(_label_units)(A[:, idx], concepts, test_concepts, sel_rows, test_rows, task)
            for idx in chunks
        )
        if self.activation_range is not None:
            self.activation_thresholds_ = np.concatenate([r[3] for r in results])

        K = C.shape[1]
        auc = np.empty((units, K))
        explanations = []
        for idx, (res, (atom_n, atom_S, N), held, _) in zip(chunks, results):
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
