"""Input checks shared by midlogit's estimators, with the fix in every message.

:func:`validate_xy` is what every sampler (through
:class:`~midlogit.base.SamplerMixin`) and the retraining head are fitted on: dense,
finite, 2-D ``X`` of at least two rows and one class label per row. ``midlogit.base``
re-exports these names.
"""

import importlib
import numbers
import warnings

import numpy as np
from scipy import sparse
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

DEPRECATED = "deprecated"
"""Default of a parameter kept under its former name for one release."""


def renamed(owner, old, new, old_value, new_value, new_default, *, stacklevel=3):
    """``new_value``, or ``old_value`` (passed under the former name) with a FutureWarning.

    ``old_value`` is :data:`DEPRECATED` unless the caller used the former name; passing
    both names is an error. ``owner`` names the class or function in the messages.
    """
    if isinstance(old_value, str) and old_value == DEPRECATED:
        return new_value
    if not (new_value is new_default or (np.isscalar(new_value) and new_value == new_default)):
        raise ValueError(f"{owner} got both {old} and {new}; pass only {new}.")
    warnings.warn(
        f"{owner}'s parameter {old} was renamed {new} in 0.2 and the old name will be "
        f"removed in 0.3; pass {new}={old_value!r}.",
        FutureWarning,
        stacklevel=stacklevel,
    )
    return old_value


def renamed_param(estimator, old, new):
    """The estimator's parameter ``new``, or its former name ``old`` (see :func:`renamed`)."""
    return renamed(
        type(estimator).__name__, old, new, getattr(estimator, old), getattr(estimator, new),
        estimator.__init__.__kwdefaults__[new], stacklevel=4,
    )  # fmt: skip


def moved_module(old, new):
    """``(__getattr__, __all__, new)`` for the module ``old``, now ``new``: every name is
    taken from ``new``, with a FutureWarning until the old path goes in 0.3."""

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(new), name)
        warnings.warn(
            f"{old} moved to {new} in 0.2 and the old path will be removed in 0.3; "
            f"import {name} from {new}.",
            FutureWarning,
            stacklevel=2,
        )
        return value

    return __getattr__, list(importlib.import_module(new).__all__), new


def shown_label(label):
    """A label as the user wrote it in a message (``1``, not ``np.int64(1)``)."""
    return repr(label.item() if isinstance(label, np.generic) else label)


def _shape(values):
    return values.shape if hasattr(values, "shape") else np.asarray(values).shape


def check_shapes(X, y=None):
    """Raise a ValueError naming ``X`` or ``y`` when ``X`` is not 2-D or lengths differ."""
    shape = _shape(X)
    if len(shape) != 2:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features), got shape {shape}; Reshape your data "
            "with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for one sample."
        )
    y_shape = () if y is None else _shape(y)
    n_labels = y_shape[0] if y_shape else shape[0]
    if n_labels != shape[0]:
        raise ValueError(
            f"X has {shape[0]} rows but y has {n_labels} labels; pass one label per row of X."
        )


def check_dense(estimator, X):
    """Raise a ValueError naming ``X`` when it is a scipy.sparse matrix or array."""
    if sparse.issparse(X):
        raise ValueError(
            f"X is a sparse {type(X).__name__}; {type(estimator).__name__} works on dense "
            "embeddings. Pass X.toarray() (embeddings of a network are dense anyway)."
        )


def check_label_types(values, name="y"):
    """Raise a ValueError naming ``name`` when its labels mix types (``1`` and ``"a"``).

    NumPy would turn a list such as ``[1, "a"]`` into the strings ``"1"`` and ``"a"``
    and an object array of them into a sort that raises a TypeError; here the user is
    told which types are mixed. Numbers (booleans included) count as one type.

    Parameters
    ----------
    values : array-like
        Class labels or group labels.
    name : str, default="y"
        The parameter, as the message names it.

    Examples
    --------
    >>> from midlogit.base import check_label_types
    >>> check_label_types([0, 1, 1])
    >>> check_label_types([1, "a"], "groups")
    Traceback (most recent call last):
    ...
    ValueError: groups mixes labels of types int and str (e.g. 1 and 'a'); give every \
label one type, e.g. [str(g) for g in groups].
    """
    if isinstance(values, list | tuple):
        array = np.empty(len(values), dtype=object)
        array[:] = values
    else:
        array = np.asarray(values)
    if array.dtype != object or array.size == 0:
        return
    first = {}
    for value in array.ravel().tolist():
        value = value.item() if isinstance(value, np.generic) else value
        kind = "number" if isinstance(value, numbers.Number) else type(value)
        first.setdefault(kind, value)
    if len(first) > 1:
        examples = list(first.values())[:2]
        kinds = " and ".join(sorted({type(v).__name__ for v in first.values()}))
        raise ValueError(
            f"{name} mixes labels of types {kinds} (e.g. {examples[0]!r} and "
            f"{examples[1]!r}); give every label one type, e.g. [str(g) for g in {name}]."
        )


def check_class_labels(y):
    """scikit-learn's check that ``y`` holds class labels, with the fix in its message.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Validated labels.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.base import check_class_labels
    >>> check_class_labels(np.array([0, 1]))
    >>> check_class_labels(np.array([0.25, 1.5]))
    Traceback (most recent call last):
    ...
    ValueError: y holds continuous values (e.g. 0.25), but midlogit selects and \
classifies by class: pass class labels (integers or strings; y.astype(int) if they are \
classes stored as floats). [Unknown label type: continuous. ...
    """
    try:
        check_classification_targets(y)
    except ValueError as exc:
        message = str(exc)
        if "continuous" not in message:
            raise
        example = next((v for v in np.ravel(y) if float(v) != int(v)), np.ravel(y)[0])
        raise ValueError(
            f"y holds continuous values (e.g. {shown_label(example)[:20]}), but midlogit "
            "selects and classifies by class: pass class labels (integers or strings; "
            f"y.astype(int) if they are classes stored as floats). [{message}]"
        ) from exc


def _nonfinite_rows(X):
    """Up to five indices of rows of ``X`` holding NaN or inf, as text ('' if unknown)."""
    try:
        bad = np.flatnonzero(~np.isfinite(np.asarray(X, dtype=np.float64)).all(axis=1))
    except (TypeError, ValueError, IndexError):
        return ""
    more = ", ..." if bad.size > 5 else ""
    return f" (rows {bad[:5].tolist()}{more})" if bad.size else ""


def _with_fix(message, X):
    """A validation message of scikit-learn's with the fix midlogit knows added."""
    if "while a minimum of 2 is required" in message:
        return (
            f"{message} If the rows came from a selector earlier in the pipeline, keep "
            "more rows (e.g. a wider band)."
        )
    if "features, but" in message and "is expecting" in message:
        return (
            f"{message} Pass embeddings of the backbone and layer it was fitted on (the "
            "same width)."
        )
    if message.startswith(("Input X contains NaN", "Input X contains infinity")):
        # scikit-learn's advice (models that accept NaN) does not apply to embeddings
        first = message.split(".")[0]
        return (
            f"{first}{_nonfinite_rows(X)}. midlogit needs finite embeddings: drop or "
            "impute those rows, or check the backbone that produced them (a diverged "
            "net gives NaN)."
        )
    return message


def validate(estimator, X, y="no_validation", **params):
    """``validate_data`` for dense ``X``, the labels' types checked, the fix in messages.

    A scipy.sparse ``X`` and labels of mixed types are refused with a ValueError that
    names them; scikit-learn's messages get midlogit's advice added (see ``_with_fix``).
    ``y`` and ``params`` go to ``validate_data`` (``y="no_validation"``: ``X`` alone).
    """
    check_dense(estimator, X)
    if not (y is None or isinstance(y, str) and y == "no_validation"):
        check_label_types(y, "y")
    # Finite values near the float limits overflow scikit-learn's quick sum check, which
    # then checks every value; the warning the sum raises is noise.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            return validate_data(estimator, X, y, **params)
        except ValueError as exc:
            fixed = _with_fix(str(exc), X)
            if fixed == str(exc):
                raise
            raise ValueError(fixed) from exc


def validate_xy(estimator, X, y, *, reset=True):
    """Validate finite 2-D ``X`` and 1-D class labels ``y`` of matching length.

    Returns float ``X`` (float32 stays float32) and ``y``, never modifying the inputs.
    ``y=None``, for an estimator whose tags do not require it, gives ``(X, None)``.
    """
    check_shapes(X, y)
    checked = validate(
        estimator,
        X,
        y,
        reset=reset,
        dtype=[np.float64, np.float32],
        ensure_all_finite=True,
        ensure_min_samples=2,
    )
    if y is None:
        return checked, None
    check_class_labels(checked[1])
    return checked


def check_fitted_features(estimator, X, attributes=None):
    """Check ``estimator`` is fitted and validate ``X`` against its feature count."""
    check_is_fitted(estimator, attributes)
    return validate(estimator, X, reset=False, dtype=[np.float64, np.float32])
