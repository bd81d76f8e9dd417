"""The methods midlogit is compared against, in the same sampler API.

Each is a sampler, so a comparison is one loop over pipelines that share a backbone:
``ClassBalancedSampler`` and ``RandomSubsetSampler`` need no labels beyond the class,
``ErrorSetSelector`` keeps the ERM model's errors or lowest own-class logits (JTT and
SELF style: the extremes, where midlogit keeps the mid-range), and
``GroupBalancedSampler`` needs group labels (the data side of DFR).
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from .base import (
    SamplerMixin,
    balanced_indices,
    check_label_types,
    is_number,
    shown_label,
)
from .metrics import worst_group_accuracy
from .retraining import LastLayerRetrainer
from .selection import check_cv, class_logits, estimator_input

__all__ = [
    "ClassBalancedSampler",
    "RandomSubsetSampler",
    "ErrorSetSelector",
    "GroupBalancedSampler",
    "fit_dfr",
    "DFR_C_VALUES",
]

DFR_C_VALUES = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
"""The L1 strengths DFR searches (Kirichenko et al., ICLR 2023)."""


# ErrorSetSelector refuses to return more than this many times its input rows.
_MAX_GROWTH = 1000


def _check_sampling(sampling):
    if sampling not in ("undersample", "oversample"):
        raise ValueError(f"sampling must be 'undersample' or 'oversample', got {sampling!r}.")


class ClassBalancedSampler(SamplerMixin, BaseEstimator):
    """Resample so that every class has the same number of rows.

    Parameters
    ----------
    sampling : {"undersample", "oversample"}, default="undersample"
        Cut every class to the smallest, or grow every class to the largest.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.

    Attributes
    ----------
    sample_indices_ : ndarray of int
        Rows returned by ``fit_resample``.
    n_features_in_ : int
        Number of features.

    Examples
    --------
    >>> from midlogit.baselines import ClassBalancedSampler
    >>> X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 0, 1]
    >>> ClassBalancedSampler(random_state=0).fit_resample(X, y)[1]
    [0, 1]
    """

    def __init__(self, *, sampling="undersample", random_state=None):
        self.sampling = sampling
        self.random_state = random_state

    def _resample(self, X, y, X_given):
        _check_sampling(self.sampling)
        if np.unique(y).size < 2:
            raise ValueError(
                "ClassBalancedSampler needs at least two classes in y to balance; got "
                f"only class {shown_label(y[0])}."
            )
        return balanced_indices(y, mode=self.sampling, random_state=self.random_state)


class RandomSubsetSampler(SamplerMixin, BaseEstimator):
    """Keep a random subset of the rows (the control for any selection).

    Parameters
    ----------
    n_samples : int or float, default=0.5
        Rows to keep: a count, or a fraction of the rows when a float in (0, 1].
    stratify : bool, default=True
        Keep the class proportions.
    random_state : int, RandomState instance or None, default=None
        Seeds the draw.

    Attributes
    ----------
    sample_indices_ : ndarray of int
        Rows kept, sorted.
    n_features_in_ : int
        Number of features.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.baselines import RandomSubsetSampler
    >>> X, y = np.zeros((10, 2)), np.repeat([0, 1], 5)
    >>> RandomSubsetSampler(n_samples=0.4, random_state=0).fit_resample(X, y)[1].tolist()
    [0, 0, 1, 1]
    """

    def __init__(self, *, n_samples=0.5, stratify=True, random_state=None):
        self.n_samples = n_samples
        self.stratify = stratify
        self.random_state = random_state

    def _resample(self, X, y, X_given):
        n = y.shape[0]
        if is_number(self.n_samples, integer=True) and 1 <= self.n_samples <= n:
            total = int(self.n_samples)
        elif is_number(self.n_samples) and 0 < self.n_samples <= 1:
            total = max(1, round(float(self.n_samples) * n))
        else:
            raise ValueError(
                f"n_samples must be a count in [1, {n}] or a fraction in (0, 1], got "
                f"{self.n_samples!r}."
            )
        rng = check_random_state(self.random_state)
        strata = y if self.stratify else np.zeros(n, dtype=int)
        labels, counts = np.unique(strata, return_counts=True)
        # Largest remainders: per-stratum sizes proportional to the strata, summing to total.
        quotas = total * counts / n
        sizes = np.floor(quotas).astype(int)
        sizes[np.argsort(sizes - quotas, kind="stable")[: total - sizes.sum()]] += 1
        kept = [
            rng.choice(np.flatnonzero(strata == label), size=size, replace=False)
            for label, size in zip(labels, sizes)
        ]
        return np.sort(np.concatenate(kept))


class ErrorSetSelector(SamplerMixin, BaseEstimator):
    """Keep the ERM model's errors or hardest rows, JTT / SELF style.

    Where :class:`~midlogit.selection.LogitBandSelector` keeps the mid-range of a
    class logit, this keeps its low extreme: the misclassified rows
    (``selection="errors"``) or, per class, the rows with the lowest logit for their
    own class (``selection="lowest_logit"``).

    Parameters
    ----------
    estimator : fitted classifier or None, default=None
        Gives the logits (see :func:`~midlogit.selection.class_logits`); ``None`` uses
        out-of-fold logistic regression.
    selection : {"errors", "lowest_logit"}, default="errors"
        Which rows form the error set.
    fraction : float, default=0.2
        With ``"lowest_logit"``, the fraction of each class kept.
    upweight : int or None, default=20
        JTT: return every row plus the error set repeated ``upweight - 1`` more times
        (refused when that is more than 1000 times the input rows). ``None`` returns
        the error set alone (SELF style).
    cv : int, default=5
        Folds of the out-of-fold logits.
    random_state : int, RandomState instance or None, default=None
        Seeds the fold split.

    Attributes
    ----------
    error_set_ : ndarray of int
        Rows in the error set.
    logits_ : ndarray of shape (n_samples, n_classes)
        Logits used.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    sample_indices_ : ndarray of int
        Rows returned by ``fit_resample``.
    n_features_in_ : int
        Number of features.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from midlogit.baselines import ErrorSetSelector
    >>> X, y = make_classification(n_samples=200, flip_y=0.1, random_state=0)
    >>> selector = ErrorSetSelector(upweight=None, random_state=0).fit(X, y)
    >>> bool(0 < selector.error_set_.size < 200)
    True
    """

    def __init__(
        self,
        *,
        estimator=None,
        selection="errors",
        fraction=0.2,
        upweight=20,
        cv=5,
        random_state=None,
    ):
        self.estimator = estimator
        self.selection = selection
        self.fraction = fraction
        self.upweight = upweight
        self.cv = cv
        self.random_state = random_state

    def _resample(self, X, y, X_given):
        if self.selection not in ("errors", "lowest_logit"):
            raise ValueError(
                f"selection must be 'errors' or 'lowest_logit', got {self.selection!r}."
            )
        if not (is_number(self.fraction) and 0 < self.fraction <= 1):
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}.")
        if self.upweight is not None and not (
            is_number(self.upweight, integer=True) and self.upweight >= 1
        ):
            raise ValueError(
                f"upweight must be a positive integer or None, got {self.upweight!r}."
            )
        check_cv(self.cv)
        self.logits_, self.classes_ = class_logits(
            self.estimator,
            estimator_input(self.estimator, X_given, X),
            y,
            cv=self.cv,
            random_state=self.random_state,
        )
        # The estimator's classes_ need not be sorted (e.g. ["b", "a"]): look each label
        # up through a sorter, so codes[i] is the column of y[i]'s logit.
        sorter = np.argsort(self.classes_, kind="stable")
        codes = sorter[np.searchsorted(self.classes_, y, sorter=sorter)]
        if self.selection == "errors":
            error_set = np.flatnonzero(self.logits_.argmax(axis=1) != codes)
        else:
            own = self.logits_[np.arange(y.shape[0]), codes]
            parts = []
            for code in np.unique(codes):
                rows = np.flatnonzero(codes == code)
                size = max(1, round(self.fraction * rows.size))
                parts.append(rows[np.argsort(own[rows], kind="stable")[:size]])
            error_set = np.sort(np.concatenate(parts))
        self.error_set_ = error_set
        if self.upweight is None:
            if np.unique(y[error_set]).size < 2:
                raise ValueError(
                    f"The error set holds {error_set.size} rows of fewer than two classes; "
                    "use upweight=... (JTT) or selection='lowest_logit'."
                )
            return error_set
        n_rows = y.shape[0] + error_set.size * (int(self.upweight) - 1)
        if n_rows > _MAX_GROWTH * y.shape[0]:
            raise ValueError(
                f"upweight={self.upweight} would repeat the {error_set.size} error rows "
                f"into {n_rows} rows, more than {_MAX_GROWTH} times the {y.shape[0]} "
                "input rows; JTT uses upweight between about 5 and 100."
            )
        repeats = np.tile(error_set, self.upweight - 1)
        return np.concatenate([np.arange(y.shape[0]), repeats])


class GroupBalancedSampler(SamplerMixin, BaseEstimator):
    """Resample so that every group has the same number of rows (needs group labels).

    This is the data side of DFR (Kirichenko et al., ICLR 2023). In a
    :class:`~midlogit.pipeline.Pipeline` pass the labels as
    ``groupbalancedsampler__groups=groups``. With metadata routing enabled the sampler
    requests ``groups`` by default (as scikit-learn's group splitters do), so
    ``pipe.fit(X, y, groups=groups)`` reaches it in midlogit's and in
    imbalanced-learn's ``Pipeline``; the latter passes samplers no ``step__param``
    without routing.

    Parameters
    ----------
    sampling : {"undersample", "oversample"}, default="undersample"
        Cut every group to the smallest, or grow every group to the largest.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.

    Attributes
    ----------
    sample_indices_ : ndarray of int
        Rows returned by ``fit_resample``.
    n_features_in_ : int
        Number of features.

    Examples
    --------
    >>> from midlogit.baselines import GroupBalancedSampler
    >>> X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    >>> sampler = GroupBalancedSampler(random_state=0)
    >>> sampler.fit_resample(X, y, groups=[0, 1, 2, 2])[1]
    [0, 0, 1]
    """

    def __init__(self, *, sampling="undersample", random_state=None):
        self.sampling = sampling
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        """Choose the group-balanced rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,)
            Class labels.
        groups : array-like of shape (n_samples,)
            Group label of each row.

        Returns
        -------
        self : GroupBalancedSampler
        """
        self._fit(X, y, groups=groups)
        return self

    def get_metadata_routing(self):
        """The metadata this sampler requests: ``groups``, unless set otherwise.

        ``groups`` is requested for ``fit`` and, where the routing knows that method
        (once imbalanced-learn is imported), for ``fit_resample``; a request set with
        ``set_fit_request(groups=...)`` holds for both.

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRequest
        """
        routing = super().get_metadata_routing()
        chosen = routing.fit.requests.get("groups")
        for method in ("fit", "fit_resample"):
            request = getattr(routing, method, None)
            if request is not None and request.requests.get("groups") is None:
                request.add_request(param="groups", alias=True if chosen is None else chosen)
        return routing

    def _resample(self, X, y, X_given, groups=None):
        _check_sampling(self.sampling)
        if groups is None:
            raise ValueError(
                "GroupBalancedSampler needs groups=...: one group label per row. In "
                "midlogit's Pipeline pass groupbalancedsampler__groups=groups to fit; in "
                "imbalanced-learn's Pipeline, which passes samplers no step parameters, "
                "enable metadata routing (sklearn.set_config(enable_metadata_routing="
                "True)) and pass groups=groups to fit."
            )
        groups = np.asarray(groups)
        if groups.ndim == 2 and groups.shape[1] == 1:  # a column, as y may be
            groups = groups.ravel()
        if groups.ndim != 1:
            raise ValueError(
                f"groups must be 1-D, one group label per row; got shape {groups.shape}."
            )
        if groups.shape != y.shape:
            raise ValueError(
                f"groups has {groups.size} entries but X has {y.size} rows; pass one "
                "group label per row."
            )
        check_label_types(groups, "groups")
        return balanced_indices(groups, mode=self.sampling, random_state=self.random_state)


def fit_dfr(
    X,
    y,
    groups,
    *,
    C_values=DFR_C_VALUES,
    validation_fraction=0.5,
    n_subsamples=20,
    random_state=None,
):
    """DFR (Kirichenko et al., ICLR 2023): a last layer retrained with group labels.

    Every C of ``C_values`` is fitted (L1 logistic regression on a group-balanced
    subsample) on one part of the rows and scored by worst-group accuracy on the rest
    (a split stratified by group); the best C is then refitted on every row, averaging
    ``n_subsamples`` fits on group-balanced subsamples. The reference that label-free
    methods are measured against.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings of the held-out rows.
    y : array-like of shape (n_samples,)
        Class labels.
    groups : array-like of shape (n_samples,)
        Group labels (class × attribute).
    C_values : sequence of float, default=DFR_C_VALUES
        Inverse L1 strengths tried.
    validation_fraction : float, default=0.5
        Share of the rows that scores each C.
    n_subsamples : int, default=20
        Group-balanced fits averaged in the final head.
    random_state : int, RandomState instance or None, default=None
        Seeds the split and the subsamples.

    Returns
    -------
    head : midlogit.retraining.LastLayerRetrainer
        Fitted on every row with the chosen ``C`` (``head.C``).

    Examples
    --------
    >>> from midlogit.baselines import fit_dfr
    >>> from midlogit.datasets import make_spurious_gaussians
    >>> data = make_spurious_gaussians(600, bias=0.9, random_state=0)
    >>> head = fit_dfr(data.data, data.target, data.groups, random_state=0)
    >>> head.C in (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
    True
    """
    X, y, groups = np.asarray(X), np.asarray(y), np.asarray(groups)
    fit_rows, val_rows = train_test_split(
        np.arange(y.size), test_size=validation_fraction, stratify=groups,
        random_state=random_state,
    )  # fmt: skip
    scores = []
    for C in C_values:
        model = LastLayerRetrainer(
            penalty="l1", C=C, n_subsamples=1, random_state=random_state
        ).fit(X[fit_rows], y[fit_rows], groups=groups[fit_rows])
        predicted = model.predict(X[val_rows])
        scores.append(worst_group_accuracy(y[val_rows], predicted, groups=groups[val_rows]))
    best_C = C_values[int(np.argmax(scores))]
    return LastLayerRetrainer(
        penalty="l1", C=best_C, n_subsamples=n_subsamples, random_state=random_state
    ).fit(X, y, groups=groups)
