"""What a step is (passthrough, sampler, transformer, nested pipeline) and how one is fitted."""

from contextlib import contextmanager

import sklearn
from sklearn.utils.validation import validate_data

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
    if _is_pipeline(step):
        return step._has_sampler()
    return _is_sampler(step)


def _skipped_at_predict(step):
    """Samplers do nothing outside fit; a nested pipeline still transforms."""
    return _is_sampler(step) and not _is_pipeline(step)


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


def _is_pipeline(step):
    """Whether ``step`` is a midlogit :class:`~midlogit.pipeline.Pipeline`."""
    from ._pipeline import Pipeline

    return isinstance(step, Pipeline)
