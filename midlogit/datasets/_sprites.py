"""dSprites: the latent grid, the renderer, and the plain and biased sets."""

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._sampling import _balanced_labels, _group_names, _shortcut
from ._validation import _check_fraction, _check_n_samples, _check_sprite_size

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
