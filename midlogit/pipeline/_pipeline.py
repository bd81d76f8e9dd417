"""The :class:`Pipeline` class and :func:`make_pipeline`: construction and fitting."""

import time
from collections import Counter
from contextlib import contextmanager

import joblib
import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.metadata_routing import get_routing_for_object, process_routing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_memory

from ._callbacks import CallbackSupportMixin, with_callbacks
from ._inference import _InferenceMixin
from ._integration import _IntegrationMixin
from ._rows import _align, _compose, _n_rows, _with_derived
from ._steps import (
    _FIT_METHODS,
    _UNALIGNED,
    _can_resample,
    _elapsed_line,
    _final_has,
    _fit_resample_reported,
    _fit_transform_one,
    _fit_transform_reported,
    _is_passthrough,
    _reported_task,
    _resamples,
    _routing_enabled,
)
from ._structure import _StepsMixin


class Pipeline(
    _StepsMixin, _InferenceMixin, _IntegrationMixin, CallbackSupportMixin, BaseEstimator
):
    """Chain of transformers and samplers ending in an estimator.

    Parameters
    ----------
    steps : list of (str, estimator) tuples
        Every step but the last is a transformer (``fit`` and ``transform``), a sampler
        (``fit_resample``), a :class:`Pipeline` that is either, or ``"passthrough"``
        (or ``None``); the last may be any estimator with ``fit``, or ``"passthrough"``.
    transform_input : list of str or None, default=None
        With metadata routing enabled: names of fit metadata (such as a validation set
        ``X_val``) that each step receives transformed by the steps before it, as in
        scikit-learn's ``Pipeline``.
    memory : str, joblib.Memory or None, default=None
        Caches fitted transformers and samplers under this folder (steps are then
        cloned before fitting; ``named_steps`` holds the fitted clones).
    verbose : bool, default=False
        Print the time each step takes to fit.

    Attributes
    ----------
    named_steps : Bunch
        Steps by name.
    classes_ : ndarray
        The final estimator's classes, for a classifier.
    n_features_in_ : int
        Number of features the first step saw during fit.
    feature_names_in_ : ndarray of str
        The first step's input feature names, when it was fitted on a DataFrame.
    sample_indices_ : ndarray of int or None
        After :meth:`fit_resample`: the input rows it returned (``None`` when a sampler
        changed the rows without saying which).
    sample_weight_ : ndarray of float or None
        After :meth:`fit_resample`: the samplers' weights of the returned rows.
    sample_groups_ : ndarray or None
        After :meth:`fit_resample`: the last sampler's ``sample_groups_`` of the
        returned rows.

    See Also
    --------
    make_pipeline : names the steps for you.

    Notes
    -----
    ``fit(X, y, step__param=value)`` passes ``param`` to that step's ``fit`` (or
    ``fit_transform``, ``fit_resample``). A parameter holding one entry per row of ``X``
    is subset to the rows the samplers before that step kept. With metadata routing
    enabled (``sklearn.set_config(enable_metadata_routing=True)``), pass
    ``param=value`` and request it on the step instead, e.g. ``GroupBalancedSampler()
    .set_fit_request(groups=True)``.

    A pipeline holding a sampler may be a step of another one: it then resamples as
    one sampler (:meth:`fit_resample`) and transforms at predict time, as its steps
    written out flat would. It refuses :meth:`fit_transform`, whose rows would not line
    up with ``y``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from midlogit.pipeline import Pipeline
    >>> from midlogit.selection import LogitBandSelector
    >>> from midlogit.retraining import LastLayerRetrainer
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> pipe = Pipeline([("band", LogitBandSelector(random_state=0)),
    ...                  ("head", LastLayerRetrainer())]).fit(X, y)
    >>> pipe.predict(X).shape
    (200,)
    """

    # Read by scikit-learn-style parameter checks; validated by _validate_parameters.
    _parameter_constraints: dict = {
        "steps": [list, tuple],
        "transform_input": [list, None],
        "memory": [None, str, joblib.Memory],
        "verbose": ["boolean"],
    }

    def __init__(self, steps, *, transform_input=None, memory=None, verbose=False):
        self.steps = steps
        self.transform_input = transform_input
        self.memory = memory
        self.verbose = verbose

    # --- fitting ----------------------------------------------------------------------
    @contextmanager
    def _timed(self, position):
        """Print, when verbose, how long the block fitting step ``position`` took."""
        start = time.perf_counter()
        yield
        if self.verbose:
            name = self.steps[position][0]
            message = f"(step {position + 1} of {len(self.steps)}) Processing {name}"
            print(_elapsed_line(message, time.perf_counter() - start))

    def _check_method_params(self, method, params):
        """Per step, the parameters of each method the pipeline may call on it.

        With metadata routing this is scikit-learn's routing; without it, ``step__param``
        goes to whichever fit method the step is asked for.
        """
        if _routing_enabled():
            return process_routing(self, method, **params)
        names = [name for name, _ in self.steps]
        fit_params = {name: {} for name in names}
        for key, value in params.items():
            name, separator, param = key.partition("__")
            if not separator or name not in fit_params:
                raise ValueError(
                    f"Pipeline.{method} does not accept the {key} parameter. Pass "
                    "parameters to a step as 'stepname__param' with a step among "
                    f"{names} (e.g. `Pipeline.{method}(X, y, "
                    f"{names[-1]}__sample_weight=sample_weight)`), or enable metadata "
                    "routing."
                )
            fit_params[name][param] = value
        return {
            name: {fit_method: given for fit_method in (*_FIT_METHODS, "fit_resample")}
            for name, given in fit_params.items()
        }

    def _metadata_for_step(self, position, step_params, all_params):
        """``step_params`` with the ``transform_input`` entries transformed by the steps
        before ``position`` (each value transformed once)."""
        if not self.transform_input or not all_params or not step_params or position == 0:
            return step_params
        before = self[:position]
        transform_names = get_routing_for_object(before).consumes(
            method="transform", params=all_params.keys()
        )
        transform_params = {key: all_params[key] for key in transform_names}
        transformed = {}

        def transformed_value(name, value):
            if name not in transformed:
                if isinstance(value, tuple):  # several validation sets
                    transformed[name] = tuple(
                        before._transform_skipping_samplers(part, **transform_params)
                        for part in value
                    )
                else:
                    transformed[name] = before._transform_skipping_samplers(
                        value, **transform_params
                    )
            return transformed[name]

        return {
            method: {
                name: transformed_value(name, value) if name in self.transform_input else value
                for name, value in params.items()
            }
            for method, params in step_params.items()
        }

    def _step_params(self, position, routed, all_params, n_input, kept):
        """The parameters for step ``position``, transformed and aligned with the rows."""
        name = self.steps[position][0]
        step_params = self._metadata_for_step(position, dict(routed.get(name, {})), all_params)
        unaligned = self.transform_input or ()
        return {
            method: _align(dict(params), n_input, kept, unaligned)
            for method, params in step_params.items()
        }

    def _fit_steps(self, X, y, routed, all_params, context):
        """Fit every step but the last.

        Returns the data and parameters for the last step (a dict by method), the indices
        into ``X`` of the rows left (``None`` when no sampler changed them,
        ``_UNALIGNED`` when one did without saying which) and what the samplers set for
        the final step: the product of their ``sample_weight_`` and the last
        ``sample_groups_``.
        """
        self._validate_parameters()
        self.steps = list(self.steps)
        self._validate_steps()
        memory = check_memory(self.memory)
        caching = getattr(memory, "location", None) is not None
        unkeyed = ["pipeline", "context"]
        cached_fit_transform = memory.cache(_fit_transform_reported, ignore=unkeyed)
        cached_fit_resample = memory.cache(_fit_resample_reported, ignore=unkeyed)
        n_input = _n_rows(X)
        kept = None
        derived = {}  # final-step fit parameters set by samplers, aligned with X
        for position, name, step in self._iter(with_final=False, filter_passthrough=False):
            task = context.subcontext(task_name=f"fit-{name}")
            with self._timed(position):
                if _is_passthrough(step):
                    with _reported_task(task, self, step, X, y):
                        continue
                params = self._step_params(position, routed, all_params, n_input, kept)
                unfitted = clone(step) if caching else step
                if _resamples(step):
                    resample_params = {**params.get("fit", {}), **params.get("fit_resample", {})}
                    n_before = _n_rows(X)
                    X, y, fitted = cached_fit_resample(
                        unfitted, X, y, resample_params, pipeline=self, context=task
                    )
                    kept, derived = _compose(name, fitted, kept, derived, n_before, _n_rows(X))
                else:
                    X, fitted = cached_fit_transform(
                        unfitted, X, y, params, pipeline=self, context=task
                    )
                self.steps[position] = (name, fitted)
        final_params = self._step_params(len(self.steps) - 1, routed, all_params, n_input, kept)
        return X, y, final_params, kept, derived

    @contextmanager
    def _callback_root(self, task_name, X, y):
        """The callbacks' root task for one fit method (every step is a subtask)."""
        context = self._init_callback_context(task_name=task_name, max_subtasks=len(self.steps))
        context.call_on_fit_task_begin(estimator=self, X=X, y=y)
        yield context
        context.call_on_fit_task_end(estimator=self, X=X, y=y)

    @contextmanager
    def _final_task(self, context, X, y):
        """Time the final step and report it to the callbacks."""
        task = context.subcontext(task_name="fit-final-estimator")
        with self._timed(len(self.steps) - 1):
            with _reported_task(task, self, self._final_estimator, X, y):
                yield

    def _refuse_transform_input_without_routing(self):
        if self.transform_input is not None and not _routing_enabled():
            raise ValueError(
                "The `transform_input` parameter can only be set if metadata routing is "
                "enabled. You can enable metadata routing using "
                "`sklearn.set_config(enable_metadata_routing=True)`."
            )

    @with_callbacks
    def fit(self, X, y=None, **params):
        """Fit the transformers, run the samplers, fit the final estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        y : array-like of shape (n_samples,), default=None
            Targets.
        **params : dict
            ``step__param`` fit parameters (or routed metadata).

        Returns
        -------
        self : Pipeline
        """
        self._validate_parameters()
        self._refuse_transform_input_without_routing()
        routed = self._check_method_params("fit", params)
        with self._callback_root("fit", X, y) as context:
            Xt, yt, final_params, _, derived = self._fit_steps(X, y, routed, params, context)
            name, final = self.steps[-1]
            with self._final_task(context, Xt, yt):
                if not _is_passthrough(final):
                    final_params = _with_derived(final_params.get("fit", {}), derived, name)
                    final.fit(Xt, yt, **final_params)
        return self

    def _can_fit_transform(self):
        final = self._final_estimator
        return (
            _is_passthrough(final)
            or hasattr(final, "transform")
            or hasattr(final, "fit_transform")
        )

    @available_if(_can_fit_transform)
    @with_callbacks
    def fit_transform(self, X, y=None, **params):
        """Fit, then return the final step's transform of the training rows.

        A pipeline that holds a sampler refuses: its rows at the end of ``fit`` are not
        the rows of ``X``, so they would not line up with ``y``. Use
        :meth:`fit_resample` for the resampled rows and their labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        y : array-like of shape (n_samples,), default=None
            Targets.
        **params : dict
            ``step__param`` fit parameters (or routed metadata).

        Returns
        -------
        Xt : ndarray
        """
        self._validate_parameters()
        sampler = next(
            (name for name, step in self._named_steps_or_empty() if _resamples(step)), None
        )
        if sampler is not None:
            raise ValueError(
                f"This Pipeline resamples rows during fit (step {sampler!r}), so "
                "fit_transform cannot return rows that line up with y. Use "
                "fit_resample(X, y) for the resampled rows and their labels, or "
                "fit(X, y).transform(X) for every row. As a step of another pipeline, "
                "nest it in midlogit.pipeline.Pipeline, which resamples through it."
            )
        self._refuse_transform_input_without_routing()
        routed = self._check_method_params("fit_transform", params)
        with self._callback_root("fit_transform", X, y) as context:
            Xt, yt, final_params, _, _ = self._fit_steps(X, y, routed, params, context)
            final = self._final_estimator
            with self._final_task(context, Xt, yt):
                if not _is_passthrough(final):
                    Xt, _ = _fit_transform_one(final, Xt, yt, final_params)
        return Xt

    @available_if(_final_has("fit_predict"))
    @with_callbacks
    def fit_predict(self, X, y=None, **params):
        """Fit, then return the final step's ``fit_predict`` on the resampled rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        y : array-like of shape (n_samples,), default=None
            Targets.
        **params : dict
            ``step__param`` fit parameters (or routed metadata).

        Returns
        -------
        y_pred : ndarray
        """
        self._validate_parameters()
        self._refuse_transform_input_without_routing()
        routed = self._check_method_params("fit_predict", params)
        with self._callback_root("fit_predict", X, y) as context:
            Xt, yt, final_params, _, derived = self._fit_steps(X, y, routed, params, context)
            name, final = self.steps[-1]
            final_params = _with_derived(final_params.get("fit_predict", {}), derived, name)
            with self._final_task(context, Xt, yt):
                y_pred = final.fit_predict(Xt, yt, **final_params)
        return y_pred

    @available_if(_can_resample)
    @with_callbacks
    def fit_resample(self, X, y, **params):
        """Fit, then return the rows and labels the pipeline resampled.

        The pipeline acts as one sampler: its samplers resample, its transformers
        transform (the final one is fitted on the resampled rows), and
        ``sample_indices_``, ``sample_weight_`` and ``sample_groups_`` say which input rows
        came out, with which weights and labels. This is how a pipeline nests in another.
        Metadata is routed as for :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        y : array-like of shape (n_samples,)
            Targets.
        **params : dict
            ``step__param`` fit parameters (or routed metadata).

        Returns
        -------
        X_res : array-like of shape (n_kept, n_features_out)
            The resampled rows, transformed.
        y_res : array-like of shape (n_kept,)
            Their labels.
        """
        self._validate_parameters()
        self._refuse_transform_input_without_routing()
        n_input = _n_rows(X)
        routed = self._check_method_params("fit", params)
        with self._callback_root("fit_resample", X, y) as context:
            Xt, yt, final_params, kept, derived = self._fit_steps(X, y, routed, params, context)
            with self._final_task(context, Xt, yt):
                X_res, y_res, kept, derived = self._fit_resample_final(
                    Xt, yt, final_params, kept, derived
                )
        if kept is None:
            kept = np.arange(n_input)
        self.sample_indices_ = None if kept is _UNALIGNED else kept
        self.sample_weight_ = derived.get("sample_weight")
        self.sample_groups_ = derived.get("groups")
        return X_res, y_res

    def _fit_resample_final(self, Xt, yt, final_params, kept, derived):
        """Resample (or transform) with the final step; the rows kept and what the
        samplers set, updated."""
        name, final = self.steps[-1]
        if _is_passthrough(final):
            return Xt, yt, kept, derived
        if _resamples(final):
            resample_params = {
                **final_params.get("fit", {}),
                **final_params.get("fit_resample", {}),
            }
            n_before = _n_rows(Xt)
            X_res, y_res = final.fit_resample(Xt, yt, **resample_params)
            kept, derived = _compose(name, final, kept, derived, n_before, _n_rows(X_res))
            return X_res, y_res, kept, derived
        X_res, _ = _fit_transform_one(final, Xt, yt, final_params)
        return X_res, yt, kept, derived


def _default_names(estimators):
    names = [step if isinstance(step, str) else type(step).__name__.lower() for step in estimators]
    counts = Counter(names)
    seen = Counter()
    unique = []
    for name in names:
        if counts[name] > 1:
            seen[name] += 1
            name = f"{name}-{seen[name]}"
        unique.append(name)
    return unique


def make_pipeline(*steps, memory=None, transform_input=None, verbose=False):
    """Build a :class:`Pipeline`, naming each step after its lowercased class name.

    Parameters
    ----------
    *steps : estimators
        Transformers and samplers, then the final estimator.
    memory : str, joblib.Memory or None, default=None
        Caches fitted transformers and samplers.
    transform_input : list of str or None, default=None
        Fit metadata to transform by the preceding steps (metadata routing only).
    verbose : bool, default=False
        Print the time each step takes.

    Returns
    -------
    pipeline : Pipeline

    Examples
    --------
    >>> from midlogit.pipeline import make_pipeline
    >>> from midlogit.selection import LogitBandSelector
    >>> from midlogit.clustering import EmbeddingClusterer
    >>> from midlogit.retraining import LastLayerRetrainer
    >>> pipe = make_pipeline(LogitBandSelector(), EmbeddingClusterer(), LastLayerRetrainer())
    >>> [name for name, _ in pipe.steps]
    ['logitbandselector', 'embeddingclusterer', 'lastlayerretrainer']
    """
    return Pipeline(
        list(zip(_default_names(steps), steps)),
        transform_input=transform_input,
        memory=memory,
        verbose=verbose,
    )
