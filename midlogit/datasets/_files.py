"""Reading the files of a data set on disk: paths, text lines, label columns."""

import codecs
import csv
import io
import os
from pathlib import Path

import numpy as np


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


def _csv_rows(path):
    """The non-empty rows of a UTF-8 CSV file with their 1-based line numbers."""
    reader = csv.reader(io.StringIO(_read_lines(path), newline=""))
    try:
        return [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise ValueError(f"{path}, line {reader.line_num}: not valid CSV ({exc}).") from None


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
