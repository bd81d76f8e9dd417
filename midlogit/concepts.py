"""What a logit tracks: concepts from known factors, explained over all rows and the band.

The thesis of O'Mahony et al. is that a unit's extremes show what it is *for* while its
mid-range shows what it is *associated with* — the confounder. :func:`make_concepts`
turns what a dataset already records (latent factors, attribute columns, metadata) into
a binary concept matrix with readable names; :func:`explain_logit` labels one class
logit with INVERT formulas twice, over all rows and over the mid-range band that the
curation keeps, with held-out p-values.
"""

import numbers

import numpy as np
from sklearn.utils import Bunch

from .invert import ConceptLabeler

__all__ = ["make_concepts", "dataset_concepts", "explain_logit"]


def _columns(factors):
    """``{name: 1-D array}`` from a DataFrame, a mapping or a structured array."""
    if hasattr(factors, "columns") and hasattr(factors, "__getitem__"):  # DataFrame
        return {str(c): np.asarray(factors[c]) for c in factors.columns}
    if isinstance(factors, np.ndarray) and factors.dtype.names:
        return {name: np.asarray(factors[name]) for name in factors.dtype.names}
    if isinstance(factors, dict):
        return {str(k): np.asarray(v) for k, v in factors.items()}
    raise TypeError(
        "factors must be a DataFrame, a dict of 1-D arrays or a structured array, got "
        f"{type(factors).__name__}."
    )


def make_concepts(factors, *, n_bins=3, max_categories=10, names=None):
    """A binary concept matrix from known factors or metadata, with readable names.

    A column with at most ``max_categories`` distinct values gives one concept per value
    (``"shape=heart"``); a numeric column with more gives ``n_bins`` quantile bins
    (``"pos_x in [0.32, 0.68)"``), so that every concept covers a sizeable share of rows.

    Parameters
    ----------
    factors : DataFrame, dict of 1-D arrays or structured ndarray
        One entry per row for every factor (e.g. a dSprites Bunch's ``latents``).
    n_bins : int, default=3
        Quantile bins of each numeric column with many values.
    max_categories : int, default=10
        Columns with at most this many distinct values are one-hot encoded.
    names : dict or None, default=None
        ``{column: sequence of value names}`` for integer-coded columns, e.g.
        ``{"shape": ["square", "ellipse", "heart"]}``.

    Returns
    -------
    concepts : Bunch
        ``data``: bool ndarray of shape (n_samples, n_concepts); ``concept_names``:
        ndarray of str; ``columns``: the factor each concept came from.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.concepts import make_concepts
    >>> factors = {"shape": np.array([0, 1, 1, 0]), "x": np.array([0.1, 0.4, 0.6, 0.9])}
    >>> concepts = make_concepts(factors, n_bins=2, max_categories=2,
    ...                          names={"shape": ["square", "heart"]})
    >>> concepts.concept_names.tolist()
    ['shape=square', 'shape=heart', 'x in [0.1, 0.5)', 'x in [0.5, 0.9]']
    >>> concepts.data.sum(axis=0).tolist()
    [2, 2, 2, 2]
    """
    if not (isinstance(n_bins, numbers.Integral) and n_bins >= 2):
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}.")
    if not (isinstance(max_categories, numbers.Integral) and max_categories >= 2):
        raise ValueError(f"max_categories must be an integer >= 2, got {max_categories!r}.")
    columns = _columns(factors)
    lengths = {name: values.shape for name, values in columns.items()}
    if not columns or len(set(lengths.values())) != 1 or len(next(iter(lengths.values()))) != 1:
        raise ValueError(f"every factor must be 1-D with one entry per row; got {lengths}.")
    names = names or {}
    blocks, concept_names, sources = [], [], []
    for column, values in columns.items():
        distinct = np.unique(values)
        if distinct.size <= max_categories:
            shown = names.get(column)
            for value in distinct:
                label = value if shown is None else shown[int(value)]
                blocks.append(values == value)
                concept_names.append(f"{column}={label}")
                sources.append(column)
            continue
        if values.dtype.kind not in "biuf":
            raise ValueError(
                f"factor {column!r} has {distinct.size} distinct non-numeric values (more "
                f"than max_categories={max_categories}); raise max_categories or drop it."
            )
        edges = np.quantile(values.astype(np.float64), np.linspace(0, 1, n_bins + 1))
        inner = np.unique(edges[1:-1])
        bins = np.searchsorted(inner, values, side="right")
        bounds = np.r_[edges[0], inner, edges[-1]]
        for b in range(inner.size + 1):
            closing = "]" if b == inner.size else ")"
            blocks.append(bins == b)
            concept_names.append(f"{column} in [{bounds[b]:.2g}, {bounds[b + 1]:.2g}{closing}")
            sources.append(column)
    return Bunch(
        data=np.column_stack(blocks),
        concept_names=np.array(concept_names),
        columns=np.array(sources),
    )


def _same_partition(a, b):
    """Whether two columns split the rows the same way (one recodes the other)."""
    pairs = np.unique(
        np.c_[np.unique(a, return_inverse=True)[1], np.unique(b, return_inverse=True)[1]], axis=0
    )
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def dataset_concepts(dataset, *, target="class", spurious="attribute", factors=None, n_bins=3):
    """The concepts a midlogit dataset already records: class, attribute, other factors.

    Works on every dataset Bunch of :mod:`midlogit.datasets`, generated or loaded: the
    class and the spurious attribute by their names (``"bird=waterbird"``), the
    recorded latent factors of generated sprites (quantile bins of continuous ones),
    and the 40 attribute columns of :func:`~midlogit.datasets.load_celeba`
    (``"Smiling=yes"``).

    Parameters
    ----------
    dataset : Bunch
        With ``target`` and ``target_names``; ``spurious`` and ``spurious_names``,
        ``latents`` (structured array) and ``attributes`` with ``attribute_names`` are
        used where present.
    target, spurious : str, default="class", "attribute"
        The words the concept names use for the class and the spurious attribute.
    factors : sequence of str or None, default=None
        Latent fields to add. ``None`` adds every field that does not repeat the class
        or the attribute by another code (fields ending in ``_idx``, index copies,
        are left out too).
    n_bins : int, default=3
        Quantile bins of each continuous factor.

    Returns
    -------
    concepts : Bunch
        As :func:`make_concepts` returns.

    Examples
    --------
    >>> from midlogit.concepts import dataset_concepts
    >>> from midlogit.datasets import make_waterbirds_like
    >>> birds = make_waterbirds_like(200, image_size=16, random_state=0)
    >>> concepts = dataset_concepts(birds, target="bird", spurious="place",
    ...                             factors=("scale",))
    >>> concepts.concept_names[:4].tolist()
    ['bird=landbird', 'bird=waterbird', 'place=land', 'place=water']
    """
    columns = {target: np.asarray(dataset["target"])}
    names = {target: [str(n) for n in dataset["target_names"]]}
    if dataset.get("spurious") is not None:
        columns[spurious] = np.asarray(dataset["spurious"])
        names[spurious] = [str(n) for n in dataset["spurious_names"]]
    latents = dataset.get("latents")
    fields = () if latents is None else latents.dtype.names
    if factors is None:
        factors = [
            f
            for f in fields
            if not f.endswith("_idx")
            and not any(_same_partition(latents[f], known) for known in columns.values())
        ]
    unknown = sorted(set(factors) - set(fields))
    if unknown:
        raise ValueError(f"factors {unknown} are not latent fields of the dataset: {fields}.")
    for field in factors:
        columns[field] = latents[field]
    if dataset.get("attributes") is not None:
        for j, name in enumerate(dataset["attribute_names"]):
            columns[str(name)] = np.asarray(dataset["attributes"])[:, j]
            names[str(name)] = ["no", "yes"]
    return make_concepts(columns, n_bins=n_bins, names=names)


def explain_logit(
    logit,
    concepts,
    *,
    concept_names=None,
    band_center=0.5,
    band_width=0.4,
    max_length=2,
    beam_size=5,
    max_fraction=0.6,
    test_size=0.5,
    alpha=1e-3,
    random_state=0,
):
    """Explain one class logit by concept formulas over all rows and over its mid band.

    Parameters
    ----------
    logit : array-like of shape (n_samples,)
        The class logit of every row (a column of
        :func:`~midlogit.selection.class_logits`).
    concepts : array-like or Bunch
        Binary concept matrix of shape (n_samples, n_concepts), or the Bunch of
        :func:`make_concepts` (which names the concepts).
    concept_names : sequence of str or None, default=None
        Names, when ``concepts`` is a plain matrix.
    band_center, band_width : float, default=0.5, 0.4
        The band, as quantiles of the logit: the rows a
        :class:`~midlogit.selection.LogitBandSelector` with the same values keeps.
    max_length, beam_size : int, default=2, 5
        INVERT's formula length and beam width.
    max_fraction : float, default=0.6
        Largest share of rows a formula may cover (INVERT's own default, 0.5, would
        rule out one side of a balanced binary attribute).
    test_size : float, default=0.5
        Share of rows held out: formulas are chosen on the rest, and their AUC and
        p-value are measured on these rows.
    alpha : float, default=1e-3
        Held-out p-value below which an explanation counts as a finding.
    random_state : int, default=0
        Seeds the held-out split.

    Returns
    -------
    result : Bunch
        For ``"all"`` and ``"band"``: ``explanations`` (best first), ``best`` (the best
        explanation, ``None`` when none is significant at ``alpha``), ``concept_auc``
        (AUC of the logit against every single concept, on the selection rows) and
        ``labeler`` (the fitted :class:`~midlogit.invert.ConceptLabeler`); also
        ``concept_names`` and ``band_range`` (the band's quantile range).

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.concepts import explain_logit
    >>> rng = np.random.default_rng(0)
    >>> shape, left = rng.random(2000) < 0.5, rng.random(2000) < 0.5
    >>> logit = 4.0 * shape + 1.5 * left + rng.normal(size=2000)
    >>> C = np.c_[shape, ~shape, left, ~left]
    >>> result = explain_logit(logit, C, concept_names=["heart", "square", "left", "right"],
    ...                        max_length=1)
    >>> best = result.all.best
    >>> str(best.formula), bool(best.auc > 0.95 and best.p_value < 1e-3)
    ('heart', True)
    >>> result.band.concept_auc.round(2).tolist()  # within the band, hearts still rank high
    [0.94, 0.06, 0.32, 0.68]
    """
    logit = np.asarray(logit, dtype=np.float64)
    if logit.ndim != 1:
        raise ValueError(f"logit must be 1-D, one value per row; got shape {logit.shape}.")
    if isinstance(concepts, Bunch):
        concept_names = concepts.concept_names if concept_names is None else concept_names
        concepts = concepts.data
    if not 0 < band_width <= 1 or not 0 <= band_center <= 1:
        raise ValueError(
            f"band_center must be in [0, 1] and band_width in (0, 1], got {band_center!r} "
            f"and {band_width!r}."
        )
    band = (max(0.0, band_center - band_width / 2), min(1.0, band_center + band_width / 2))
    params = dict(
        max_length=max_length,
        beam_size=beam_size,
        max_fraction=max_fraction,
        test_size=test_size,
        random_state=random_state,
    )
    result = Bunch(band_range=band)
    for where, activation_range in (("all", None), ("band", band)):
        labeler = ConceptLabeler(activation_range=activation_range, **params)
        labeler.fit(logit.reshape(-1, 1), concepts, concept_names=concept_names)
        explanations = labeler.explanations_[0]
        significant = [e for e in explanations if e.p_value < alpha]
        result[where] = Bunch(
            explanations=explanations,
            best=significant[0] if significant else None,
            concept_auc=labeler.auc_[0],
            labeler=labeler,
        )
    result.concept_names = result.all.labeler.concept_names_
    return result
