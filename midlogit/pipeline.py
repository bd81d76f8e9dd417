"""A pipeline whose samplers run during ``fit`` only.

A scikit-learn transformer must never change the number of rows, so row selection is
done by *samplers* (objects with ``fit_resample``). :class:`Pipeline` calls them while
fitting and skips them in ``predict``, ``predict_proba``, ``decision_function``,
``score`` and ``transform``. Sample-aligned fit parameters (``sample_weight``,
``groups``) are subset together with the rows, through each sampler's
``sample_indices_``. A sampler that weights rows instead of dropping them sets
``sample_weight_`` (one weight per returned row); the final step's ``fit`` then receives
those weights as ``sample_weight`` (multiplied into any given). A sampler that sets
``sample_groups_`` (one label per returned row) hands them to the final step's ``fit`` as
``groups``, e.g. for a :class:`~midlogit.retraining.LastLayerRetrainer` that averages fits
on group-balanced subsamples. Written on scikit-learn's public API only.
"""

import time
from collections import Counter

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, clone
from sklearn.utils import Bunch, get_tags
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, check_memory, validate_data

__all__ = ["Pipeline", "make_pipeline"]

# Rows were resampled by a sampler that did not say which: per-row parameters cannot follow.
_UNALIGNED = object()

_PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


def _is_sampler(step):
    return hasattr(step, "fit_resample")


def _resamples(step):
    """Whether ``step`` changes the rows during fit (a sampler, or a Pipeline holding one)."""
    if isinstance(step, Pipeline):
        return step._has_sampler()
    return _is_sampler(step)


def _is_transformer(step):
    return hasattr(step, "transform") and hasattr(step, "fit")


def _is_passthrough(step):
    return step is None or (isinstance(step, str) and step == "passthrough")


def _final_has(method):
    def check(self):
        final = self._final_estimator
        if _is_passthrough(final):
            return method == "transform"
        getattr(final, method)
        return True

    return check


def _can_resample(self):
    """A pipeline resamples when its final step does, or when it holds a sampler and ends
    in a transformer or ``"passthrough"`` (then it resamples and transforms, like the
    same steps written out flat in an outer pipeline)."""
    final = self._final_estimator
    if _is_passthrough(final) or _is_transformer(final):
        return self._has_sampler()
    return _is_sampler(final)


def _routing_enabled():
    return bool(sklearn.get_config().get("enable_metadata_routing", False))


def _with_derived(params, derived, name):
    """The final step's fit parameters with the samplers' weights and groups added.

    The samplers' ``sample_weight_`` are multiplied into a given ``sample_weight``; their
    ``sample_groups_`` become ``groups`` (also passing ``groups`` is an error).
    """
    params = dict(params)
    if "sample_weight" in derived:
        given = params.get("sample_weight")
        weights = derived["sample_weight"]
        params["sample_weight"] = (
            weights if given is None else weights * np.asarray(given, dtype=float)
        )
    if "groups" in derived:
        if params.get("groups") is not None:
            raise ValueError(
                f"The final step {name!r} got groups from the caller and a sampler set "
                "sample_groups_; pass one of them (e.g. drop sampling='average')."
            )
        params["groups"] = derived["groups"]
    return params


def _check_features(sampler, X):
    """Check the columns a skipped sampler would see against those it was fitted on.

    Only 2-D arrays and DataFrames are checked; a later step reports other shapes.
    """
    if hasattr(sampler, "n_features_in_") and getattr(X, "ndim", None) == 2:
        validate_data(sampler, X, reset=False, skip_check_array=True)


def _fit_transform_one(transformer, X, y, params):
    return transformer.fit_transform(X, y, **params), transformer


def _n_rows(X):
    if hasattr(X, "shape"):
        return X.shape[0]
    return len(X) if hasattr(X, "__len__") else np.asarray(X).shape[0]


def _take_rows(value, indices):
    if hasattr(value, "iloc"):
        return value.iloc[indices]
    return np.asarray(value)[indices]


def _compose(name, step, kept, derived, n_before, n_after):
    """Fold a sampler's ``sample_indices_``, ``sample_weight_`` and ``sample_groups_``
    into those so far (``derived`` maps ``"sample_weight"`` and ``"groups"`` to arrays
    aligned with the rows)."""
    indices = getattr(step, "sample_indices_", None)
    if indices is None:
        if n_after != n_before:
            if derived:
                raise ValueError(
                    f"Step {name!r} changed the rows without recording sample_indices_, so "
                    f"the {' and '.join(derived)} an earlier sampler set cannot follow them."
                )
            kept = _UNALIGNED
    else:
        indices = np.asarray(indices)
        if kept is None:
            kept = indices
        elif kept is not _UNALIGNED:
            kept = kept[indices]
        derived = {key: value[indices] for key, value in derived.items()}
    step_weight = getattr(step, "sample_weight_", None)
    if step_weight is not None:
        step_weight = np.asarray(step_weight, dtype=float)
        earlier = derived.get("sample_weight")
        derived = {
            **derived,
            "sample_weight": step_weight if earlier is None else earlier * step_weight,
        }
    step_groups = getattr(step, "sample_groups_", None)
    if step_groups is not None:  # a later sampler's labels replace earlier ones
        derived = {**derived, "groups": np.asarray(step_groups)}
    return kept, derived


class Pipeline(BaseEstimator):
    """Chain of transformers and samplers ending in an estimator.

    Parameters
    ----------
    steps : list of (str, estimator) tuples
        Every step but the last is a transformer (``fit``/``transform``), a sampler
        (``fit_resample``) or ``"passthrough"``; the last may be any estimator.
    memory : str, joblib.Memory or None, default=None
        Caches fitted transformers (not samplers, which are cheap) under this folder.
    verbose : bool, default=False
        Print the time each step takes to fit.

    Attributes
    ----------
    named_steps : Bunch
        Steps by name.
    classes_ : ndarray
        The final estimator's classes, for a classifier.
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
    ``fit_resample``). A parameter holding one entry per row of ``X`` is subset to the
    rows the samplers before that step kept. With metadata routing enabled
    (``sklearn.set_config(enable_metadata_routing=True)``), pass ``param=value`` and
    request it on the step instead, e.g. ``GroupBalancedSampler().set_fit_request(
    groups=True)``.

    A pipeline holding a sampler may be a step of another one: it then resamples as
    one sampler (:meth:`fit_resample`) and transforms at predict time, as its steps
    written out flat would.

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

    def __init__(self, steps, *, memory=None, verbose=False):
        self.steps = steps
        self.memory = memory
        self.verbose = verbose

    # --- parameters -----------------------------------------------------------------
    def get_params(self, deep=True):
        """Parameters of the pipeline and, with ``deep``, of its steps (``step__param``).

        Parameters
        ----------
        deep : bool, default=True
            Include the steps and their parameters.

        Returns
        -------
        params : dict
        """
        params = super().get_params(deep=False)
        if not deep:
            return params
        for name, step in self._named_steps_or_empty():
            params[name] = step
            if hasattr(step, "get_params") and not isinstance(step, type):
                params.update((f"{name}__{k}", v) for k, v in step.get_params(deep=True).items())
        return params

    def set_params(self, **params):
        """Set pipeline parameters, replace steps by name, or set ``step__param``.

        Returns
        -------
        self : Pipeline
        """
        if "steps" in params:
            self.steps = params.pop("steps")
        names = [name for name, _ in self._named_steps_or_empty()]
        for key in [k for k in params if k in names]:
            position = names.index(key)
            self.steps = list(self.steps)
            self.steps[position] = (key, params.pop(key))
        super().set_params(**params)
        return self

    def _named_steps_or_empty(self):
        """The steps as (name, step) pairs, or none while ``steps`` is not a list of them."""
        steps = self.steps
        if isinstance(steps, list | tuple) and all(
            isinstance(pair, tuple) and len(pair) == 2 for pair in steps
        ):
            return steps
        return []

    # --- structure --------------------------------------------------------------------
    def _validate_steps(self):
        if not isinstance(self.steps, list | tuple) or not self.steps:
            raise ValueError("steps must be a non-empty list of (name, estimator) tuples.")
        names = [name for name, _ in self.steps]
        duplicated = [name for name, count in Counter(names).items() if count > 1]
        if duplicated:
            raise ValueError(f"Step names must be unique; repeated: {duplicated}.")
        for name in names:
            if "__" in name:
                raise ValueError(f"Step name {name!r} must not contain '__'.")
            if name in ("steps", "memory", "verbose"):
                raise ValueError(f"Step name {name!r} clashes with a Pipeline parameter.")
        for name, step in self.steps[:-1]:
            if _is_passthrough(step) or isinstance(step, Pipeline):
                # A nested Pipeline may both resample (at fit) and transform (at predict).
                if isinstance(step, Pipeline):
                    step._validate_steps()
                    if not (_is_sampler(step) or _is_transformer(step)):
                        raise TypeError(
                            f"Step {name!r} is a Pipeline ending in "
                            f"{type(step._final_estimator).__name__}, which neither "
                            "transforms nor resamples; only the last step may be another "
                            "estimator."
                        )
                continue
            sampler = _is_sampler(step)
            transformer = _is_transformer(step)
            if sampler and transformer:
                raise ValueError(
                    f"Step {name!r} ({type(step).__name__}) has both fit_resample and "
                    "transform; a step must either resample rows or transform them."
                )
            if not (sampler or transformer):
                raise TypeError(
                    f"Step {name!r} ({type(step).__name__}) is neither a transformer "
                    "(fit/transform) nor a sampler (fit_resample); only the last step "
                    "may be another estimator."
                )

    def _has_sampler(self):
        """Whether any step resamples rows during fit (nested pipelines included)."""
        return any(
            not _is_passthrough(step) and _resamples(step)
            for _, step in self._named_steps_or_empty()
        )

    @property
    def named_steps(self):
        """Steps by name (a :class:`~sklearn.utils.Bunch`)."""
        return Bunch(**dict(self.steps))

    @property
    def _final_estimator(self):
        return self.steps[-1][1]

    def __len__(self):
        return len(self.steps)

    def __getitem__(self, index):
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise ValueError("Pipeline slicing supports only a step of 1.")
            return type(self)(self.steps[index], memory=self.memory, verbose=self.verbose)
        if isinstance(index, str):
            return self.named_steps[index]
        return self.steps[index][1]

    def __sklearn_is_fitted__(self):
        """Whether the last step that is not ``"passthrough"`` is fitted."""
        for _, step in reversed(self.steps):
            if not _is_passthrough(step):
                check_is_fitted(step)
                break
        return True

    @property
    def classes_(self):
        """Classes of the final estimator."""
        return self._final_estimator.classes_

    @property
    def n_features_in_(self):
        """Number of features the first step saw during fit."""
        return self.steps[0][1].n_features_in_

    @property
    def feature_names_in_(self):
        """Names of the features the first step saw during fit (when it saw names)."""
        return self.steps[0][1].feature_names_in_

    def get_feature_names_out(self, input_features=None):
        """Names of the features the pipeline outputs; samplers keep the names.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names, checked by the first step.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        names = input_features
        for name, step in self.steps:
            if _is_passthrough(step):
                continue
            if not hasattr(step, "get_feature_names_out"):
                if _is_sampler(step) and not isinstance(step, Pipeline):
                    continue  # a sampler drops rows, never columns
                raise AttributeError(
                    f"Step {name!r} ({type(step).__name__}) does not provide "
                    "get_feature_names_out; for the names a final estimator receives, "
                    "call pipeline[:-1].get_feature_names_out()."
                )
            names = step.get_feature_names_out(names)
        return names

    def set_output(self, *, transform=None):
        """Set the output container of every step's ``transform`` (e.g. ``"pandas"``).

        Samplers need no setting: they return a DataFrame when given one.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            Passed to each step's ``set_output``; ``None`` leaves them unchanged.

        Returns
        -------
        self : Pipeline
        """
        for name, step in self.steps:
            if _is_passthrough(step) or transform is None:
                continue
            if hasattr(step, "set_output"):
                step.set_output(transform=transform)
            elif hasattr(step, "transform"):
                raise ValueError(
                    f"Cannot set the output of step {name!r} ({type(step).__name__}): it "
                    "has no set_output method."
                )
        return self

    # --- fitting ----------------------------------------------------------------------
    def _step_params(self, method, params):
        """Split ``params`` into one dict per step."""
        names = [name for name, _ in self.steps]
        if _routing_enabled():
            routed = process_routing(self, method, **params)
            per_step = {}
            for name, step in self.steps:
                if _is_passthrough(step):
                    continue
                merged = {}
                for callee in ("fit", "fit_transform", "fit_resample"):
                    merged.update(routed[name].get(callee, {}))
                per_step[name] = merged
            return per_step
        per_step = {name: {} for name in names}
        for key, value in params.items():
            name, sep, param = key.partition("__")
            if not sep or name not in per_step:
                raise ValueError(
                    f"Pipeline.{method} got {key!r}; pass step parameters as "
                    f"'stepname__param' with a step among {names} (e.g. "
                    f"'{names[-1]}__sample_weight'), or enable metadata routing."
                )
            per_step[name][param] = value
        return per_step

    def _fit_steps(self, X, y, params):
        """Fit every step but the last.

        Returns the data and parameters for the last step, the indices into ``X`` of the
        rows left (``None`` when no sampler changed them, ``_UNALIGNED`` when one did
        without saying which) and what the samplers set for the final step: the product
        of their ``sample_weight_`` and the last ``sample_groups_``.
        """
        self._validate_steps()
        per_step = self._step_params("fit", params)
        memory = check_memory(self.memory)
        cached_fit_transform = memory.cache(_fit_transform_one)
        n_input = _n_rows(X)
        kept = None
        derived = {}  # final-step fit parameters set by samplers, aligned with X
        self.steps = list(self.steps)
        for position, (name, step) in enumerate(self.steps):
            step_params = self._align(per_step.get(name, {}), n_input, kept)
            if position == len(self.steps) - 1:
                return X, y, step_params, kept, derived
            if _is_passthrough(step):
                continue
            start = time.perf_counter()
            if _resamples(step):
                n_before = _n_rows(X)
                X, y = step.fit_resample(X, y, **step_params)
                kept, derived = _compose(name, step, kept, derived, n_before, _n_rows(X))
            else:
                fitted_input = step if memory.location is None else clone(step)
                X, fitted = cached_fit_transform(fitted_input, X, y, step_params)
                self.steps[position] = (name, fitted)
            self._log_fit(position, start)

    def _log_fit(self, position, start):
        if self.verbose:
            print(
                f"[Pipeline] ({position + 1} of {len(self.steps)}) {self.steps[position][0]} "
                f"fitted in {time.perf_counter() - start:.1f}s"
            )

    def _fit_final(self, method, Xt, yt, params):
        """Call ``method`` of the final step on the resampled data, logging its time."""
        start = time.perf_counter()
        result = getattr(self._final_estimator, method)(Xt, yt, **params)
        self._log_fit(len(self.steps) - 1, start)
        return result

    @staticmethod
    def _align(step_params, n_input, kept):
        """Subset the parameters that hold one entry per input row."""
        if kept is None:
            return step_params
        aligned = {}
        for key, value in step_params.items():
            per_row = (
                hasattr(value, "__len__")
                and not isinstance(value, str | bytes | dict)
                and len(value) == n_input
            )
            if per_row and kept is _UNALIGNED:
                raise ValueError(
                    f"Cannot align {key!r} with the rows: an earlier sampler changed the "
                    "rows without recording sample_indices_. Give that sampler a "
                    "sample_indices_ attribute or drop the parameter."
                )
            aligned[key] = _take_rows(value, kept) if per_row else value
        return aligned

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
        Xt, yt, final_params, _, derived = self._fit_steps(X, y, params)
        final = self._final_estimator
        if not _is_passthrough(final):
            name = self.steps[-1][0]
            self._fit_final("fit", Xt, yt, _with_derived(final_params, derived, name))
        return self

    @available_if(_final_has("fit_transform"))
    def fit_transform(self, X, y=None, **params):
        """Fit, then return the final step's transform of the training rows.

        A pipeline that holds a sampler refuses: its rows at the end of ``fit`` are not
        the rows of ``X``, so they would not line up with ``y``. Use
        :meth:`fit_resample` for the resampled rows and their labels.

        Returns
        -------
        Xt : ndarray
        """
        sampler = next((name for name, step in self.steps if _resamples(step)), None)
        if sampler is not None:
            raise ValueError(
                f"This Pipeline resamples rows during fit (step {sampler!r}), so "
                "fit_transform cannot return rows that line up with y. Use "
                "fit_resample(X, y) for the resampled rows and their labels, or "
                "fit(X, y).transform(X) for every row. As a step of another pipeline, "
                "nest it in midlogit.pipeline.Pipeline, which resamples through it."
            )
        Xt, yt, final_params, _, _ = self._fit_steps(X, y, params)
        return self._fit_final("fit_transform", Xt, yt, final_params)

    @available_if(_final_has("fit_predict"))
    def fit_predict(self, X, y=None, **params):
        """Fit, then return the final step's ``fit_predict`` on the resampled rows.

        Returns
        -------
        y_pred : ndarray
        """
        Xt, yt, final_params, _, derived = self._fit_steps(X, y, params)
        final_params = _with_derived(final_params, derived, self.steps[-1][0])
        return self._fit_final("fit_predict", Xt, yt, final_params)

    @available_if(_can_resample)
    def fit_resample(self, X, y, **params):
        """Fit, then return the rows and labels the pipeline resampled.

        The pipeline acts as one sampler: its samplers resample, its transformers
        transform (the final one is fitted on the resampled rows), and
        ``sample_indices_``, ``sample_weight_`` and ``sample_groups_`` say which input rows
        came out, with which weights and labels. This is how a pipeline nests in another.

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
        n_input = _n_rows(X)
        Xt, yt, final_params, kept, derived = self._fit_steps(X, y, params)
        name, final = self.steps[-1]
        start = time.perf_counter()
        if _is_passthrough(final):
            X_res, y_res = Xt, yt
        elif _resamples(final):
            n_before = _n_rows(Xt)
            X_res, y_res = final.fit_resample(Xt, yt, **final_params)
            kept, derived = _compose(name, final, kept, derived, n_before, _n_rows(X_res))
        elif hasattr(final, "fit_transform"):
            X_res, y_res = final.fit_transform(Xt, yt, **final_params), yt
        else:
            X_res, y_res = final.fit(Xt, yt, **final_params).transform(Xt), yt
        if not _is_passthrough(final):
            self._log_fit(len(self.steps) - 1, start)
        if kept is None:
            kept = np.arange(n_input)
        self.sample_indices_ = None if kept is _UNALIGNED else kept
        self.sample_weight_ = derived.get("sample_weight")
        self.sample_groups_ = derived.get("groups")
        return X_res, y_res

    # --- inference: samplers are skipped ----------------------------------------------
    def _transform_input(self, X, routed=None):
        """Apply the transformers before the last step, skipping (and checking) samplers."""
        for name, step in self.steps[:-1]:
            X = self._infer_step(name, step, X, routed)
        return X

    @staticmethod
    def _infer_step(name, step, X, routed):
        """What ``step`` does to ``X`` at predict time."""
        if _is_passthrough(step):
            return X
        params = {} if routed is None else routed[name].get("transform", {})
        if isinstance(step, Pipeline) and step._has_sampler():
            return step._transform_skipping_samplers(X, **params)
        if _is_sampler(step):
            _check_features(step, X)
            return X
        return step.transform(X, **params)

    def _transform_skipping_samplers(self, X, **params):
        """Predict-time transform of a nested pipeline, final sampler included."""
        routed = process_routing(self, "transform", **params) if _routing_enabled() else None
        Xt = self._transform_input(X, routed)
        name, final = self.steps[-1]
        return self._infer_step(name, final, Xt, routed)

    def _call_final(self, method, X, **params):
        name, final = self.steps[-1]
        if not _routing_enabled():
            return getattr(final, method)(self._transform_input(X), **params)
        routed = process_routing(self, method, **params)
        Xt = self._transform_input(X, routed)
        return getattr(final, method)(Xt, **routed[name].get(method, {}))

    @available_if(_final_has("predict"))
    def predict(self, X, **params):
        """Predict with the final estimator, skipping samplers.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._call_final("predict", X, **params)

    @available_if(_final_has("predict_proba"))
    def predict_proba(self, X, **params):
        """Class probabilities of the final estimator, skipping samplers.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self._call_final("predict_proba", X, **params)

    @available_if(_final_has("predict_log_proba"))
    def predict_log_proba(self, X, **params):
        """Log class probabilities of the final estimator, skipping samplers.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._call_final("predict_log_proba", X, **params)

    @available_if(_final_has("decision_function"))
    def decision_function(self, X, **params):
        """Decision function of the final estimator, skipping samplers.

        Returns
        -------
        scores : ndarray
        """
        return self._call_final("decision_function", X, **params)

    @available_if(_final_has("score"))
    def score(self, X, y=None, sample_weight=None, **params):
        """Score of the final estimator on ``X`` (no row is dropped).

        Returns
        -------
        score : float
        """
        if sample_weight is not None:
            params["sample_weight"] = sample_weight
        if not _routing_enabled():
            return self._final_estimator.score(self._transform_input(X), y, **params)
        name, final = self.steps[-1]
        routed = process_routing(self, "score", **params)
        Xt = self._transform_input(X, routed)
        return final.score(Xt, y, **routed[name].get("score", {}))

    @available_if(_final_has("transform"))
    def transform(self, X, **params):
        """Apply every transformer (and a transforming final step), skipping samplers.

        Returns
        -------
        Xt : ndarray
        """
        final = self._final_estimator
        if not _routing_enabled():
            Xt = self._transform_input(X)
            return Xt if _is_passthrough(final) else final.transform(Xt, **params)
        return self._transform_skipping_samplers(X, **params)

    # --- scikit-learn integration -----------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        first, final = self.steps[0][1], self._final_estimator
        if not _is_passthrough(final):
            final_tags = get_tags(final)
            tags.estimator_type = final_tags.estimator_type
            tags.target_tags = final_tags.target_tags
            tags.classifier_tags = final_tags.classifier_tags
            tags.regressor_tags = final_tags.regressor_tags
            tags.transformer_tags = final_tags.transformer_tags
        if not _is_passthrough(first):
            tags.input_tags = get_tags(first).input_tags
        return tags

    def get_metadata_routing(self):
        """How fit, predict and score metadata reach the steps.

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRouter
        """
        router = MetadataRouter(owner=type(self).__name__)
        for position, (name, step) in enumerate(self.steps):
            if _is_passthrough(step):
                continue
            mapping = MethodMapping().add(caller="fit", callee="fit")
            if position == len(self.steps) - 1:
                for method in (*_PREDICT_METHODS, "score", "transform"):
                    mapping.add(caller=method, callee=method)
                if hasattr(step, "fit_transform"):
                    mapping.add(caller="fit", callee="fit_transform")
            elif isinstance(step, Pipeline) or not _is_sampler(step):
                # A nested pipeline transforms at predict time even when it resamples.
                if not _resamples(step):
                    mapping.add(caller="fit", callee="fit_transform")
                for method in (*_PREDICT_METHODS, "score", "transform"):
                    mapping.add(caller=method, callee="transform")
            router.add(method_mapping=mapping, **{name: step})
        return router


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


def make_pipeline(*steps, memory=None, verbose=False):
    """Build a :class:`Pipeline`, naming each step after its lowercased class name.

    Parameters
    ----------
    *steps : estimators
        Transformers and samplers, then the final estimator.
    memory : str, joblib.Memory or None, default=None
        Caches fitted transformers.
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
    return Pipeline(list(zip(_default_names(steps), steps)), memory=memory, verbose=verbose)
