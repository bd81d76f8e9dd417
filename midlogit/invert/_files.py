"""INVERT on files: activations and concepts read from CSV, a report written."""

import os

import numpy as np

from ..datasets import _csv_rows
from ._labeler import ConceptLabeler
from ._validation import _all_finite

# --------------------------------------------------------------------------- files

_TRUE = {"1", "true", "t", "yes", "1.0"}
_FALSE = {"0", "false", "f", "no", "0.0"}


def _load_activations(path):
    path = os.fspath(path)
    try:
        # A .npy file is memory-mapped: the labeler reads it block by block.
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read as a .npz file of arrays ({exc}).") from exc
    if not hasattr(data, "files"):
        A, unit_names, ids = data, None, None
    else:
        with data:
            arrays = {k: data[k] for k in data.files}
        unit_names = arrays.pop("unit_names", None)
        ids = arrays.pop("ids", None)
        if "activations" in arrays:
            A = arrays["activations"]
        elif len(arrays) == 1:
            (A,) = arrays.values()
        else:
            raise ValueError(
                f"{path}: found arrays {sorted(arrays)}; name the activations "
                "'activations' (optional extras: 'unit_names', 'ids')."
            )
    A = np.asarray(A)  # a memmap stays one underneath: no copy
    if A.dtype.kind not in "biuf" or A.ndim not in (1, 2):
        raise ValueError(
            f"{path}: activations must be a numeric array of shape (n,) or (n, units), got "
            f"dtype {A.dtype} and shape {A.shape}."
        )
    A = A.reshape(len(A), -1)
    if not _all_finite(A):
        bad = np.flatnonzero(~np.isfinite(A).all(axis=1))
        raise ValueError(
            f"{path}: activations contain NaN or infinite values (rows {bad[:5].tolist()}"
            f"{'...' if bad.size > 5 else ''})."
        )
    if unit_names is not None:
        unit_names = [str(u) for u in np.asarray(unit_names).ravel()]
        if len(unit_names) != A.shape[1]:
            raise ValueError(
                f"{path}: 'unit_names' has {len(unit_names)} names for {A.shape[1]} units."
            )
    if ids is not None:
        ids = [str(i) for i in np.asarray(ids).ravel()]
        if len(ids) != A.shape[0]:
            raise ValueError(f"{path}: 'ids' has {len(ids)} entries for {A.shape[0]} rows.")
    return A, unit_names, ids


def _load_concepts(path, id_column="id"):
    path = os.fspath(path)
    try:
        numbered = _csv_rows(path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read as a CSV file ({exc}).") from exc
    if not numbered:
        raise ValueError(f"{path}: the file is empty; expected a header row of concept names.")
    header = [h.strip() for h in numbered[0][1]]
    body = [r for _, r in numbered[1:]]
    if not body:
        raise ValueError(f"{path}: the file has a header but no data rows.")
    lines = [line for line, _ in numbered[1:]]
    for line, r in zip(lines, body):
        if len(r) != len(header):
            raise ValueError(
                f"{path}: line {line} has {len(r)} fields but the header has {len(header)}."
            )
    table = np.array(body, dtype=str)
    ids = None
    lower = [h.lower() for h in header]
    if id_column is not None and id_column.lower() in lower:
        j = lower.index(id_column.lower())
        ids = [s.strip() for s in table[:, j]]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{path}: column {header[j]!r} has repeated ids.")
        table = np.delete(table, j, axis=1)
        header = header[:j] + header[j + 1 :]
    if not header:
        raise ValueError(f"{path}: no concept columns besides the id column.")
    if any(h == "" for h in header):
        raise ValueError(f"{path}: a concept column has an empty name in the header.")
    values = np.char.lower(np.char.strip(table))
    true = np.isin(values, list(_TRUE))
    bad = ~true & ~np.isin(values, list(_FALSE))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: column {header[j]!r}, line {lines[i]}: value {str(table[i, j])!r} is not "
            "0/1 or true/false."
        )
    return true, header, ids


def label_files(
    activations_path,
    concepts_path,
    out=None,
    *,
    spurious=None,
    id_column="id",
    **labeler_params,
):
    """Label units from files and return (and optionally write) a markdown report.

    Parameters
    ----------
    activations_path : str or path-like
        A ``.npz`` (or ``.npy``) file. The activations are the array named
        ``activations``, or the only array; shape (n_samples,) for one unit or
        (n_samples, n_units). A ``.npy`` file is memory-mapped and read a block of
        units at a time, so a layer larger than memory can be labelled. Optional arrays
        (``.npz``): ``unit_names`` (one per unit) and ``ids`` (one per sample, matched
        against the concept file's id column).
    concepts_path : str or path-like
        A CSV file with a header row of concept names and one row per sample of
        0/1 or true/false values (any case). A column named ``id_column`` holds sample
        ids: with ``ids`` in the activations file the rows are matched by id, otherwise
        they must be in the same order.
    out : str or path-like, optional
        Where to write the report.
    spurious : sequence of str, optional
        Concept names to flag when a unit's best explanation uses one.
    id_column : str or None, default="id"
        Name of the id column (case-insensitive); ``None`` reads every column as a
        concept.
    **labeler_params
        Passed to :class:`ConceptLabeler` (``max_length``, ``beam_size``,
        ``min_fraction``, ``max_fraction``, ``mode``, ``activation_range``,
        ``n_explanations``, ``test_size``, ``alternative``, ``random_state``, ``n_jobs``).

    Returns
    -------
    report : str
        The markdown report.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from midlogit.invert import label_files
    >>> d = tempfile.mkdtemp()
    >>> a = np.array([3.0, 2.5, 0.1, 0.2, 2.8, 0.3])
    >>> np.savez(os.path.join(d, "act.npz"), activations=a, unit_names=["waterbird"])
    >>> with open(os.path.join(d, "c.csv"), "w") as fh:
    ...     _ = fh.write("id,water,land\\n1,1,0\\n2,1,0\\n3,0,1\\n4,0,1\\n5,1,0\\n6,0,1\\n")
    >>> report = label_files(os.path.join(d, "act.npz"), os.path.join(d, "c.csv"),
    ...                      spurious=["water"], max_length=1)
    >>> "FLAG: water" in report
    True
    """
    A, unit_names, a_ids = _load_activations(activations_path)
    C, names, c_ids = _load_concepts(concepts_path, id_column)
    cpath = os.fspath(concepts_path)
    if a_ids is not None and c_ids is not None:
        where = {v: i for i, v in enumerate(c_ids)}
        missing = [v for v in a_ids if v not in where]
        if missing:
            raise ValueError(
                f"{cpath}: {len(missing)} sample id(s) of the activations file are missing "
                f"from column {id_column!r}, e.g. {missing[:3]}."
            )
        C = C[[where[v] for v in a_ids]]
    elif C.shape[0] != A.shape[0]:
        raise ValueError(
            f"{cpath}: {C.shape[0]} data rows but {os.fspath(activations_path)} has "
            f"{A.shape[0]} samples; give one concept row per sample (or matching ids)."
        )
    if spurious is not None:
        unknown = [s for s in spurious if s not in names]
        if unknown:
            raise ValueError(
                f"{cpath}: spurious concept(s) {unknown} are not columns of the file; "
                f"columns: {names[:10]}{'...' if len(names) > 10 else ''}."
            )
    labeler = ConceptLabeler(**labeler_params).fit(A, C, concept_names=names)
    report = labeler.to_markdown(unit_names, spurious=spurious)
    if out is not None:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(report)
    return report
