"""Formulas over binary concepts and the explanations INVERT returns."""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

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
