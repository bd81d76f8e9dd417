"""Image data sets on disk: lazily read images, Waterbirds and CelebA."""

import numbers
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._files import (
    _check_binary_column,
    _check_field_counts,
    _check_inside,
    _check_relative_names,
    _csv_rows,
    _int_column,
    _numbered_lines,
    _require_file,
)
from ._sampling import _group_names
from ._validation import _check_image_size

_SPLITS = {"train": 0, "val": 1, "test": 2}


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

    def __init__(self, filenames, *, image_size=(224, 224), root=None):
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
    table = _csv_rows(path)
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
