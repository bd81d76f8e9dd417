"""Checks of the generators' arguments."""

import numbers

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
