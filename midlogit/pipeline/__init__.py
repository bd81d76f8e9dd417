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

from ._pipeline import Pipeline, make_pipeline
from ._steps import InvalidPipelineParameter  # noqa: F401  (raised by Pipeline.fit)

__all__ = ["Pipeline", "make_pipeline"]
