"""Input checks of INVERT: activations, concept matrices and label vectors."""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.multiclass import type_of_target

from ..base import _row_blocks

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
    if not _all_finite(A):
        raise ValueError(
            f"{name} contains NaN or infinite activations; drop or impute those samples first."
        )
    return A


def _all_finite(A):
    """Whether every entry is finite, read a block of rows at a time (no copy of a memmap)."""
    if A.dtype.kind != "f":
        return True
    return all(np.isfinite(A[rows]).all() for rows in _row_blocks(A.shape[0]))


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
