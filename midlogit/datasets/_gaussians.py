"""Spurious Gaussians: a table with a weak core and a strong shortcut block."""

import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._sampling import _balanced_labels, _group_names, _shortcut
from ._validation import _check_fraction, _check_n_samples

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
