"""The sampler protocol shared by every row selector in midlogit.

A *sampler* has ``fit_resample(X, y, **params) -> (X_res, y_res)`` and records, in
``sample_indices_``, which input rows it returned (repeated where it oversampled).
:class:`midlogit.pipeline.Pipeline` runs samplers during ``fit`` only and uses
``sample_indices_`` to subset sample-aligned fit parameters together with the rows.
This is imbalanced-learn's protocol, written without its private scikit-learn imports.
"""

import numbers
from dataclasses import dataclass, field, fields

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import OneToOneFeatureMixin
from sklearn.utils import InputTags, Tags, check_random_state

# The shared input checks live in _validation; the modules of the package import them
# from here.
from ._validation import (  # noqa: F401
    check_class_labels,
    check_dense,
    check_fitted_features,
    check_label_types,
    check_shapes,
    shown_label,
    validate,
    validate_xy,
)

__all__ = [
    "SamplerMixin",
    "LinearHeadMixin",
    "balanced_indices",
    "check_sample_weight",
    "is_number",
]


@dataclass(slots=True)
class SamplerTags:
    """imbalanced-learn's tags for a sampler.

    Parameters
    ----------
    sample_indices : bool, default=True
        Whether ``fit_resample`` sets ``sample_indices_``.
    """

    sample_indices: bool = True


@dataclass(slots=True)
class SamplerInputTags(InputTags):
    """scikit-learn's input tags with imbalanced-learn's ``dataframe``.

    Parameters
    ----------
    dataframe : bool, default=True
        Whether a DataFrame given to ``fit_resample`` comes back as one.
    **input_tags : bool
        scikit-learn's input tags.
    """

    dataframe: bool = True


@dataclass(slots=True)
class SamplerEstimatorTags(Tags):
    """scikit-learn's tags with imbalanced-learn's ``sampler_tags``, so that tools
    written for imbalanced-learn's samplers (its estimator checks) read them.

    Parameters
    ----------
    sampler_tags : SamplerTags
        What the sampler records.
    **tags : object
        scikit-learn's tags.
    """

    sampler_tags: SamplerTags = field(default_factory=SamplerTags)


def _as_sampler_tags(tags):
    """``tags`` (scikit-learn's) with the sampler fields imbalanced-learn reads added."""
    values = {tag.name: getattr(tags, tag.name) for tag in fields(tags)}
    inputs = values["input_tags"]
    values["input_tags"] = SamplerInputTags(
        **{tag.name: getattr(inputs, tag.name) for tag in fields(inputs)}
    )
    return SamplerEstimatorTags(**values)


def _like(given, validated, rows):
    """The ``rows`` of ``validated``, in the container ``given`` came in."""
    if hasattr(given, "iloc"):
        return given.iloc[rows]
    if isinstance(given, list):
        return validated[rows].tolist()
    if len(rows) == len(validated) and np.array_equal(rows, np.arange(len(rows))):
        return validated  # every row, in order: no copy (of a memmap, say)
    return validated[rows]


class SamplerMixin:
    """Mixin for estimators that select or resample rows during ``fit``.

    ``fit`` and ``fit_resample`` validate ``X`` and ``y`` once (``validate_xy``:
    dense, finite, at least two rows, class labels) and hand them to the sampler's
    ``_resample(X, y, X_given, **params)``, which returns the indices of the rows to
    return (repeated where it oversamples); the mixin stores them as
    ``sample_indices_``. ``X_given`` is ``X`` as passed (a DataFrame keeps the column
    names a fitted estimator checks); ``params`` is sample-aligned metadata such as
    ``groups``. A sampler that weights or labels rows sets ``sample_weight_`` or
    ``sample_groups_`` in ``_resample``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from midlogit.base import SamplerMixin
    >>> class EveryOtherRow(SamplerMixin, BaseEstimator):
    ...     def _resample(self, X, y, X_given):
    ...         return np.arange(0, len(y), 2)
    >>> EveryOtherRow().fit_resample(np.eye(4), [0, 1, 0, 1])[1]
    [0, 0]
    """

    def _fit(self, X, y, **params):
        """Validate once, store ``_resample``'s indices; return the validated data."""
        X_valid, y_valid = validate_xy(self, X, y)
        self.sample_indices_ = self._resample(X_valid, y_valid, X, **params)
        return X_valid, y_valid

    def fit(self, X, y, **params):
        """Select the rows to keep.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features (embeddings).
        y : array-like of shape (n_samples,)
            Class labels.
        **params : dict
            Sample-aligned metadata some samplers need, such as ``groups``.

        Returns
        -------
        self : object
        """
        self._fit(X, y, **params)
        return self

    def fit_resample(self, X, y, **params):
        """Fit, then return the selected rows of ``X`` and ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features (embeddings).
        y : array-like of shape (n_samples,)
            Class labels.
        **params : dict
            Sample-aligned metadata some samplers need, such as ``groups``.

        Returns
        -------
        X_res : ndarray, DataFrame or list of shape (n_kept, n_features)
            The kept rows, in the order of ``sample_indices_`` (a DataFrame or a list
            when ``X`` is one).
        y_res : ndarray, Series or list of shape (n_kept,)
            Their labels (a Series or a list when ``y`` is one).
        """
        X_valid, y_valid = self._fit(X, y, **params)
        rows = self.sample_indices_
        # A DataFrame or Series comes back as one, with its columns, dtypes and index;
        # a list as a list, as imbalanced-learn's samplers do.
        return _like(X, X_valid, rows), _like(y, y_valid, rows)

    def get_feature_names_out(self, input_features=None):
        """The input feature names: a sampler keeps every column.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names to check against ``feature_names_in_`` and return; ``None`` gives
            ``feature_names_in_``, or ``x0, x1, ...`` when fit saw no names.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        return OneToOneFeatureMixin.get_feature_names_out(self, input_features)

    def __sklearn_tags__(self):
        tags = _as_sampler_tags(super().__sklearn_tags__())
        tags.target_tags.required = True
        return tags


def is_number(value, *, integer=False):
    """Whether ``value`` is a real number that is not NaN (an integer when ``integer``).

    Booleans, strings and ``None`` are not numbers here, so a parameter check built on
    this raises its own message instead of a comparison's TypeError.

    Parameters
    ----------
    value : object
        The parameter value to test.
    integer : bool, default=False
        Require an integer (``2.0`` is not one).

    Returns
    -------
    result : bool

    Examples
    --------
    >>> from midlogit.base import is_number
    >>> is_number(0.5), is_number("5"), is_number(True), is_number(2.0, integer=True)
    (True, False, False, False)
    """
    if isinstance(value, bool | np.bool_):
        return False
    if integer:
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real) and not np.isnan(value)


def check_sample_weight(sample_weight, n_samples):
    """Validate per-row weights: a float array of ``n_samples`` finite values >= 0.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,)
        The weights; they must not all be zero.
    n_samples : int
        Rows of the data they weight.

    Returns
    -------
    weights : ndarray of float64, shape (n_samples,)
        The weights as float64 (the input itself when it already is; never modified).

    Raises
    ------
    ValueError
        Wrong length, non-numeric, NaN, infinite or negative values, or a zero sum.

    Examples
    --------
    >>> from midlogit.base import check_sample_weight
    >>> check_sample_weight([1, 2], 2).tolist()
    [1.0, 2.0]
    """
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sample_weight must hold numbers, one per row ({exc}).") from exc
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {weights.shape}; expected ({n_samples},), one weight "
            "per row."
        )
    bad = np.flatnonzero(~np.isfinite(weights))
    if bad.size:
        raise ValueError(
            f"sample_weight holds NaN or infinite values (rows {bad[:5].tolist()}"
            f"{', ...' if bad.size > 5 else ''}); give every row a finite weight."
        )
    negative = np.flatnonzero(weights < 0)
    if negative.size:
        raise ValueError(
            f"sample_weight holds negative values (rows {negative[:5].tolist()}"
            f"{', ...' if negative.size > 5 else ''}); weights must be >= 0."
        )
    if not weights.sum() > 0:
        raise ValueError("sample_weight sums to zero; give some rows a positive weight.")
    return weights


def _power_of_two_below(values):
    """Per entry, a power of two ``f`` with ``f <= |value| < 2 f`` (1 for zeros).

    Dividing by a power of two is exact, so scaling by ``f`` first changes no bit of a
    result in the normal range and keeps squares and sums of extreme values finite.
    """
    _, exponent = np.frexp(np.abs(values))
    return np.where(values != 0, np.ldexp(1.0, exponent - 1), 1.0).astype(values.dtype)


# Rows read at a time for column statistics, a head's logits and finite checks: a memmap
# is never copied whole.
_ROWS_PER_BLOCK = 8192


def _row_blocks(n_rows, rows=None):
    """Slices of ``rows`` rows (default ``_ROWS_PER_BLOCK``) that cover ``n_rows``."""
    rows = _ROWS_PER_BLOCK if rows is None else rows
    return [slice(s, s + rows) for s in range(0, n_rows, rows)]


def standardization(X, *, enabled=True, sample_weight=None):
    """Per-column (weighted) mean and scale of ``X``, or zeros and ones when disabled.

    Constant columns get scale 1, so ``(X - mean) / scale`` is always finite. Each column
    is divided by a power of two near its largest value first, so values near the
    limits of the float type give finite statistics (``(X - mean) ** 2`` would overflow
    or underflow).

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.base import standardization
    >>> mean, scale = standardization(np.array([[0.0, 1.0], [2.0, 1.0]]))
    >>> mean.tolist(), scale.tolist()
    ([1.0, 1.0], [1.0, 1.0])
    >>> mean, scale = standardization(np.array([[0.0], [2e300]]))
    >>> mean.tolist(), scale.tolist()
    ([1e+300], [1e+300])
    """
    if not enabled:
        return np.zeros(X.shape[1], dtype=X.dtype), np.ones(X.shape[1], dtype=X.dtype)
    blocks = _row_blocks(X.shape[0])
    factor = _power_of_two_below(np.max([np.max(np.abs(X[b]), axis=0) for b in blocks], axis=0))
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if not w.sum() > 0:
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")

    def average(f):
        """The weighted mean of ``f(X[block] / factor)`` over the rows, block by block."""
        return sum(w[b] @ f(X[b] / factor) for b in blocks) / w.sum()

    mean_u = average(lambda U: U.astype(np.float64))
    std_u = np.sqrt(average(lambda U: (U - mean_u) ** 2))
    mean, scale = mean_u * factor, std_u * factor
    return mean.astype(X.dtype), np.where(scale > 0, scale, 1.0).astype(X.dtype)


def in_row_blocks(method, X, rows=None):
    """``method(X)`` as float64, computed on blocks of ``rows`` rows and stacked.

    A fitted head's ``decision_function`` on a float32 memmap would otherwise convert
    the whole matrix at once (NumPy < 2 does so for a float64 ``coef_``).

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.base import in_row_blocks
    >>> in_row_blocks(lambda X: X.sum(axis=1), np.ones((5, 2)), rows=2).tolist()
    [2.0, 2.0, 2.0, 2.0, 2.0]
    """
    blocks = _row_blocks(X.shape[0], rows)
    if len(blocks) <= 1:
        return np.asarray(method(X), dtype=np.float64)
    take = X.iloc if hasattr(X, "iloc") else X
    return np.concatenate([np.asarray(method(take[b]), dtype=np.float64) for b in blocks])


def standardize(X, mean, scale):
    """``(X - mean) / scale``, computed without overflow for values near the float limits.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.base import standardize
    >>> standardize(np.array([[-1e308], [1e308]]), np.array([0.0]), np.array([1e308]))
    array([[-1.],
           [ 1.]])
    """
    factor = _power_of_two_below(scale)
    return (X / factor - mean / factor) / (scale / factor)


def balanced_indices(groups, *, mode="undersample", random_state=None, min_size=1):
    """Indices that give every group the same number of rows.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Group id per row (any hashable labels).
    mode : {"undersample", "oversample"}, default="undersample"
        Shrink every group to the smallest one (without replacement), or grow every
        group to the largest one (the group's own rows, then draws with replacement).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.
    min_size : int, default=1
        With ``mode="undersample"``, groups are cut to ``max(smallest, min_size)``
        rows; groups smaller than that keep all their rows.

    Returns
    -------
    indices : ndarray of int
        Sorted within each group, groups in the order of ``np.unique(groups)``.

    Examples
    --------
    >>> from midlogit.base import balanced_indices
    >>> balanced_indices([0, 0, 0, 1], random_state=0).size
    2
    >>> balanced_indices([0, 0, 0, 1], mode="oversample", random_state=0).size
    6
    """
    if mode not in ("undersample", "oversample"):
        raise ValueError(f"mode must be 'undersample' or 'oversample', got {mode!r}.")
    rng = check_random_state(random_state)
    groups = np.asarray(groups)
    _, codes = np.unique(groups, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    members = np.split(order, np.cumsum(counts)[:-1])
    parts = []
    if mode == "undersample":
        target = max(int(counts.min()), int(min_size))
        for rows in members:
            if rows.size > target:
                rows = np.sort(rng.choice(rows, size=target, replace=False))
            parts.append(rows)
    else:
        target = int(counts.max())
        for rows in members:
            extra = rng.choice(rows, size=target - rows.size, replace=True)
            parts.append(np.concatenate([rows, np.sort(extra)]))
    return np.concatenate(parts).astype(np.intp)


def balanced_weights(groups):
    """Per-row weights that give every group the same total weight (mean weight 1).

    Examples
    --------
    >>> from midlogit.base import balanced_weights
    >>> balanced_weights([0, 0, 0, 1]).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    _, codes, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    return codes.size / (counts.size * counts[codes])


class LinearHeadMixin:
    """Predictions of a fitted linear head from ``coef_``, ``intercept_``, ``classes_``.

    For two classes ``coef_`` has one row and the decision function is 1-D, as in
    scikit-learn's linear classifiers.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator, ClassifierMixin
    >>> from midlogit.base import LinearHeadMixin
    >>> class Fixed(LinearHeadMixin, ClassifierMixin, BaseEstimator):
    ...     def fit(self, X, y):
    ...         self.coef_, self.intercept_ = np.array([[1.0]]), np.array([-0.5])
    ...         self.classes_, self.n_features_in_ = np.array(["a", "b"]), 1
    ...         return self
    >>> Fixed().fit([[0.0], [1.0]], ["a", "b"]).predict([[0.2], [0.9]]).tolist()
    ['a', 'b']
    """

    def decision_function(self, X):
        """Logits: ``X @ coef_.T + intercept_`` (1-D for two classes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        X = check_fitted_features(self, X, "coef_")
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        codes = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[codes]

    def predict_proba(self, X):
        """Class probabilities (sigmoid for two classes, softmax otherwise).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = expit(scores)
            return np.column_stack([1 - positive, positive])
        return softmax(scores, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags
