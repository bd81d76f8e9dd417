"""Mid-range logit band selection (O'Mahony et al., WACV 2025).

Order the samples by a class's logit; the extremes hold the confident, prototypical
cases, the mid-range band holds low-spurious samples, counterexamples to the spurious
trend and mislabels. :class:`LogitBandSelector` keeps that band.
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._validation import DEPRECATED, renamed_param
from .base import SamplerMixin, in_row_blocks, is_number, shown_label

__all__ = ["LogitBandSelector", "class_logits"]


def check_cv(cv):
    """Raise a ValueError unless ``cv`` is an integer of at least 2 (folds)."""
    if not (is_number(cv, integer=True) and cv >= 2):
        raise ValueError(f"cv must be an integer of at least 2 (folds), got {cv!r}.")


def estimator_input(estimator, given, validated):
    """What a fitted ``estimator`` is given: the DataFrame ``given`` (so the feature
    names it was fitted on are checked, without a warning), else the validated array."""
    if estimator is not None and hasattr(given, "columns"):
        return given
    return validated


def class_logits(estimator, X, y, *, cv=5, random_state=None):
    """One logit per class for every row, and the class order.

    Parameters
    ----------
    estimator : fitted classifier or None
        Its ``decision_function`` (or log-probabilities when it has none) gives the
        logits. ``None`` fits a standardised logistic regression out of fold, so no row
        is scored by a model that saw it.
    X : ndarray of shape (n_samples, n_features)
        Features.
    y : ndarray of shape (n_samples,)
        Class labels; every label must be known to a fitted ``estimator``.
    cv : int, default=5
        Folds of the out-of-fold fit (cut to the size of the smallest class).
    random_state : int, RandomState instance or None, default=None
        Seeds the fold split.

    Returns
    -------
    logits : ndarray of shape (n_samples, n_classes)
        Column ``k`` is the logit of ``classes[k]``; for a binary decision function
        ``d`` the columns are ``-d`` and ``d``.
    classes : ndarray of shape (n_classes,)

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.selection import class_logits
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    >>> y = np.array([0, 0, 0, 1, 1, 1])
    >>> logits, classes = class_logits(None, X, y, cv=3, random_state=0)
    >>> logits.shape, classes.tolist()
    ((6, 2), [0, 1])
    """
    if estimator is None:
        check_cv(cv)
        classes, counts = np.unique(y, return_counts=True)
        n_splits = min(cv, counts.min())
        if n_splits < 2:
            raise ValueError(
                "Out-of-fold logits need at least 2 rows of every class; class "
                f"{shown_label(classes[counts.argmin()])} has {counts.min()}. Pass a fitted "
                "classifier as estimator=..., or more rows."
            )
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        splitter = StratifiedKFold(n_splits, shuffle=True, random_state=random_state)
        scores = cross_val_predict(model, X, y, cv=splitter, method="decision_function")
    else:
        if isinstance(estimator, type) or not (
            hasattr(estimator, "decision_function") or hasattr(estimator, "predict_proba")
        ):
            raise ValueError(
                "estimator must be a fitted classifier instance with decision_function or "
                f"predict_proba (e.g. embedder.head()), or None; got {estimator!r}."
            )
        try:
            check_is_fitted(estimator)
        except NotFittedError as exc:
            raise NotFittedError(
                f"estimator {type(estimator).__name__} is not fitted. Pass a frozen "
                "classifier: embedder.head(), or a model fitted elsewhere wrapped in "
                "sklearn.frozen.FrozenEstimator (so that cloning, as GridSearchCV does, "
                "keeps it fitted), or estimator=None for out-of-fold logits."
            ) from exc
        classes = np.asarray(estimator.classes_)
        unknown = np.setdiff1d(np.unique(y), classes)
        if unknown.size:
            raise ValueError(
                f"y holds labels {unknown.tolist()} that estimator was not fitted on "
                f"(its classes_ are {classes.tolist()}). Pass y in the estimator's labels."
            )
        if hasattr(estimator, "decision_function"):
            method = "decision_function"
            scores = in_row_blocks(estimator.decision_function, X)
        else:
            method = "predict_proba"
            proba = in_row_blocks(estimator.predict_proba, X)
            scores = np.log(np.clip(proba, np.finfo(np.float64).tiny, None))
        _check_logit_shape(estimator, method, scores, X.shape[0], classes)
    if scores.ndim == 1:
        scores = np.column_stack([-scores, scores])
    if not np.all(np.isfinite(scores)):
        raise ValueError(
            "estimator returned NaN or infinite logits; check the estimator and that X "
            "holds finite values."
        )
    return scores, classes


def _check_logit_shape(estimator, method, scores, n_rows, classes):
    """Refuse logits that are not one row per row of X and one column per class."""
    n_classes = classes.size
    expected = f"({n_rows}, {n_classes})" + (f" or ({n_rows},)" if n_classes == 2 else "")
    if scores.ndim == 1 and n_classes == 2 and scores.shape[0] == n_rows:
        return
    if scores.ndim == 2 and scores.shape == (n_rows, n_classes):
        return
    raise ValueError(
        f"estimator {type(estimator).__name__}.{method} returned logits of shape "
        f"{scores.shape} for {n_rows} rows and {n_classes} classes_; expected {expected}, "
        "one row per row of X and one column per class. Pass a classifier fitted on "
        "these features whose classes_ match its outputs."
    )


class LogitBandSelector(SamplerMixin, BaseEstimator):
    """Keep the samples whose class logit lies in a mid-range quantile band.

    For each class, the samples are ordered by that class's logit and those between
    the quantiles ``band_center - band_width / 2`` and ``band_center + band_width / 2``
    are kept. A sampler: in a :class:`midlogit.pipeline.Pipeline` it runs during ``fit``
    only.

    Parameters
    ----------
    estimator : fitted classifier or None, default=None
        Gives the logits through ``decision_function`` — typically the backbone's own
        head (:meth:`midlogit.backbones.SkorchEmbedder.head`, frozen already); wrap a
        model fitted elsewhere in :class:`sklearn.frozen.FrozenEstimator` so cloning
        keeps it fitted. ``None`` uses out-of-fold logistic regression, so training rows do not get
        over-confident logits.
    band_center : float or "auto", default=0.5
        Centre of the band, in quantiles of the logit. ``"auto"``: 1 minus the share of
        the smallest class in ``y`` (0.5 for two balanced classes, 2/3 for three), the
        quantile where a class's logit, taken over all rows, passes from the other
        classes' rows to its own: there the rows the head is unsure of lie. Fitted as
        ``band_center_``.
    band_width : float, default=0.4
        Width of the band, in quantiles (clipped to [0, 1] at the ends). It is also the
        share of rows kept, whatever the number of classes: with several banded
        classes, a row's distance to the band is its quantile position's distance to
        ``band_center`` in the class logit where it lies closest, and the rows closest
        to the band are kept (with two classes, exactly the rows whose logit lies in
        the quantile band). Tied logits are ordered at random (``random_state``), so the
        size holds on tied logits too.
    within_class : bool, default=False
        With ``False``, take the quantiles of class ``k``'s logit over all samples and
        keep any sample whose class-``k`` logit lies in the band: the mid-range of
        the "square" logit then holds the non-squares at the squares' positions and
        the squares elsewhere, the counterexamples to the shortcut. With ``True``,
        take them over the samples labelled ``k`` only (keeping only those); there
        the counterexamples sit at the low extreme, outside a central band. The
        default was chosen by the ablation in ``docs/design.rst``.
    band_classes : array-like or None, default=None
        Classes whose logit is banded. ``None`` bands every class. With
        ``within_class=True``, rows of the other classes are all kept.
    cv : int, default=5
        Folds for the out-of-fold logits when ``estimator=None``.
    random_state : int, RandomState instance or None, default=None
        Seeds the fold split.
    per_class : bool
        Former name of ``within_class`` (FutureWarning; removed in 0.3).
    classes : array-like or None
        Former name of ``band_classes`` (FutureWarning; removed in 0.3).

    Attributes
    ----------
    band_center_ : float
        The centre used (``band_center``, or what ``"auto"`` resolved to).
    classes_ : ndarray of shape (n_classes,)
        Class labels, in the column order of ``logits_``.
    band_classes_ : ndarray of shape (n_band_classes,)
        Classes whose logit was banded.
    logits_ : ndarray of shape (n_samples, n_classes)
        The logits the band was cut on.
    thresholds_ : ndarray of shape (n_band_classes, 2)
        Lowest and highest logit of each class of ``band_classes_`` over the kept
        rows that its logit placed closest to the band centre.
    support_ : ndarray of bool, shape (n_samples,)
        Which rows were kept.
    sample_indices_ : ndarray of int
        Indices of the kept rows.
    n_features_in_ : int
        Number of features.

    See Also
    --------
    midlogit.clustering.EmbeddingClusterer : balances the band across clusters.
    midlogit.baselines.ErrorSetSelector : keeps the extremes (errors) instead.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from midlogit.selection import LogitBandSelector
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> selector = LogitBandSelector(band_width=0.4, random_state=0)
    >>> X_band, y_band = selector.fit_resample(X, y)
    >>> X_band.shape
    (120, 20)
    >>> selector.thresholds_.shape
    (2, 2)
    """

    def __init__(
        self,
        *,
        estimator=None,
        band_center=0.5,
        band_width=0.4,
        within_class=False,
        band_classes=None,
        cv=5,
        random_state=None,
        per_class=DEPRECATED,
        classes=DEPRECATED,
    ):
        self.estimator = estimator
        self.band_center = band_center
        self.band_width = band_width
        self.within_class = within_class
        self.band_classes = band_classes
        self.cv = cv
        self.random_state = random_state
        self.per_class = per_class
        self.classes = classes

    def _resample(self, X, y, X_given):
        within_class = renamed_param(self, "per_class", "within_class")
        band_classes = renamed_param(self, "classes", "band_classes")
        self.band_center_ = self.band_center
        if isinstance(self.band_center, str) and self.band_center == "auto":
            _, counts = np.unique(y, return_counts=True)
            self.band_center_ = 1.0 - counts.min() / y.shape[0]
        lo_q, hi_q = self._quantile_range()
        logits, self.classes_ = class_logits(
            self.estimator,
            estimator_input(self.estimator, X_given, X),
            y,
            cv=self.cv,
            random_state=self.random_state,
        )
        self.logits_ = logits
        self.band_classes_ = self._band_classes(band_classes, y)
        column = {label: k for k, label in enumerate(self.classes_)}

        rng = check_random_state(self.random_state)
        tiebreak = rng.permutation(y.shape[0])
        center = self.band_center_
        support = np.zeros(y.shape[0], dtype=bool)
        if within_class:
            support[~np.isin(y, self.band_classes_)] = True
        populations = [
            y == label if within_class else np.ones_like(support) for label in self.band_classes_
        ]
        for population, label in zip(populations, self.band_classes_):
            if not population.any():
                raise ValueError(
                    f"band_classes names {shown_label(label)}, which has no rows in y; name "
                    "classes "
                    "present in the data."
                )
        # Quantile position of every row in each banded class's logit, ties broken by
        # random_state, and its distance to the band centre.
        distance = np.full((y.shape[0], self.band_classes_.size), np.inf)
        for i, (population, label) in enumerate(zip(populations, self.band_classes_)):
            rows = np.flatnonzero(population)
            order = rows[np.lexsort((tiebreak[rows], logits[rows, column[label]]))]
            distance[order, i] = np.abs(np.arange(rows.size) / max(rows.size - 1, 1) - center)
        thresholds = np.empty((self.band_classes_.size, 2))
        if within_class:
            for i, population in enumerate(populations):
                rows = np.flatnonzero(population)
                size = _band_size(rows.size, lo_q, hi_q)
                keep = _closest(distance[rows, i], tiebreak[rows], size)
                support[rows[keep]] = True
        else:
            nearest = distance.min(axis=1)
            keep = _closest(nearest, tiebreak, _band_size(y.shape[0], lo_q, hi_q))
            support[keep] = True
        # A kept row belongs to the banded class whose logit put it closest to the centre.
        owner = distance.argmin(axis=1)
        for i, label in enumerate(self.band_classes_):
            mine = support & (owner == i) & np.isfinite(distance[:, i])
            scores = logits[mine if mine.any() else populations[i], column[label]]
            thresholds[i] = (
                [scores.min(), scores.max()]
                if mine.any()
                else np.quantile(scores, [center, center])
            )
        self.thresholds_ = thresholds
        self.support_ = support

        kept = np.unique(y[support])
        if kept.size == 0:
            raise ValueError(
                f"The band is empty (band_center={self.band_center}, "
                f"band_width={self.band_width}); widen band_width."
            )
        if kept.size == 1:
            raise ValueError(
                f"The band holds only class {shown_label(kept[0])} "
                f"(band_center={self.band_center}, band_width={self.band_width}, "
                f"within_class={within_class}); widen band_width or use within_class=True so "
                "every class keeps rows."
            )
        return np.flatnonzero(support)

    def _quantile_range(self):
        check_cv(self.cv)
        if not (is_number(self.band_width) and 0 < self.band_width <= 1):
            raise ValueError(
                f"band_width must be in (0, 1] (a fraction of the quantile range), got "
                f"{self.band_width!r}."
            )
        center = self.band_center_
        if not (is_number(center) and 0 <= center <= 1):
            raise ValueError(
                f"band_center must be in [0, 1] (a quantile) or 'auto', got {self.band_center!r}."
            )
        half = self.band_width / 2
        return max(center - half, 0.0), min(center + half, 1.0)

    def _band_classes(self, band_classes, y):
        if band_classes is None:
            return np.intersect1d(self.classes_, np.unique(y))
        chosen = np.unique(np.asarray(band_classes))
        unknown = np.setdiff1d(chosen, self.classes_)
        if unknown.size:
            raise ValueError(
                f"band_classes names {unknown.tolist()}, not among the labels "
                f"{self.classes_.tolist()}; name labels of y."
            )
        return chosen

    def get_support(self, indices=False):
        """Mask or indices of the kept rows.

        Parameters
        ----------
        indices : bool, default=False
            Return row indices instead of a boolean mask.

        Returns
        -------
        support : ndarray
        """
        check_is_fitted(self, "support_")
        return self.sample_indices_ if indices else self.support_


def _band_size(n, lo_q, hi_q):
    """Rows whose quantile position ``rank / (n - 1)`` lies in ``[lo_q, hi_q]``."""
    if n == 1:
        return 1
    return int(np.floor(hi_q * (n - 1) + 1e-9) - np.ceil(lo_q * (n - 1) - 1e-9) + 1)


def _closest(distance, tiebreak, size):
    """Indices of the ``size`` smallest distances, ties broken by ``tiebreak``."""
    return np.lexsort((tiebreak, distance))[: max(size, 0)]
