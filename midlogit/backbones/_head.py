"""The head: :class:`LinearHead`, a net's final layer as a fitted classifier."""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from ..base import LinearHeadMixin, check_class_labels, validate

# ---------------------------------------------------------------------- linear head


class LinearHead(LinearHeadMixin, ClassifierMixin, BaseEstimator):
    """A linear classifier on embeddings: the final layer of a network, for scikit-learn.

    :meth:`SkorchEmbedder.head` builds one from the net's last ``nn.Linear`` (see
    :meth:`from_weights`); its ``decision_function`` on the embeddings reproduces the
    net's logits, in the layer's float type (a float32 layer on float32 embeddings
    gives float32 logits). A head built from weights is *frozen*: cloning it (as
    :class:`~sklearn.model_selection.GridSearchCV` does) returns the head itself and
    ``fit`` leaves it as it is, as :class:`sklearn.frozen.FrozenEstimator` does, so
    ``LogitBandSelector(estimator=embedder.head())`` works inside a search; wrapping it
    in ``FrozenEstimator`` works too. With ``frozen=False`` (the default of
    ``LinearHead()``), ``fit`` fits a fresh linear head by L2 logistic regression and a
    clone is a plain scikit-learn classifier.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength used by ``fit``.
    max_iter : int, default=1000
        Iterations of the logistic regression used by ``fit``.
    frozen : bool, default=False
        Keep the fitted weights through ``clone`` and ``fit`` (set by
        :meth:`from_weights`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights; one row for two classes (class 1 minus class 0).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Biases.
    n_features_in_ : int
        Embedding dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.backbones import LinearHead
    >>> head = LinearHead.from_weights([[0.0, -1.0], [0.0, 1.0]], [0.0, 0.5], [0, 1])
    >>> head.coef_, head.intercept_
    (array([[0., 2.]]), array([0.5]))
    >>> head.predict(np.array([[1.0, 1.0], [1.0, -1.0]]))
    array([1, 0])
    >>> from sklearn.base import clone
    >>> clone(head) is head, head.frozen
    (True, True)
    """

    def __init__(self, *, C=1.0, max_iter=1000, frozen=False):
        self.C = C
        self.max_iter = max_iter
        self.frozen = frozen

    def __sklearn_clone__(self):
        if self.frozen:
            return self
        return super().__sklearn_clone__()

    @classmethod
    def from_weights(cls, weight, bias, classes):
        """A fitted head from the weight and bias of a linear layer with K outputs.

        Parameters
        ----------
        weight : array-like of shape (n_classes, n_features)
            One row per class, as ``nn.Linear.weight``.
        bias : array-like of shape (n_classes,)
            As ``nn.Linear.bias`` (zeros when the layer has none).
        classes : array-like of shape (n_classes,)
            Label of each output.

        Returns
        -------
        head : LinearHead
            Fitted and frozen; for two classes ``coef_`` is ``weight[1] - weight[0]``,
            so the decision function is the logit of class 1 minus the logit of class 0.
            float32 weights stay float32, anything else becomes float64.
        """
        weight = np.asarray(weight)
        dtype = np.float32 if weight.dtype == np.float32 else np.float64
        weight = weight.astype(dtype, copy=False)
        bias = np.asarray(bias, dtype=dtype)
        classes = np.asarray(classes)
        if weight.ndim != 2 or weight.shape[0] < 2:
            raise ValueError(
                f"weight must have shape (n_classes >= 2, n_features), got {weight.shape}."
            )
        if bias.shape != (weight.shape[0],) or classes.shape != (weight.shape[0],):
            raise ValueError(
                f"bias and classes must have shape ({weight.shape[0]},), one entry per "
                f"row of weight; got {bias.shape} and {classes.shape}."
            )
        head = cls(frozen=True)
        if weight.shape[0] == 2:
            head.coef_ = (weight[1] - weight[0])[None, :]
            head.intercept_ = np.array([bias[1] - bias[0]])
        else:
            head.coef_ = weight
            head.intercept_ = bias
        head.classes_ = classes
        head.n_features_in_ = weight.shape[1]
        return head

    def fit(self, X, y):
        """Fit a linear head by L2 logistic regression.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings.
        y : array-like of shape (n_samples,)
            Class labels.

        With ``frozen=True`` the head is left as it is (it must be fitted).

        Returns
        -------
        self : LinearHead
        """
        if self.frozen:
            check_is_fitted(self, "coef_")
            return self
        X, y = validate(self, X, y, dtype=[np.float64, np.float32])
        check_class_labels(y)
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(f"y holds 1 class ({classes[0]!r}); a classifier needs at least two.")
        model = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(X, y)
        self.classes_ = model.classes_
        self.coef_ = model.coef_.astype(X.dtype)
        self.intercept_ = model.intercept_.astype(X.dtype)
        self.n_iter_ = model.n_iter_
        return self
