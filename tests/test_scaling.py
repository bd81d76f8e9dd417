"""Past one machine: searches and INVERT on a Dask cluster, embeddings out of core."""

import tracemalloc
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from dask.sizeof import sizeof
from distributed import Client, LocalCluster, get_task_stream
from numpy.testing import assert_array_equal
from PIL import Image
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

import midlogit.base
from midlogit.backbones import MLP, ConvNet, SkorchEmbedder, cache_info, make_net
from midlogit.base import standardization
from midlogit.cli import main
from midlogit.datasets import LazyImages, make_spurious_gaussians
from midlogit.invert import ConceptLabeler, label_files
from midlogit.invert._files import _load_activations
from midlogit.invert._ranking import _Concepts
from midlogit.pipeline import make_pipeline
from midlogit.recipes import _curation_steps, make_midlogit_pipeline, midlogit_search
from midlogit.selection import LogitBandSelector, class_logits


@pytest.fixture
def client():
    """Two worker processes on loopback, started and stopped around each test (so no
    cluster thread allocates while another test traces memory)."""
    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
            death_timeout=60,
        ) as cluster,
        Client(cluster, timeout=60) as client,
    ):
        yield client


def _embeddings(n=800, seed=0):
    data = make_spurious_gaussians(n_samples=n, random_state=seed)
    X = np.asarray(data.data, dtype=np.float32)
    head = LogisticRegression(max_iter=500).fit(X, data.target)
    return X, data.target, head


def _search(head, **params):
    return midlogit_search(
        head,
        (0.4, 0.8),
        (2, 3),
        scoring="worst_class",
        retrain_from=("band", "all"),
        sampling="weight",
        **params,
    )


def _explanations(labeler):
    return [
        [(str(e.formula), e.auc, e.p_value, e.fraction, e.selection_auc) for e in exps]
        for exps in labeler.explanations_
    ]


def _layer(n=600, units=70, concepts=12, seed=0):
    """Activations of ``units`` units, some driven by concepts, and the concept matrix."""
    rng = np.random.default_rng(seed)
    C = rng.random((n, concepts)) < 0.3
    A = rng.normal(size=(n, units)).astype(np.float32)
    A[:, ::3] += 2 * (C[:, 1] & ~C[:, 4])[:, None]
    A[:, 1::3] += 1.5 * C[:, 2][:, None]
    return A, C


def _memmap(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return np.load(path, mmap_mode="r")


# --------------------------------------------------------------------------- Dask


def test_search_on_dask_gives_the_local_result(client):
    X, y, head = _embeddings()
    local = _search(head).fit(X, y)
    with get_task_stream(client) as tasks, joblib.parallel_backend("dask", scatter=[X, y]):
        remote = _search(head, n_jobs=-1).fit(X, y)
    assert len(tasks.data) >= len(local.cv_results_["params"])
    assert_array_equal(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    assert remote.best_index_ == local.best_index_  # best_params_ holds estimators: no ==
    assert_array_equal(remote.predict(X), local.predict(X))
    # A worker runs BLAS on one thread: the same head up to the order of the sums.
    np.testing.assert_allclose(
        remote.best_estimator_[-1].coef_, local.best_estimator_[-1].coef_, rtol=1e-12
    )


def test_a_frozen_embedder_computes_each_row_once_per_worker(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64)
    net = make_net(MLP(4, 2, hidden=(8,)), max_epochs=3, verbose=0, random_state=0).fit(X, y)
    grid = {
        "logitbandselector__band_width": [0.4, 0.6, 0.8, 1.0],
        "embeddingclusterer__n_clusters": [2, 3],
    }
    pipe = make_midlogit_pipeline(net, random_state=0)
    local = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    with joblib.parallel_backend("dask", scatter=[X, y]):
        remote = GridSearchCV(pipe, grid, cv=2, n_jobs=-1).fit(X, y)
    assert_array_equal(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    computed = client.run(lambda: cache_info()["rows_computed"])
    reused = client.run(lambda: cache_info()["rows_reused"])
    # 16 fits over two workers: each worker's cache is its own, filled once, then reused.
    assert all(0 < rows <= len(X) for rows in computed.values()), computed
    assert sum(reused.values()) > sum(computed.values()), (computed, reused)


def test_labeler_on_dask_gives_the_local_result(client, monkeypatch):
    A, C = _layer()
    params = dict(max_length=2, activation_range=(0.1, 0.9), test_size=0.3, random_state=0)
    local = ConceptLabeler(**params).fit(A, C)
    sent = []
    monkeypatch.setattr(_Concepts, "__getstate__", lambda self: sent.append(self) or vars(self))
    with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        remote = ConceptLabeler(**params, n_jobs=-1).fit(A, C)
    assert len(tasks.data) >= 2  # the units went out in blocks
    # The selection and the test rows' concepts, each pickled once for every block.
    assert len(sent) == 2 and sent[0] is not sent[1]
    assert _explanations(remote) == _explanations(local)
    assert_array_equal(remote.auc_, local.auc_)
    assert_array_equal(remote.activation_thresholds_, local.activation_thresholds_)


def test_label_command_on_a_cluster_gives_the_local_report(client, tmp_path, capsys):
    A, C = _layer(units=70)
    np.save(tmp_path / "layer.npy", A)
    rows = "\n".join(",".join(str(int(v)) for v in row) for row in C)
    header = ",".join(f"c{k}" for k in range(C.shape[1]))
    (tmp_path / "concepts.csv").write_text(f"{header}\n{rows}\n")
    files = [str(tmp_path / "layer.npy"), str(tmp_path / "concepts.csv"), "--max-length", "2"]
    reports = []
    for extra in ([], ["--n-jobs", "2"], ["--scheduler", client.scheduler.address]):
        with get_task_stream(client) as tasks:
            assert main(["label", *files, *extra]) == 0
        reports.append(capsys.readouterr().out)
        assert bool(tasks.data) == ("--scheduler" in extra)
    assert reports[0] == reports[1] == reports[2]
    assert "c1 & ~c4" in reports[0]
    assert main(["label", *files, "--n-jobs", "0"]) == 2
    assert "0 is not a number of workers" in capsys.readouterr().err


@pytest.mark.parametrize("sparse", [False, True])
def test_concepts_are_large_enough_for_dask_to_scatter(sparse):
    # joblib's Dask backend scatters an argument once for all tasks only above 1 kB.
    C = np.random.default_rng(0).random((2000, 50)) < (0.01 if sparse else 0.3)
    concepts = _Concepts(C)
    assert concepts.sparse == sparse
    assert sizeof(concepts) >= (C.sum() * 4 if sparse else C.nbytes) > 1000


# --------------------------------------------------------------------------- memmaps


def test_labeler_on_a_memmap_by_blocks_gives_the_in_memory_result(tmp_path):
    A, C = _layer()
    params = dict(max_length=2, activation_range=(0.2, 1.0), test_size=0.25, random_state=0)
    in_memory = ConceptLabeler(**params).fit(A, C)
    # 600 rows x 64 bytes per entry: a 0.1 MiB working memory gives blocks of 2 units.
    with config_context(working_memory=0.1):
        blocks = ConceptLabeler(**params, n_jobs=2).fit(_memmap(tmp_path, "A.npy", A), C)
    assert _explanations(blocks) == _explanations(in_memory)
    assert_array_equal(blocks.auc_, in_memory.auc_)
    assert_array_equal(blocks.activation_thresholds_, in_memory.activation_thresholds_)


def test_label_files_maps_a_npy_layer_and_reports_as_from_memory(tmp_path):
    A, C = _layer(units=5)
    np.save(tmp_path / "layer.npy", A)
    np.savez(tmp_path / "layer.npz", activations=A)
    header = ",".join(f"c{k}" for k in range(C.shape[1]))
    rows = "\n".join(",".join(str(int(v)) for v in row) for row in C)
    (tmp_path / "concepts.csv").write_text(f"{header}\n{rows}\n")
    loaded, _, _ = _load_activations(tmp_path / "layer.npy")
    while loaded is not None and not isinstance(loaded, np.memmap):
        loaded = loaded.base  # views of views: the file's map is underneath, no copy
    assert loaded is not None
    reports = [
        label_files(tmp_path / name, tmp_path / "concepts.csv", id_column=None, max_length=2)
        for name in ("layer.npy", "layer.npz")
    ]
    assert reports[0] == reports[1] and "c1 & ~c4" in reports[0]


def test_labeler_memory_follows_the_blocks_not_the_layer(tmp_path):
    A, C = _layer(n=20_000, units=512, concepts=6)
    A = _memmap(tmp_path, "A.npy", A)
    with config_context(working_memory=4):
        tracemalloc.start()
        try:
            ConceptLabeler(max_length=1, n_explanations=1).fit(A, C)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 0.5 * A.nbytes, (peak, A.nbytes)


def test_curation_fits_a_memmap_without_copying_it(tmp_path):
    X, y, head = _embeddings(n=40_000)
    X = np.hstack([X] * 16)  # 40,000 x 256 float32: 41 MB
    head = LogisticRegression(max_iter=500).fit(X[:4000], y[:4000])
    pipe = make_pipeline(
        *_curation_steps(head, band_width=0.05, n_clusters=2, sampling="weight", random_state=0)
    )
    E = _memmap(tmp_path, "E.npy", X)
    tracemalloc.start()
    try:
        from_file = pipe.fit(E, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # What is allocated follows the band (a twentieth of the rows): its copy, the
    # standardised copy and scikit-learn's float64 one, some 4x the band; with NumPy 1.25
    # also one float64 block of 8,192 rows for the head's logits (0.42x the matrix in
    # all; 0.23x with NumPy 2). One copy of the whole matrix would pass 1x.
    assert peak < 0.5 * E.nbytes, (peak, E.nbytes)
    coef = from_file[-1].coef_.copy()
    assert_array_equal(pipe.fit(X, y)[-1].coef_, coef)


def test_float32_column_statistics_are_accumulated_in_float64(monkeypatch):
    X = np.random.default_rng(0).normal(3.0, 2.0, size=(20_000, 4)).astype(np.float32)
    monkeypatch.setattr(midlogit.base, "_ROWS_PER_BLOCK", 1000)
    mean, scale = standardization(X)
    assert mean.dtype == scale.dtype == np.float32
    X64 = X.astype(np.float64)
    assert_array_equal(mean, X64.mean(axis=0).astype(np.float32))
    assert_array_equal(scale, X64.std(axis=0).astype(np.float32))


@pytest.mark.parametrize("weighted", [False, True])
def test_column_statistics_by_row_blocks_match_numpys(monkeypatch, weighted):
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(1000, 5)) * [1, 1e-3, 1e3, 1, 0]
    w = rng.random(1000) if weighted else None
    monkeypatch.setattr(midlogit.base, "_ROWS_PER_BLOCK", 64)
    mean, scale = standardization(X, sample_weight=w)
    expected_mean = np.average(X, axis=0, weights=w)
    expected_std = np.sqrt(np.average((X - expected_mean) ** 2, axis=0, weights=w))
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(scale, np.where(expected_std > 0, expected_std, 1.0), rtol=1e-12)


@pytest.mark.parametrize("frame", [False, True])
def test_a_heads_logits_by_row_blocks_equal_one_call(monkeypatch, frame):
    X, y, _ = _embeddings(n=300)
    if frame:
        X = pd.DataFrame(X, columns=[f"e{i}" for i in range(X.shape[1])])
    head = LogisticRegression().fit(X, y)
    monkeypatch.setattr(midlogit.base, "_ROWS_PER_BLOCK", 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a block that lost its column names would warn
        logits, classes = class_logits(head, X, y)
    decision = head.decision_function(X)  # float32: BLAS may round a block differently
    np.testing.assert_allclose(
        logits, np.column_stack([-decision, decision]), rtol=1e-5, atol=1e-6
    )
    assert_array_equal(classes, head.classes_)


def test_a_sampler_that_keeps_every_row_returns_the_input_itself(tmp_path):
    E = _memmap(tmp_path, "E.npy", np.arange(40, dtype=np.float32).reshape(20, 2))
    y = np.arange(20) % 2
    head = LogisticRegression().fit(E, y)
    every, _ = LogitBandSelector(band_width=1.0, estimator=head).fit_resample(E, y)
    assert np.shares_memory(every, E)
    kept, _ = LogitBandSelector(band_width=0.5, estimator=head).fit_resample(E, y)
    assert not np.shares_memory(kept, E) and len(kept) < len(E)


# --------------------------------------------------------------------------- embed_to_npy


@pytest.fixture(scope="module")
def table_embedder():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    net = make_net(MLP(4, 2, hidden=(8,)), max_epochs=2, verbose=0, random_state=0)
    return SkorchEmbedder(net, batch_size=64, random_state=0).fit(X, X[:, 0] > 0), X


def test_embed_to_npy_round_trip_from_an_array(tmp_path, table_embedder):
    embedder, X = table_embedder
    E, L = embedder.embed_to_npy(X, tmp_path / "E.npy", tmp_path / "L.npy", progress=False)
    assert isinstance(E, np.memmap) and not E.flags.writeable
    assert_array_equal(E, embedder.transform(X))
    assert_array_equal(L, embedder.logits(X))
    assert_array_equal(np.load(tmp_path / "E.npy"), E)
    alone, none = embedder.embed_to_npy(X[:70], tmp_path / "E70.npy", progress=False)
    assert none is None and alone.shape == (70, E.shape[1])


def test_embed_to_npy_reads_a_torch_dataset(tmp_path, table_embedder):
    embedder, X = table_embedder
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.zeros(len(X)))
    E, L = embedder.embed_to_npy(dataset, tmp_path / "E.npy", tmp_path / "L.npy", progress=False)
    assert_array_equal(E, embedder.transform(X))
    assert_array_equal(L, embedder.logits(X))


def test_embed_to_npy_reads_lazy_images(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for i in range(12):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
        files.append(path)
    images = LazyImages(files, image_size=8)
    net = make_net(ConvNet(3, 2, image_size=8, penultimate=6), max_epochs=1, verbose=0)
    embedder = SkorchEmbedder(net, batch_size=5, random_state=0).fit(
        np.asarray(images), np.arange(12) % 2
    )
    E, _ = embedder.embed_to_npy(images, tmp_path / "E.npy", progress=False)
    np.testing.assert_allclose(E, embedder.transform(np.asarray(images)), rtol=1e-6)


def test_embed_to_npy_refuses_what_it_cannot_size(tmp_path, table_embedder):
    embedder, X = table_embedder

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(torch.from_numpy(X))

    with pytest.raises(TypeError, match="IterableDataset has no length"):
        embedder.embed_to_npy(Stream(), tmp_path / "E.npy", progress=False)
    with pytest.raises(ValueError, match="must be different files"):
        embedder.embed_to_npy(X, tmp_path / "E.npy", tmp_path / "E.npy", progress=False)
    with pytest.raises(ValueError, match="no rows"):
        embedder.embed_to_npy(X[:0], tmp_path / "E.npy", progress=False)
