"""The net's final layer handed out as a scikit-learn head, and a retrained one put back."""

import copy

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._head import LinearHead


class FinalLayerMixin:
    """:meth:`head` and :meth:`with_head` of :class:`~midlogit.backbones.SkorchEmbedder`.

    Relies on the embedder's ``_fitted_net``, ``_resolve_layer`` and ``_classes``.
    """

    def _final_linear(self, what):
        net = self._fitted_net()
        if self.layer is not None:
            raise ValueError(
                f"{what} needs the default embedding (the input of the last nn.Linear), "
                f"but layer={self.layer!r}; use SkorchEmbedder(net, layer=None)."
            )
        if hasattr(self, "net_"):
            name = self.layer_
        else:
            name = self._resolve_layer(net.module_)
            self._check_unfitted_head(net, name, what)
        return net, name, net.module_.get_submodule(name)

    def _check_unfitted_head(self, net, name, what):
        """Before fit (no rows to run), the last registered nn.Linear must fit the net."""
        try:
            n_classes = len(net.classes_)
        except (AttributeError, TypeError):
            return
        linear = net.module_.get_submodule(name)
        if linear.out_features != n_classes:
            raise ValueError(
                f"{what}: the last registered nn.Linear ({name!r}) has "
                f"{linear.out_features} outputs but the net predicts {n_classes} classes, "
                "so it is not the output layer (a module may register its output layer "
                "before its body). Call fit(X) on the embedder first: it finds the output "
                "layer with a forward pass. (make_midlogit_pipeline calls head() before "
                "any fit, so there register the output layer last.)"
            )

    def head(self):
        """The net's final layer as a fitted :class:`LinearHead`.

        Its ``decision_function`` on :meth:`transform`'s embeddings reproduces the
        logits (for two classes: the logit of class 1 minus that of class 0), so
        ``LogitBandSelector(estimator=embedder.head())`` cuts its band on the ERM
        model's own logits. The head is frozen (``LinearHead(frozen=True)``): cloning
        returns it fitted, so the selector works inside
        :class:`~sklearn.model_selection.GridSearchCV` (wrapping it in
        :class:`sklearn.frozen.FrozenEstimator` works as well). Its weights keep the
        layer's float type (float32 for a float32 net). Works on a frozen embedder
        before ``fit``.

        Returns
        -------
        head : LinearHead
        """
        net, name, linear = self._final_linear("head()")
        # float32 stays float32, so logits of float32 embeddings take no more memory
        dtype = torch.float32 if linear.weight.dtype == torch.float32 else torch.float64
        weight = linear.weight.detach().cpu().to(dtype).numpy()
        if linear.bias is None:
            bias = np.zeros(weight.shape[0], dtype=weight.dtype)
        else:
            bias = linear.bias.detach().cpu().to(dtype).numpy()
        if weight.shape[0] < 2:
            raise ValueError(
                f"The last nn.Linear ({name!r}) has {weight.shape[0]} output; head() "
                "needs one logit per class, as a NeuralNetClassifier with "
                "CrossEntropyLoss has."
            )
        return LinearHead.from_weights(weight, bias, self._classes(net, weight.shape[0]))

    def with_head(self, retrainer):
        """A copy of the net whose last layer is ``retrainer``'s head.

        Parameters
        ----------
        retrainer : midlogit.retraining.LastLayerRetrainer
            Fitted on this embedder's embeddings (any fitted classifier with
            ``to_torch()`` returning an ``nn.Linear`` works).

        Returns
        -------
        net : skorch.NeuralNetClassifier
            A deep copy; the embedder's net is untouched. Its ``predict`` returns class
            indices (skorch's convention): ``retrainer.classes_[net.predict(X)]`` are
            the retrained pipeline's predictions.
        """
        net, name, linear = self._final_linear("with_head()")
        check_is_fitted(retrainer, "coef_")
        if not hasattr(retrainer, "to_torch"):
            raise ValueError(
                f"retrainer must have to_torch() (a LastLayerRetrainer), got "
                f"{type(retrainer).__name__}."
            )
        if getattr(retrainer, "n_features_in_", linear.in_features) != linear.in_features:
            raise ValueError(
                f"retrainer was fitted on {retrainer.n_features_in_} features but the "
                f"net's last layer takes {linear.in_features}; fit it on this "
                "embedder's transform(X)."
            )
        classes = self._classes(net, linear.out_features)
        new_classes = np.asarray(retrainer.classes_)
        if new_classes.shape != classes.shape or not np.array_equal(new_classes, classes):
            raise ValueError(
                f"retrainer.classes_ {new_classes.tolist()} differ from the net's "
                f"classes {classes.tolist()}; retrain on labels of every class."
            )
        layer = retrainer.to_torch().to(device=linear.weight.device, dtype=linear.weight.dtype)
        new_net = copy.deepcopy(net)
        parent_name, _, child = name.rpartition(".")
        parent = new_net.module_.get_submodule(parent_name) if parent_name else (new_net.module_)
        setattr(parent, child, layer)
        new_net.initialize_optimizer()
        return new_net
