import numpy as np
import pytest

from midlogit.analysis import (
    ExtremalMidrange,
    activation_bands,
    band_composition,
    extremal_and_midrange_indices,
    representational_similarity,
    rsm_block_contrast,
    sort_rsm,
)

# ---------------------------------------------------------------- loop references


def bands_reference(a, n_bands):
    """Sort (ties by index), then deal the sorted samples into n_bands consecutive runs."""
    n = len(a)
    order = sorted(range(n), key=lambda i: (a[i], i))
    bands = [0] * n
    for rank, i in enumerate(order):
        bands[i] = rank * n_bands // n
    return np.array(bands)


def composition_reference(a, groups, n_bands):
    bands = bands_reference(a, n_bands)
    names = sorted(set(groups))
    table = np.zeros((n_bands, len(names)))
    for b, g in zip(bands, groups):
        table[b, names.index(g)] += 1
    return table / table.sum(axis=1, keepdims=True), names


def cosine_reference(E):
    n = len(E)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = E[i] @ E[j] / (np.linalg.norm(E[i]) * np.linalg.norm(E[j]))
    return out


def contrast_reference(rsm, labels):
    within, between = [], []
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i == j:
                continue
            (within if labels[i] == labels[j] else between).append(rsm[i, j])
    return np.mean(within) - np.mean(between)


# ---------------------------------------------------------------- activation_bands


@pytest.mark.parametrize("n, n_bands", [(10, 3), (37, 5), (8, 8), (5, 1)])
def test_activation_bands_match_reference(n, n_bands):
    a = np.random.default_rng(n).normal(size=n)
    np.testing.assert_array_equal(activation_bands(a, n_bands), bands_reference(a, n_bands))


def test_activation_bands_equal_counts_and_monotone():
    a = np.random.default_rng(0).normal(size=103)
    bands = activation_bands(a, 10)
    counts = np.bincount(bands, minlength=10)
    assert counts.max() - counts.min() <= 1
    order = np.argsort(a)
    assert np.all(np.diff(bands[order]) >= 0)


def test_activation_bands_ties_by_order_are_deterministic():
    a = np.array([0.0] * 6 + [1.0, 2.0])
    bands = activation_bands(a, 4)
    np.testing.assert_array_equal(bands, bands_reference(a, 4))
    np.testing.assert_array_equal(np.bincount(bands), [2, 2, 2, 2])
    np.testing.assert_array_equal(bands, activation_bands(a.copy(), 4))


def test_activation_bands_lowest_keeps_ties_together():
    a = np.array([3.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    bands = activation_bands(a, 3, ties="lowest")
    assert np.unique(bands[a == 0]).size == 1
    assert bands[0] == 2 and bands[1] == 0


def test_activation_bands_unsigned_integers():
    a = np.array([3, 0, 255, 7], dtype=np.uint8)
    np.testing.assert_array_equal(activation_bands(a, 2), [0, 0, 1, 1])


@pytest.mark.parametrize(
    "a, n_bands, match",
    [
        ([1.0, np.nan, 2.0], 2, "a holds NaN"),
        ([1.0, 2.0], 3, "n_bands must be between 1 and"),
        ([1.0, 2.0], 0, "n_bands must be between 1 and"),
        ([1.0, 2.0], 1.5, "n_bands must be an integer"),
        ([[1.0, 2.0], [3.0, 4.0]], 2, "a must be 1-D"),
        ([[1.0], [2.0]], 2, r"a.ravel\(\)"),
        ([], 1, "a is empty"),
        (["x", "y"], 1, "real numbers"),
    ],
)
def test_activation_bands_errors(a, n_bands, match):
    with pytest.raises(ValueError, match=match):
        activation_bands(a, n_bands)


def test_activation_bands_bad_ties():
    with pytest.raises(ValueError, match="ties must be"):
        activation_bands([1.0, 2.0], 2, ties="average")


# ------------------------------------------------------- extremal / mid-range


def test_extremal_and_midrange_center_matches_reference():
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    k, lo, hi = 6, 0.4, 0.6
    top, mid = extremal_and_midrange_indices(a, k, band=(lo, hi))
    assert isinstance(extremal_and_midrange_indices(a, k), ExtremalMidrange)

    np.testing.assert_array_equal(top, np.argsort(a)[::-1][:k])
    ql, qh = np.quantile(a, [lo, hi])
    ranks = np.argsort(np.argsort(a))
    centre = 0.5 * (lo + hi) * (a.size - 1)
    members = [i for i in range(a.size) if ql <= a[i] <= qh]
    closest = sorted(members, key=lambda i: (abs(ranks[i] - centre), ranks[i]))[:k]
    np.testing.assert_array_equal(mid, sorted(closest, key=lambda i: -a[i]))


def test_extremal_and_midrange_random_is_seeded_and_in_band():
    a = np.random.default_rng(2).normal(size=300)
    first = extremal_and_midrange_indices(a, 10, strategy="random", random_state=0)
    again = extremal_and_midrange_indices(a, 10, strategy="random", random_state=0)
    other = extremal_and_midrange_indices(a, 10, strategy="random", random_state=1)
    np.testing.assert_array_equal(first.mid, again.mid)
    assert not np.array_equal(np.sort(first.mid), np.sort(other.mid))
    ql, qh = np.quantile(a, [0.4, 0.6])
    assert np.all((a[first.mid] >= ql) & (a[first.mid] <= qh))
    assert np.unique(first.mid).size == 10
    assert np.all(np.diff(a[first.mid]) <= 0)


def test_extremal_ties_by_sample_order():
    a = np.array([1.0, 5.0, 5.0, 0.0, 5.0])
    top, _ = extremal_and_midrange_indices(a, 2, band=(0.0, 1.0))
    np.testing.assert_array_equal(top, [1, 2])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 0}, "k must be a positive integer"),
        ({"k": 11}, "exceeds the number of samples"),
        ({"k": 2, "band": (0.6, 0.4)}, "0 <= lo < hi <= 1"),
        ({"k": 2, "band": 0.5}, "pair of quantiles"),
        ({"k": 5, "band": (0.45, 0.55)}, "fewer than k=5"),
        ({"k": 2, "strategy": "edge"}, "strategy must be"),
    ],
)
def test_extremal_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        extremal_and_midrange_indices(np.arange(10.0), **kwargs)


# ---------------------------------------------------------------- band_composition


def test_band_composition_matches_reference():
    rng = np.random.default_rng(3)
    a = rng.normal(size=90)
    groups = rng.choice(["ellipse", "heart", "square"], size=90)
    comp, names = band_composition(a, groups, 7)
    ref, ref_names = composition_reference(list(a), list(groups), 7)
    np.testing.assert_allclose(comp, ref)
    assert names.tolist() == ref_names
    np.testing.assert_allclose(comp.sum(axis=1), 1.0)


def test_band_composition_recovers_planted_mid_group():
    # a "square" logit: squares high, off-band non-squares low, non-squares at the
    # squares' x-position in the middle
    a = np.concatenate([np.full(30, 5.0), np.full(30, -5.0), np.zeros(30)])
    a = a + np.random.default_rng(4).normal(scale=0.1, size=90)
    groups = np.repeat(["square", "other", "other@square-x"], 30)
    comp, names = band_composition(a, groups, 3)
    assert comp[1, names.tolist().index("other@square-x")] == 1.0
    assert comp[2, names.tolist().index("square")] == 1.0


def test_band_composition_errors():
    with pytest.raises(ValueError, match="groups has 2 entries"):
        band_composition([1.0, 2.0, 3.0], [0, 1], 2)
    with pytest.raises(ValueError, match="groups holds NaN"):
        band_composition([1.0, 2.0], [0.0, np.nan], 1)


# ------------------------------------------------------- representational similarity


def test_cosine_matches_reference_and_properties():
    E = np.random.default_rng(5).normal(size=(12, 7))
    rsm = representational_similarity(E)
    assert rsm.dtype == np.float32
    np.testing.assert_allclose(rsm, cosine_reference(E), atol=1e-5)
    np.testing.assert_array_equal(rsm, rsm.T)
    np.testing.assert_array_equal(np.diag(rsm), 1.0)


def test_correlation_matches_numpy_corrcoef():
    E = np.random.default_rng(6).normal(size=(9, 5))
    np.testing.assert_allclose(
        representational_similarity(E, "correlation"), np.corrcoef(E), atol=1e-5
    )


def test_linear_is_gram_matrix():
    E = np.random.default_rng(7).normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_allclose(representational_similarity(E, "linear"), E @ E.T, rtol=1e-5)


@pytest.mark.parametrize("metric", ["cosine", "correlation", "linear"])
def test_large_matrix_is_exactly_symmetric(metric):
    # larger than one symmetrisation tile, not a multiple of it
    E = np.random.default_rng(12).normal(size=(600, 9)).astype(np.float32)
    rsm = representational_similarity(E, metric)
    np.testing.assert_array_equal(rsm, rsm.T)
    E64 = E.astype(np.float64)
    if metric == "correlation":
        expected = np.corrcoef(E64)
    elif metric == "cosine":
        unit = E64 / np.linalg.norm(E64, axis=1, keepdims=True)
        expected = unit @ unit.T
    else:
        expected = E64 @ E64.T
    np.testing.assert_allclose(rsm, expected, atol=1e-4)


@pytest.mark.parametrize("metric", ["cosine", "correlation"])
def test_zero_and_constant_rows_are_guarded(metric):
    E = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0], [3.0, 1.0, 0.0]])
    with np.errstate(all="raise"):
        rsm = representational_similarity(E, metric)
    assert np.all(np.isfinite(rsm))
    np.testing.assert_array_equal(np.diag(rsm), 1.0)
    assert np.all(rsm[1, [0, 2, 3]] == 0.0)
    if metric == "correlation":
        assert np.all(rsm[2, [0, 1, 3]] == 0.0)


def test_similarity_does_not_modify_input():
    E = np.random.default_rng(8).normal(size=(5, 3)).astype(np.float32)
    before = E.copy()
    representational_similarity(E, "correlation")
    np.testing.assert_array_equal(E, before)


@pytest.mark.parametrize(
    "E, metric, match",
    [
        (np.ones(4), "cosine", "E must be 2-D"),
        (np.ones((3, 2)), "euclidean", "metric must be one of"),
        (np.array([[1.0, np.inf]]), "cosine", "E holds NaN"),
        (np.ones((0, 2)), "cosine", "at least one sample"),
    ],
)
def test_similarity_errors(E, metric, match):
    with pytest.raises(ValueError, match=match):
        representational_similarity(E, metric)


# ---------------------------------------------------------------- block contrast


def test_block_contrast_matches_reference():
    rng = np.random.default_rng(9)
    rsm = rng.normal(size=(15, 15))
    labels = rng.integers(0, 4, size=15)
    assert rsm_block_contrast(rsm, labels) == pytest.approx(contrast_reference(rsm, labels))
    rsm32 = rsm.astype(np.float32)
    assert rsm_block_contrast(rsm32, labels) == pytest.approx(
        contrast_reference(rsm32.astype(np.float64), labels), abs=1e-5
    )


def test_block_contrast_structure_versus_shuffled_labels():
    rng = np.random.default_rng(10)
    shape = np.repeat([0, 1, 2], 100)
    x_pos = rng.integers(0, 8, size=300)
    centres = rng.normal(size=(3, 16)) * 3
    E = centres[shape] + rng.normal(size=(300, 16))
    rsm = representational_similarity(E)
    by_shape = rsm_block_contrast(rsm, shape)
    by_x = rsm_block_contrast(rsm, x_pos)
    assert by_shape > 0.5
    assert abs(by_x) < 0.05
    assert abs(rsm_block_contrast(rsm, rng.permutation(shape))) < 0.05


def test_block_contrast_of_perfect_blocks():
    labels = np.array([0, 0, 1, 1, 1])
    rsm = (labels[:, None] == labels[None, :]).astype(float)
    assert rsm_block_contrast(rsm, labels) == 1.0


def test_block_contrast_errors():
    rsm = np.eye(3)
    with pytest.raises(ValueError, match="single value"):
        rsm_block_contrast(rsm, [1, 1, 1])
    with pytest.raises(ValueError, match="every label occurs once"):
        rsm_block_contrast(rsm, [0, 1, 2])
    with pytest.raises(ValueError, match="labels has 2 entries"):
        rsm_block_contrast(rsm, [0, 1])
    with pytest.raises(ValueError, match="rsm must be a square"):
        rsm_block_contrast(np.ones((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="rsm holds NaN"):
        rsm_block_contrast(np.full((2, 2), np.nan), [0, 1])


def test_sort_rsm_is_consistent_permutation():
    rng = np.random.default_rng(11)
    rsm = rng.normal(size=(8, 8))
    labels = rng.integers(0, 3, size=8)
    sorted_rsm, order = sort_rsm(rsm, labels)
    assert np.all(np.diff(labels[order]) >= 0)
    for i in range(8):
        for j in range(8):
            assert sorted_rsm[i, j] == rsm[order[i], order[j]]
    assert rsm_block_contrast(sorted_rsm, labels[order]) == pytest.approx(
        rsm_block_contrast(rsm, labels)
    )
