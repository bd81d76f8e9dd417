"""Parameters, step validation and step access of :class:`~midlogit.pipeline.Pipeline`."""

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from ._steps import (
    InvalidPipelineParameter,
    _is_passthrough,
    _is_pipeline,
    _is_sampler,
    _is_transformer,
    _resamples,
    _skipped_at_predict,
)


class _StepsMixin:
    """Parameters, step validation and step access of :class:`~midlogit.pipeline.Pipeline`."""

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
            if _is_pipeline(step):
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
