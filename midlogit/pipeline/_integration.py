"""Tags, HTML display and metadata routing of :class:`~midlogit.pipeline.Pipeline`."""

from copy import deepcopy

from sklearn.utils import get_tags
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, get_routing_for_object

from ._steps import (
    _FIT_METHODS,
    _PREDICT_METHODS,
    _is_passthrough,
    _resamples,
    _skipped_at_predict,
)


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


class _IntegrationMixin:
    """Tags, HTML display and metadata routing of :class:`~midlogit.pipeline.Pipeline`."""

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
