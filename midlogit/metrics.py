"""Group-robust metrics and scorers.

``worst_group_accuracy`` needs group labels; ``worst_class_accuracy`` needs none and is
what a search without group labels can optimise. ``worst_group_scorer`` receives
``groups`` from :class:`~sklearn.model_selection.GridSearchCV` through scikit-learn's
metadata routing.
"""

import numpy as np
from sklearn.metrics import make_scorer
from sklearn.utils.metadata_routing import MetadataRequest

__all__ = [
    "group_accuracies",
    "worst_group_accuracy",
    "worst_class_accuracy",
    "worst_group_scorer",
    "worst_class_scorer",
    "pseudo_groups",
    "make_pseudo_group_scorer",
]


def _check_lengths(y_true, y_pred, groups=None):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError("y_true and y_pred must be 1-D arrays of labels.")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred have different lengths ({y_true.size} and {y_pred.size})."
        )
    if y_true.size == 0:
        raise ValueError("y_true is empty: accuracy needs at least one sample.")
    if groups is None:
        return y_true, y_pred, None
    groups = np.asarray(groups)
    if groups.shape != y_true.shape:
        raise ValueError(
            f"groups has {groups.size} entries but y_true has {y_true.size}: pass one "
            "group label per sample."
        )
    return y_true, y_pred, groups


def group_accuracies(y_true, y_pred, *, groups):
    """Accuracy within each group.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    groups : array-like of shape (n_samples,)
        Group label of each sample, e.g. (class, spurious attribute) pairs encoded as ids.

    Returns
    -------
    accuracies : dict
        ``{group: accuracy}``, groups sorted.

    Examples
    --------
    >>> from midlogit.metrics import group_accuracies
    >>> group_accuracies([0, 0, 1, 1], [0, 1, 1, 1], groups=["a", "a", "b", "b"])
    {'a': 0.5, 'b': 1.0}
    """
    if groups is None:
        raise ValueError(
            "groups is required: pass one group label per sample (groups=...). Without "
            "group labels use worst_class_accuracy."
        )
    y_true, y_pred, groups = _check_lengths(y_true, y_pred, groups)
    names, codes = np.unique(groups, return_inverse=True)
    correct = np.bincount(codes, weights=y_true == y_pred, minlength=names.size)
    counts = np.bincount(codes, minlength=names.size)
    return {name: float(c / n) for name, c, n in zip(names.tolist(), correct, counts)}


def worst_group_accuracy(y_true, y_pred, *, groups):
    """Lowest accuracy over the groups present.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    groups : array-like of shape (n_samples,)
        Group label of each sample.

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> from midlogit.metrics import worst_group_accuracy
    >>> worst_group_accuracy([0, 0, 1, 1], [0, 1, 1, 1], groups=[0, 0, 1, 1])
    0.5
    """
    return min(group_accuracies(y_true, y_pred, groups=groups).values())


def worst_class_accuracy(y_true, y_pred):
    """Lowest per-class recall: a group-free proxy for worst-group accuracy.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.

    Returns
    -------
    accuracy : float
        Accuracy on the class the predictions serve worst.

    Examples
    --------
    >>> from midlogit.metrics import worst_class_accuracy
    >>> worst_class_accuracy([0, 0, 1, 1], [0, 0, 0, 1])
    0.5
    """
    y_true, y_pred, _ = _check_lengths(y_true, y_pred)
    return worst_group_accuracy(y_true, y_pred, groups=y_true)


class _GroupScorer:
    """A scorer that asks for ``groups`` through metadata routing."""

    def __init__(self, score_func, name):
        self.score_func = score_func
        self.name = name

    def __call__(self, estimator, X, y, groups=None):
        if groups is None:
            raise ValueError(
                f"{self.name} needs group labels and received none. Enable metadata "
                "routing (sklearn.set_config(enable_metadata_routing=True)) and pass "
                "groups=... to the search's fit, or score with worst_class_scorer."
            )
        return self.score_func(y, estimator.predict(X), groups=groups)

    def get_metadata_routing(self):
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="groups", alias=True)
        return request

    def __repr__(self):
        return self.name


worst_group_scorer = _GroupScorer(worst_group_accuracy, "worst_group_scorer")
"""Scorer for worst-group accuracy; requests ``groups`` through metadata routing.

Use with ``sklearn.set_config(enable_metadata_routing=True)`` and
``GridSearchCV(..., scoring=worst_group_scorer).fit(X, y, groups=groups)``.
"""

worst_class_scorer = make_scorer(worst_class_accuracy)
"""Scorer for worst-class accuracy; needs no group labels."""


def pseudo_groups(y_true, reference_pred):
    """Group-free stand-in for groups: (class, whether a reference model was right).

    The rows an ERM model gets wrong are mostly the minority groups of its shortcut,
    so splitting each class by the ERM model's correctness approximates the
    (class, spurious attribute) groups without labelling them.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    reference_pred : array-like of shape (n_samples,)
        Predictions of the reference (ERM) model.

    Returns
    -------
    groups : ndarray of str, shape (n_samples,)
        ``"<class>|right"`` or ``"<class>|wrong"``.

    Examples
    --------
    >>> from midlogit.metrics import pseudo_groups
    >>> pseudo_groups([0, 1, 1], [0, 0, 1]).tolist()
    ['0|right', '1|wrong', '1|right']
    """
    y_true, reference_pred, _ = _check_lengths(y_true, reference_pred)
    right = np.where(y_true == reference_pred, "right", "wrong")
    return np.char.add(np.char.add(y_true.astype(str), "|"), right)


def make_pseudo_group_scorer(reference):
    """Scorer of worst accuracy over :func:`pseudo_groups` of a fitted reference model.

    Needs no group labels: use it to choose band width and cluster count when the
    groups are unknown. Ties of the worst accuracy, common when the ERM model's
    errors in a class are few, are broken by the mean pseudo-group accuracy (added
    with weight ``1e-6``).

    Parameters
    ----------
    reference : fitted classifier
        The ERM model (e.g. the backbone's head) on the same features.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from midlogit.metrics import make_pseudo_group_scorer
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> erm = LogisticRegression().fit(X[:100], y[:100])
    >>> scorer = make_pseudo_group_scorer(erm)
    >>> 0.0 <= scorer(LogisticRegression().fit(X, y), X[100:], y[100:]) <= 1.0
    True
    """

    def score(estimator, X, y):
        groups = pseudo_groups(y, reference.predict(X))
        accuracies = group_accuracies(y, estimator.predict(X), groups=groups)
        values = list(accuracies.values())
        return min(values) + 1e-6 * float(np.mean(values))

    return score
