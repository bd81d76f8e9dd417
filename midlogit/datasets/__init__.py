"""Data with known shortcuts, made on the fly, and loaders for data a user already has.

Generators (nothing is downloaded):

- :func:`make_dsprites` and :func:`render_sprites`: procedural dSprites (square, ellipse,
  heart on the dSprites latent grid), rendered with vectorised NumPy.
- :func:`make_biased_dsprites`: the synthetic study of O'Mahony et al. (WACV 2025), where
  the shape is tied to the x-position in a controllable fraction of rows.
- :func:`make_colored_digits`: scikit-learn's bundled 8 x 8 digits tinted with a colour
  tied to the label, in the spirit of Coloured-MNIST.
- :func:`make_spurious_gaussians`: a tabular task with a weak core block and a strong
  spurious block.
- :func:`make_pretraining_sprites`: sprites of eight kinds on textured backgrounds with
  no shortcut, the offline stand-in for ImageNet pretraining.
- :func:`make_waterbirds_like`: a sprite class on a background kind that gives it away,
  in Waterbirds' group proportions.

Every generator with a shortcut returns a :class:`~sklearn.utils.Bunch` with the same
fields: ``data``, ``target``, ``spurious`` (the shortcut attribute), ``groups``
(``target * n_spurious + spurious``), ``group_names``, ``target_names``,
``spurious_names`` and ``from_biased_subset``. ``bias`` is always the exact fraction of rows
drawn from the *biased subset*, where the shortcut agrees with the label; the rest come
from a control in which the shortcut is independent of the label and balanced within
every class. ``bias=0.0`` therefore gives unbiased test data.

Loaders (:func:`load_waterbirds`, :func:`load_celeba`) read the published file formats and
open images lazily with Pillow (the optional extra ``midlogit[data]``);
:func:`save_embeddings` and :func:`load_embeddings` store precomputed features.
"""

# ruff: noqa: F401 -- the package re-exports; _csv_rows is kept for midlogit.invert

from ._digits import make_colored_digits
from ._embeddings import load_embeddings, save_embeddings
from ._files import _csv_rows
from ._gaussians import make_spurious_gaussians
from ._images import LazyImages, load_celeba, load_waterbirds
from ._sprites import (
    BAND_EDGES,
    BAND_NAMES,
    ORIENTATIONS,
    POSITIONS,
    SCALES,
    SHAPE_NAMES,
    make_biased_dsprites,
    make_dsprites,
    render_sprites,
)
from ._textured_sprites import (
    BACKGROUND_NAMES,
    SPRITE_KINDS,
    WATERBIRDS_GROUP_COUNTS,
    make_pretraining_sprites,
    make_waterbirds_like,
)

__all__ = [
    "LazyImages",
    "load_celeba",
    "load_embeddings",
    "load_waterbirds",
    "make_biased_dsprites",
    "make_colored_digits",
    "make_pretraining_sprites",
    "make_waterbirds_like",
    "make_dsprites",
    "make_spurious_gaussians",
    "render_sprites",
    "save_embeddings",
]
