"""A new last layer for a frozen backbone: logistic regression on its embeddings."""

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .base import (
    LinearHeadMixin,
    balanced_indices,
    check_label_types,
    check_sample_weight,
    is_number,
    shown_label,
    standardization,
    standardize,
    validate_xy,
)

__all__ = ["LastLayerRetrainer"]

# scikit-learn 1.8 replaced `penalty` by `l1_ratio` in LogisticRegression.
_L1_RATIO_API = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 8)

# Without standardisation, lbfgs and liblinear fail silently (a constant head) on
# features of magnitude about 1e15 (liblinear) to 1e30 (lbfgs); refuse above this.
_RAW_LIMIT = 1e10


class LastLayerRetrainer(LinearHeadMixin, ClassifierMixin, BaseEstimator):
    """Linear head retrained on penultimate-layer embeddings.

    Standardises the embeddings, fits an L1 or L2 logistic regression and, as DFR does,
    can average the coefficients of several fits on class-balanced subsamples. The
    standardisation is folded into ``coef_`` and ``intercept_``, so the head acts on raw
    embeddings and :meth:`to_torch` exports it as one ``nn.Linear``.

    Parameters
    ----------
    penalty : {"l2", "l1"}, default="l2"
        Regularisation. ``"l1"`` uses liblinear (the DFR recipe), one-vs-rest for more
        than two classes; ``"l2"`` uses lbfgs.
    C : float, default=1.0
        Inverse regularisation strength.
    standardize : bool, default=True
        Standardise each embedding dimension before fitting (computed so that values
        near the float limits stay finite). With ``False`` the solver sees the
        embeddings as they are, and values above 1e10 in magnitude are refused.
    class_weight : "balanced", dict or None, default="balanced"
        Class weights of each fit (see :class:`~sklearn.linear_model.LogisticRegression`).
    n_subsamples : int, default=1
        With 1, fit once on all rows. With more, fit on that many class-balanced
        subsamples (each class cut to the smallest class) and average the coefficients.
        When ``fit`` receives ``groups``, every fit is on a group-balanced subsample
        instead: with ``penalty="l1"`` and ``n_subsamples=20`` this is the DFR recipe.
    max_iter : int, default=1000
        Iterations of each logistic regression.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling and the solver.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights on the raw embeddings.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Biases.
    mean_, scale_ : ndarray of shape (n_features,)
        The standardisation that was folded in (zeros and ones when off).
    n_features_in_ : int
        Number of embedding dimensions.

    See Also
    --------
    midlogit.selection.LogitBandSelector : chooses the rows to retrain on.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from midlogit.retraining import LastLayerRetrainer
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> head = LastLayerRetrainer(n_subsamples=5, random_state=0).fit(X, y)
    >>> head.coef_.shape
    (1, 20)
    >>> round(head.score(X, y), 2)
    0.95
    """

    def __init__(
        self,
        *,
        penalty="l2",
        C=1.0,
        standardize=True,
        class_weight="balanced",
        n_subsamples=1,
        max_iter=1000,
        random_state=None,
    ):
        self.penalty = penalty
        self.C = C
        self.standardize = standardize
        self.class_weight = class_weight
        self.n_subsamples = n_subsamples
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit the head.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-row weights.
        groups : array-like of shape (n_samples,), default=None
            Group labels (DFR). Given, each fit uses a group-balanced subsample.

        Returns
        -------
        self : LastLayerRetrainer
        """
        self._check_params()
        X, y = validate_xy(self, X, y)
        self.classes_, y_codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                f"y holds a single class ({self.classes_[0]!r}); the head needs at least "
                "two. If the rows came from a selector, widen its band."
            )
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X.shape[0])
            self._check_class_weights(y_codes, sample_weight, "")
        self._check_magnitude(X)
        self.mean_, self.scale_ = standardization(
            X, enabled=self.standardize, sample_weight=sample_weight
        )
        Z = standardize(X, self.mean_, self.scale_) if self.standardize else X

        rng = check_random_state(self.random_state)
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (X.shape[0],):
                raise ValueError(
                    f"groups has shape {groups.shape}; expected ({X.shape[0]},), one group "
                    "label per row."
                )
            check_label_types(groups, "groups")
            balance_by = groups
        else:
            balance_by = None if self.n_subsamples == 1 else y_codes
        if balance_by is None:
            subsets = [np.arange(X.shape[0])]
        else:
            subsets = [
                balanced_indices(balance_by, random_state=rng) for _ in range(self.n_subsamples)
            ]
        coefs, intercepts = [], []
        for rows in subsets:
            if np.unique(y_codes[rows]).size < self.classes_.size:
                raise ValueError(
                    "A group-balanced subsample lacks a class; groups must be finer than "
                    "the classes (e.g. (class, attribute) pairs)."
                )
            if sample_weight is not None and len(subsets) > 1:
                self._check_class_weights(y_codes[rows], sample_weight[rows], " in a subsample")
            coef, intercept = self._fit_one(
                Z[rows],
                y_codes[rows],
                None if sample_weight is None else sample_weight[rows],
                rng,
            )
            coefs.append(coef)
            intercepts.append(intercept)
        coef = np.mean(coefs, axis=0)
        intercept = np.mean(intercepts, axis=0)
        with np.errstate(over="ignore", invalid="ignore"):
            self.coef_ = coef / self.scale_
            self.intercept_ = intercept - self.coef_ @ self.mean_
        if not (np.all(np.isfinite(self.coef_)) and np.all(np.isfinite(self.intercept_))):
            raise ValueError(
                "The head's coefficients on the raw embeddings overflow: X's columns vary "
                f"by as little as {self.scale_.min():.3g}, so folding the standardisation "
                "into coef_ divides by it. Multiply X by a constant (e.g. 1 / that "
                "value) before fitting."
            )
        self.n_iter_ = np.array([len(subsets)])
        return self

    def _check_class_weights(self, y_codes, sample_weight, where):
        """Refuse a class whose rows all have zero weight: the head could not learn it."""
        totals = np.bincount(y_codes, weights=sample_weight, minlength=self.classes_.size)
        empty = np.flatnonzero(totals == 0)
        if empty.size:
            raise ValueError(
                f"Class {shown_label(self.classes_[empty[0]])} has zero total "
                f"sample_weight{where}, so the head cannot learn it; give some of its rows "
                "a positive weight, or leave the class out of y."
            )

    def _check_magnitude(self, X):
        """Refuse values whose magnitude the solver cannot work with."""
        peak = float(np.max(np.abs(X)))
        info = np.finfo(X.dtype)
        if 0 < peak < info.tiny:
            raise ValueError(
                f"X's largest absolute value is {peak:.3g}, below the smallest normal "
                f"{X.dtype} ({info.tiny:.3g}): every value is subnormal and has lost "
                "precision. Multiply X by a constant (e.g. 1e300) before fitting."
            )
        if not self.standardize and peak > _RAW_LIMIT:
            raise ValueError(
                f"X's largest absolute value is {peak:.3g}; with standardize=False the "
                f"solver works on X as given and is reliable up to {_RAW_LIMIT:.0e}. Use "
                "standardize=True (the default) or rescale X."
            )

    def _check_params(self):
        if self.penalty not in ("l1", "l2"):
            raise ValueError(f"penalty must be 'l1' or 'l2', got {self.penalty!r}.")
        if not (is_number(self.n_subsamples, integer=True) and self.n_subsamples >= 1):
            raise ValueError(
                f"n_subsamples must be a positive integer, got {self.n_subsamples!r}."
            )
        if not (is_number(self.C) and 0 < self.C < np.inf):
            raise ValueError(f"C must be positive (a finite number), got {self.C!r}.")
        if not (is_number(self.max_iter, integer=True) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}.")

    def _logistic_regression(self, rng):
        l1 = self.penalty == "l1"
        penalty = {"l1_ratio": float(l1)} if _L1_RATIO_API else {"penalty": self.penalty}
        model = LogisticRegression(
            C=self.C,
            **penalty,
            solver="liblinear" if l1 else "lbfgs",
            class_weight=self._class_weight_codes(),
            max_iter=self.max_iter,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )
        return model

    def _fit_one(self, Z, y_codes, sample_weight, rng):
        """Coefficients of one fit; L1 with more than two classes is one-vs-rest."""
        if self.penalty == "l2" or self.classes_.size == 2:
            model = self._logistic_regression(rng).fit(Z, y_codes, sample_weight=sample_weight)
            return model.coef_, model.intercept_
        weights = self._class_weight_codes()
        models = []
        for k in range(self.classes_.size):
            model = self._logistic_regression(rng)
            if isinstance(weights, dict):
                model.set_params(class_weight={True: weights[k], False: 1.0})
            models.append(model.fit(Z, y_codes == k, sample_weight=sample_weight))
        return (
            np.vstack([m.coef_ for m in models]),
            np.concatenate([m.intercept_ for m in models]),
        )

    def _class_weight_codes(self):
        if isinstance(self.class_weight, dict):
            return {
                code: self.class_weight.get(label, 1.0) for code, label in enumerate(self.classes_)
            }
        return self.class_weight

    def to_torch(self):
        """The head as a ``torch.nn.Linear`` acting on raw embeddings.

        For two classes the layer has two outputs whose difference is
        :meth:`decision_function`, so ``argmax`` gives :meth:`predict`'s class index.

        Returns
        -------
        layer : torch.nn.Linear of shape (n_features -> n_classes)
        """
        import torch

        check_is_fitted(self, "coef_")
        coef, intercept = self.coef_, self.intercept_
        if coef.shape[0] == 1:
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        layer = torch.nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(coef, dtype=layer.weight.dtype))
            layer.bias.copy_(torch.as_tensor(intercept, dtype=layer.bias.dtype))
        return layer
