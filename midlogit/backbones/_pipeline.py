"""The whole chain on raw inputs: :func:`make_midlogit_pipeline`."""

from sklearn.frozen import FrozenEstimator

from ..clustering import EmbeddingClusterer
from ..pipeline import make_pipeline
from ..retraining import LastLayerRetrainer
from ..selection import LogitBandSelector
from ._embedder import SkorchEmbedder

# ------------------------------------------------------------------------- pipeline


def make_midlogit_pipeline(
    net,
    band_width=0.4,
    n_clusters=4,
    *,
    band_center=0.5,
    batch_size=256,
    random_state=None,
    **retrainer_params,
):
    """The mid-range logit curation pipeline on a trained net.

    ``make_pipeline(SkorchEmbedder(net, frozen=True), LogitBandSelector(
    estimator=FrozenEstimator(embedder.head()), ...), EmbeddingClusterer(...),
    LastLayerRetrainer(...))``: raw inputs in, a retrained last layer out; the band is
    cut on the ERM net's own logits.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier
        Trained (ERM) network; used frozen.
    band_width : float, default=0.4
        Width of the logit band, in quantiles.
    n_clusters : int, default=4
        Clusters per class.
    band_center : float, default=0.5
        Centre of the band, in quantiles.
    batch_size : int, default=256
        Rows per forward pass.
    random_state : int, RandomState instance or None, default=None
        Seeds the clustering, the resampling and the retrained head.
    **retrainer_params
        Passed to :class:`~midlogit.retraining.LastLayerRetrainer` (``C``,
        ``penalty``, ``n_subsamples``, ...).

    Returns
    -------
    pipeline : midlogit.pipeline.Pipeline
        Steps ``skorchembedder``, ``logitbandselector``, ``embeddingclusterer``,
        ``lastlayerretrainer``.

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.backbones import MLP, make_midlogit_pipeline, make_net
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)).astype(np.float32)
    >>> y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    >>> net = make_net(MLP(4, 2, hidden=(8,)), max_epochs=3, verbose=0, random_state=0)
    >>> net = net.fit(X, y)
    >>> pipe = make_midlogit_pipeline(net, band_width=0.6, n_clusters=2, random_state=0)
    >>> pipe.fit(X, y).predict(X[:5]).shape
    (5,)
    """
    embedder = SkorchEmbedder(net, frozen=True, batch_size=batch_size)
    return make_pipeline(
        embedder,
        LogitBandSelector(
            estimator=FrozenEstimator(embedder.head()),
            band_center=band_center,
            band_width=band_width,
            random_state=random_state,
        ),
        EmbeddingClusterer(n_clusters=n_clusters, random_state=random_state),
        LastLayerRetrainer(random_state=random_state, **retrainer_params),
    )
