"""A pipeline whose samplers run during ``fit`` only.

A scikit-learn transformer must never change the number of rows, so row selection is
done by *samplers* (objects with ``fit_resample``). :class:`Pipeline` calls them while
fitting and skips them in ``predict``, ``predict_proba``, ``decision_function``,
``score``, ``score_samples``, ``transform`` and ``inverse_transform``. Sample-aligned
fit parameters (``sample_weight``, ``groups``) are subset together with the rows,
through each sampler's ``sample_indices_``. A sampler that weights rows instead of
dropping them sets ``sample_weight_`` (one weight per returned row); the final step's
``fit`` then receives those weights as ``sample_weight`` (multiplied into any given). A
sampler that sets ``sample_groups_`` (one label per returned row) hands them to the
final step's ``fit`` as ``groups``, e.g. for a
:class:`~midlogit.retraining.LastLayerRetrainer` that averages fits on group-balanced
subsamples.

Everything else behaves as scikit-learn's and imbalanced-learn's ``Pipeline`` do; the
differences, each with its reason, are listed in the design notes. Written on
scikit-learn's public API only.
"""

import time
from collections import Counter
from contextlib import contextmanager
from copy import deepcopy

import joblib
import numpy as np
import sklearn
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import Bunch, get_tags
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    get_routing_for_object,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, check_memory, validate_data

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # scikit-learn < 1.9 has no callbacks; fit then reports to nobody

    class _SilentContext:
        def subcontext(self, **_):
            return self

        def call_on_fit_task_begin(self, **_):
            return self

        def call_on_fit_task_end(self, **_):
            return False

        @contextmanager
        def propagate_callback_context(self, sub_estimator):
            yield

    class CallbackSupportMixin:
        def _init_callback_context(self, **_):
            return _SilentContext()

    def with_callbacks(method):
        return method


__all__ = ["Pipeline", "make_pipeline"]

# Rows were resampled by a sampler that did not say which: per-row parameters cannot follow.
_UNALIGNED = object()

_PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
# What a step is asked to do while the pipeline fits, by the pipeline method called.
_FIT_METHODS = ("fit", "fit_transform", "fit_predict")


class InvalidPipelineParameter(ValueError, TypeError):
    """A constructor parameter of :class:`Pipeline` has a wrong type or value.

    Both a ``ValueError`` and a ``TypeError``, as scikit-learn's own parameter errors.
    """


def _is_passthrough(step):
    return step is None or (isinstance(step, str) and step == "passthrough")


def _is_sampler(step):
    return hasattr(step, "fit_resample")


def _is_transformer(step):
    return hasattr(step, "transform") and (hasattr(step, "fit") or hasattr(step, "fit_transform"))


def _resamples(step):
    """Whether ``step`` changes the rows during fit (a sampler, or a Pipeline holding one)."""
    if isinstance(step, Pipeline):
        return step._has_sampler()
    return _is_sampler(step)


def _skipped_at_predict(step):
    """Samplers do nothing outside fit; a nested pipeline still transforms."""
    return _is_sampler(step) and not isinstance(step, Pipeline)


def _final_has(method):
    def check(self):
        final = self._final_estimator
        if _is_passthrough(final) and method == "transform":
            return True
        getattr(final, method)  # raises the final step's own AttributeError
        return True

    return check


def _can_inverse_transform(self):
    return all(
        hasattr(step, "inverse_transform")
        for _, _, step in self._iter()
        if not _skipped_at_predict(step)
    )


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


def _refuse_params_without_routing(params, method):
    if params and not _routing_enabled():
        raise ValueError(
            f"Passing extra keyword arguments to Pipeline.{method} is only supported if "
            "enable_metadata_routing=True, which you can set using "
            "`sklearn.set_config(enable_metadata_routing=True)`. Extra parameters passed "
            f"are: {set(params)}"
        )


def _elapsed_line(message, seconds):
    """``[Pipeline] ..... message, total=   0.1s``, padded to 70 characters."""
    elapsed = f"{seconds / 60:4.1f}min" if seconds > 60 else f" {seconds:5.1f}s"
    head, tail = "[Pipeline] ", f" {message}, total={elapsed}"
    return head + "." * max(70 - len(head) - len(tail), 0) + tail


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
    """Fit ``transformer`` and transform ``X`` (``params`` maps a method to its kwargs)."""
    if hasattr(transformer, "fit_transform"):
        return transformer.fit_transform(X, y, **params.get("fit_transform", {})), transformer
    fitted = transformer.fit(X, y, **params.get("fit", {}))
    return fitted.transform(X, **params.get("transform", {})), transformer


@contextmanager
def _reported_task(context, pipeline, step, X, y):
    """Report one step's fit to the callbacks (``step`` fits inside the block)."""
    if _is_passthrough(step):
        context.call_on_fit_task_begin(estimator=pipeline, X=X, y=y)
        yield
        context.call_on_fit_task_end(estimator=pipeline, X=X, y=y)
        return
    with context.propagate_callback_context(step):
        context.call_on_fit_task_begin(estimator=pipeline, X=X, y=y)
        yield
        context.call_on_fit_task_end(estimator=pipeline, X=X, y=y)


# The two functions the memory caches; a cache hit fits nothing and so reports nothing.
# ``pipeline`` and ``context`` are left out of the cache key.
def _fit_transform_reported(transformer, X, y, params, *, pipeline, context):
    with _reported_task(context, pipeline, transformer, X, y):
        return _fit_transform_one(transformer, X, y, params)


def _fit_resample_reported(sampler, X, y, params, *, pipeline, context):
    with _reported_task(context, pipeline, sampler, X, y):
        X_res, y_res = sampler.fit_resample(X, y, **params)
    return X_res, y_res, sampler


def _n_rows(X):
    """Rows of ``X``, or ``None`` when it has none to count (e.g. ``X=None``)."""
    shape = getattr(X, "shape", None)
    if shape is not None:
        return shape[0] if len(shape) else None
    return len(X) if hasattr(X, "__len__") else None


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


def _align(params, n_input, kept, unaligned_names=()):
    """Subset the parameters that hold one entry per input row to the rows ``kept``."""
    if kept is None:
        return params
    aligned = {}
    for key, value in params.items():
        per_row = (
            key not in unaligned_names
            and hasattr(value, "__len__")
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


class _SerialBlock:
    """What scikit-learn's HTML display reads to draw a chain of steps.

    scikit-learn asks an estimator's ``_sk_visual_block_()`` for an object with these
    attributes; nothing is imported from scikit-learn for it.
    """

    kind = "serial"
    name_caption = None
    doc_link_label = None
    dash_wrapped = False

    def __init__(self, estimators, names, name_details):
        self.estimators = estimators
        self.names = names
        self.name_details = name_details

    def _sk_visual_block_(self):
        return self


class Pipeline(CallbackSupportMixin, BaseEstimator):
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

        Parameters
        ----------
        **params : dict
            ``steps``, ``memory``, ``verbose``, ``transform_input``, a step's name (to
            replace it) or ``stepname__param``.

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

    def _validate_parameters(self):
        """Check the constructor parameters other than the steps themselves."""
        allowed = {
            "steps": (isinstance(self.steps, list | tuple), "a list or a tuple"),
            "transform_input": (
                self.transform_input is None or isinstance(self.transform_input, list),
                "a list of str or None",
            ),
            "memory": (
                self.memory is None
                or isinstance(self.memory, str)
                or hasattr(self.memory, "cache"),
                "None, a str or an object with a joblib.Memory interface",
            ),
            "verbose": (isinstance(self.verbose, bool | np.bool_), "an instance of 'bool'"),
        }
        for name, (valid, description) in allowed.items():
            if not valid:
                raise InvalidPipelineParameter(
                    f"The {name!r} parameter of {type(self).__name__} must be "
                    f"{description}. Got {getattr(self, name)!r} instead."
                )

    # --- structure --------------------------------------------------------------------
    def _validate_steps(self):
        if not self.steps:
            raise ValueError("The pipeline is empty. Please add steps.")
        pairs = list(self.steps)
        if not all(isinstance(pair, tuple | list) and len(pair) == 2 for pair in pairs):
            raise TypeError(
                f"steps must be a list of (name, estimator) tuples; got {self.steps!r}."
            )
        names = [name for name, _ in pairs]
        self._validate_names(names)
        for _, step in pairs:
            if isinstance(step, type):
                raise TypeError(
                    f"Expected an estimator instance ({step.__name__}()), got estimator "
                    f"class instead ({step.__name__})."
                )
        for name, step in pairs[:-1]:
            if _is_passthrough(step):
                continue
            if isinstance(step, Pipeline):
                # A nested Pipeline may both resample (at fit) and transform (at predict).
                step._validate_steps()
                if not (_is_sampler(step) or _is_transformer(step)):
                    raise TypeError(
                        f"Step {name!r} is a Pipeline ending in "
                        f"{type(step._final_estimator).__name__}, which neither transforms "
                        "nor resamples; only the last step may be another estimator."
                    )
                continue
            sampler, transformer = _is_sampler(step), _is_transformer(step)
            if sampler and transformer:
                raise TypeError(
                    f"Step {name!r} ({type(step).__name__}) implements both fit_resample "
                    "and transform; an intermediate step must either resample rows "
                    "(implement fit_resample) or transform them (implement fit and "
                    "transform), not both."
                )
            if not (sampler or transformer):
                raise TypeError(
                    "All intermediate steps should be transformers or samplers (implement "
                    "fit and transform or fit_resample) or be the string 'passthrough'; "
                    f"step {name!r}, {step!r} (type {type(step)}), is neither a "
                    "transformer nor a sampler."
                )
        final = pairs[-1][1]
        if not _is_passthrough(final) and not hasattr(final, "fit"):
            raise TypeError(
                "Last step of Pipeline should implement fit or be the string "
                f"'passthrough'. '{final!r}' (type {type(final)}) doesn't."
            )

    def _validate_names(self, names):
        not_strings = [name for name in names if not isinstance(name, str)]
        if not_strings:
            raise TypeError(f"Step names must be strings; got {not_strings}.")
        if len(set(names)) != len(names):
            raise ValueError(f"Names provided are not unique: {names!r}")
        clashing = sorted(set(names) & set(self.get_params(deep=False)))
        if clashing:
            raise ValueError(f"Estimator names conflict with constructor arguments: {clashing}")
        with_separator = [name for name in names if "__" in name]
        if with_separator:
            raise ValueError(f"Estimator names must not contain __: got {with_separator}")

    def _iter(self, with_final=True, filter_passthrough=True):
        """(position, name, step) for the steps, optionally without the last or passthrough."""
        steps = list(self.steps) if with_final else list(self.steps)[:-1]
        for position, (name, step) in enumerate(steps):
            if not (filter_passthrough and _is_passthrough(step)):
                yield position, name, step

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
        try:
            final = self.steps[-1][1]
        except IndexError:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '_final_estimator'"
            ) from None
        except (ValueError, AttributeError, TypeError):
            return None  # steps is malformed; fit reports it
        return "passthrough" if final is None else final

    def __len__(self):
        return len(self.steps)

    def __getitem__(self, index):
        """A step by position or name, or a sub-pipeline (sharing the steps) by slice."""
        if isinstance(index, slice):
            if index.step not in (None, 1):
                raise ValueError("Pipeline slicing only supports a step of 1")
            return type(self)(self.steps[index], memory=self.memory, verbose=self.verbose)
        if isinstance(index, str):
            return self.named_steps[index]
        return self.steps[index][1]

    def __sklearn_is_fitted__(self):
        """Whether the last step that is not ``"passthrough"`` is fitted (an empty or
        all-passthrough pipeline is)."""
        for _, step in reversed(list(self.steps)):
            if not _is_passthrough(step):
                try:
                    check_is_fitted(step)
                except NotFittedError:
                    return False
                return True
        return True

    def _check_fitted(self):
        """Raise NotFittedError, naming the step that is not fitted, unless fitted."""
        if self.__sklearn_is_fitted__():
            return
        last = next(step for _, step in reversed(list(self.steps)) if not _is_passthrough(step))
        raise NotFittedError(
            f"This {type(self).__name__} instance is not fitted yet: its last step, a "
            f"{type(last).__name__} instance is not fitted. Call 'fit' with appropriate "
            "arguments before using this estimator."
        )

    def _first_step_attribute(self, attribute):
        try:
            first = self.steps[0][1]
        except IndexError:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{attribute}'"
            ) from None
        return getattr(first, attribute)

    @property
    def classes_(self):
        """Classes of the final estimator."""
        try:
            final = self.steps[-1][1]
        except IndexError:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute 'classes_'"
            ) from None
        return final.classes_

    @property
    def n_features_in_(self):
        """Number of features the first step saw during fit."""
        return self._first_step_attribute("n_features_in_")

    @property
    def feature_names_in_(self):
        """Names of the features the first step saw during fit (when it saw names)."""
        return self._first_step_attribute("feature_names_in_")

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
        for _, name, step in self._iter():
            if not hasattr(step, "get_feature_names_out"):
                if _skipped_at_predict(step):
                    continue  # a sampler drops rows, never columns
                raise AttributeError(
                    f"Estimator {name} does not provide get_feature_names_out. Did you "
                    "mean to call pipeline[:-1].get_feature_names_out()?"
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
        if transform is None:
            return self
        for _, name, step in self._iter():
            if hasattr(step, "set_output"):
                step.set_output(transform=transform)
            elif hasattr(step, "transform") or hasattr(step, "fit_transform"):
                raise ValueError(
                    f"Unable to configure output for step {name!r} ({type(step).__name__}) "
                    "because `set_output` is not available."
                )
        return self

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

    # --- inference: samplers are skipped ----------------------------------------------
    def _transform_input(self, X, routed=None):
        """Apply the transformers before the last step, skipping (and checking) samplers."""
        for _, name, step in self._iter(with_final=False):
            X = self._infer_step(name, step, X, routed)
        return X

    @staticmethod
    def _infer_step(name, step, X, routed, method="transform"):
        """What ``step`` does to ``X`` at predict time (``method`` may be
        ``"inverse_transform"``)."""
        if _is_passthrough(step):
            return X
        params = {} if routed is None else routed[name].get(method, {})
        if isinstance(step, Pipeline) and method == "transform":
            return step._transform_skipping_samplers(X, **params)
        if _is_sampler(step):
            if method == "transform":
                _check_features(step, X)
            return X
        return getattr(step, method)(X, **params)

    def _transform_skipping_samplers(self, X, **params):
        """Predict-time transform through every step, final sampler included."""
        routed = process_routing(self, "transform", **params) if _routing_enabled() else None
        Xt = self._transform_input(X, routed)
        name, final = self.steps[-1]
        return self._infer_step(name, final, Xt, routed)

    def _call_final(self, method, X, params, *, params_need_routing=False):
        """Transform ``X`` through the steps, then call the final step's ``method``.

        Without routing, ``params`` go to the final step's method, as in scikit-learn
        (unless ``params_need_routing``: then they are refused).
        """
        self._check_fitted()
        name, final = self.steps[-1]
        if not _routing_enabled():
            if params_need_routing:
                _refuse_params_without_routing(params, method)
            return getattr(final, method)(self._transform_input(X), **params)
        routed = process_routing(self, method, **params)
        Xt = self._transform_input(X, routed)
        return getattr(final, method)(Xt, **routed[name].get(method, {}))

    @available_if(_final_has("predict"))
    def predict(self, X, **params):
        """Predict with the final estimator, skipping samplers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        **params : dict
            Passed to the final step's ``predict`` (with metadata routing: routed).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._call_final("predict", X, params)

    @available_if(_final_has("predict_proba"))
    def predict_proba(self, X, **params):
        """Class probabilities of the final estimator, skipping samplers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        **params : dict
            Passed to the final step's ``predict_proba`` (with metadata routing: routed).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self._call_final("predict_proba", X, params)

    @available_if(_final_has("predict_log_proba"))
    def predict_log_proba(self, X, **params):
        """Log class probabilities of the final estimator, skipping samplers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        **params : dict
            Passed to the final step's ``predict_log_proba`` (with metadata routing:
            routed).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._call_final("predict_log_proba", X, params)

    @available_if(_final_has("decision_function"))
    def decision_function(self, X, **params):
        """Decision function of the final estimator, skipping samplers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        **params : dict
            Metadata, only with metadata routing enabled.

        Returns
        -------
        scores : ndarray
        """
        return self._call_final("decision_function", X, params, params_need_routing=True)

    @available_if(_final_has("score_samples"))
    def score_samples(self, X):
        """``score_samples`` of the final estimator, skipping samplers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        return self._call_final("score_samples", X, {})

    @available_if(_final_has("score"))
    def score(self, X, y=None, sample_weight=None, **params):
        """Score of the final estimator on ``X`` (no row is dropped).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        y : array-like of shape (n_samples,), default=None
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the final step's ``score`` when given.
        **params : dict
            Metadata, only with metadata routing enabled.

        Returns
        -------
        score : float
        """
        self._check_fitted()
        name, final = self.steps[-1]
        if not _routing_enabled():
            _refuse_params_without_routing(params, "score")
            weights = {} if sample_weight is None else {"sample_weight": sample_weight}
            return final.score(self._transform_input(X), y, **weights)
        routed = process_routing(self, "score", sample_weight=sample_weight, **params)
        Xt = self._transform_input(X, routed)
        return final.score(Xt, y, **routed[name].get("score", {}))

    @available_if(_final_has("transform"))
    def transform(self, X, **params):
        """Apply every transformer (and a transforming final step), skipping samplers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        **params : dict
            Metadata, only with metadata routing enabled.

        Returns
        -------
        Xt : ndarray
        """
        self._check_fitted()
        _refuse_params_without_routing(params, "transform")
        return self._transform_skipping_samplers(X, **params)

    @available_if(_can_inverse_transform)
    def inverse_transform(self, X, **params):
        """Undo the transformers, last first (samplers are skipped).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_transformed_features)
            Transformed data.
        **params : dict
            Metadata, only with metadata routing enabled.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
        """
        self._check_fitted()
        _refuse_params_without_routing(params, "inverse_transform")
        routed = process_routing(self, "inverse_transform", **params) if params else None
        for _, name, step in reversed(list(self._iter())):
            X = self._infer_step(name, step, X, routed, method="inverse_transform")
        return X

    # --- scikit-learn integration -----------------------------------------------------
    def __sklearn_tags__(self):
        """Tags as scikit-learn's Pipeline derives them, plus ``target_tags.required``
        when a step (such as a sampler) needs ``y``.

        The input tags other than ``pairwise`` and ``sparse`` stay at their defaults:
        the first step's input tags do not describe the pipeline (a first step that
        accepts NaN does not make the pipeline accept it).
        """
        tags = super().__sklearn_tags__()
        steps = self._named_steps_or_empty()
        if not steps:
            return tags
        present = [step for _, step in steps if not _is_passthrough(step)]
        try:
            first = steps[0][1]
            if not _is_passthrough(first):
                tags.input_tags.pairwise = get_tags(first).input_tags.pairwise
            tags.input_tags.sparse = all(get_tags(step).input_tags.sparse for step in present)
            tags.target_tags.required = any(
                get_tags(step).target_tags.required for step in present
            )
        except (ValueError, AttributeError, TypeError):
            pass  # a step that is not an estimator; fit reports it
        try:
            final = steps[-1][1]
            if not _is_passthrough(final):
                final_tags = get_tags(final)
                tags.estimator_type = final_tags.estimator_type
                tags.target_tags.multi_output = final_tags.target_tags.multi_output
                tags.classifier_tags = deepcopy(final_tags.classifier_tags)
                tags.regressor_tags = deepcopy(final_tags.regressor_tags)
                tags.transformer_tags = deepcopy(final_tags.transformer_tags)
        except (ValueError, AttributeError, TypeError):
            pass
        return tags

    def _sk_visual_block_(self):
        """The chain of steps, for scikit-learn's HTML display (notebooks)."""
        names, details = [], []
        for name, step in self.steps:
            if _is_passthrough(step):
                names.append(f"{name}: passthrough")
            else:
                names.append(f"{name}: {type(step).__name__}")
            details.append(str(step))
        return _SerialBlock([step for _, step in self.steps], names, details)

    def get_metadata_routing(self):
        """How fit, predict and score metadata reach the steps.

        Transformers are routed as in scikit-learn's Pipeline. A sampler receives the
        metadata it requests for ``fit`` (and for ``fit_resample``, where that method is
        known to the routing, as once imbalanced-learn is imported) and nothing at
        predict time, where it is skipped.

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRouter
        """
        router = MetadataRouter(owner=type(self).__name__)
        for _, name, step in self._iter(with_final=False):
            mapping = MethodMapping()
            if _resamples(step):
                for caller in _FIT_METHODS:
                    mapping.add(caller=caller, callee="fit")
                    if hasattr(get_routing_for_object(step), "fit_resample"):
                        mapping.add(caller=caller, callee="fit_resample")
            elif hasattr(step, "fit_transform"):
                for caller in _FIT_METHODS:
                    mapping.add(caller=caller, callee="fit_transform")
            else:
                for caller in _FIT_METHODS:
                    mapping.add(caller=caller, callee="fit").add(caller=caller, callee="transform")
            if not _skipped_at_predict(step):
                for caller in (*_PREDICT_METHODS, "score", "transform"):
                    mapping.add(caller=caller, callee="transform")
                mapping.add(caller="inverse_transform", callee="inverse_transform")
            router.add(method_mapping=mapping, **{name: step})
        final_name, final = self.steps[-1]
        if _is_passthrough(final):
            return router
        mapping = MethodMapping()
        if hasattr(final, "fit_transform"):
            mapping.add(caller="fit_transform", callee="fit_transform")
        else:
            mapping.add(caller="fit_transform", callee="fit")
            mapping.add(caller="fit_transform", callee="transform")
        mapping.add(caller="fit", callee="fit").add(caller="fit_predict", callee="fit_predict")
        if _resamples(final) and hasattr(get_routing_for_object(final), "fit_resample"):
            mapping.add(caller="fit", callee="fit_resample")
        for method in (*_PREDICT_METHODS, "transform", "inverse_transform", "score"):
            mapping.add(caller=method, callee=method)
        router.add(method_mapping=mapping, **{final_name: final})
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
