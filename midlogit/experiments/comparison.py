"""Compare last-layer retraining methods on one backbone's embeddings.

Every method retrains a linear head on the same held-out embeddings and is scored on
the same test embeddings, so the comparison isolates which rows each method chose. The
midlogit method picks its band width and cluster count **without group labels**
(worst-class accuracy on a validation half); DFR uses group labels, as published.
"""

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.utils import Bunch

from ..baselines import DFR_C_VALUES as DFR_C_VALUES  # the former import path
from ..baselines import (
    ClassBalancedSampler,
    ErrorSetSelector,
    GroupBalancedSampler,
    RandomSubsetSampler,
    fit_dfr,
)
from ..metrics import group_accuracies, worst_group_accuracy
from ..pipeline import make_pipeline
from ..recipes import (  # noqa: F401 -- re-exported: the search lives in recipes
    AVERAGED_REFITS,
    DEFAULT_BAND_WIDTHS,
    DEFAULT_N_CLUSTERS,
    curated_rows,
    midlogit_search,
    search_choice,
)
from ..retraining import LastLayerRetrainer

# midlogit_search, search_choice, curated_rows and the search's defaults live in
# midlogit.recipes; imported above so that the old import path keeps working.
__all__ = ["compare_methods", "minority_share"]


def compare_methods(
    E,
    y,
    E_test,
    y_test,
    groups_test,
    *,
    head,
    groups=None,
    band_widths=DEFAULT_BAND_WIDTHS,
    n_clusters=DEFAULT_N_CLUSTERS,
    validation_fraction=0.5,
    random_state=0,
    select_with_groups=False,
    **search_params,
):
    """Retrain the last layer by every method and score each on the test rows.

    Parameters
    ----------
    E, y : ndarray
        Held-out embeddings and labels the heads are retrained on.
    E_test, y_test, groups_test : ndarray
        Test embeddings, labels and group labels (groups only score).
    head : fitted classifier
        The backbone's own head: the ``erm`` row, and the logits the selectors use.
    groups : ndarray or None, default=None
        Group labels of ``E``; given, DFR is run too.
    band_widths, n_clusters : sequences
        midlogit's grid.
    validation_fraction : float, default=0.5
        Share of ``E`` used to choose midlogit's setting and DFR's ``C``.
    random_state : int, default=0
        Seeds everything.
    select_with_groups : bool, default=False
        Choose midlogit's setting by worst-group accuracy on the validation half, with
        ``groups`` (the protocol of JTT and AFR), instead of with no group labels.
    **search_params
        Passed to :func:`~midlogit.recipes.midlogit_search` (``scoring``,
        ``selector_params``, ...).

    Returns
    -------
    result : Bunch
        ``methods``: ``{name: {"worst_group_accuracy", "mean_accuracy",
        "group_accuracies", "labels_used", "n_rows", "params"}}``; ``models``: the
        fitted heads or pipelines; ``midlogit_search``: the fitted grid search.

    Examples
    --------
    >>> from midlogit.datasets import make_spurious_gaussians
    >>> from sklearn.linear_model import LogisticRegression
    >>> from midlogit.experiments.comparison import compare_methods
    >>> train = make_spurious_gaussians(600, bias=0.95, random_state=0)
    >>> test = make_spurious_gaussians(600, bias=0.0, random_state=1)
    >>> head = LogisticRegression().fit(train.data, train.target)
    >>> held = make_spurious_gaussians(600, bias=0.95, random_state=2)
    >>> result = compare_methods(held.data, held.target, test.data, test.target,
    ...                          test.groups, head=head, groups=held.groups,
    ...                          band_widths=(0.4,), n_clusters=(2,))
    >>> sorted(result.methods)
    ['class_balanced', 'dfr', 'erm', 'error_set', 'midlogit', 'random']
    """
    y = np.asarray(y)
    if select_with_groups:
        if groups is None:
            raise ValueError("select_with_groups=True needs groups=... of E's rows.")
        search_params = {**search_params, "scoring": "worst_group", "groups": groups}
    search = midlogit_search(
        head,
        band_widths,
        n_clusters,
        validation_fraction=validation_fraction,
        random_state=random_state,
        y=y,
        **search_params,
    ).fit(E, y)
    fitted = {
        "erm": _Fitted(head, "class (ERM)", rows=np.empty(0, dtype=int)),
        "midlogit": _midlogit(search, select_with_groups),
    }
    n_curated = np.unique(fitted["midlogit"].rows).size
    baselines = {
        "class_balanced": ClassBalancedSampler(random_state=random_state),
        # The random control keeps as many distinct rows as midlogit's curated set holds.
        "random": RandomSubsetSampler(n_samples=n_curated, random_state=random_state),
        "error_set": ErrorSetSelector(estimator=FrozenEstimator(head), random_state=random_state),
    }
    for name, sampler in baselines.items():
        fitted[name] = _retrained(sampler, E, y, random_state)
    if groups is not None:
        fitted["dfr"] = _dfr(E, y, np.asarray(groups), validation_fraction, random_state)
    methods = {
        name: _scores(method, E_test, y_test, groups_test, groups)
        for name, method in fitted.items()
    }
    models = {name: method.model for name, method in fitted.items()}
    return Bunch(methods=methods, models=models, midlogit_search=search)


class _Fitted:
    """A retrained head, the labels it used and the rows (and weights) it was fitted on."""

    def __init__(self, model, labels_used, *, rows, weight=None, params=None):
        self.model, self.labels_used = model, labels_used
        self.rows, self.weight, self.params = rows, weight, params or {}


def _midlogit(search, select_with_groups):
    rows, weight = curated_rows(search.best_estimator_)
    labels = "class (+ groups to choose)" if select_with_groups else "class"
    return _Fitted(
        search.best_estimator_, labels, rows=rows, weight=weight, params=search_choice(search)
    )


def _retrained(sampler, E, y, random_state):
    model = make_pipeline(sampler, LastLayerRetrainer(random_state=random_state)).fit(E, y)
    return _Fitted(model, "class", rows=model.steps[0][1].sample_indices_)


def _dfr(E, y, groups, validation_fraction, random_state):
    model = fit_dfr(
        E, y, groups, validation_fraction=validation_fraction, random_state=random_state
    )
    rows = GroupBalancedSampler().fit(E, y, groups=groups).sample_indices_
    return _Fitted(model, "class + groups", rows=rows, params={"C": model.C})


def _scores(method, E_test, y_test, groups_test, groups):
    """The test scores of one method, with its retraining set's minority share."""
    y_pred = method.model.predict(E_test)
    accuracies = group_accuracies(y_test, y_pred, groups=groups_test)
    share = None
    if groups is not None and method.rows.size:
        share = minority_share(groups, method.rows, method.weight)
    return {
        "worst_group_accuracy": worst_group_accuracy(y_test, y_pred, groups=groups_test),
        "mean_accuracy": float(np.mean(y_pred == np.asarray(y_test))),
        "group_accuracies": {str(k): v for k, v in accuracies.items()},
        "labels_used": method.labels_used,
        "n_rows": int(method.rows.size),
        "params": {k: _plain(v) for k, v in method.params.items()},
        "minority_share": share,
    }


def minority_share(groups, rows, sample_weight=None):
    """Share of a retraining set drawn from minority groups (weighted when weights given).

    A minority group is one holding fewer rows of ``groups`` than the mean group.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Group label of every row the set was drawn from.
    rows : array-like of int
        Indices of the set's rows (repeats count).
    sample_weight : array-like of shape (len(rows),) or None, default=None
        Weight of each set row.

    Returns
    -------
    share : float

    Examples
    --------
    >>> from midlogit.experiments.comparison import minority_share
    >>> minority_share([0, 0, 0, 1], [0, 3])
    0.5
    """
    _, codes, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    minority = (counts < counts.mean())[codes][np.asarray(rows)]
    weights = np.ones(minority.size) if sample_weight is None else np.asarray(sample_weight)
    return float(weights[minority].sum() / weights.sum())


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
