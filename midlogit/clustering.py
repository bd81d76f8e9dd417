"""Cluster embeddings and balance a retraining set across the clusters."""

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state

from .base import (
    SamplerMixin,
    balanced_indices,
    balanced_weights,
    check_fitted_features,
    is_number,
    shown_label,
    standardization,
)
from .selection import class_logits

__all__ = ["EmbeddingClusterer"]


class EmbeddingClusterer(SamplerMixin, ClusterMixin, BaseEstimator):
    """Cluster embeddings (per class) and resample a set balanced across clusters.

    The clusters stand in for the groups nobody labelled: within a class, samples that
    lean on the spurious feature and samples that do not tend to fall in different
    clusters. ``fit_resample`` returns a subset in which every (class, cluster)
    pseudo-group has the same number of rows.

    Parameters
    ----------
    n_clusters : int, default=4
        Clusters per class (or in all, with ``per_class=False``). Set on the clusterer
        as ``n_clusters`` (or ``n_components``, as for a Gaussian mixture).
    clusterer : estimator or None, default=None
        Any scikit-learn clusterer with ``fit_predict``; cloned for every fit.
        ``None`` uses :class:`~sklearn.cluster.KMeans` with ``n_init=10``.
    per_class : bool, default=True
        Cluster each class's rows separately. Needs ``y``; ``fit(X)`` without labels
        clusters all rows together.
    sampling : {"undersample", "oversample", "weight", "average"}, default="undersample"
        Cut every pseudo-group to the smallest one (the default of every balancing
        sampler in midlogit, and DFR's), grow every pseudo-group to the largest one by
        drawing with replacement, or keep every row and give each
        pseudo-group the same total weight (``sample_weight_``, which
        :class:`~midlogit.pipeline.Pipeline` hands to the final step's ``fit`` as
        ``sample_weight``). Weighting keeps every row where a pseudo-group is tiny.
        ``"average"`` keeps every row and hands the pseudo-groups to the final step's
        ``fit`` as ``groups`` (``sample_groups_``): a
        :class:`~midlogit.retraining.LastLayerRetrainer` with ``n_subsamples=20`` then
        averages 20 fits on pseudo-group-balanced subsamples, DFR's recipe with the
        pseudo-groups in place of group labels.
    balance : {"clusters", "pseudo_groups"}, default="clusters"
        What is balanced. ``"clusters"``: every (class, cluster) cell. ``"pseudo_groups"``:
        each class splits into its *selected* clusters (its pseudo-minority, see
        ``n_selected`` and ``selected_clusters``) and the rest, and the cells are
        balanced as DFR balances groups: (class, not selected) and, for the selected
        clusters, (class, the class the ERM head mistakes them for), so that with three
        or more classes every kind of counterexample gets a cell of its own.
    estimator : fitted classifier or None, default=None
        The ERM head (wrap it in :class:`sklearn.frozen.FrozenEstimator`): its errors
        and margins on each cluster fill ``cluster_report_`` and drive the automatic
        selection. Needed for ``balance="pseudo_groups"`` unless ``selected_clusters``
        is given.
    cluster_score : {"error_rate", "margin"}, default="error_rate"
        How the clusters of each class are ranked for selection: the ERM head's error
        rate on the cluster's rows (highest first) or the mean margin of the true class
        over the other classes (lowest first).
    n_selected : int or "auto", default=1
        Clusters selected per class: the ``n_selected`` best by ``cluster_score`` (at
        most ``n_clusters - 1``), or with ``"auto"`` every cluster on whose rows the ERM
        head errs at least ``min_error_rate`` of the time (none, if it errs on no
        cluster that often).
    min_error_rate : float in (0, 1], default=0.3
        The error rate that selects a cluster with ``n_selected="auto"``.
    selected_clusters : array-like of int or None, default=None
        Cluster ids (as in ``labels_`` and ``cluster_report_``) chosen by a person, e.g.
        after looking at :func:`midlogit.plotting.plot_cluster_examples`; they replace the
        automatic choice.
    standardize : bool, default=False
        Cluster standardised embeddings instead of raw ones. Raw embeddings keep the
        backbone's own scale, where the directions it uses most are the largest;
        the defaults were chosen by the ablation in ``docs/design.rst``.
    n_components : int or None, default=64
        Cluster each class's rows on their first ``n_components`` principal components
        (randomised PCA) instead of on every feature: on 2048-wide embeddings this
        clusters several times faster, and the leading within-class directions are
        where subgroups differ (see ``benchmarks/results/core.md``). ``None``, or a
        value not below the feature count, clusters every feature.
    project_out : array-like of shape (n_directions, n_features) or None, default=None
        Directions removed from the embeddings before clustering, typically the ERM
        head's ``coef_``: the rows are then clustered on what the head does not read,
        where rows that share a logit but got it for different reasons differ. The
        directions live in the clustering space (standardised with ``standardize``).
    selector : sampler or None, default=None
        Find the clusters on the rows this sampler keeps (for example a
        :class:`~midlogit.selection.LogitBandSelector`'s mid-range band, where the
        counterexamples to a shortcut are common enough to form clusters of their
        own), then give every row the nearest cluster of its class and draw the
        balanced set from all rows. ``None`` clusters every row it is given (placed
        after a ``LogitBandSelector`` in a pipeline, that is the band). Cloned.
    random_state : int, RandomState instance or None, default=None
        Seeds the clusterer and the resampling.

    Attributes
    ----------
    labels_ : ndarray of int, shape (n_samples,)
        Cluster of each row. With ``per_class=True`` the ids are unique across classes:
        ``class_index * n_clusters + cluster``.
    cluster_classes_ : ndarray of shape (n_clusters_total,)
        The class each cluster id belongs to (``None`` entries without ``y``).
    cluster_centers_ : ndarray of shape (n_clusters_total, n_features)
        Centroid of each cluster's rows, in the input space.
    sample_indices_ : ndarray of int
        Rows returned by ``fit_resample`` (repeated when oversampling).
    sample_weight_ : ndarray of float or None
        With ``sampling="weight"``, the weight of each returned row (mean 1); else
        ``None``.
    sample_groups_ : ndarray of int or None
        With ``sampling="average"``, ``pseudo_groups_`` (every row is returned); else
        ``None``.
    cluster_report_ : dict of ndarrays
        One entry per cluster id: ``"cluster"``, ``"class"``, ``"size"`` (rows),
        ``"error_rate"`` and ``"margin"`` of the ERM head (NaN without ``estimator``),
        ``"confused_with"`` (the class the head most often predicts wrongly on the
        cluster's rows; its own class where it never errs or without ``estimator``),
        ``"selected"`` (the pseudo-minority). ``pandas.DataFrame(cluster_report_)``
        shows it as a table.
    pseudo_groups_ : ndarray of int, shape (n_samples,)
        The cell of each row that was balanced: the cluster id with
        ``balance="clusters"``; with ``balance="pseudo_groups"``,
        ``class_index * (n_classes + 1) + j`` where ``j`` is the class index itself
        (not selected), the index of ``"confused_with"`` (selected), or ``n_classes``
        (selected by hand with no ``estimator``).
    selector_ : sampler
        The fitted clone of ``selector`` (only when one is given).
    n_features_in_ : int
        Number of features.

    See Also
    --------
    midlogit.selection.LogitBandSelector : the band whose rows are clustered.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from midlogit.clustering import EmbeddingClusterer
    >>> X, y = make_blobs(n_samples=120, centers=4, random_state=0)
    >>> y = y % 2
    >>> clusterer = EmbeddingClusterer(n_clusters=2, random_state=0)
    >>> X_bal, y_bal = clusterer.fit_resample(X, y)
    >>> sorted(set(clusterer.labels_.tolist()))
    [0, 1, 2, 3]
    >>> X_bal.shape
    (104, 2)
    """

    def __init__(
        self,
        *,
        n_clusters=4,
        clusterer=None,
        per_class=True,
        sampling="undersample",
        standardize=False,
        n_components=64,
        project_out=None,
        selector=None,
        balance="clusters",
        estimator=None,
        cluster_score="error_rate",
        n_selected=1,
        min_error_rate=0.3,
        selected_clusters=None,
        random_state=None,
    ):
        self.n_clusters = n_clusters
        self.clusterer = clusterer
        self.per_class = per_class
        self.sampling = sampling
        self.standardize = standardize
        self.n_components = n_components
        self.project_out = project_out
        self.selector = selector
        self.balance = balance
        self.estimator = estimator
        self.cluster_score = cluster_score
        self.n_selected = n_selected
        self.min_error_rate = min_error_rate
        self.selected_clusters = selected_clusters
        self.random_state = random_state

    def fit(self, X, y=None):
        """Cluster the rows and choose the balanced subset.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : array-like of shape (n_samples,), default=None
            Class labels; needed for ``per_class`` clustering and for resampling.

        Returns
        -------
        self : EmbeddingClusterer
        """
        self._fit(X, y)
        return self

    def fit_resample(self, X, y):
        if y is None:
            raise ValueError(
                "fit_resample needs y: the balanced subset is drawn per (class, cluster)."
            )
        return super().fit_resample(X, y)

    fit_resample.__doc__ = SamplerMixin.fit_resample.__doc__

    def _resample(self, X, y, X_given):
        if self.sampling not in ("undersample", "oversample", "weight", "average"):
            raise ValueError(
                "sampling must be 'undersample', 'oversample', 'weight' or 'average', got "
                f"{self.sampling!r}."
            )
        if self.balance not in ("clusters", "pseudo_groups"):
            raise ValueError(
                f"balance must be 'clusters' or 'pseudo_groups', got {self.balance!r}."
            )
        if self.cluster_score not in ("error_rate", "margin"):
            raise ValueError(
                f"cluster_score must be 'error_rate' or 'margin', got {self.cluster_score!r}."
            )
        if not (
            (isinstance(self.n_selected, str) and self.n_selected == "auto")
            or (is_number(self.n_selected, integer=True) and self.n_selected >= 1)
        ):
            raise ValueError(
                f"n_selected must be a positive integer or 'auto', got {self.n_selected!r}."
            )
        if not (is_number(self.min_error_rate) and 0 < self.min_error_rate <= 1):
            raise ValueError(
                f"min_error_rate must be a number in (0, 1], got {self.min_error_rate!r}."
            )
        if not (is_number(self.n_clusters, integer=True) and self.n_clusters >= 1):
            raise ValueError(f"n_clusters must be a positive integer, got {self.n_clusters!r}.")
        if self.n_components is not None and not (
            is_number(self.n_components, integer=True) and self.n_components >= 1
        ):
            raise ValueError(
                f"n_components must be a positive integer or None, got {self.n_components!r}."
            )
        _check_component("clusterer", self.clusterer, "fit_predict", "sklearn.cluster.KMeans()")
        _check_component(
            "selector", self.selector, "fit_resample", "midlogit.selection.LogitBandSelector()"
        )
        if self.per_class and y is not None:
            classes, codes = np.unique(y, return_inverse=True)
        else:
            codes, classes = np.zeros(X.shape[0], dtype=np.intp), np.array([None])

        self.mean_, self.scale_ = standardization(X, enabled=self.standardize)
        Z = ((X - self.mean_) / self.scale_).astype(X.dtype) if self.standardize else X
        if self.project_out is not None:
            basis = self._projection_basis(X.shape[1])
            Z = (Z - (Z @ basis) @ basis.T).astype(X.dtype)

        selected = self._selected_rows(X, y)
        rng = check_random_state(self.random_state)
        labels = np.empty(X.shape[0], dtype=np.intp)
        for code, label in enumerate(classes):
            rows = np.flatnonzero(codes == code)
            fit = selected[rows]
            if fit.sum() < self.n_clusters:
                where = "" if label is None else f" of class {shown_label(label)}"
                which = "rows" if self.selector is None else "rows kept by the selector"
                raise ValueError(
                    f"n_clusters={self.n_clusters} is more than the {fit.sum()} {which}"
                    f"{where}; lower n_clusters or keep more rows (e.g. a wider band)."
                )
            labels[rows] = code * self.n_clusters + self._cluster_class(Z[rows], fit, rng)
        self.labels_ = labels
        self.cluster_classes_ = np.repeat(classes, self.n_clusters)

        n_total = classes.size * self.n_clusters
        counts = np.bincount(labels, minlength=n_total)
        sums = np.stack([X[labels == k].sum(axis=0, dtype=np.float64) for k in range(n_total)])
        with np.errstate(invalid="ignore", divide="ignore"):
            self.cluster_centers_ = sums / counts[:, None]
        self.cluster_report_, partner = self._report(X, y, labels, counts, classes)
        if self.balance == "clusters":
            cells = labels
        else:
            cells = codes * (classes.size + 1) + partner[labels]
        self.pseudo_groups_ = cells
        self.sample_weight_ = self.sample_groups_ = None
        if self.sampling == "weight":
            self.sample_weight_ = balanced_weights(cells)
        elif self.sampling == "average":
            self.sample_groups_ = cells
        else:
            return balanced_indices(cells, mode=self.sampling, random_state=rng)
        return np.arange(X.shape[0])

    def _report(self, X, y, labels, counts, classes):
        """Per cluster: class, size, the ERM head's error rate, margin and confusion.

        Also returns, per cluster, the class index its selected rows are balanced
        against: the confused class, ``len(classes)`` where no head tells it.
        """
        n_total = counts.size
        own = np.repeat(np.arange(classes.size), self.n_clusters)
        error_rate = np.full(n_total, np.nan)
        margin = np.full(n_total, np.nan)
        confused = own.copy()
        if self.estimator is not None and y is not None:
            error_rate, margin, confused = self._head_on_clusters(X, y, labels, classes)
        selected = np.zeros(n_total, dtype=bool)
        if self.selected_clusters is not None:
            chosen = np.asarray(self.selected_clusters)
            if (
                chosen.ndim != 1
                or not np.issubdtype(chosen.dtype, np.integer)
                or (chosen.size and (chosen.min() < 0 or chosen.max() >= n_total))
            ):
                raise ValueError(
                    f"selected_clusters must be cluster ids in [0, {n_total}) as in "
                    f"labels_, got {self.selected_clusters!r}."
                )
            selected[chosen] = True
        elif self.balance == "pseudo_groups":
            if self.estimator is None:
                raise ValueError(
                    "balance='pseudo_groups' needs estimator=... (the ERM head, wrapped in "
                    "FrozenEstimator) to score the clusters, or selected_clusters=[...]."
                )
            selected = self._select(error_rate, margin, counts)
        partner = np.where(confused != own, confused, classes.size)
        report = {
            "cluster": np.arange(n_total),
            "class": self.cluster_classes_,
            "size": counts,
            "error_rate": error_rate,
            "margin": margin,
            "confused_with": classes[confused] if y is not None else self.cluster_classes_,
            "selected": selected,
        }
        return report, np.where(selected, partner, own)

    def _head_on_clusters(self, X, y, labels, classes):
        """Error rate, mean margin and most frequent wrong class of the head per cluster."""
        n_total, n_classes = classes.size * self.n_clusters, classes.size
        logits, est_classes = class_logits(self.estimator, X, y)
        sorter = np.argsort(est_classes)  # classes_ need not be sorted
        column = sorter[np.searchsorted(est_classes, y, sorter=sorter)]
        rows = np.arange(y.size)
        own_logit = logits[rows, column]
        others = logits.copy()
        others[rows, column] = -np.inf
        row_margin = own_logit - others.max(axis=1)
        predicted = logits.argmax(axis=1)
        wrong = predicted != column
        with np.errstate(invalid="ignore", divide="ignore"):
            error_rate = np.bincount(labels, wrong.astype(np.float64), n_total) / np.bincount(
                labels, minlength=n_total
            )
            margin = np.bincount(labels, row_margin, n_total) / np.bincount(
                labels, minlength=n_total
            )
        own = np.repeat(np.arange(n_classes), self.n_clusters)
        if not self.per_class:  # clusters hold several classes: no class to confuse
            return error_rate, margin, own
        # the head's wrong predictions as indices into ``classes``; unknown labels last
        predicted_labels = est_classes[predicted[wrong]]
        position = np.searchsorted(classes, predicted_labels).clip(max=n_classes - 1)
        known = classes[position] == predicted_labels
        code = np.where(known, position, n_classes)
        tally = np.bincount(
            labels[wrong] * (n_classes + 1) + code, minlength=n_total * (n_classes + 1)
        ).reshape(n_total, n_classes + 1)[:, :n_classes]
        confused = np.where(tally.max(axis=1) > 0, tally.argmax(axis=1), own)
        return error_rate, margin, confused

    def _select(self, error_rate, margin, counts):
        """The automatic pseudo-minority: a mask over cluster ids."""
        n_total = counts.size
        selected = np.zeros(n_total, dtype=bool)
        if self.n_selected == "auto":
            return (counts > 0) & (error_rate >= self.min_error_rate)
        score = error_rate if self.cluster_score == "error_rate" else -margin
        score = np.where(counts > 0, score, -np.inf)
        n_pick = min(self.n_selected, self.n_clusters - 1)
        for start in range(0, n_total, self.n_clusters):
            block = score[start : start + self.n_clusters]
            selected[start + np.argsort(-block, kind="stable")[:n_pick]] = True
        return selected

    def _projection_basis(self, n_features):
        """Orthonormal basis (columns) of the ``project_out`` directions."""
        directions = np.asarray(self.project_out, dtype=np.float64)
        if directions.ndim == 1:
            directions = directions[None, :]
        if directions.ndim != 2 or directions.shape[1] != n_features:
            raise ValueError(
                f"project_out has shape {np.shape(self.project_out)}; expected "
                f"(n_directions, {n_features}), one direction per row (e.g. head.coef_)."
            )
        if not np.isfinite(directions).all():
            raise ValueError("project_out holds NaN or inf; pass finite directions.")
        basis, singular, _ = np.linalg.svd(directions.T, full_matrices=False)
        return basis[:, singular > singular.max() * 1e-10]

    def _selected_rows(self, X, y):
        """Mask of the rows the clusters are found on."""
        if self.selector is None:
            return np.ones(X.shape[0], dtype=bool)
        if y is None:
            raise ValueError("selector needs y: pass the class labels to fit.")
        self.selector_ = clone(self.selector)
        self.selector_.fit_resample(X, y)
        selected = np.zeros(X.shape[0], dtype=bool)
        selected[self.selector_.sample_indices_] = True
        return selected

    def _cluster_class(self, Z, fit, rng):
        """Cluster ids of one class's rows, clustered on the rows where ``fit`` holds."""
        Z_fit = Z[fit]
        if self.n_components is not None and self.n_components < min(Z_fit.shape):
            pca = PCA(
                self.n_components,
                svd_solver="randomized",
                random_state=rng.randint(np.iinfo(np.int32).max),
            )
            Z_fit = pca.fit_transform(Z_fit)
            if not fit.all():
                Z = pca.transform(Z)
        found = self._fit_predict(Z_fit, rng)
        if fit.all():
            return found
        centers = np.stack([Z_fit[found == k].mean(axis=0) for k in np.unique(found)])
        assigned = _nearest_center(Z, centers)
        assigned[fit] = found
        return assigned

    def _fit_predict(self, Z, rng):
        if self.clusterer is None:
            # Z is a private copy of the rows: KMeans may centre it in place
            model = KMeans(n_clusters=self.n_clusters, n_init=10, copy_x=False)
        else:
            model = clone(self.clusterer)
        params = model.get_params()
        size = {k: self.n_clusters for k in ("n_clusters", "n_components") if k in params}
        if "random_state" in params:
            size["random_state"] = rng.randint(np.iinfo(np.int32).max)
        found = np.asarray(model.set_params(**size).fit_predict(Z))
        values, found = np.unique(found, return_inverse=True)
        if values.size > self.n_clusters:
            raise ValueError(
                f"clusterer {type(model).__name__} found {values.size} clusters, more than "
                f"n_clusters={self.n_clusters}; use a clusterer whose cluster count can be set."
            )
        return found

    def predict(self, X):
        """Nearest cluster centroid of each row.

        Distances are taken on every feature (standardised with ``standardize=True``).
        With ``n_components`` the clusters were found on a projection, so a row near a
        cluster boundary may get a different cluster than in ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.

        Returns
        -------
        labels : ndarray of int, shape (n_samples,)
        """
        X = check_fitted_features(self, X, "cluster_centers_")
        centers = (self.cluster_centers_ - self.mean_) / self.scale_
        return _nearest_center((X - self.mean_) / self.scale_, centers)

    def fit_predict(self, X, y=None):
        """Cluster the rows and return ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : array-like of shape (n_samples,), default=None
            Class labels.

        Returns
        -------
        labels : ndarray of int, shape (n_samples,)
        """
        return self.fit(X, y).labels_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags


def _check_component(name, value, method, example):
    """Raise a ValueError unless ``value`` is None or an estimator instance with ``method``."""
    if value is None:
        return
    if isinstance(value, type):
        raise ValueError(
            f"{name} must be an estimator instance, got the class {value.__name__}; pass "
            f"{value.__name__}(...)."
        )
    if not (hasattr(value, "get_params") and hasattr(value, method)):
        raise ValueError(
            f"{name} must be a scikit-learn estimator with {method} (e.g. {example}) or "
            f"None, got {value!r} ({type(value).__name__})."
        )


def _nearest_center(Z, centers):
    """Index of each row's nearest center; centers with non-finite entries never win."""
    distances = (Z**2).sum(axis=1)[:, None] - 2 * Z @ centers.T + (centers**2).sum(axis=1)
    distances[:, ~np.isfinite(centers).all(axis=1)] = np.inf
    return distances.argmin(axis=1)
