"""Embedding files: arrays saved and loaded with their labels and groups."""

import zipfile
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._files import _require_file

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
