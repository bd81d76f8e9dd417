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

import codecs
import csv
import io
import numbers
import os
import zipfile
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

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

# dSprites latent grid (Matthey et al., 2017): 3 shapes, 6 scales, 40 orientations
# (0 and 2*pi both included, as in the original), 32 x 32 positions.
SHAPE_NAMES = np.array(["square", "ellipse", "heart"])
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)

# x-bands of the biased study; the grid positions between them (10/31, 21/31) are never
# used. The right band includes the last grid position (1.0), so every band holds 10.
BAND_NAMES = np.array(["left", "middle", "right"])
BAND_EDGES = ((0.0, 0.3), (0.35, 0.65), (0.7, 1.0))
_BAND_POSITION_IDX = np.stack(
    [np.flatnonzero((POSITIONS >= lo) & ((POSITIONS < hi) | (hi == 1.0))) for lo, hi in BAND_EDGES]
)

# Sprite geometry in image units (the image is [0, 1] x [0, 1]): half side of a square at
# scale 1, and the margin that keeps every shape inside the image at any rotation.
_HALF_SIZE = 0.16
_MARGIN = _HALF_SIZE * np.sqrt(2.0) + 0.01
_RENDER_CHUNK_PIXELS = 1 << 22

_LATENT_DTYPE = np.dtype(
    [
        ("shape", np.intp),
        ("scale", np.float64),
        ("orientation", np.float64),
        ("pos_x", np.float64),
        ("pos_y", np.float64),
        ("scale_idx", np.intp),
        ("orientation_idx", np.intp),
        ("pos_x_idx", np.intp),
        ("pos_y_idx", np.intp),
    ]
)

_COLOURS_2 = (("red", (1.0, 0.0, 0.0)), ("green", (0.0, 1.0, 0.0)))
_COLOURS_10 = (
    ("blue", (0.12, 0.47, 0.71)),
    ("orange", (1.0, 0.5, 0.05)),
    ("green", (0.17, 0.63, 0.17)),
    ("red", (0.84, 0.15, 0.16)),
    ("purple", (0.58, 0.4, 0.74)),
    ("brown", (0.55, 0.34, 0.29)),
    ("pink", (0.89, 0.47, 0.76)),
    ("gray", (0.5, 0.5, 0.5)),
    ("olive", (0.74, 0.74, 0.13)),
    ("cyan", (0.09, 0.75, 0.81)),
)
# load_digits rows [0, 1198) are the "train" subset and [1198, 1797) the "test" subset:
# a contiguous two-thirds split, so the two share no image and mostly no writer.
_DIGITS_TRAIN_ROWS = 1198
_SPLITS = {"train": 0, "val": 1, "test": 2}


# --------------------------------------------------------------------------- validation


def _check_n_samples(n_samples, name="n_samples"):
    if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"{name} must be a positive integer, got {n_samples!r}.")
    return int(n_samples)


def _check_fraction(value, name):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{name} must be a number in [0, 1] (the fraction of rows from the biased "
            f"subset; 0.0 gives unbiased data), got {value!r}."
        )
    return float(value)


def _check_image_size(image_size, *, allow_none=False, minimum=1):
    if image_size is None and allow_none:
        return None
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    ok = (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= minimum
            for s in image_size
        )
    )
    if not ok:
        raise ValueError(
            f"image_size must be an integer >= {minimum} or a (height, width) pair of "
            f"them, got {image_size!r}."
        )
    return int(image_size[0]), int(image_size[1])


def _check_sprite_size(image_size):
    if (
        not isinstance(image_size, numbers.Integral)
        or isinstance(image_size, bool)
        or (image_size < 8)
    ):
        raise ValueError(
            f"image_size must be an integer >= 8 (sprites are square), got {image_size!r}."
        )
    return int(image_size)


# --------------------------------------------------------------------- balanced sampling


def _group_ranks(labels, rng):
    """Random rank of every row within its label, label codes and label counts."""
    _, codes = np.unique(labels, return_inverse=True)
    perm = rng.permutation(codes.size)
    order = perm[np.argsort(codes[perm], kind="stable")]
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ranks = np.empty(codes.size, dtype=np.intp)
    ranks[order] = np.arange(codes.size) - starts[codes[order]]
    return ranks, codes, counts


def _balanced_labels(n, k, rng):
    """``n`` labels in ``range(k)`` whose counts differ by at most one, shuffled."""
    return rng.permutation((np.arange(n) + rng.randint(k)) % k)


def _stratified_mask(labels, n_select, rng):
    """Mask of exactly ``n_select`` rows, spread over the labels in proportion."""
    mask = np.zeros(len(labels), dtype=bool)
    if n_select == 0:
        return mask
    ranks, codes, counts = _group_ranks(labels, rng)
    quantile = (ranks + 0.5) / counts[codes]
    mask[np.lexsort((rng.random_sample(len(labels)), quantile))[:n_select]] = True
    return mask


def _balanced_within(labels, k, rng):
    """Values in ``range(k)`` balanced (counts within one) inside every label."""
    ranks, codes, counts = _group_ranks(labels, rng)
    offsets = rng.randint(k, size=counts.size)
    return (ranks + offsets[codes]) % k


def _shortcut(target, n_spurious, bias, rng):
    """The spurious attribute: equal to ``target`` on the biased subset, else balanced."""
    n_biased = int(np.floor(bias * target.size + 0.5))
    from_biased = _stratified_mask(target, n_biased, rng)
    spurious = np.empty(target.size, dtype=np.intp)
    spurious[from_biased] = target[from_biased]
    control = ~from_biased
    if control.any():
        spurious[control] = _balanced_within(target[control], n_spurious, rng)
    return spurious, from_biased


def _group_names(target_names, spurious_names):
    return np.array([f"{t}@{s}" for t in target_names for s in spurious_names])


# ------------------------------------------------------------------------------ sprites


def _sprite_masks(shape_id, x, y):
    """Inside-test of one shape in its own frame (x right, y up, unit half size).

    Ids 0-2 are the dSprites shapes; 3-7 (triangle, cross, ring, star, L) exist for the
    pretraining sprites. Every shape stays inside the circle of radius sqrt(2).
    """
    if shape_id == 0:
        return np.maximum(np.abs(x), np.abs(y)) <= 1.0
    if shape_id == 1:
        return x * x + 4.0 * y * y <= 1.44
    if shape_id == 3:  # equilateral triangle inscribed in a circle of radius 1.2
        r3 = np.float32(np.sqrt(3.0))
        return (y >= -0.6) & (r3 * x + y <= 1.2) & (-r3 * x + y <= 1.2)
    if shape_id == 4:  # plus sign
        ax, ay = np.abs(x), np.abs(y)
        return ((ax <= 1.0) & (ay <= 0.35)) | ((ay <= 1.0) & (ax <= 0.35))
    if shape_id == 5:  # ring
        r2 = x * x + y * y
        return (r2 <= 1.0) & (r2 >= 0.3)
    if shape_id == 6:  # five-pointed star as a polar curve
        radius = np.sqrt(x * x + y * y)
        return radius <= 0.62 + 0.48 * np.cos(5.0 * np.arctan2(x, y))
    if shape_id == 7:  # the letter L
        return ((x >= -0.8) & (x <= -0.2) & (np.abs(y) <= 1.0)) | (
            (x >= -0.8) & (x <= 0.9) & (y >= -1.0) & (y <= -0.45)
        )
    # The heart curve (X^2 + Y^2 - 1)^3 <= X^2 Y^3 spans X in [-1.14, 1.14] and
    # Y in [-1, 1.24]; rescaled and shifted so that it fills the unit box.
    hx = 1.15 * x
    hy = 1.15 * y + 0.12
    r = hx * hx + hy * hy - 1.0
    return r * r * r <= hx * hx * hy * hy * hy


def render_sprites(shape, scale, orientation, pos_x, pos_y, *, image_size=64):
    """Render binary dSprites images from latent values.

    Vectorised over samples (in chunks that keep memory bounded). Latents need not lie
    on the dSprites grid, which makes counterfactual images easy: the same sprite with
    another shape, or moved along x.

    Parameters
    ----------
    shape : array-like of int
        Shape id per image: 0 square, 1 ellipse, 2 heart.
    scale : array-like of float
        Size in (0, 1]; the dSprites grid uses 0.5 to 1.0.
    orientation : array-like of float
        Rotation in radians, counter-clockwise.
    pos_x, pos_y : array-like of float
        Position in [0, 1]: 0 is the left (top) edge, 1 the right (bottom) edge, with a
        margin so that every shape stays inside the image.
    image_size : int, default=64
        Height and width in pixels (at least 8).

    All latents are broadcast against each other to one length.

    Returns
    -------
    images : ndarray of shape (n_images, 1, image_size, image_size), dtype float32
        1.0 inside the sprite, 0.0 outside.

    Examples
    --------
    >>> from midlogit.datasets import render_sprites
    >>> images = render_sprites([0, 1, 2], 1.0, 0.0, 0.5, 0.5, image_size=32)
    >>> images.shape, images.dtype
    ((3, 1, 32, 32), dtype('float32'))
    >>> bool(images[0].sum() > images[1].sum())  # the square covers more than the ellipse
    True
    """
    size = _check_sprite_size(image_size)
    shape, scale, orientation, pos_x, pos_y = (
        np.ravel(a) for a in np.broadcast_arrays(shape, scale, orientation, pos_x, pos_y)
    )
    if not np.isin(shape, (0, 1, 2)).all():
        raise ValueError(
            "shape must hold shape ids 0 (square), 1 (ellipse) or 2 (heart), got "
            f"{np.setdiff1d(shape, (0, 1, 2))[:5].tolist()}."
        )
    for name, values, low, high in (
        ("scale", scale, 0.0, 1.0),
        ("pos_x", pos_x, 0.0, 1.0),
        ("pos_y", pos_y, 0.0, 1.0),
    ):
        values = np.asarray(values, dtype=np.float64)
        if not (np.isfinite(values).all() and (values >= low).all() and (values <= high).all()):
            raise ValueError(f"{name} must lie in [{low}, {high}]; rescale it first.")
    if (np.asarray(scale) == 0).any():
        raise ValueError("scale must be positive; the dSprites grid uses 0.5 to 1.0.")
    orientation = np.asarray(orientation, dtype=np.float64)
    if not np.isfinite(orientation).all():
        raise ValueError("orientation must be finite (radians).")

    return _render(shape, scale, orientation, pos_x, pos_y, size, range(3))


def _render(shape, scale, orientation, pos_x, pos_y, size, kinds):
    """Binary sprites of validated, flat latents (no checks); ``kinds`` lists the ids."""
    n = shape.size
    images = np.zeros((n, 1, size, size), dtype=np.float32)
    pixel = (np.arange(size, dtype=np.float32) + 0.5) / size
    span = 1.0 - 2.0 * _MARGIN
    centre_x = (_MARGIN + span * np.asarray(pos_x, dtype=np.float64)).astype(np.float32)
    centre_y = (_MARGIN + span * np.asarray(pos_y, dtype=np.float64)).astype(np.float32)
    inv_radius = (1.0 / (_HALF_SIZE * np.asarray(scale, dtype=np.float64))).astype(np.float32)
    cos = np.cos(orientation).astype(np.float32)
    sin = np.sin(orientation).astype(np.float32)
    chunk = max(1, _RENDER_CHUNK_PIXELS // (size * size))
    for shape_id in kinds:
        rows = np.flatnonzero(shape == shape_id)
        for start in range(0, rows.size, chunk):
            idx = rows[start : start + chunk]
            dx = (pixel[None, None, :] - centre_x[idx, None, None]) * inv_radius[idx, None, None]
            dy = (centre_y[idx, None, None] - pixel[None, :, None]) * inv_radius[idx, None, None]
            c, s = cos[idx, None, None], sin[idx, None, None]
            x = c * dx + s * dy
            y = c * dy - s * dx
            images[idx, 0] = _sprite_masks(shape_id, x, y)
    return images


def _latents(shape, scale_idx, orientation_idx, pos_x_idx, pos_y_idx):
    latents = np.empty(shape.size, dtype=_LATENT_DTYPE)
    latents["shape"] = shape
    latents["scale"] = SCALES[scale_idx]
    latents["orientation"] = ORIENTATIONS[orientation_idx]
    latents["pos_x"] = POSITIONS[pos_x_idx]
    latents["pos_y"] = POSITIONS[pos_y_idx]
    latents["scale_idx"] = scale_idx
    latents["orientation_idx"] = orientation_idx
    latents["pos_x_idx"] = pos_x_idx
    latents["pos_y_idx"] = pos_y_idx
    return latents


def _render_latents(latents, image_size):
    return render_sprites(
        latents["shape"],
        latents["scale"],
        latents["orientation"],
        latents["pos_x"],
        latents["pos_y"],
        image_size=image_size,
    )


def make_dsprites(n_samples=1000, *, image_size=64, random_state=None):
    """Procedural dSprites: binary images of a square, an ellipse or a heart.

    Latents come from the dSprites grid (Matthey et al., 2017): 6 scales from 0.5 to 1.0,
    40 orientations from 0 to 2 pi (both ends included, as in the original), 32 x- and
    32 y-positions on [0, 1]. The shapes are balanced (counts differ by at most one);
    every other latent is drawn uniformly from its grid, independently.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of images.
    image_size : int, default=64
        Height and width in pixels; 64 as in dSprites, 32 renders four times faster.
    random_state : int, RandomState instance or None, default=None
        Seeds the latents.

    Returns
    -------
    data : Bunch
        Dictionary-like object with

        data : ndarray of shape (n_samples, 1, image_size, image_size), float32
            Binary images (0.0 background, 1.0 sprite).
        target : ndarray of shape (n_samples,)
            Shape id: 0 square, 1 ellipse, 2 heart.
        target_names : ndarray of shape (3,)
            ``["square", "ellipse", "heart"]``.
        latents : structured ndarray of shape (n_samples,)
            Fields ``shape``, ``scale``, ``orientation``, ``pos_x``, ``pos_y`` (values)
            and ``scale_idx``, ``orientation_idx``, ``pos_x_idx``, ``pos_y_idx`` (grid
            indices). Index it by rows like ``data``: ``latents[train]["pos_x"]``.

    See Also
    --------
    make_biased_dsprites : the same images with shape tied to x-position.
    render_sprites : render images from arbitrary latents.

    Examples
    --------
    >>> from midlogit.datasets import make_dsprites
    >>> sprites = make_dsprites(30, image_size=32, random_state=0)
    >>> sprites.data.shape, sprites.data.dtype
    ((30, 1, 32, 32), dtype('float32'))
    >>> sprites.target_names[sprites.target[:3]].tolist()
    ['heart', 'heart', 'ellipse']
    >>> float(sprites.latents["scale"].min()) >= 0.5
    True
    """
    n_samples = _check_n_samples(n_samples)
    image_size = _check_sprite_size(image_size)
    rng = check_random_state(random_state)
    shape = _balanced_labels(n_samples, 3, rng)
    latents = _latents(
        shape,
        rng.randint(SCALES.size, size=n_samples),
        rng.randint(ORIENTATIONS.size, size=n_samples),
        rng.randint(POSITIONS.size, size=n_samples),
        rng.randint(POSITIONS.size, size=n_samples),
    )
    return Bunch(
        data=_render_latents(latents, image_size),
        target=shape,
        target_names=SHAPE_NAMES.copy(),
        latents=latents,
    )


def make_biased_dsprites(n_samples=3000, *, bias=0.9, image_size=64, random_state=None):
    """dSprites with the shape tied to the x-position (O'Mahony et al., WACV 2025).

    The task is the shape; the shortcut is the x-band of the sprite. In the *biased
    subset* squares lie at x in [0, 0.3), ellipses in [0.35, 0.65) and hearts in
    [0.7, 1.0]; in the *control* the band is independent of the shape (balanced within
    every shape). The grid positions between the bands (x = 10/31 and 21/31) are never
    used, so every row has a band. Scale, orientation, y and the position inside the band
    are uniform on the dSprites grid.

    Parameters
    ----------
    n_samples : int, default=3000
        Number of images, whatever ``bias`` is (the authors' code let the size vary with
        the bias level, which confounds a sweep over it). Shapes are balanced.
    bias : float in [0, 1], default=0.9
        Fraction of rows from the biased subset (exactly ``round(bias * n_samples)``,
        spread over the shapes in proportion). ``0.0`` gives unbiased test data.
    image_size : int, default=64
        Height and width in pixels.
    random_state : int, RandomState instance or None, default=None
        Seeds the latents.

    Returns
    -------
    data : Bunch
        Dictionary-like object with

        data : ndarray of shape (n_samples, 1, image_size, image_size), float32
            Binary images.
        target : ndarray of shape (n_samples,)
            Shape id: 0 square, 1 ellipse, 2 heart.
        spurious : ndarray of shape (n_samples,)
            x-band: 0 left, 1 middle, 2 right.
        groups : ndarray of shape (n_samples,)
            ``target * 3 + spurious``.
        group_names : ndarray of shape (9,)
            ``"square@left"``, ``"square@middle"``, ... in group-id order.
        from_biased_subset : ndarray of bool, shape (n_samples,)
            Whether the row was drawn from the biased subset.
        latents : structured ndarray of shape (n_samples,)
            As in :func:`make_dsprites`.
        target_names, spurious_names : ndarray of shape (3,)
            Shape names and band names.

    Notes
    -----
    The right band is written [0.7, 1.0) in the paper; here it includes x = 1.0, the
    last grid position, so that each band holds 10 of the 32 positions.

    Examples
    --------
    >>> from midlogit.datasets import make_biased_dsprites
    >>> train = make_biased_dsprites(90, bias=0.9, image_size=32, random_state=0)
    >>> int(train.from_biased_subset.sum()), int((train.target == train.spurious).sum()) >= 81
    (81, True)
    >>> test = make_biased_dsprites(90, bias=0.0, image_size=32, random_state=1)
    >>> import numpy as np
    >>> np.bincount(test.groups).tolist()
    [10, 10, 10, 10, 10, 10, 10, 10, 10]
    """
    n_samples = _check_n_samples(n_samples)
    bias = _check_fraction(bias, "bias")
    image_size = _check_sprite_size(image_size)
    rng = check_random_state(random_state)
    shape = _balanced_labels(n_samples, 3, rng)
    band, from_biased = _shortcut(shape, 3, bias, rng)
    in_band = rng.randint(_BAND_POSITION_IDX.shape[1], size=n_samples)
    latents = _latents(
        shape,
        rng.randint(SCALES.size, size=n_samples),
        rng.randint(ORIENTATIONS.size, size=n_samples),
        _BAND_POSITION_IDX[band, in_band],
        rng.randint(POSITIONS.size, size=n_samples),
    )
    return Bunch(
        data=_render_latents(latents, image_size),
        target=shape,
        spurious=band,
        groups=shape * 3 + band,
        group_names=_group_names(SHAPE_NAMES, BAND_NAMES),
        from_biased_subset=from_biased,
        latents=latents,
        target_names=SHAPE_NAMES.copy(),
        spurious_names=BAND_NAMES.copy(),
    )


# ------------------------------------------------------------------ pretraining sprites

SPRITE_KINDS = np.array(["square", "ellipse", "heart", "triangle", "cross", "ring", "star", "L"])
BACKGROUND_NAMES = np.array(["plain", "stripes", "checker", "noise"])
# Textures are drawn at this amplitude below the sprite's 1.0, so the sprite stays visible.
_TEXTURE_LEVEL = 0.5


def _kind_ids(kinds, name):
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    unknown = [k for k in kinds if k not in SPRITE_KINDS]
    if unknown or not kinds:
        raise ValueError(f"{name} must name kinds among {SPRITE_KINDS.tolist()}, got {kinds!r}.")
    return np.array([int(np.flatnonzero(SPRITE_KINDS == k)[0]) for k in kinds])


def _textures(background, size, rng):
    """One grey texture per row: 0 plain, 1 stripes, 2 checker, 3 noise.

    Frequency, phase and tilt are random per image, so a kind is a family of images,
    not one picture. Values lie in {0, _TEXTURE_LEVEL} (stripes, checker) or
    [0, _TEXTURE_LEVEL) (noise).
    """
    n = background.size
    images = np.zeros((n, size, size), dtype=np.float32)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    freq = rng.uniform(3.0, 6.0, size=n).astype(np.float32)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(n, 2)).astype(np.float32)
    tilt = rng.uniform(-0.35, 0.35, size=n).astype(np.float32)
    noise = rng.random_sample((n, size, size)).astype(np.float32)
    for kind in (1, 2):
        rows = np.flatnonzero(background == kind)
        if not rows.size:
            continue
        c = np.cos(tilt[rows])[:, None, None]
        s = np.sin(tilt[rows])[:, None, None]
        u = c * yy + s * xx
        v = c * xx - s * yy
        w = 2.0 * np.pi * freq[rows, None, None]
        wave = np.sin(w * u + phase[rows, 0, None, None])
        if kind == 2:
            wave = wave * np.sin(w * v + phase[rows, 1, None, None])
        images[rows] = (wave > 0) * np.float32(_TEXTURE_LEVEL)
    rows = np.flatnonzero(background == 3)
    images[rows] = noise[rows] * np.float32(_TEXTURE_LEVEL)
    return images


def _sprites_on_textures(latents, size, rng):
    """Images of :func:`_free_latents`: each sprite over its background texture."""
    fields = (latents[name] for name in ("kind", "scale", "orientation", "pos_x", "pos_y"))
    sprites = _render(*fields, size, range(SPRITE_KINDS.size))
    texture = _textures(latents["background"], size, rng)
    return np.maximum(sprites, texture[:, None])


def _free_latents(kind, background, rng):
    """Continuous scale, rotation and position, independent of the kind."""
    n = kind.size
    latents = np.empty(
        n,
        dtype=[
            ("kind", np.intp),
            ("scale", np.float64),
            ("orientation", np.float64),
            ("pos_x", np.float64),
            ("pos_y", np.float64),
            ("background", np.intp),
        ],
    )
    latents["kind"] = kind
    latents["scale"] = rng.uniform(0.5, 1.0, size=n)
    latents["orientation"] = rng.uniform(0.0, 2.0 * np.pi, size=n)
    latents["pos_x"] = rng.uniform(0.0, 1.0, size=n)
    latents["pos_y"] = rng.uniform(0.0, 1.0, size=n)
    latents["background"] = background
    return latents


def make_pretraining_sprites(
    n_samples=24000, *, image_size=32, kinds=None, backgrounds=True, random_state=None
):
    """Sprites of many kinds, for pretraining a backbone without any shortcut.

    The stand-in for ImageNet pretraining: eight shape kinds (the three dSprites shapes
    plus triangle, cross, ring, star and L) with continuous scale in [0.5, 1], rotation
    in [0, 2 pi) and x- and y-position in [0, 1], all drawn independently of the kind,
    on a plain, striped, checkered or noisy grey background (also independent). Kinds
    and backgrounds are balanced (counts differ by at most one).

    Parameters
    ----------
    n_samples : int, default=24000
        Number of images.
    image_size : int, default=32
        Height and width in pixels (at least 8).
    kinds : sequence of str or None, default=None
        Kinds to draw, among ``SPRITE_KINDS``; ``None`` draws all eight.
    backgrounds : bool, default=True
        Draw textured backgrounds; ``False`` keeps every background plain (0.0).
    random_state : int, RandomState instance or None, default=None
        Seeds the latents and the textures.

    Returns
    -------
    data : Bunch
        Dictionary-like object with

        data : ndarray of shape (n_samples, 1, image_size, image_size), float32
            Sprite pixels 1.0 over a texture in [0, 0.5].
        target : ndarray of shape (n_samples,)
            Kind id, an index into ``target_names``.
        target_names : ndarray of str
            The kinds drawn.
        background : ndarray of shape (n_samples,)
            Background id, an index into ``background_names``.
        background_names : ndarray of shape (4,)
            ``["plain", "stripes", "checker", "noise"]``.
        latents : structured ndarray of shape (n_samples,)
            Fields ``kind`` (id in ``SPRITE_KINDS``), ``scale``, ``orientation``,
            ``pos_x``, ``pos_y``, ``background``.

    See Also
    --------
    midlogit.backbones.pretrained_sprite_net : a ConvNet pretrained on these sprites.

    Examples
    --------
    >>> from midlogit.datasets import make_pretraining_sprites
    >>> sprites = make_pretraining_sprites(16, random_state=0)
    >>> sprites.data.shape, sprites.data.dtype
    ((16, 1, 32, 32), dtype('float32'))
    >>> sprites.target_names.tolist()
    ['square', 'ellipse', 'heart', 'triangle', 'cross', 'ring', 'star', 'L']
    >>> sorted(set(sprites.target.tolist())) == list(range(8))
    True
    """
    n_samples = _check_n_samples(n_samples)
    image_size = _check_sprite_size(image_size)
    ids = np.arange(SPRITE_KINDS.size) if kinds is None else _kind_ids(kinds, "kinds")
    rng = check_random_state(random_state)
    target = _balanced_labels(n_samples, ids.size, rng)
    n_backgrounds = BACKGROUND_NAMES.size if backgrounds else 1
    background = _balanced_labels(n_samples, n_backgrounds, rng)
    latents = _free_latents(ids[target], background, rng)
    data = _sprites_on_textures(latents, image_size, rng)
    return Bunch(
        data=data,
        target=target,
        target_names=SPRITE_KINDS[ids],
        background=background,
        background_names=BACKGROUND_NAMES.copy(),
        latents=latents,
    )


# Waterbirds' group sizes (Sagawa et al., 2020): landbird on land, landbird on water,
# waterbird on land, waterbird on water.
WATERBIRDS_GROUP_COUNTS = {
    "train": (3498, 184, 56, 1057),
    "val": (467, 466, 133, 133),
    "test": (1, 1, 1, 1),
}
# Background kinds standing in for land and water (ids in BACKGROUND_NAMES).
_WATERBIRDS_BACKGROUNDS = (2, 1)


def _counts_in_proportion(n, proportions):
    """Integer counts summing to ``n`` in the given proportions (largest remainder)."""
    proportions = np.asarray(proportions, dtype=np.float64)
    exact = n * proportions / proportions.sum()
    counts = np.floor(exact).astype(np.intp)
    short = n - counts.sum()
    counts[np.argsort(counts - exact, kind="stable")[:short]] += 1
    return counts


def make_waterbirds_like(
    n_samples=None,
    *,
    split="train",
    image_size=32,
    kinds=("ellipse", "heart"),
    random_state=None,
):
    """A Waterbirds stand-in: a sprite class on a background kind that gives it away.

    The target is the foreground sprite's kind (``"landbird"`` is the first of
    ``kinds``, ``"waterbird"`` the second); the spurious attribute is the background:
    checkered ("land") or striped ("water"), with random frequency, phase and tilt.
    Scale, rotation and position are continuous and independent of everything else.
    The four groups follow Waterbirds' splits (Sagawa et al., 2020): ``"train"``
    3498 / 184 / 56 / 1057 (landbird on land, landbird on water, waterbird on land,
    waterbird on water), ``"val"`` 467 / 466 / 133 / 133 (background balanced within
    each class, the set DFR retrains on), ``"test"`` one quarter per group.

    Parameters
    ----------
    n_samples : int or None, default=None
        Number of images; ``None`` gives Waterbirds' split size (4795 train, 1199 val)
        and 4000 test images. Group counts keep the split's proportions.
    split : {"train", "val", "test"}, default="train"
        Which group proportions to draw.
    image_size : int, default=32
        Height and width in pixels.
    kinds : pair of str, default=("ellipse", "heart")
        The two foreground kinds, among ``SPRITE_KINDS``.
    random_state : int, RandomState instance or None, default=None
        Seeds the latents and the textures.

    Returns
    -------
    data : Bunch
        Dictionary-like object with ``data`` (n, 1, image_size, image_size) float32,
        ``target`` (0 landbird, 1 waterbird), ``spurious`` (0 land, 1 water),
        ``groups`` (``target * 2 + spurious``), ``group_names``
        (``"landbird@land"``, ...), ``target_names``, ``spurious_names``,
        ``from_biased_subset`` (whether the background agrees with the class) and
        ``latents`` (as in :func:`make_pretraining_sprites`).

    Examples
    --------
    >>> import numpy as np
    >>> from midlogit.datasets import make_waterbirds_like
    >>> train = make_waterbirds_like(random_state=0)
    >>> np.bincount(train.groups).tolist()
    [3498, 184, 56, 1057]
    >>> test = make_waterbirds_like(400, split="test", random_state=1)
    >>> np.bincount(test.groups).tolist()
    [100, 100, 100, 100]
    """
    if not isinstance(split, str) or split not in WATERBIRDS_GROUP_COUNTS:
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}.")
    proportions = WATERBIRDS_GROUP_COUNTS[split]
    if n_samples is None:
        n_samples = 4000 if split == "test" else int(sum(proportions))
    n_samples = _check_n_samples(n_samples)
    if isinstance(kinds, str) or len(kinds) != 2 or kinds[0] == kinds[1]:
        raise ValueError(f"kinds must be two different sprite kinds, got {kinds!r}.")
    ids = _kind_ids(kinds, "kinds")
    image_size = _check_sprite_size(image_size)
    rng = check_random_state(random_state)
    counts = _counts_in_proportion(n_samples, proportions)
    groups = rng.permutation(np.repeat(np.arange(4), counts))
    target, spurious = groups // 2, groups % 2
    background = np.asarray(_WATERBIRDS_BACKGROUNDS)[spurious]
    latents = _free_latents(ids[target], background, rng)
    data = _sprites_on_textures(latents, image_size, rng)
    target_names = np.array(["landbird", "waterbird"])
    spurious_names = np.array(["land", "water"])
    return Bunch(
        data=data,
        target=target,
        spurious=spurious,
        groups=groups,
        group_names=_group_names(target_names, spurious_names),
        target_names=target_names,
        spurious_names=spurious_names,
        from_biased_subset=target == spurious,
        latents=latents,
    )


# ------------------------------------------------------------------------------- digits


def make_colored_digits(n_samples=None, *, bias=0.9, n_classes=2, subset="all", random_state=None):
    """scikit-learn's 8 x 8 digits tinted with a colour that can give the label away.

    Like Coloured-MNIST, the strokes of each digit are painted in one colour of a
    palette (black stays black). In the biased subset the colour is the label's colour;
    in the control it is independent of the label (balanced within every class). The
    images come from :func:`sklearn.datasets.load_digits` (bundled, nothing is
    downloaded).

    Parameters
    ----------
    n_samples : int or None, default=None
        ``None`` uses every digit of ``subset`` once. Otherwise digits are drawn at
        random from ``subset``, without replacement while there are enough, with
        replacement beyond (the same image may then appear in two colours).
    bias : float in [0, 1], default=0.9
        Fraction of rows whose colour is the label's colour (exactly
        ``round(bias * n)``, spread over the classes in proportion). ``0.0`` gives
        unbiased data.
    n_classes : {2, 10}, default=2
        2: digit < 5 versus digit >= 5, coloured red and green. 10: the digit itself,
        ten colours.
    subset : {"all", "train", "test"}, default="all"
        Which of the 1797 digits to use: ``"train"`` the first 1198, ``"test"`` the last
        599 (a fixed contiguous split, so train and test never share an image,
        whatever ``random_state``).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws and colours.

    Returns
    -------
    data : Bunch
        Dictionary-like object with

        data : ndarray of shape (n, 3, 8, 8), float32
            RGB images in [0, 1].
        target : ndarray of shape (n,)
            Class label.
        spurious : ndarray of shape (n,)
            Colour id (the colour of class ``k`` is ``k``).
        groups : ndarray of shape (n,)
            ``target * n_classes + spurious``.
        group_names, target_names, spurious_names : ndarray of str
            E.g. ``"0-4@red"``; ``["0-4", "5-9"]``; ``["red", "green"]``.
        palette : ndarray of shape (n_classes, 3), float32
            RGB of every colour.
        digit : ndarray of shape (n,)
            The digit (0-9) shown.
        image_index : ndarray of shape (n,)
            Row of the image in ``load_digits()``.
        from_biased_subset : ndarray of bool, shape (n,)
            Whether the row was drawn from the shortcut-aligned subset.

    Examples
    --------
    >>> from midlogit.datasets import make_colored_digits
    >>> train = make_colored_digits(bias=0.9, subset="train", random_state=0)
    >>> train.data.shape, train.data.dtype
    ((1198, 3, 8, 8), dtype('float32'))
    >>> test = make_colored_digits(bias=0.0, subset="test", random_state=0)
    >>> set(train.image_index.tolist()) & set(test.image_index.tolist())
    set()
    """
    from sklearn.datasets import load_digits

    if n_samples is not None:
        n_samples = _check_n_samples(n_samples)
    bias = _check_fraction(bias, "bias")
    if n_classes not in (2, 10) or isinstance(n_classes, bool):
        raise ValueError(
            f"n_classes must be 2 (digit < 5 versus >= 5) or 10 (the digit), got {n_classes!r}."
        )
    subsets = {
        "all": slice(None),
        "train": slice(0, _DIGITS_TRAIN_ROWS),
        "test": slice(_DIGITS_TRAIN_ROWS, None),
    }
    if not isinstance(subset, str) or subset not in subsets:
        raise ValueError(f"subset must be 'all', 'train' or 'test', got {subset!r}.")
    rng = check_random_state(random_state)

    digits = load_digits()
    available = np.arange(digits.target.size)[subsets[subset]]
    if n_samples is None:
        rows = rng.permutation(available)
    else:
        rows = rng.choice(available, size=n_samples, replace=n_samples > available.size)
    digit = digits.target[rows]
    target = digit if n_classes == 10 else (digit >= 5).astype(digit.dtype)
    colour, from_biased = _shortcut(target, n_classes, bias, rng)

    names, rgb = zip(*(_COLOURS_2 if n_classes == 2 else _COLOURS_10))
    palette = np.array(rgb, dtype=np.float32)
    grey = digits.images[rows].astype(np.float32) / 16.0
    images = grey[:, None, :, :] * palette[colour][:, :, None, None]
    target_names = (
        np.array(["0-4", "5-9"]) if n_classes == 2 else np.array([str(d) for d in range(10)])
    )
    spurious_names = np.array(names)
    return Bunch(
        data=images,
        target=target,
        spurious=colour,
        groups=target * n_classes + colour,
        group_names=_group_names(target_names, spurious_names),
        target_names=target_names,
        spurious_names=spurious_names,
        palette=palette,
        digit=digit,
        image_index=rows,
        from_biased_subset=from_biased,
    )


# ---------------------------------------------------------------------------- gaussians


def _simplex_means(n_classes, n_features, strength):
    """Vertices of a regular simplex, ``2 * strength`` apart, spread over all columns.

    The simplex is embedded with the first ``n_classes`` orthonormal cosine (DCT-II)
    vectors, so the means are fixed and every column carries part of the signal.
    """
    vertices = np.eye(n_classes) - 1.0 / n_classes
    i = np.arange(n_features)[:, None] + 0.5
    basis = np.cos(np.pi * i * np.arange(n_classes)[None, :] / n_features)
    basis /= np.linalg.norm(basis, axis=0)
    return strength * np.sqrt(2.0) * vertices @ basis.T


def make_spurious_gaussians(
    n_samples=2000,
    *,
    n_core=8,
    n_spurious=8,
    bias=0.9,
    core_strength=1.0,
    spurious_strength=3.0,
    n_classes=2,
    random_state=None,
):
    """A tabular task with a weak core block and a strong spurious block.

    The core block is Gaussian around a class mean, the spurious block around the mean
    of a spurious attribute. Means are fixed vertices of a regular simplex
    (``+-strength`` along one direction for two classes) and the noise is standard
    normal, so with
    two classes the core block alone is right with probability ``Phi(core_strength)``
    (0.84 by default) and the spurious block predicts its attribute with probability
    ``Phi(spurious_strength)`` (0.999). The attribute equals the class in the biased
    subset and is independent of it elsewhere. A model trained on biased data leans on
    the spurious block and fails on the groups where the two disagree.

    Parameters
    ----------
    n_samples : int, default=2000
        Number of rows. Classes are balanced (counts differ by at most one).
    n_core, n_spurious : int, default=8
        Columns of the core and of the spurious block (each at least ``n_classes``).
    bias : float in [0, 1], default=0.9
        Fraction of rows from the biased subset (exactly ``round(bias * n_samples)``).
        ``0.0`` gives unbiased test data.
    core_strength, spurious_strength : float, default=1.0 and 3.0
        Distance of each class mean (attribute mean) from the centre, in noise standard
        deviations; half the distance between two means.
    n_classes : int, default=2
        Number of classes, and of values of the spurious attribute.
    random_state : int, RandomState instance or None, default=None
        Seeds the labels, the spurious attribute and the noise. The means do not depend
        on it, so a training and a test set drawn with different seeds (and biases)
        come from the same class-conditional distributions.

    Returns
    -------
    data : Bunch
        Dictionary-like object with

        data : ndarray of shape (n_samples, n_core + n_spurious), float32
            Core columns first, then spurious columns.
        target : ndarray of shape (n_samples,)
            Class label of each row.
        spurious : ndarray of shape (n_samples,)
            Spurious attribute of each row.
        groups : ndarray of shape (n_samples,)
            ``target * n_classes + spurious``.
        group_names, target_names, spurious_names, feature_names : ndarray of str
            E.g. ``"y0@a1"``, ``"core_0"``, ``"spurious_0"``.
        from_biased_subset : ndarray of bool, shape (n_samples,)
            Whether the row was drawn from the shortcut-aligned subset.

    Examples
    --------
    >>> from midlogit.datasets import make_spurious_gaussians
    >>> data = make_spurious_gaussians(1000, bias=0.0, random_state=0)
    >>> data.data.shape, data.data.dtype
    ((1000, 16), dtype('float32'))
    >>> import numpy as np
    >>> np.bincount(data.groups).tolist()
    [250, 250, 250, 250]
    """
    n_samples = _check_n_samples(n_samples)
    bias = _check_fraction(bias, "bias")
    if (
        not isinstance(n_classes, numbers.Integral)
        or isinstance(n_classes, bool)
        or (n_classes < 2)
    ):
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}.")
    for name, value in (("n_core", n_core), ("n_spurious", n_spurious)):
        if (
            not isinstance(value, numbers.Integral)
            or isinstance(value, bool)
            or (value < n_classes)
        ):
            raise ValueError(
                f"{name} must be an integer >= n_classes ({n_classes}), got {value!r}."
            )
    for name, value in (
        ("core_strength", core_strength),
        ("spurious_strength", spurious_strength),
    ):
        if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    rng = check_random_state(random_state)

    core_means = _simplex_means(n_classes, n_core, core_strength)
    spurious_means = _simplex_means(n_classes, n_spurious, spurious_strength)
    target = _balanced_labels(n_samples, n_classes, rng)
    spurious, from_biased = _shortcut(target, n_classes, bias, rng)
    X = rng.standard_normal((n_samples, n_core + n_spurious))
    X[:, :n_core] += core_means[target]
    X[:, n_core:] += spurious_means[spurious]

    target_names = np.array([f"y{k}" for k in range(n_classes)])
    spurious_names = np.array([f"a{k}" for k in range(n_classes)])
    return Bunch(
        data=X.astype(np.float32),
        target=target,
        spurious=spurious,
        groups=target * n_classes + spurious,
        group_names=_group_names(target_names, spurious_names),
        target_names=target_names,
        spurious_names=spurious_names,
        feature_names=np.array(
            [f"core_{i}" for i in range(n_core)] + [f"spurious_{i}" for i in range(n_spurious)]
        ),
        from_biased_subset=from_biased,
    )


# ------------------------------------------------------------------------------ loaders


def _import_pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:  # pragma: no cover - Pillow is installed in the dev setup
        raise ImportError("Loading images needs Pillow: pip install 'midlogit[data]'.") from exc
    return Image, ImageOps


class LazyImages:
    """Image files read on demand, indexed like a float32 array (n, 3, height, width).

    Indexing with an integer gives one image of shape (3, height, width); a slice, an
    integer array or a boolean mask gives a stacked array. Images are converted to RGB,
    resized to cover ``image_size`` keeping their aspect ratio, centre-cropped, and scaled
    to [0, 1] (normalise them as your backbone expects). ``np.asarray`` reads them all.

    Parameters
    ----------
    filenames : sequence of str or Path
        Image paths.
    image_size : int, (height, width) or None, default=(224, 224)
        Output size; ``None`` keeps the files' own size, which must then be the same
        for every image read together.
    root : str, Path or None, default=None
        When given, an image is read only if its real location (symlinks followed)
        lies inside this folder; :func:`load_waterbirds` and :func:`load_celeba` pass
        their ``root``. Anything else raises a ValueError naming the file.

    Attributes
    ----------
    filenames : ndarray of str
    shape : tuple
        ``(n_images, 3, height, width)``; ``height`` and ``width`` are ``None`` when
        ``image_size`` is ``None``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from PIL import Image
    >>> from midlogit.datasets import LazyImages
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "red.png"
    >>> Image.new("RGB", (40, 20), (255, 0, 0)).save(path)
    >>> images = LazyImages([path, path], image_size=16)
    >>> len(images), images.shape
    (2, (2, 3, 16, 16))
    >>> batch = images[[0, 1]]
    >>> batch.shape, float(batch[:, 0].mean()), float(batch[:, 1].mean())
    ((2, 3, 16, 16), 1.0, 0.0)
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, filenames, image_size=(224, 224), root=None):
        self.filenames = np.asarray([str(f) for f in filenames], dtype=str)
        self.image_size = _check_image_size(image_size, allow_none=True)
        self.root = None if root is None else os.path.realpath(root)

    def __len__(self):
        return self.filenames.size

    @property
    def shape(self):
        height, width = self.image_size if self.image_size is not None else (None, None)
        return (len(self), 3, height, width)

    def __repr__(self):
        return f"LazyImages(n_images={len(self)}, image_size={self.image_size})"

    def _read(self, path):
        Image, ImageOps = _import_pillow()
        if not Path(path).is_file():
            raise FileNotFoundError(f"Image file not found: {path}")
        if self.root is not None:
            _check_inside(path, self.root)
        with Image.open(path) as image:
            image = image.convert("RGB")
            if self.image_size is not None:
                height, width = self.image_size
                image = ImageOps.fit(image, (width, height), method=Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
        return pixels.transpose(2, 0, 1) / np.float32(255.0)

    def __getitem__(self, key):
        if isinstance(key, numbers.Integral):
            return self._read(self.filenames[key])
        paths = self.filenames[key]
        if paths.ndim != 1:
            raise IndexError("LazyImages takes an integer, a slice, or a 1-D index array.")
        images = [self._read(p) for p in paths]
        if not images:
            height, width = self.image_size or (0, 0)
            return np.empty((0, 3, height, width), dtype=np.float32)
        sizes = {im.shape for im in images}
        if len(sizes) > 1:
            raise ValueError(
                f"The images have different sizes ({sorted(sizes)[:3]}); pass "
                "image_size=(height, width) to resize them."
            )
        return np.stack(images)

    def __array__(self, dtype=None, copy=None):
        images = self[:]
        return images if dtype is None else images.astype(dtype)


def _resolve_split(split):
    if split is None:
        return None
    if isinstance(split, str) and split in _SPLITS:
        return _SPLITS[split]
    if isinstance(split, numbers.Integral) and not isinstance(split, bool) and split in (0, 1, 2):
        return int(split)
    raise ValueError(f"split must be None, 'train', 'val', 'test' or 0, 1, 2, got {split!r}.")


def _require_file(path, what, root=None):
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} does not exist.")
    if root is not None:
        _check_inside(path, root)
    return path


def _check_inside(path, root):
    """Refuse a file whose real location (symlinks followed) is outside ``root``."""
    real = os.path.realpath(path)
    if os.path.commonpath([real, root]) != root:
        raise ValueError(
            f"{path} resolves to {real}, outside the dataset folder {root}; the loaders "
            "read only inside root (copy the file into it, or pass the folder that holds "
            "it as root)."
        )


def _check_relative_names(names, path, lines):
    """Refuse file names that are absolute or climb out with ``..`` (untrusted lists)."""
    for name, line in zip(names, lines):
        parts = name.replace("\\", "/").split("/")
        if (
            not name
            or "\x00" in name
            or name.startswith(("/", "\\"))
            or name[1:2] == ":"  # a Windows drive, C:
            or ".." in parts
        ):
            raise ValueError(
                f"{path}, line {line}: the file name {str(name)!r} must be a relative path "
                "inside the dataset folder (not absolute, no '..')."
            )


def _read_lines(path):
    """The lines of a UTF-8 text file (a byte-order mark is accepted) and their numbers.

    Anything else (Latin-1 bytes, a binary file) is a ValueError naming the line.
    """
    data = Path(path).read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 (the file looks "
            "Latin-1 or binary); save it as UTF-8."
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ValueError(f"{path}, line {line}: a NUL byte; this is not a text file.")
    return text


def _int_column(cells, lines, name, path):
    """``cells`` (strings) as int64; a ValueError naming the first line that is not one."""
    try:
        return cells.astype(np.int64)
    except (ValueError, OverflowError):
        pass
    for value, line in zip(cells, lines):
        try:
            number = int(value)
        except ValueError:
            raise ValueError(
                f"Column {name!r} of {path}, line {line}, must hold integers, got {value!r}."
            ) from None
        if not -(2**63) <= number < 2**63:
            raise ValueError(
                f"Column {name!r} of {path}, line {line}: {value} is out of the integer range."
            )
    raise AssertionError("unreachable: numpy and int() disagree")  # pragma: no cover


def _check_binary_column(values, name, path, allowed=(0, 1), lines=None):
    wrong = ~np.isin(values, allowed)
    if wrong.any():
        bad = np.unique(values[wrong])
        where = "" if lines is None else f" (first at line {lines[np.argmax(wrong)]})"
        raise ValueError(
            f"Column {name!r} of {path} must hold {list(allowed)}, found "
            f"{bad[:5].tolist()}{where}."
        )


def _labelled_bunch(
    root,
    filenames,
    target,
    spurious,
    split,
    split_id,
    image_size,
    load_images,
    target_names,
    spurious_names,
    **extra,
):
    rows = np.arange(target.size) if split_id is None else np.flatnonzero(split == split_id)
    if rows.size == 0:
        raise ValueError(
            f"No rows of {root} belong to split {split_id}; pass split=None to load all."
        )
    filenames = filenames[rows]
    images = LazyImages(filenames, image_size=image_size, root=root)
    if load_images:
        images = images[:]
    target, spurious = target[rows], spurious[rows]
    return Bunch(
        filenames=filenames,
        images=images,
        target=target,
        spurious=spurious,
        groups=target * 2 + spurious,
        split=split[rows],
        group_names=_group_names(target_names, spurious_names),
        target_names=target_names,
        spurious_names=spurious_names,
        **{key: value[rows] for key, value in extra.items()},
    )


def load_waterbirds(root, *, split=None, image_size=(224, 224), load_images=False):
    """Load Waterbirds (Sagawa et al., 2020) from a folder the user already has.

    Parameters
    ----------
    root : str or Path
        Folder holding ``metadata.csv`` (columns ``img_id, img_filename, y, split,
        place, place_filename``; only ``img_filename, y, split, place`` are needed) and
        the images at the relative paths of ``img_filename``.
    split : {None, "train", "val", "test", 0, 1, 2}, default=None
        Keep one split (0/1/2 = train/val/test); ``None`` keeps all rows.
    image_size : int, (height, width) or None, default=(224, 224)
        Size of the loaded images (resize to cover, then centre crop).
    load_images : bool, default=False
        ``False``: ``images`` is a :class:`LazyImages` that reads files when indexed
        (the full set is large). ``True``: read them all now into a float32 array.

    Returns
    -------
    data : Bunch
        Dictionary-like object with

        filenames : ndarray of str
            Absolute image paths.
        images : LazyImages or ndarray of shape (n, 3, height, width), float32
            The images, read lazily unless ``load_images=True``.
        target : ndarray of int
            0 landbird, 1 waterbird.
        spurious : ndarray of int
            Background: 0 land, 1 water.
        groups : ndarray of int
            ``target * 2 + spurious``.
        split : ndarray of int
            0 train, 1 val, 2 test.
        group_names, target_names, spurious_names : ndarray of str
            ``"landbird@land"``, ...; ``["landbird", "waterbird"]``; ``["land", "water"]``.

    Raises
    ------
    FileNotFoundError
        When ``metadata.csv`` (or, on reading, an image) is missing.
    ValueError
        When the file is not UTF-8 text (a byte-order mark is fine), a required column
        is missing or holds unexpected values, a row has the wrong number of fields,
        or an image name is absolute or holds ``..``; the message names the file and
        line. Reading an image whose real location (symlinks followed) is outside
        ``root`` raises one too.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from midlogit.datasets import load_waterbirds
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "metadata.csv").write_text(
    ...     "img_id,img_filename,y,split,place,place_filename\\n"
    ...     "1,001.Albatross/a.jpg,1,0,0,x.jpg\\n"
    ...     "2,002.Sparrow/b.jpg,0,2,0,y.jpg\\n")
    >>> birds = load_waterbirds(root, split="train")
    >>> birds.target.tolist(), birds.spurious.tolist(), birds.group_names[birds.groups].tolist()
    ([1], [0], ['waterbird@land'])
    >>> birds.filenames[0].endswith("001.Albatross/a.jpg")
    True
    """
    root = Path(root).expanduser().resolve()
    split_id = _resolve_split(split)
    path = _require_file(root / "metadata.csv", "Waterbirds metadata.csv", root=str(root))
    reader = csv.reader(io.StringIO(_read_lines(path), newline=""))
    try:
        table = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise ValueError(f"{path}, line {reader.line_num}: not valid CSV ({exc}).") from None
    if not table:
        raise ValueError(f"{path} is empty; it needs a header line and one row per image.")
    header = [name.strip() for name in table[0][1]]
    required = ["img_filename", "y", "split", "place"]
    missing = [name for name in required if name not in header]
    if missing:
        raise ValueError(
            f"{path} lacks the column(s) {missing}; found {header}. Waterbirds' metadata "
            f"needs {required}."
        )
    lines = np.array([line for line, _ in table[1:]])
    rows = [row for _, row in table[1:]]
    ragged = [int(line) for line, row in zip(lines, rows) if len(row) != len(header)]
    if ragged:
        raise ValueError(
            f"{path}: line(s) {ragged[:5]} do not have {len(header)} fields like the header."
        )
    if not rows:
        raise ValueError(f"{path} has a header but no rows.")
    cells = np.array(rows, dtype=str).reshape(len(rows), len(header))
    columns = {
        name: _int_column(cells[:, header.index(name)], lines, name, path)
        for name in ("y", "split", "place")
    }
    _check_binary_column(columns["y"], "y", path, lines=lines)
    _check_binary_column(columns["place"], "place", path, lines=lines)
    _check_binary_column(columns["split"], "split", path, allowed=(0, 1, 2), lines=lines)
    names = cells[:, header.index("img_filename")]
    _check_relative_names(names, path, lines)
    prefix = str(root) + os.sep
    filenames = np.array([prefix + name for name in names], dtype=str)
    return _labelled_bunch(
        root,
        filenames,
        columns["y"],
        columns["place"],
        columns["split"],
        split_id,
        image_size,
        load_images,
        target_names=np.array(["landbird", "waterbird"]),
        spurious_names=np.array(["land", "water"]),
    )


def _numbered_lines(path):
    """Non-blank lines of a text file with their 1-based line numbers."""
    lines = _read_lines(path).split("\n")
    kept = [(i, line) for i, line in enumerate(lines, 1) if line.strip()]
    return [i for i, _ in kept], [line for _, line in kept]


def _check_field_counts(rows, numbers, expected, path, what):
    counts = np.fromiter((len(row.split()) for row in rows), dtype=np.intp, count=len(rows))
    wrong = np.flatnonzero(counts != expected)
    if wrong.size:
        i = wrong[0]
        raise ValueError(
            f"{path}, line {numbers[i]}: {counts[i]} fields, but every row must hold {what} "
            f"({wrong.size} such line(s))."
        )


def _read_celeba_attributes(path):
    numbers, lines = _numbered_lines(path)
    if len(lines) < 2:
        raise ValueError(
            f"{path} is empty or too short: it must start with the image count and the "
            "attribute names."
        )
    try:
        count = int(lines[0].split()[0])
    except ValueError:
        raise ValueError(
            f"{path}, line {numbers[0]}: the first line must be the image count, got "
            f"{lines[0][:40]!r}."
        ) from None
    names = np.array(lines[1].split())
    if np.unique(names).size != names.size:
        raise ValueError(f"{path}, line {numbers[1]}: an attribute name is repeated.")
    rows, numbers = lines[2:], numbers[2:]
    if len(rows) != count:
        raise ValueError(
            f"{path} announces {count} images on its first line but lists {len(rows)}."
        )
    if not rows:
        return np.array([], dtype=str), names, np.zeros((0, names.size), dtype=np.int8)
    _check_field_counts(
        rows, numbers, names.size + 1, path, f"a file name and {names.size} values -1 or 1"
    )
    files = np.loadtxt(rows, usecols=0, dtype=str, ndmin=1, comments=None)
    try:
        values = np.loadtxt(
            rows, usecols=range(1, names.size + 1), dtype=np.int8, ndmin=2, comments=None
        )
    except ValueError:
        values = None
    if values is None or (np.abs(values) != 1).any():
        for row, line in zip(rows, numbers):
            bad = [v for v in row.split()[1:] if v.lstrip("+-") != "1"]
            if bad:
                raise ValueError(
                    f"{path}, line {line}: attribute value {bad[0]!r}; the attribute values "
                    "must be -1 or 1."
                )
    _check_relative_names(files, path, numbers)
    return files, names, (values > 0).astype(np.int8)


def _read_celeba_partition(path):
    numbers, rows = _numbered_lines(path)
    if not rows:
        raise ValueError(f"{path} is empty; every line must be 'filename split'.")
    _check_field_counts(rows, numbers, 2, path, "'filename split'")
    part = np.array(" ".join(rows).split()).reshape(-1, 2)
    split = _int_column(part[:, 1], numbers, "split", path)
    _check_binary_column(split, "split", path, allowed=(0, 1, 2), lines=numbers)
    return part[:, 0], split


def load_celeba(
    root,
    *,
    target="Blond_Hair",
    spurious="Male",
    split=None,
    image_size=(224, 224),
    load_images=False,
):
    """Load CelebA (Liu et al., 2015) from a folder the user already has.

    Parameters
    ----------
    root : str or Path
        Folder holding ``list_attr_celeba.txt`` (image count, the 40 attribute names,
        then ``filename v1 ... v40`` with values -1/1), ``list_eval_partition.txt``
        (``filename split`` with 0/1/2) and the images in ``img_align_celeba/``.
    target, spurious : str, default="Blond_Hair" and "Male"
        Attribute names of the label and of the spurious attribute (different).
    split : {None, "train", "val", "test", 0, 1, 2}, default=None
        Keep one split; ``None`` keeps all rows.
    image_size : int, (height, width) or None, default=(224, 224)
        Size of the loaded images (resize to cover, then centre crop); ``None`` keeps
        the aligned images' 218 x 178.
    load_images : bool, default=False
        ``False``: ``images`` is a :class:`LazyImages`; ``True``: read them all now.

    Returns
    -------
    data : Bunch
        The fields of :func:`load_waterbirds` (``target`` and ``spurious`` are 1 where
        the attribute is present), plus

        attributes : ndarray of shape (n, 40), int8
            Every attribute as 0/1, a ready concept matrix for
            :class:`midlogit.invert.ConceptLabeler`.
        attribute_names : ndarray of shape (40,)
            The 40 attribute names, in column order.

    Raises
    ------
    FileNotFoundError
        When a list file (or, on reading, an image) is missing.
    ValueError
        When an attribute name is unknown (the message lists the available ones) or a
        file is malformed (not UTF-8, a row with the wrong number of fields, a value
        other than -1/1 or a split other than 0/1/2, an image name that is absolute
        or holds ``..``: the message names the file and line). Images are read only
        inside ``root``, as for :func:`load_waterbirds`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from midlogit.datasets import load_celeba
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "list_attr_celeba.txt").write_text(
    ...     "2\\nBlond_Hair Male Smiling\\n"
    ...     "000001.jpg  1 -1  1\\n000002.jpg -1  1 -1\\n")
    >>> _ = (root / "list_eval_partition.txt").write_text("000001.jpg 0\\n000002.jpg 2\\n")
    >>> faces = load_celeba(root)
    >>> faces.target.tolist(), faces.spurious.tolist(), faces.split.tolist()
    ([1, 0], [0, 1], [0, 2])
    >>> faces.group_names[faces.groups].tolist()
    ['Blond_Hair@not Male', 'not Blond_Hair@Male']
    """
    root = Path(root).expanduser().resolve()
    split_id = _resolve_split(split)
    attr_path = _require_file(
        root / "list_attr_celeba.txt", "CelebA list_attr_celeba.txt", root=str(root)
    )
    part_path = _require_file(
        root / "list_eval_partition.txt", "CelebA list_eval_partition.txt", root=str(root)
    )
    files, names, attributes = _read_celeba_attributes(attr_path)
    for param, name in (("target", target), ("spurious", spurious)):
        if name not in names:
            raise ValueError(
                f"{param}={name!r} is not an attribute of {attr_path.name}; available: "
                f"{', '.join(names)}."
            )
    if target == spurious:
        raise ValueError(f"target and spurious must be different attributes, both are {target!r}.")

    part_files, part_split = _read_celeba_partition(part_path)
    order = np.argsort(part_files)
    found = np.searchsorted(part_files[order], files)
    found = np.minimum(found, part_files.size - 1)
    matched = part_files[order][found] == files
    if not matched.all():
        raise ValueError(
            f"{part_path} has no split for {files[~matched][:5].tolist()} "
            f"({int((~matched).sum())} images of {attr_path.name})."
        )
    split_values = part_split[order][found]

    column = {name: i for i, name in enumerate(names)}
    prefix = str(root / "img_align_celeba") + os.sep
    filenames = np.array([prefix + name for name in files], dtype=str)
    data = _labelled_bunch(
        root,
        filenames,
        attributes[:, column[target]].astype(np.int64),
        attributes[:, column[spurious]].astype(np.int64),
        split_values,
        split_id,
        image_size,
        load_images,
        target_names=np.array([f"not {target}", target]),
        spurious_names=np.array([f"not {spurious}", spurious]),
        attributes=attributes,
    )
    data.attribute_names = names
    return data


# --------------------------------------------------------------------------- embeddings

_EMBEDDING_KEYS = ("embeddings", "y", "groups", "logits")


def save_embeddings(path, embeddings, *, y=None, groups=None, logits=None, **extra):
    """Save precomputed features (and their labels) to an ``.npz`` file.

    Arrays are stored as they are (dtype and values), so :func:`load_embeddings` gives
    them back exactly. Object arrays are refused so that loading never needs pickle.

    Parameters
    ----------
    path : str or Path
        Target file; ``.npz`` is appended when missing.
    embeddings : array-like of shape (n_samples, n_features)
        Penultimate-layer features.
    y, groups : array-like of shape (n_samples,), optional
        Labels and group ids.
    logits : array-like of shape (n_samples,) or (n_samples, n_classes), optional
        The backbone's logits.
    **extra : array-like or scalar
        Anything else worth keeping with them (class names, split ids, a model name).

    Returns
    -------
    path : Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from midlogit.datasets import save_embeddings, load_embeddings
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "features"
    >>> E = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> save_embeddings(path, E, y=[0, 1, 1], model="resnet50").name
    'features.npz'
    >>> saved = load_embeddings(path.with_suffix(".npz"))
    >>> saved.embeddings.dtype, saved.y.tolist(), saved.groups, saved.model
    (dtype('float32'), [0, 1, 1], None, 'resnet50')
    """
    arrays = {"embeddings": np.asarray(embeddings)}
    if arrays["embeddings"].ndim != 2:
        raise ValueError(
            "embeddings must be a 2-D array (n_samples, n_features), got shape "
            f"{arrays['embeddings'].shape}; reshape it first."
        )
    n = arrays["embeddings"].shape[0]
    optional = (("y", y, (1,)), ("groups", groups, (1,)), ("logits", logits, (1, 2)))
    for name, value, ndims in optional:
        if value is None:
            continue
        value = np.asarray(value)
        if value.ndim not in ndims or value.shape[0] != n:
            raise ValueError(
                f"{name} must have {n} rows like embeddings (and {' or '.join(map(str, ndims))}"
                f" dimension(s)), got shape {value.shape}."
            )
        arrays[name] = value
    for name, value in extra.items():
        arrays[name] = np.asarray(value)
    for name, value in arrays.items():
        if value.dtype == object:
            raise ValueError(
                f"{name} is an object array, which .npz stores only through pickle; "
                "convert it to numbers or strings (e.g. np.asarray(x, dtype=str))."
            )
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez(path, **arrays)
    return path


def load_embeddings(path):
    """Load features saved by :func:`save_embeddings`.

    Parameters
    ----------
    path : str or Path
        An ``.npz`` file holding at least ``embeddings``.

    Returns
    -------
    data : Bunch
        ``embeddings``, ``y``, ``groups`` and ``logits`` (``None`` when not saved) and
        every extra array saved with them; 0-d extras come back as Python scalars.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not an ``.npz`` archive of plain arrays (a ``.npy`` or a text
        file, a truncated archive, an array that needs pickle) or holds no
        ``embeddings``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from midlogit.datasets import save_embeddings, load_embeddings
    >>> path = save_embeddings(pathlib.Path(tempfile.mkdtemp()) / "e.npz", np.eye(2))
    >>> load_embeddings(path).embeddings.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    path = _require_file(Path(path), "Embeddings file")
    hint = "write it with midlogit.datasets.save_embeddings"
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic == b"\x93NUMPY":
        raise ValueError(
            f"{path} is a .npy file (one bare array), not the .npz archive load_embeddings "
            f"reads; {hint}, or read it with np.load."
        )
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz file (not a zip archive); {hint}.")
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: cannot read as an .npz archive of arrays ({exc}).") from None
    if "embeddings" not in arrays:
        raise ValueError(
            f"{path} holds no 'embeddings' array (found {sorted(arrays)}); write it with "
            "midlogit.datasets.save_embeddings."
        )
    data = Bunch(**{name: None for name in _EMBEDDING_KEYS})
    for name, value in arrays.items():
        data[name] = value.item() if value.ndim == 0 and name not in _EMBEDDING_KEYS else value
    return data
