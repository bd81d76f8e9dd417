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

# ruff: noqa: F401 -- the package re-exports; private names are kept for the tests

from . import _labeler, _ranking, _search
from ._files import label_files
from ._formulas import Explanation, Formula
from ._labeler import ConceptLabeler
from ._ranking import _doubled_ranks, _mwu_pvalues, concept_auc
from ._report import _fmt_p

__all__ = [
    "ConceptLabeler",
    "Explanation",
    "Formula",
    "concept_auc",
    "label_files",
]
