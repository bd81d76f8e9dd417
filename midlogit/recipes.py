"""Recipes: the midlogit pipeline builders and the label-free search, one set of defaults.

:func:`make_midlogit_pipeline` builds the band → clusters → new head chain on a trained
net; :func:`midlogit_search` searches it on embeddings with no group labels. Their
defaults (:data:`DEFAULT_BAND_WIDTHS`, :data:`DEFAULT_N_CLUSTERS`,
:data:`AVERAGED_REFITS`) are written here once; the comparison, the demo, the examples
and the benchmarks use them. This layer sits above the method modules and below the
application (:mod:`midlogit.experiments`: the comparison, the demo and the command line).
"""

import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, PredefinedSplit, train_test_split

from .base import balanced_weights
from .clustering import EmbeddingClusterer
from .metrics import group_accuracies, make_pseudo_group_scorer, worst_class_scorer
from .pipeline import make_pipeline
from .retraining import LastLayerRetrainer
from .selection import LogitBandSelector

__all__ = [
    "make_midlogit_pipeline",
    "midlogit_search",
    "search_choice",
    "curated_rows",
    "DEFAULT_BAND_WIDTHS",
    "DEFAULT_N_CLUSTERS",
    "AVERAGED_REFITS",
]


def make_midlogit_pipeline(
    net,
    band_width=0.4,
    n_clusters=4,
    *,
    band_center="auto",
    batch_size=256,
    random_state=None,
    **retrainer_params,
):
    """The mid-range logit curation pipeline on a trained net, with the recipe's defaults.

    ``make_pipeline(SkorchEmbedder(net, frozen=True), *curation_steps)``: raw inputs in,
    a retrained last layer out. The steps are one setting of :func:`midlogit_search`'s
    grid (and the README's recipe): the band is cut on the ERM net's own logits, centred
    by ``band_center="auto"``; the band's clusters on which the head errs at least 30 %
    of the time are the pseudo-minority of their class (``balance="pseudo_groups"``,
    ``n_selected="auto"``); the head averages :data:`AVERAGED_REFITS` fits on
    cell-balanced subsamples (``sampling="average"``). Over 5 seeds of the 2- and
    3-class spurious Gaussians these defaults reach 0.68 and 0.25 worst-group accuracy,
    where the estimators' own defaults (band centred at 0.5, every cluster balanced, one
    fit) reach 0.43 and 0.12.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier
        Trained (ERM) network; used frozen.
    band_width : float, default=0.4
        Width of the logit band, in quantiles.
    n_clusters : int, default=4
        Clusters per class.
    band_center : float or "auto", default="auto"
        Centre of the band, in quantiles; ``"auto"`` is 1 minus the smallest class
        share (see :class:`~midlogit.selection.LogitBandSelector`).
    batch_size : int, default=256
        Rows per forward pass.
    random_state : int, RandomState instance or None, default=None
        Seeds the clustering, the resampling and the retrained head.
    **retrainer_params
        Passed to :class:`~midlogit.retraining.LastLayerRetrainer` (``C``,
        ``penalty``, ``n_subsamples``, ...).

    Returns
    -------
    pipeline : midlogit.pipeline.Pipeline
        Steps ``skorchembedder``, ``logitbandselector``, ``embeddingclusterer``,
        ``lastlayerretrainer``.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.backbones import MLP, make_net
    >>> from midlogit.recipes import make_midlogit_pipeline
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)).astype(np.float32)
    >>> y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    >>> net = make_net(MLP(4, 2, hidden=(8,)), max_epochs=3, verbose=0, random_state=0)
    >>> net = net.fit(X, y)
    >>> pipe = make_midlogit_pipeline(net, band_width=0.6, n_clusters=2, random_state=0)
    >>> pipe.fit(X, y).predict(X[:5]).shape
    (5,)
    """
    from .backbones import SkorchEmbedder  # torch loads here, not when recipes is imported

    embedder = SkorchEmbedder(net, frozen=True, batch_size=batch_size)
    steps = _curation_steps(
        embedder.head(),
        band_width=band_width,
        n_clusters=n_clusters,
        sampling="average",
        random_state=random_state,
        selector_params={"band_center": band_center},
        retrainer_params=retrainer_params,
    )
    return make_pipeline(embedder, *steps)


def _curation_steps(
    head,
    *,
    band_width=0.4,
    n_clusters=4,
    sampling,
    random_state,
    selector_params=None,
    clusterer_params=None,
    retrainer_params=None,
):
    """Band, clusters and new head with the recipe's defaults, written once; the
    ``*_params`` dicts override them."""
    frozen = FrozenEstimator(head)
    refits = {"n_subsamples": AVERAGED_REFITS} if sampling == "average" else {}
    return (
        LogitBandSelector(
            estimator=frozen,
            random_state=random_state,
            **{"band_width": band_width, "band_center": "auto", **(selector_params or {})},
        ),
        EmbeddingClusterer(
            estimator=frozen,
            random_state=random_state,
            **{
                "n_clusters": n_clusters,
                "balance": "pseudo_groups",
                "n_selected": "auto",
                "sampling": sampling,
                **(clusterer_params or {}),
            },
        ),
        LastLayerRetrainer(random_state=random_state, **{**refits, **(retrainer_params or {})}),
    )


def _validation_split(y, validation_fraction, random_state):
    """A ``PredefinedSplit`` with one stratified validation fold."""
    fit_rows, _ = train_test_split(
        np.arange(y.size),
        test_size=validation_fraction,
        stratify=y,
        random_state=random_state,
    )
    test_fold = np.zeros(y.size, dtype=int)
    test_fold[fit_rows] = -1
    return PredefinedSplit(test_fold)


class _FitTimeValidationSplit:
    """The split of ``_validation_split``, drawn from the labels the search is fitted on."""

    def __init__(self, validation_fraction, random_state):
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        return 1

    def split(self, X, y, groups=None):
        split = _validation_split(np.asarray(y), self.validation_fraction, self.random_state)
        return split.split()

    def __repr__(self):
        return (
            f"{type(self).__name__}(validation_fraction={self.validation_fraction!r}, "
            f"random_state={self.random_state!r})"
        )


DEFAULT_BAND_WIDTHS = (0.2, 0.4, 0.6, 1.0)
"""Band widths :func:`midlogit_search` tries; 1.0 clusters every row (no band)."""

DEFAULT_N_CLUSTERS = (4, 8, 16)
"""Clusters per class :func:`midlogit_search` tries."""

AVERAGED_REFITS = 20
"""Fits on pseudo-group-balanced subsamples averaged with ``sampling="average"`` (DFR's 20)."""


def midlogit_search(
    head,
    band_widths=DEFAULT_BAND_WIDTHS,
    n_clusters=DEFAULT_N_CLUSTERS,
    *,
    y=None,
    scoring="pseudo_group",
    validation_fraction=0.5,
    random_state=0,
    selector_params=None,
    clusterer_params=None,
    retrainer_params=None,
    retrain_from=("band", "all"),
    project_out_head=False,
    balance="pseudo_groups",
    sampling=("average", "weight"),
    groups=None,
    n_jobs=None,
):
    """Grid search of the midlogit pipeline, scored without group labels by default.

    Parameters
    ----------
    head : fitted classifier
        The backbone's own last layer; the band is cut on its logits.
    band_widths, n_clusters : sequences, default=DEFAULT_BAND_WIDTHS, DEFAULT_N_CLUSTERS
        The grid. A band width of 1.0 keeps every row, so the search also weighs
        clustering without a band; ``benchmarks/results/quality.md`` reports which it chose.
    y : array-like or None, default=None
        Not needed: ``midlogit_search(head).fit(X, y)`` splits by the labels given to
        ``fit`` (stratified, seeded by ``random_state``). Given, the labels of the rows
        the search will be fitted on fix the split now (the same split), as
        ``scoring="worst_group"`` needs to match ``groups`` to the validation rows.
    scoring : {"pseudo_group", "worst_class", "worst_group"} or callable, \
default="pseudo_group"
        ``"pseudo_group"``: worst accuracy over (class, whether ``head`` was right)
        (:func:`~midlogit.metrics.make_pseudo_group_scorer`); ``"worst_class"``:
        worst per-class accuracy. Neither needs group labels. ``"worst_group"``:
        worst-group accuracy on the validation half, with ``groups`` (group labels
        choose the setting only, never train the head: the protocol of JTT and AFR).
    validation_fraction : float, default=0.5
        Share of the rows held out (stratified by class) to score the grid; the best
        setting is then refitted on all rows.
    random_state : int, default=0
        Seeds the split, the clustering and the head.
    selector_params, clusterer_params, retrainer_params : dict or None
        Extra parameters of the three steps. The band is centred with
        ``band_center="auto"`` (1 minus the smallest class share) unless
        ``selector_params`` says otherwise: over 5 seeds this moved label-free
        midlogit from 0.53 to 0.61 WGA on the 3-class task, 0.50 to 0.63 on
        pretrained dSprites and 0.68 to 0.72 on the Waterbirds-like task
        (``benchmarks/results/quality.md``).
    retrain_from : {"band", "all"} or tuple of them, default=("band", "all")
        Where the retraining rows come from. ``"band"``: the band's rows, balanced
        over their clusters (band → cluster → retrain, the paper's recipe).
        ``"all"``: the clusters are still found on the band, but every row joins the
        cluster of its class it is nearest to and the set is undersampled to the
        smallest cluster (``EmbeddingClusterer(selector=LogitBandSelector(...))``, the
        band step passed through). A tuple searches both; the ablation in
        ``docs/design.rst`` measured each.
    project_out_head : bool or tuple of bool, default=False
        Whether the clusters are found after projecting the head's ``coef_`` out of
        the embeddings (``EmbeddingClusterer(project_out=head.coef_)``); a tuple
        searches both. Off by default: over 5 seeds of nine tasks, keeping the head's
        directions was as good or better on six (``benchmarks/results/quality.md``,
        ablation); on a small grid, removing them hides the minority clusters.
    balance : {"pseudo_groups", "clusters"} or tuple of them, default="pseudo_groups"
        ``"pseudo_groups"``: the band clusters of each class on which ``head`` errs at
        least 30 % of the time are its pseudo-minority (``n_selected="auto"``; change it
        with ``clusterer_params``), and (class, class the head mistakes them for) cells
        are balanced (the paper's step 4, selecting the less spurious data, with no group
        labels). ``"clusters"``: every (class, cluster) cell is balanced. A tuple
        searches both.
    sampling : {"average", "weight", "undersample", "oversample"} or tuple, \
default=("average", "weight")
        How the cells are balanced (see
        :class:`~midlogit.clustering.EmbeddingClusterer`). ``"average"``: the head
        averages :data:`AVERAGED_REFITS` fits on cell-balanced subsamples (DFR's recipe
        on the pseudo-groups; unless ``retrainer_params`` sets ``n_subsamples``);
        ``"weight"``: one fit on every row, the cells weighted equally, better where a
        cell holds a handful of rows. A tuple searches them.
    groups : array-like of shape (n_samples,) or None, default=None
        Group labels of the rows the search will be fitted on; needed by, and only
        used by, ``scoring="worst_group"``.
    n_jobs : int or None, default=None
        Candidates fitted in parallel (``GridSearchCV(n_jobs=...)``); under
        ``joblib.parallel_backend("dask")`` on a Dask cluster's workers. The results are
        those of ``n_jobs=1`` with BLAS on one thread, as each worker runs it (with more
        BLAS threads the sums round differently; see the "Scaling out" page).

    Returns
    -------
    search : GridSearchCV
        Unfitted.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from midlogit.recipes import midlogit_search
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> head = LogisticRegression().fit(X, y)
    >>> search = midlogit_search(head, (0.4, 0.8), (2,), retrain_from="band")
    >>> sorted(search.fit(X, y).best_params_)  # doctest: +NORMALIZE_WHITESPACE
    ['embeddingclusterer__balance', 'embeddingclusterer__n_clusters',
     'embeddingclusterer__project_out', 'embeddingclusterer__sampling',
     'lastlayerretrainer__n_subsamples', 'logitbandselector__band_width']
    """
    if groups is not None and not (isinstance(scoring, str) and scoring == "worst_group"):
        raise ValueError("groups is only used with scoring='worst_group'.")
    if y is None:
        if isinstance(scoring, str) and scoring == "worst_group":
            raise ValueError(
                "scoring='worst_group' needs y=... (the labels of the rows the search "
                "will be fitted on) with groups=..., to find the validation rows' groups."
            )
        cv = _FitTimeValidationSplit(validation_fraction, random_state)
    else:
        y = np.asarray(y)
        cv = _validation_split(y, validation_fraction, random_state)
    if scoring == "pseudo_group":
        scoring = make_pseudo_group_scorer(head)
    elif scoring == "worst_class":
        scoring = worst_class_scorer
    elif scoring == "worst_group":
        scoring = _validation_group_scorer(groups, y, cv)
    sources = (retrain_from,) if isinstance(retrain_from, str) else tuple(retrain_from)
    if not sources or set(sources) - {"band", "all"}:
        raise ValueError(
            f"retrain_from must be 'band', 'all' or a tuple of them, got {retrain_from!r}."
        )
    projections = []
    for project in np.atleast_1d(project_out_head).tolist():
        if project and not hasattr(head, "coef_"):
            raise ValueError(
                "project_out_head=True needs a linear head with coef_; "
                f"{type(head).__name__} has none. Pass project_out_head=False."
            )
        projections.append(np.asarray(head.coef_) if project else None)
    # The grid sets the band width, the cluster count, the balance and the sampling (with
    # the refits that go with "average") row by row.
    band, clusterer, retrainer = _curation_steps(
        head,
        sampling="weight",
        random_state=random_state,
        selector_params=selector_params,
        clusterer_params=clusterer_params,
        retrainer_params=retrainer_params,
    )
    pipe = make_pipeline(band, clusterer, retrainer)

    def choices(value):
        return [value] if isinstance(value, str) else list(value)

    rows = {}
    if "band" in sources:
        rows["band"] = {"logitbandselector__band_width": list(band_widths)}
    if "all" in sources:
        rows["all"] = {
            "logitbandselector": ["passthrough"],
            "embeddingclusterer__selector": [
                clone(band).set_params(band_width=width) for width in band_widths
            ],
        }
    grid = []
    for source in rows.values():
        for how in choices(sampling):
            refits = {}
            if how == "average" and "n_subsamples" not in (retrainer_params or {}):
                refits = {"lastlayerretrainer__n_subsamples": [AVERAGED_REFITS]}
            grid.append(
                {
                    **source,
                    "embeddingclusterer__n_clusters": list(n_clusters),
                    "embeddingclusterer__project_out": projections,
                    "embeddingclusterer__balance": choices(balance),
                    "embeddingclusterer__sampling": [how],
                    **refits,
                }
            )
    return GridSearchCV(pipe, grid, scoring=scoring, cv=cv, error_score=np.nan, n_jobs=n_jobs)


def _validation_group_scorer(groups, y, cv):
    """Worst-group accuracy on the one validation fold of ``cv``, from known groups.

    Ties are broken by the mean group accuracy (added with weight ``1e-6``).
    """
    if groups is None:
        raise ValueError("scoring='worst_group' needs groups=... (the rows' group labels).")
    groups = np.asarray(groups)
    if groups.shape != y.shape:
        raise ValueError(f"groups has shape {groups.shape}; y has {y.shape}.")
    ((_, validation_rows),) = cv.split()
    validation_groups = groups[validation_rows]

    def score(estimator, X, y_validation):
        if len(y_validation) != validation_groups.size:
            raise ValueError(
                "scoring='worst_group' scores only the validation half of the rows the "
                "search was built for; fit the search on those rows (same X and y)."
            )
        accuracies = list(
            group_accuracies(y_validation, estimator.predict(X), groups=validation_groups).values()
        )
        # ties (common with a few rows per group) go to the better mean group accuracy
        return min(accuracies) + 1e-6 * float(np.mean(accuracies))

    return score


def curated_rows(pipeline):
    """The rows a fitted midlogit pipeline retrained its head on, and their weights.

    Parameters
    ----------
    pipeline : Pipeline
        A fitted band → clusterer → retrainer pipeline, e.g. a
        :func:`midlogit_search`'s ``best_estimator_`` (its band step may be
        ``"passthrough"``).

    Returns
    -------
    rows : ndarray of int
        Indices into the rows the pipeline was fitted on (repeated when oversampled).
    sample_weight : ndarray of float or None
        The weight of each row in ``rows``: the sampler's weights
        (``sampling="weight"``), or with ``sampling="average"`` the weight each row has
        in expectation over the cell-balanced subsamples; else ``None``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from midlogit.recipes import curated_rows, midlogit_search
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> head = LogisticRegression().fit(X, y)
    >>> search = midlogit_search(head, (0.4,), (2,), retrain_from="band",
    ...                          sampling="weight").fit(X, y)
    >>> rows, weight = curated_rows(search.best_estimator_)
    >>> rows.size == weight.size == 120  # the band: 40 % of the rows, weighted
    True
    """
    clusterer = pipeline.named_steps["embeddingclusterer"]
    rows = clusterer.sample_indices_
    band = pipeline.named_steps["logitbandselector"]
    if not isinstance(band, str):  # a band step ran: map its rows back to the input's
        rows = band.sample_indices_[rows]
    if clusterer.sample_groups_ is not None:
        return rows, balanced_weights(clusterer.sample_groups_)
    return rows, clusterer.sample_weight_


def search_choice(search):
    """The setting a fitted :func:`midlogit_search` chose, as plain values.

    Parameters
    ----------
    search : GridSearchCV
        A fitted :func:`midlogit_search`.

    Returns
    -------
    choice : dict
        ``{"retrain_from": "band" or "all", "band_width": float, "n_clusters": int,
        "project_out_head": bool, "balance": str, "sampling": str}``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from midlogit.recipes import midlogit_search, search_choice
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> head = LogisticRegression().fit(X, y)
    >>> search = midlogit_search(head, (0.4,), (2,), retrain_from="all",
    ...                          project_out_head=False).fit(X, y)
    >>> search_choice(search)  # doctest: +NORMALIZE_WHITESPACE
    {'retrain_from': 'all', 'band_width': 0.4, 'n_clusters': 2, 'project_out_head': False,
     'balance': 'pseudo_groups', 'sampling': 'average'}
    """
    best = search.best_estimator_
    clusterer = best.named_steps["embeddingclusterer"]
    on_band = clusterer.selector is None
    band = best.named_steps["logitbandselector"] if on_band else clusterer.selector
    return {
        "retrain_from": "band" if on_band else "all",
        "band_width": band.band_width,
        "n_clusters": clusterer.n_clusters,
        "project_out_head": clusterer.project_out is not None,
        "balance": clusterer.balance,
        "sampling": clusterer.sampling,
    }
