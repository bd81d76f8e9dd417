"""Keeping per-row fit parameters, weights and groups aligned with the rows samplers keep."""

import numpy as np

from ._steps import _UNALIGNED


def _with_derived(params, derived, name):
    """The final step's fit parameters with the samplers' weights and groups added.

    The samplers' ``sample_weight_`` are multiplied into a given ``sample_weight``; their
    ``sample_groups_`` become ``groups`` (also passing ``groups`` is an error).
    """
    params = dict(params)
    if "sample_weight" in derived:
        given = params.get("sample_weight")
        weights = derived["sample_weight"]
        params["sample_weight"] = (
            weights if given is None else weights * np.asarray(given, dtype=float)
        )
    if "groups" in derived:
        if params.get("groups") is not None:
            raise ValueError(
                f"The final step {name!r} got groups from the caller and a sampler set "
                "sample_groups_; pass one of them (e.g. drop sampling='average')."
            )
        params["groups"] = derived["groups"]
    return params


def _n_rows(X):
    """Rows of ``X``, or ``None`` when it has none to count (e.g. ``X=None``)."""
    shape = getattr(X, "shape", None)
    if shape is not None:
        return shape[0] if len(shape) else None
    return len(X) if hasattr(X, "__len__") else None


def _take_rows(value, indices):
    if hasattr(value, "iloc"):
        return value.iloc[indices]
    return np.asarray(value)[indices]


def _compose(name, step, kept, derived, n_before, n_after):
    """Fold a sampler's ``sample_indices_``, ``sample_weight_`` and ``sample_groups_``
    into those so far (``derived`` maps ``"sample_weight"`` and ``"groups"`` to arrays
    aligned with the rows)."""
    indices = getattr(step, "sample_indices_", None)
    if indices is None:
        if n_after != n_before:
            if derived:
                raise ValueError(
                    f"Step {name!r} changed the rows without recording sample_indices_, so "
                    f"the {' and '.join(derived)} an earlier sampler set cannot follow them."
                )
            kept = _UNALIGNED
    else:
        indices = np.asarray(indices)
        if kept is None:
            kept = indices
        elif kept is not _UNALIGNED:
            kept = kept[indices]
        derived = {key: value[indices] for key, value in derived.items()}
    step_weight = getattr(step, "sample_weight_", None)
    if step_weight is not None:
        step_weight = np.asarray(step_weight, dtype=float)
        earlier = derived.get("sample_weight")
        derived = {
            **derived,
            "sample_weight": step_weight if earlier is None else earlier * step_weight,
        }
    step_groups = getattr(step, "sample_groups_", None)
    if step_groups is not None:  # a later sampler's labels replace earlier ones
        derived = {**derived, "groups": np.asarray(step_groups)}
    return kept, derived


def _align(params, n_input, kept, unaligned_names=()):
    """Subset the parameters that hold one entry per input row to the rows ``kept``."""
    if kept is None:
        return params
    aligned = {}
    for key, value in params.items():
        per_row = (
            key not in unaligned_names
            and hasattr(value, "__len__")
            and not isinstance(value, str | bytes | dict)
            and len(value) == n_input
        )
        if per_row and kept is _UNALIGNED:
            raise ValueError(
                f"Cannot align {key!r} with the rows: an earlier sampler changed the "
                "rows without recording sample_indices_. Give that sampler a "
                "sample_indices_ attribute or drop the parameter."
            )
        aligned[key] = _take_rows(value, kept) if per_row else value
    return aligned
