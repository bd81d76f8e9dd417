"""Sprites on textured backgrounds: the pretraining set and the
Waterbirds-like task.
"""

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._sampling import _balanced_labels, _group_names
from ._sprites import _render
from ._validation import _check_n_samples, _check_sprite_size

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
