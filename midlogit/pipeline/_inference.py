"""Predict-time methods of :class:`~midlogit.pipeline.Pipeline`: samplers are skipped."""

from sklearn.utils.metadata_routing import process_routing
from sklearn.utils.metaestimators import available_if

from ._steps import (
    _can_inverse_transform,
    _check_features,
    _final_has,
    _is_passthrough,
    _is_pipeline,
    _is_sampler,
    _refuse_params_without_routing,
    _routing_enabled,
)


class _InferenceMixin:
    """Predict-time methods of :class:`~midlogit.pipeline.Pipeline`: samplers are skipped."""

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
        if _is_pipeline(step) and method == "transform":
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
