"""Tests for midlogit.invert (INVERT concept labeling)."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import mannwhitneyu, norm
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import midlogit.invert as inv
from midlogit.invert import ConceptLabeler, Formula, concept_auc, label_files

EXPECTED_FAILED_CHECKS = {
    "check_fit_score_takes_y": (
        "fit's arguments are named (A, C), activations and concept matrix, as in the "
        "INVERT API; passing them positionally as fit(X, y) works"
    ),
}


@parametrize_with_checks(
    [ConceptLabeler()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- reference


def reference_search(a, C, *, L=3, B=3, k=None, lo=0.0, hi=0.5):
    """The beam search written the straightforward way: every candidate formula is
    materialised and scored with roc_auc_score; same candidate order and tie-breaks."""
    n, K = C.shape
    lits = [C[:, j] for j in range(K)] + [~C[:, j] for j in range(K)]
    size = max(B, k or B)

    def admissible(ind):
        frac = ind.mean()
        return 0 < ind.sum() < n and lo <= frac <= hi

    def auc(ind):  # by definition: P(positive above negative), ties one half
        pos, neg = a[ind][:, None], a[~ind][None, :]
        return round(float(np.mean((pos > neg) + 0.5 * (pos == neg))), 12)

    def select(cands):
        cands = [c for c in cands if admissible(c[3])]
        order = sorted(range(len(cands)), key=lambda i: (-cands[i][0], cands[i][1], i))
        pool, seen = [], []
        for i in order:
            ind = cands[i][3]
            if any(np.array_equal(ind, s) for s in seen):
                continue
            seen.append(ind)
            pool.append(cands[i])
            if len(pool) == size:
                break
        return pool

    # a candidate: (auc, length, (literal ids, operators), indicator)
    atoms = [(auc(ind), 1, ((j,), ()), ind) for j, ind in enumerate(lits) if admissible(ind)]
    pool = select(atoms)
    for _ in range(2, L + 1):
        if not pool:
            break
        beam = pool[:B]
        cands = list(pool) + atoms
        for _, length, (ls, ops), f in beam:
            for op in "&|":
                for j, lit in enumerate(lits):
                    ind = (f & lit) if op == "&" else (f | lit)
                    if np.array_equal(ind, f) or np.array_equal(ind, lit):
                        continue
                    if admissible(ind):
                        cands.append((auc(ind), length + 1, (ls + (j,), ops + (op,)), ind))
        new = select(cands)
        done = [c[2] for c in new[:B]] == [c[2] for c in beam]
        pool = new
        if done:
            break
    out = []
    for score, _, (ls, ops), _ in pool[: k or B]:
        f = Formula(tuple((j % K, j >= K) for j in ls), ops)
        out.append((str(f), score))
    return out


def random_data(seed, n=240, K=5, units=3, p=0.3):
    rng = np.random.default_rng(seed)
    C = rng.random((n, K)) < p
    A = rng.normal(size=(n, units)) + 1.5 * C[:, :units]
    A[:, -1] = np.round(A[:, -1])  # ties
    return A, C


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_matches_reference_beam_search(seed, mode):
    A, C = random_data(seed)
    lab = ConceptLabeler(mode=mode, n_explanations=4).fit(A, C)
    for u in range(A.shape[1]):
        a = A[:, u] if mode == "positive" else -A[:, u]
        ref = reference_search(a, C, k=4)
        got = [(str(e.formula), e.auc) for e in lab.explanations_[u]]
        assert [g[0] for g in got] == [r[0] for r in ref]
        want = [r[1] if mode == "positive" else 1 - r[1] for r in ref]
        np.testing.assert_allclose([g[1] for g in got], want, atol=1e-9)


def test_matches_reference_with_fraction_limits_and_wide_beam():
    A, C = random_data(7, K=6, p=0.4)
    lab = ConceptLabeler(beam_size=4, min_fraction=0.1, max_fraction=0.3).fit(A, C)
    for u in range(A.shape[1]):
        ref = reference_search(A[:, u], C, B=4, lo=0.1, hi=0.3)
        assert [str(e.formula) for e in lab.explanations_[u]] == [r[0] for r in ref]


# --------------------------------------------------------------------------- AUC


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(2, 60),
    K=st.integers(1, 4),
)
def test_concept_auc_equals_roc_auc_score(data, n, K):
    a = data.draw(
        hnp.arrays(
            np.float64, n, elements=st.sampled_from([-1e30, -3.5, 0.0, 1e-300, 2.0, 7.25, 1e30])
        )
        | hnp.arrays(np.float64, n, elements=st.floats(-1e6, 1e6, allow_nan=False))
    )
    C = data.draw(hnp.arrays(np.bool_, (n, K)))
    got = concept_auc(a, C)
    for j in range(K):
        if 0 < C[:, j].sum() < n:
            assert got[j] == pytest.approx(roc_auc_score(C[:, j], a), abs=1e-12)
            # AUC(~c) = 1 - AUC(c)
            assert concept_auc(a, ~C[:, [j]])[0] == pytest.approx(1 - got[j], abs=1e-12)
        else:
            assert np.isnan(got[j])


def test_concept_auc_is_not_squashed():
    # float32 logits far from 0: a sigmoid maps them all to 1.0 and creates ties
    rng = np.random.default_rng(0)
    a = (rng.normal(size=500) * 3 + 40).astype(np.float32)
    c = rng.random(500) < a / a.max() * 0.6
    exact = roc_auc_score(c, a)
    squashed = roc_auc_score(c, 1 / (1 + np.exp(-a)))
    assert abs(exact - squashed) > 0.05
    assert concept_auc(a, c[:, None])[0] == pytest.approx(exact, abs=1e-12)


def test_concept_auc_2d_and_sparse():
    A, C = random_data(3, n=300, K=7)
    dense = concept_auc(A, C)
    assert dense.shape == (3, 7)
    np.testing.assert_array_equal(concept_auc(A, sp.csr_matrix(C.astype(int))), dense)
    np.testing.assert_allclose(dense[1], concept_auc(A[:, 1], C), atol=0)


# --------------------------------------------------------------------------- search


def test_planted_and_not_is_recovered():
    rng = np.random.default_rng(1)
    C = rng.random((3000, 20)) < 0.25
    a = rng.normal(size=3000) + 2 * (C[:, 3] & ~C[:, 7])
    best = ConceptLabeler().fit(a[:, None], C).explanations_[0][0]
    np.testing.assert_array_equal(best.formula.evaluate(C), C[:, 3] & ~C[:, 7])
    assert best.auc > 0.9


def test_planted_or_is_recovered_with_names():
    rng = np.random.default_rng(2)
    C = rng.random((3000, 15)) < 0.12
    a = rng.normal(size=3000) + 2.5 * (C[:, 2] | C[:, 9])
    names = [f"k{j}" for j in range(15)]
    best = ConceptLabeler().fit(a[:, None], C, concept_names=names).explanations_[0][0]
    assert str(best.formula) in ("k2 | k9", "k9 | k2")
    assert best.formula.concepts in (("k2", "k9"), ("k9", "k2"))


def test_negative_mode_finds_low_concept():
    rng = np.random.default_rng(3)
    C = rng.random((2000, 10)) < 0.2
    a = rng.normal(size=2000) - 3 * C[:, 4]
    best = ConceptLabeler(mode="negative").fit(a[:, None], C).explanations_[0][0]
    assert str(best.formula) == "c4"
    assert best.auc < 0.1


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_explanation_fields_are_exact(mode):
    A, C = random_data(5, n=500, K=8, units=4)
    lab = ConceptLabeler(mode=mode, min_fraction=0.05, max_fraction=0.4, n_explanations=5)
    lab.fit(A, C)
    for u, exps in enumerate(lab.explanations_):
        assert len(exps) == 5
        for e in exps:
            ind = e.formula.evaluate(C)
            assert e.auc == pytest.approx(roc_auc_score(ind, A[:, u]), abs=1e-9)
            assert e.selection_auc == e.auc
            assert e.fraction == pytest.approx(ind.mean())
            assert 0.05 <= e.fraction <= 0.4
            assert e.length == e.formula.length <= 3
            alt = "greater" if mode == "positive" else "less"
            ref = mannwhitneyu(A[ind, u], A[~ind, u], alternative=alt, method="asymptotic")
            assert e.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
            assert e.log_p_value == pytest.approx(math.log(ref.pvalue), rel=1e-9)
        aucs = [e.auc for e in exps]
        assert aucs == sorted(aucs, reverse=(mode == "positive"))


def _scipy_p(a, ind, mode, alternative):
    if alternative == "two-sided":
        alt = "two-sided"
    else:
        alt = "greater" if mode == "positive" else "less"
    return mannwhitneyu(a[ind], a[~ind], alternative=alt, method="auto").pvalue


@pytest.mark.parametrize("alternative", ["one-sided", "two-sided"])
@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("test_size", [None, 0.5])
def test_p_values_match_scipy_auto_on_small_supports(alternative, mode, test_size):
    # Few rows and rare concepts: many formulas cover at most 8 samples, where SciPy
    # uses the exact null distribution unless a value is tied (unit 1 has ties).
    rng = np.random.default_rng(11)
    n = 30
    C = rng.random((n, 6)) < np.array([0.1, 0.15, 0.2, 0.25, 0.5, 0.8])
    A = rng.normal(size=(n, 2)) + 1.5 * C[:, :2]
    A[:, 1] = np.round(A[:, 1])
    lab = ConceptLabeler(
        mode=mode,
        alternative=alternative,
        n_explanations=6,
        max_fraction=1.0,
        test_size=test_size,
        random_state=0,
    ).fit(A, C)
    rows = np.arange(n) if test_size is None else lab.test_indices_
    exact_seen = 0
    for u, exps in enumerate(lab.explanations_):
        a = A[rows, u]
        for e in exps:
            ind = e.formula.evaluate(C)[rows]
            if ind.all() or not ind.any():
                continue
            ref = _scipy_p(a, ind, mode, alternative)
            assert e.p_value == pytest.approx(ref, rel=1e-9), (u, str(e.formula))
            assert e.log_p_value == pytest.approx(math.log(ref), rel=1e-9, abs=1e-12)
            exact_seen += u == 0 and min(ind.sum(), (~ind).sum()) <= 8
    assert exact_seen >= 3  # the exact branch was exercised


def test_exact_p_value_where_the_normal_approximation_is_far_off():
    # one formula sample at the top of 500: exact p = 1/500, the approximation 10 times that
    a = np.arange(500.0)
    C = np.zeros((500, 1), dtype=bool)
    C[-1] = True
    best = ConceptLabeler(max_length=1).fit(a[:, None], C).explanations_[0][0]
    assert best.p_value == pytest.approx(1 / 500, rel=1e-12)
    ref = mannwhitneyu(a[C[:, 0]], a[~C[:, 0]], alternative="greater", method="asymptotic")
    assert ref.pvalue > 10 * best.p_value
    two = ConceptLabeler(max_length=1, alternative="two-sided").fit(a[:, None], C)
    assert two.explanations_[0][0].p_value == pytest.approx(2 / 500, rel=1e-12)


@pytest.mark.parametrize("m, n", [(1, 1000), (3, 2000), (8, 300), (8, 8), (5, 7)])
def test_exact_null_distribution_against_scipy(m, n):
    rng = np.random.default_rng(m * n)
    for U in np.unique(np.r_[0, 1, m * n // 2, m * n // 2 + 1, m * n, rng.integers(0, m * n, 5)]):
        # samples with exactly this U: the set's values placed among the others
        x = np.full(m, -1.0)
        left = int(U)
        for i in range(m):  # spread U over the m set samples, each beating <= n others
            take = min(n, left)
            x[i] = take - 0.5 if take > 0 else -0.5
            left -= take
        y = np.arange(n, dtype=float)
        ref = mannwhitneyu(x, y, alternative="greater", method="exact")
        assert ref.statistic == U
        p, logp = inv._mwu_pvalues(U, m, m + n, 0.0)
        assert float(p) == pytest.approx(ref.pvalue, rel=1e-10)
        two = mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue
        p2, _ = inv._mwu_pvalues(U, m, m + n, 0.0, "two-sided")
        assert float(p2) == pytest.approx(two, rel=1e-10)


def test_log_p_value_far_below_float_range():
    rng = np.random.default_rng(4)
    C = np.zeros((4000, 2), dtype=bool)
    C[:2000, 0] = True
    C[rng.random(4000) < 0.3, 1] = True
    a = np.where(C[:, 0], 10.0, 0.0) + rng.normal(size=4000) * 0.01
    best = ConceptLabeler(max_length=1).fit(a[:, None], C).explanations_[0][0]
    assert best.p_value == 0.0
    n1 = n0 = 2000
    z = (n1 * n0 - n1 * n0 / 2 - 0.5) / math.sqrt(n1 * n0 * (n1 + n0 + 1) / 12)
    assert best.log_p_value == pytest.approx(norm.logsf(z), rel=1e-9)
    assert best.log_p_value < -1000


def test_supports_are_distinct():
    # A class partition: c & ~d == c for every other class d; duplicated columns too.
    rng = np.random.default_rng(5)
    y = rng.integers(0, 6, size=900)
    C = np.eye(6, dtype=bool)[y]
    C = np.c_[C, C[:, 0], C[:, 1] | C[:, 2]]
    a = rng.normal(size=900) + 2 * (y == 0) + 1.0 * (y == 1)
    lab = ConceptLabeler(beam_size=5, n_explanations=10).fit(np.c_[a, -a], C)
    for exps in lab.explanations_:
        supports = {e.formula.evaluate(C).tobytes() for e in exps}
        assert len(supports) == len(exps) == 10
    # the best is the shortest formula with its support, first found
    assert str(lab.explanations_[0][0].formula) == "c0"


def test_max_length_one_keeps_single_literals():
    A, C = random_data(6)
    lab = ConceptLabeler(max_length=1, beam_size=4).fit(A, C)
    assert all(e.length == 1 for exps in lab.explanations_ for e in exps)
    ref = concept_auc(A, C)
    for u, exps in enumerate(lab.explanations_):
        best = max(
            np.nanmax(np.where(C.mean(0) <= 0.5, ref[u], -np.inf)),
            np.nanmax(np.where(C.mean(0) >= 0.5, 1 - ref[u], -np.inf)),
        )
        assert exps[0].auc == pytest.approx(best, abs=1e-12)
    np.testing.assert_allclose(lab.auc_, ref, atol=1e-12)


def test_no_admissible_formula_gives_empty_list():
    C = np.ones((50, 2), dtype=bool)
    lab = ConceptLabeler().fit(np.arange(50.0)[:, None], C)
    assert lab.explanations_ == [[]]
    assert "no admissible formula" in lab.to_markdown()


def test_activation_range_equals_labeling_the_band():
    A, C = random_data(8, n=600, K=6)
    lab = ConceptLabeler(activation_range=(0.2, 0.8), n_explanations=4).fit(A, C)
    for u in range(A.shape[1]):
        lo, hi = np.quantile(A[:, u], [0.2, 0.8])
        np.testing.assert_allclose(lab.activation_thresholds_[u], [lo, hi])
        band = (A[:, u] >= lo) & (A[:, u] <= hi)
        sub = ConceptLabeler(n_explanations=4).fit(A[band][:, [u]], C[band])
        assert lab.explanations_[u] == sub.explanations_[0]
        np.testing.assert_allclose(lab.auc_[u], sub.auc_[0], atol=0, equal_nan=True)


def test_held_out_p_values():
    A, C = random_data(9, n=800, K=6)
    lab = ConceptLabeler(test_size=0.4, random_state=0).fit(A, C)
    sel, test = lab.selection_indices_, lab.test_indices_
    assert test.size == 320 and np.intersect1d(sel, test).size == 0
    for u, exps in enumerate(lab.explanations_):
        for e in exps:
            ind = e.formula.evaluate(C)
            assert e.auc == pytest.approx(roc_auc_score(ind[test], A[test, u]), abs=1e-9)
            assert e.selection_auc == pytest.approx(roc_auc_score(ind[sel], A[sel, u]), abs=1e-9)
            assert e.fraction == pytest.approx(ind[test].mean())
            ref = mannwhitneyu(
                A[test][ind[test], u],
                A[test][~ind[test], u],
                alternative="greater",
                method="auto",
            )
            assert e.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    again = ConceptLabeler(test_size=0.4, random_state=0).fit(A, C)
    assert again.explanations_ == lab.explanations_


# --------------------------------------------------------------------------- internals


def test_ranks_match_scipy_with_ties_and_masks():
    from scipy.stats import rankdata

    rng = np.random.default_rng(10)
    X = rng.integers(-4, 4, size=(5, 200)).astype(np.float32)
    X[0] = rng.normal(size=200)
    X[1, :10] = -0.0
    X[2] = rng.normal(size=200) * 1e-3 + 1.0  # float64 values not exact in float32
    mask = rng.random((5, 200)) < 0.7
    for dtype in (np.float32, np.float64, np.int64):
        Xd = X.astype(dtype)
        r2, N, tie = inv._doubled_ranks(Xd, mask)
        for i in range(5):
            x = Xd[i][mask[i]]
            np.testing.assert_array_equal(r2[i][mask[i]], 2 * rankdata(x))
            assert (r2[i][~mask[i]] == 0).all() and N[i] == x.size
            _, t = np.unique(x, return_counts=True)
            assert tie[i] == pytest.approx((t**3 - t).sum())


@pytest.mark.parametrize(
    "variant",
    [
        "dense_product",
        "dense_sparse_weights",
        "sparse_weights",
        "dense_weights",
        "unpacked",
        "unpacked_sparse_weights",
        "sparse_input",
        "threads",
    ],
)
def test_code_paths_agree(variant, monkeypatch):
    A, C = random_data(11, n=400, K=7, units=5)
    ref = ConceptLabeler(n_explanations=4).fit(A, C).explanations_
    Cin = C
    kwargs = {}
    if variant.startswith("dense_"):
        monkeypatch.setattr(inv._ranking, "_SPARSE_DENSITY", 0.0)
    if variant.endswith("sparse_weights"):
        monkeypatch.setattr(inv._search, "_SPARSE_WEIGHTS", 1.1)
    if variant.endswith("dense_weights"):
        monkeypatch.setattr(inv._search, "_SPARSE_WEIGHTS", 0.0)
    if variant.startswith("unpacked"):
        monkeypatch.setattr(inv._search, "_check_pack", lambda n: False)
    if variant == "sparse_input":
        Cin = sp.csc_matrix(C.astype(np.float32))
    if variant == "threads":
        monkeypatch.setattr(inv._labeler, "_MAX_CHUNK_UNITS", 2)
        kwargs["n_jobs"] = 2
    got = ConceptLabeler(n_explanations=4, **kwargs).fit(A, Cin).explanations_
    assert got == ref


def test_inputs_not_modified_and_label_vector():
    rng = np.random.default_rng(12)
    A = rng.normal(size=(300, 2))
    y = rng.choice(["cat", "dog", "bird"], size=300)
    A0, y0 = A.copy(), y.copy()
    lab = ConceptLabeler(max_length=2).fit(A, y)
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(y, y0)
    assert list(lab.concept_names_) == ["y=bird", "y=cat", "y=dog"]
    binary = ConceptLabeler(max_length=1).fit(A, (y == "cat").astype(int))
    assert list(binary.concept_names_) == ["y"]


def test_dataframe_names():
    pd = pytest.importorskip("pandas")
    A, C = random_data(13)
    lab = ConceptLabeler().fit(
        pd.DataFrame(A, columns=["u0", "u1", "u2"]),
        pd.DataFrame(C, columns=list("abcde")),
    )
    assert list(lab.feature_names_in_) == ["u0", "u1", "u2"]
    assert set(lab.explanations_[0][0].formula.names) <= set("abcde")
    assert "## u1" in lab.to_markdown()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "A_fn, C_fn, match",
    [
        (lambda A: np.where(np.arange(A.size).reshape(A.shape) == 3, np.nan, A), None, "NaN"),
        (None, lambda C: C * 2, "binary"),
        (None, lambda C: C.astype(float) * 0.5, "binary"),
        (None, lambda C: np.where(C, "yes", "no"), "binary"),
        (None, lambda C: C[:-1], "240 samples but C has 239 rows"),
        (None, lambda C: C[:, :0], "no concepts"),
        (lambda A: A[:, 0], None, "reshape"),
        (None, lambda C: None, "requires y to be passed"),
    ],
)
def test_bad_input(A_fn, C_fn, match):
    A, C = random_data(0)
    A = A_fn(A) if A_fn else A
    C = C_fn(C) if C_fn else C
    with pytest.raises(ValueError, match=match):
        ConceptLabeler().fit(A, C)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"max_length": 0}, "max_length"),
        ({"beam_size": 1.5}, "beam_size"),
        ({"min_fraction": 0.6}, "min_fraction"),
        ({"mode": "up"}, "mode"),
        ({"activation_range": (0.8, 0.2)}, "activation_range"),
        ({"n_explanations": 0}, "n_explanations"),
        ({"test_size": 2.0}, "test_size"),
    ],
)
def test_bad_params(params, match):
    A, C = random_data(0)
    with pytest.raises(ValueError, match=match):
        ConceptLabeler(**params).fit(A, C)


def test_bad_names():
    A, C = random_data(0)
    with pytest.raises(ValueError, match="unique"):
        ConceptLabeler().fit(A, C, concept_names=list("aabcd"))
    with pytest.raises(ValueError, match="concept_names has 2"):
        ConceptLabeler().fit(A, C, concept_names=["a", "b"])
    with pytest.raises(ValueError, match="sparse"):
        concept_auc(sp.csr_matrix(A), C)


def test_formula_str_and_validation():
    f = Formula(
        ((0, False), (1, False), (2, True), (3, False)), ("|", "|", "&"), ("a", "b", "c", "d")
    )
    assert str(f) == "(a | b | ~c) & d"
    C = np.array([[1, 0, 0, 1], [0, 0, 1, 1], [0, 1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(f.evaluate(C), [True, False, False])
    np.testing.assert_array_equal(f.evaluate(sp.csr_matrix(C)), [True, False, False])
    with pytest.raises(ValueError, match="operators"):
        Formula(((0, False), (1, False)), ("^",))
    with pytest.raises(ValueError, match="columns"):
        f.evaluate(C[:, :2])


# --------------------------------------------------------------------------- files


def write_files(tmp_path, order=None, bad=None):
    rng = np.random.default_rng(14)
    n = 300
    water = rng.random(n) < 0.4
    bird = rng.random(n) < 0.3
    logit = rng.normal(size=n) + 2 * water
    np.savez(
        tmp_path / "act.npz",
        activations=np.c_[logit, rng.normal(size=n) + 2 * bird],
        unit_names=np.array(["waterbird", "birdness"]),
        ids=np.array([f"img{i}" for i in range(n)]),
    )
    rows = ["id,water,bird"]
    for i in order if order is not None else range(n):
        rows.append(f"img{i},{'true' if water[i] else 'false'},{int(bird[i])}")
    if bad:
        rows[5] = bad
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "act.npz", tmp_path / "c.csv"


def test_label_files_report(tmp_path):
    act, csv_path = write_files(tmp_path, order=np.random.default_rng(0).permutation(300))
    out = tmp_path / "report.md"
    report = label_files(act, csv_path, out=out, spurious=["water"], max_length=2)
    assert out.read_text() == report
    lines = report.splitlines()
    row = next(line for line in lines if line.startswith("| waterbird |"))
    assert "`water`" in row and "FLAG: water" in row
    assert "## birdness" in report and "| # | formula |" in report
    assert "1 of 2 unit(s)" in report


def test_label_files_one_unit_without_ids(tmp_path):
    np.save(tmp_path / "a.npy", np.r_[np.ones(5), np.zeros(5)])
    (tmp_path / "c.csv").write_text("x,z\n" + "1,0\n" * 5 + "0,1\n" * 5)
    report = label_files(tmp_path / "a.npy", tmp_path / "c.csv", max_length=1)
    assert "| unit 0 | `x` | 1.0000 |" in report


@pytest.mark.parametrize(
    "bad, match",
    [
        ("img4,maybe,1", r"c\.csv: column 'water', line 6: value 'maybe'"),
        ("img4,true", r"c\.csv: line 6 has 2 fields"),
    ],
)
def test_label_files_bad_csv(tmp_path, bad, match):
    act, csv_path = write_files(tmp_path, bad=bad)
    with pytest.raises(ValueError, match=match):
        label_files(act, csv_path)


def test_label_files_mismatch(tmp_path):
    act, csv_path = write_files(tmp_path, order=range(299))
    with pytest.raises(ValueError, match="missing from column 'id'"):
        label_files(act, csv_path)
    with pytest.raises(ValueError, match="not columns of the file"):
        write_files(tmp_path)
        label_files(act, csv_path, spurious=["sky"])
    np.savez(tmp_path / "two.npz", a=np.zeros(3), b=np.zeros(3))
    with pytest.raises(ValueError, match="two.npz: found arrays"):
        label_files(tmp_path / "two.npz", csv_path)
    np.savez(tmp_path / "short.npz", activations=np.zeros(10))
    (tmp_path / "noid.csv").write_text("a\n1\n0\n")
    with pytest.raises(ValueError, match="noid.csv: 2 data rows"):
        label_files(tmp_path / "short.npz", tmp_path / "noid.csv")


def test_format_p():
    assert inv._fmt_p(math.log(0.0123)) == "0.0123"
    assert inv._fmt_p(-1000.0) == "5.1e-435"
    assert inv._fmt_p(float("nan")) == "n/a"
