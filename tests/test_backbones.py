"""SkorchEmbedder, LinearHead, the modules and the embedding cache."""

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from skorch import NeuralNetClassifier
from threadpoolctl import threadpool_limits
from torch import nn

from midlogit.backbones import (
    MLP,
    ConvNet,
    LinearHead,
    SkorchEmbedder,
    cache_info,
    clear_cache,
    make_net,
    set_cache_limit,
)
from midlogit.pipeline import make_pipeline
from midlogit.recipes import make_midlogit_pipeline, midlogit_search
from midlogit.retraining import LastLayerRetrainer
from midlogit.selection import LogitBandSelector

# pytest-xdist runs two workers on two cores: one torch and one BLAS thread each avoid
# oversubscription, which slows tiny nets and small solvers down many times.
torch.set_num_threads(1)
threadpool_limits(1)


def _table(n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def _images(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(scale=0.3, size=(n, 3, 8, 8)).astype(np.float32)
    X[np.arange(n), y] += 1.0  # the class lights up one colour channel
    return X, y


def _state(net):
    return {k: v.detach().clone() for k, v in net.module_.state_dict().items()}


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def table_net():
    X, y = _table()
    net = make_net(
        MLP(4, 2, hidden=(8,)), max_epochs=5, lr=1e-2, batch_size=32, random_state=0, verbose=0
    )
    return net.fit(X, y)


@pytest.fixture(scope="module")
def image_net():
    X, y = _images()
    net = make_net(
        ConvNet(3, 3, image_size=8, penultimate=16),
        max_epochs=3,
        lr=1e-2,
        batch_size=32,
        random_state=0,
        verbose=0,
    )
    return net.fit(X, y)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    set_cache_limit(256 * 2**20)
    clear_cache()


# ---------------------------------------------------------------- logits and embeddings


@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("which", ["table", "image"])
def test_logits_equal_the_nets_forward(which, cache, table_net, image_net):
    net, (X, _) = (table_net, _table()) if which == "table" else (image_net, _images())
    embedder = SkorchEmbedder(net, frozen=True, batch_size=net.batch_size, cache=cache)
    expected = net.forward(X, training=False).numpy()
    logits = embedder.logits(X)
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(logits, expected)
    # the embedding is the input of the last linear layer, so it gives the logits
    E = embedder.transform(X)
    linear = net.module_.head
    recomputed = linear(torch.from_numpy(E)).detach().numpy()
    np.testing.assert_allclose(recomputed, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("channels", "size", "penultimate"), [(1, 64, 84), (1, 32, 20), (3, 8, 84)]
)
def test_convnet_embedding_shapes(channels, size, penultimate):
    net = make_net(
        ConvNet(channels, 3, image_size=size, penultimate=penultimate), random_state=0, verbose=0
    ).initialize()
    X = np.random.default_rng(0).random((5, channels, size, size))  # float64 on purpose
    embedder = SkorchEmbedder(net, frozen=True)
    E = embedder.transform(X)
    assert E.shape == (5, penultimate) and E.dtype == np.float32
    assert embedder.logits(X).shape == (5, 3)
    features = SkorchEmbedder(net, frozen=True, layer="features").transform(X)
    assert features.shape == (5, net.module_.dense[0].in_features)
    assert features.dtype == np.float32


def test_mlp_embedding_shapes_and_named_layer():
    net = make_net(MLP(6, 4, hidden=(16, 8)), random_state=0, verbose=0).initialize()
    X = np.random.default_rng(0).normal(size=(7, 6))
    assert SkorchEmbedder(net, frozen=True).transform(X).shape == (7, 8)
    first = SkorchEmbedder(net, frozen=True, layer="body.0").transform(X)
    expected = net.module_.body[0](torch.from_numpy(X.astype(np.float32))).detach().numpy()
    np.testing.assert_allclose(first, expected, rtol=1e-6)


def test_embed_returns_both_from_one_pass(table_net):
    X, _ = _table()
    embedder = SkorchEmbedder(table_net, frozen=True)
    E, logits = embedder.embed(X)
    assert cache_info()["rows_computed"] == X.shape[0]
    np.testing.assert_array_equal(embedder.transform(X), E)
    np.testing.assert_array_equal(embedder.logits(X), logits)
    assert cache_info()["rows_computed"] == X.shape[0]  # no second pass


def test_eval_mode_restored_and_batches_agree(image_net):
    X, _ = _images()
    image_net.module_.train()
    small = SkorchEmbedder(image_net, frozen=True, batch_size=7, cache=False).transform(X)
    assert image_net.module_.training
    image_net.module_.eval()
    large = SkorchEmbedder(image_net, frozen=True, batch_size=512, cache=False).transform(X)
    np.testing.assert_allclose(small, large, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- head


def test_binary_head_reproduces_logit_difference(table_net):
    X, _ = _table()
    embedder = SkorchEmbedder(table_net, frozen=True)
    head = embedder.head()
    E, logits = embedder.embed(X)
    assert isinstance(head, LinearHead) and head.coef_.shape == (1, 8)
    np.testing.assert_allclose(
        head.decision_function(E), logits[:, 1] - logits[:, 0], rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        head.predict_proba(E), table_net.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    assert np.array_equal(head.predict(E), table_net.predict(X))
    assert head.classes_.tolist() == [0, 1]


def test_multiclass_head_reproduces_logits(image_net):
    X, _ = _images()
    embedder = SkorchEmbedder(image_net, frozen=True)
    head = embedder.head()
    E, logits = embedder.embed(X)
    assert head.coef_.shape == (3, 16)
    np.testing.assert_allclose(head.decision_function(E), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head.predict_proba(E), softmax(logits, axis=1), atol=1e-6)


def test_head_classes_follow_the_labels_of_an_erm_fit():
    X, y = _table()
    labels = np.array(["neg", "pos"])[y]
    net = make_net(MLP(4, 2, hidden=(8,)), max_epochs=2, random_state=0, verbose=0)
    embedder = SkorchEmbedder(net, random_state=0).fit(X, labels)
    assert embedder.classes_.tolist() == ["neg", "pos"]
    head = embedder.head()
    assert head.classes_.tolist() == ["neg", "pos"]
    assert set(head.predict(embedder.transform(X))) <= {"neg", "pos"}


def test_linear_head_fit_is_a_plain_logistic_regression():
    X, y = _table()
    head = LinearHead(C=0.5).fit(X, y)
    reference = LogisticRegression(C=0.5, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(head.coef_, reference.coef_, rtol=1e-6)
    # float32 embeddings give float32 logits (scikit-learn may sum in float64)
    np.testing.assert_allclose(
        head.decision_function(X), reference.decision_function(X), rtol=1e-5, atol=1e-6
    )


# ------------------------------------------------------------------ frozen, search, cache


def _grid_search(net, X, y, grid, cache):
    pipe = make_midlogit_pipeline(net, band_width=0.6, n_clusters=2, random_state=0)
    pipe.set_params(skorchembedder__cache=cache)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    return pipe, GridSearchCV(pipe, grid, cv=cv).fit(X, y)


def test_grid_search_keeps_the_backbone_and_computes_each_distinct_row_once(table_net):
    X, y = _table()
    # ten repeated rows: distinct rows are computed once, wherever they appear
    X, y = np.concatenate([X, X[:10]]), np.concatenate([y, y[:10]])
    n_distinct = np.unique(X, axis=0).shape[0]
    before = _state(table_net)
    grid = {
        "logitbandselector__band_width": [0.4, 0.6, 0.8],
        "embeddingclusterer__n_clusters": [1, 2, 3],
    }
    pipe, search = _grid_search(table_net, X, y, grid, cache=True)
    info = cache_info()
    assert info["rows_computed"] == n_distinct == X.shape[0] - 10
    assert info["rows_reused"] > 0

    embedder = search.best_estimator_.named_steps["skorchembedder"]
    assert embedder is pipe.named_steps["skorchembedder"]
    assert embedder.net_ is table_net
    assert _same_state(before, _state(table_net))
    selector = search.best_estimator_.named_steps["logitbandselector"]
    assert isinstance(selector.estimator, FrozenEstimator)
    weight = table_net.module_.head.weight.detach().numpy()  # float32 stays float32
    np.testing.assert_array_equal(selector.estimator.coef_, (weight[1] - weight[0])[None])


def test_without_the_cache_every_fit_and_score_runs_the_backbone(table_net):
    X, y = _table()
    grid = {"logitbandselector__band_width": [0.4, 0.8]}
    _grid_search(table_net, X, y, grid, cache=False)
    # 2 candidates x 3 folds x (fit on the train fold + score on the test fold) + refit
    assert cache_info()["rows_computed"] == 2 * 3 * X.shape[0] + X.shape[0]


def test_cache_returns_what_the_backbone_computes(image_net):
    X, _ = _images()
    direct = SkorchEmbedder(image_net, frozen=True, cache=False).embed(X)
    cached = SkorchEmbedder(image_net, frozen=True)
    cached.embed(X[:40])  # warm half the rows
    mixed = cached.embed(X[::-1])
    assert cache_info()["rows_computed"] == X.shape[0] + X.shape[0]  # 90 direct + 40 + 50
    np.testing.assert_array_equal(mixed[0], direct[0][::-1])
    np.testing.assert_array_equal(mixed[1], direct[1][::-1])


def test_cache_is_keyed_on_the_weights_and_the_layer(table_net):
    X, _ = _table()
    net = pickle.loads(pickle.dumps(table_net))
    embedder = SkorchEmbedder(net, frozen=True)
    first = embedder.transform(X)
    SkorchEmbedder(net, frozen=True, layer="body.0").transform(X)
    assert cache_info()["rows_computed"] == 2 * X.shape[0]
    with torch.no_grad():
        net.module_.body[0].bias.add_(1.0)
    changed = embedder.transform(X)
    assert cache_info()["rows_computed"] == 3 * X.shape[0]
    assert not np.array_equal(first, changed)


def test_cache_is_bounded_by_bytes(table_net):
    X, _ = _table()
    embedder = SkorchEmbedder(table_net, frozen=True)
    row_bytes = 8 + 4 * (8 + 2)  # key, embedding, logits
    set_cache_limit(60 * row_bytes)
    embedder.transform(X[:50])
    embedder.transform(X[50:100])  # evicts the first block
    info = cache_info()
    assert info["n_bytes"] <= 60 * row_bytes and info["n_blocks"] == 1
    embedder.transform(X[:50])
    assert cache_info()["rows_computed"] == 150
    embedder.transform(X[:50])
    assert cache_info()["rows_computed"] == 150
    set_cache_limit(0)
    assert cache_info()["n_bytes"] == 0


# ----------------------------------------------------------------- training and with_head


def test_erm_fit_trains_a_clone_and_leaves_the_users_net(capsys):
    X, y = _table()
    module = MLP(4, 2, hidden=(8,))
    weights = {k: v.clone() for k, v in module.state_dict().items()}
    net = make_net(module, max_epochs=2, verbose=1)
    embedder = SkorchEmbedder(net, random_state=0).fit(X, y)
    assert "train_loss" in capsys.readouterr().out
    assert embedder.net_ is not net and not getattr(net, "initialized_", False)
    assert _same_state(weights, module.state_dict())
    quiet = make_net(MLP(4, 2, hidden=(8,)), max_epochs=2, verbose=0)
    SkorchEmbedder(quiet, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_random_state_makes_training_deterministic():
    X, y = _images()
    rng_state = torch.random.get_rng_state()

    def fit(seed, module_seed=0):
        torch.manual_seed(module_seed)  # a different module instance each time
        module = ConvNet(3, 3, image_size=8, penultimate=16)
        net = make_net(
            module,
            max_epochs=2,
            batch_size=16,
            random_state=0,
            reset_parameters=True,
            verbose=0,
            valid_fraction=0.2,
        )
        embedder = SkorchEmbedder(net, random_state=seed, cache=False).fit(X, y)
        return embedder.transform(X), _state(embedder.net_)

    torch.random.set_rng_state(rng_state)
    E1, state1 = fit(0, module_seed=1)
    E2, state2 = fit(0, module_seed=2)
    E3, _ = fit(1)
    assert _same_state(state1, state2)
    np.testing.assert_array_equal(E1, E2)
    assert not np.array_equal(E1, E3)


def test_fit_leaves_the_global_torch_rng_alone():
    X, y = _table()
    net = make_net(MLP(4, 2, hidden=(8,)), max_epochs=1, verbose=0)
    before = torch.random.get_rng_state()
    SkorchEmbedder(net, random_state=0).fit(X, y)
    assert torch.equal(before, torch.random.get_rng_state())


def test_with_head_predicts_as_the_pipeline(table_net):
    X, y = _table()
    before = _state(table_net)
    pipe = make_midlogit_pipeline(table_net, band_width=0.6, n_clusters=2, random_state=0)
    pipe.fit(X, y)
    embedder = pipe.named_steps["skorchembedder"]
    retrainer = pipe.named_steps["lastlayerretrainer"]
    new_net = embedder.with_head(retrainer)
    assert new_net is not table_net
    assert _same_state(before, _state(table_net))
    X_new, _ = _table(seed=1)
    np.testing.assert_array_equal(retrainer.classes_[new_net.predict(X_new)], pipe.predict(X_new))
    diff = np.diff(new_net.forward(X_new, training=False).numpy(), axis=1).ravel()
    np.testing.assert_allclose(diff, pipe.decision_function(X_new), rtol=1e-4, atol=1e-4)


def test_with_head_multiclass(image_net):
    X, y = _images()
    embedder = SkorchEmbedder(image_net, frozen=True)
    E = embedder.transform(X)
    retrainer = LastLayerRetrainer(random_state=0).fit(E, y)
    new_net = embedder.with_head(retrainer)
    np.testing.assert_array_equal(new_net.predict(X), retrainer.predict(E))
    assert image_net.module_.head is not new_net.module_.head


def test_pickled_embedder_gives_the_same_embeddings(image_net):
    X, y = _images()
    net = make_net(
        ConvNet(3, 3, image_size=8, penultimate=16), max_epochs=1, random_state=0, verbose=0
    )
    embedder = SkorchEmbedder(net, random_state=0).fit(X, y)
    E = embedder.transform(X)
    restored = pickle.loads(pickle.dumps(embedder))
    clear_cache()
    np.testing.assert_array_equal(restored.transform(X), E)
    assert cache_info()["rows_computed"] == X.shape[0]
    frozen = pickle.loads(pickle.dumps(SkorchEmbedder(image_net, frozen=True).fit(X)))
    np.testing.assert_array_equal(frozen.logits(X), image_net.forward(X).numpy())


def test_make_midlogit_pipeline_wires_the_head(table_net):
    pipe = make_midlogit_pipeline(table_net, band_width=0.2, n_clusters=3, C=0.1, random_state=0)
    names = [name for name, _ in pipe.steps]
    assert names == [
        "skorchembedder",
        "logitbandselector",
        "embeddingclusterer",
        "lastlayerretrainer",
    ]
    assert pipe.named_steps["skorchembedder"].frozen
    assert pipe.named_steps["logitbandselector"].band_width == 0.2
    assert pipe.named_steps["embeddingclusterer"].n_clusters == 3
    assert pipe.named_steps["lastlayerretrainer"].C == 0.1
    X, y = _table()
    pipe.fit(X, y)
    selector = pipe.named_steps["logitbandselector"]
    logits = SkorchEmbedder(table_net, frozen=True).logits(X)
    np.testing.assert_allclose(
        selector.logits_[:, 1], logits[:, 1] - logits[:, 0], rtol=1e-5, atol=1e-5
    )


def test_make_midlogit_pipeline_is_a_setting_of_the_search(table_net):
    # One set of defaults: the pipeline's steps are the search's (band, average) setting.
    pipe = make_midlogit_pipeline(table_net, band_width=0.4, n_clusters=4, random_state=0)
    head = pipe.named_steps["skorchembedder"].head()
    search = midlogit_search(head, (0.4,), (4,), retrain_from="band", sampling="average")
    setting = {name: values[0] for name, values in search.param_grid[0].items()}
    candidate = clone(search.estimator).set_params(**setting)
    for (name, step), (_, expected) in zip(pipe.steps[1:], candidate.steps):
        params, wanted = step.get_params(deep=False), expected.get_params(deep=False)
        params.pop("estimator", None), wanted.pop("estimator", None)  # FrozenEstimator(head)
        assert params == wanted, name


def test_make_net_seeds_the_initial_weights():
    def fresh(seed):
        net = make_net(MLP(4, 2), random_state=seed, reset_parameters=True, verbose=0)
        return net.initialize()

    assert _same_state(_state(fresh(3)), _state(fresh(3)))
    assert not _same_state(_state(fresh(3)), _state(fresh(4)))


def test_make_net_keeps_the_weights_of_a_trained_module():
    trained = make_net(MLP(4, 2, hidden=(8,)), max_epochs=3, verbose=0, random_state=0)
    X, y = _table()
    module = trained.fit(X, y).module_
    before = _state(trained)
    net = make_net(module, random_state=0, verbose=0, valid_fraction=0.2).initialize()
    assert _same_state(before, _state(net))
    with pytest.raises(ValueError, match="reset_parameters=True needs random_state"):
        make_net(module, reset_parameters=True)
    with pytest.raises(ValueError, match="reset_parameters must be True or False"):
        make_net(module, random_state=0, reset_parameters="yes")


# ----------------------------------------------------------------------------- errors


class _NoLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, X):
        return self.pool(self.conv(X)).flatten(1)


def test_error_messages(table_net, image_net):
    X, y = _table()
    images, _ = _images()
    with pytest.raises(ValueError, match=r"layer='nope' is not a submodule.*'body.0'"):
        SkorchEmbedder(table_net, frozen=True, layer="nope").transform(X)
    no_linear = make_net(_NoLinear(), verbose=0).initialize()
    pictures = np.zeros((3, 1, 6, 6), dtype=np.float32)
    with pytest.raises(ValueError, match=r"has no nn.Linear.*pass layer=.*'conv'"):
        SkorchEmbedder(no_linear, frozen=True).transform(pictures)
    assert SkorchEmbedder(no_linear, frozen=True, layer="pool").transform(pictures).shape == (3, 2)
    with pytest.raises(ValueError, match="not initialized: call net.fit"):
        SkorchEmbedder(make_net(MLP(4, 2), verbose=0), frozen=True).transform(X)
    with pytest.raises(ValueError, match="frozen=True needs a trained net; pass net="):
        SkorchEmbedder(frozen=True).fit(X)
    with pytest.raises(ValueError, match="net must be a skorch.NeuralNetClassifier"):
        SkorchEmbedder(LogisticRegression()).fit(X, y)
    with pytest.raises(NotFittedError, match="call fit"):
        SkorchEmbedder(make_net(MLP(4, 2), verbose=0)).transform(X)
    with pytest.raises(ValueError, match="could not take inputs of shape"):
        SkorchEmbedder(image_net, frozen=True).transform(X)
    fitted = SkorchEmbedder(table_net, frozen=True).fit(X)
    with pytest.raises(ValueError, match="X has 3 features"):
        fitted.transform(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(np.where(np.eye(150, 4, dtype=bool), np.nan, X))
    with pytest.raises(ValueError, match="y holds labels \\[7\\]"):
        SkorchEmbedder(table_net, frozen=True).fit(X, np.full(150, 7))
    with pytest.raises(ValueError, match="y holds 1 class"):
        SkorchEmbedder(make_net(MLP(4, 2), verbose=0)).fit(X, np.zeros(150))
    with pytest.raises(ValueError, match="has 3 outputs but y holds 2 classes"):
        SkorchEmbedder(make_net(MLP(4, 3), max_epochs=1, verbose=0)).fit(X, y)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        SkorchEmbedder(table_net, frozen=True, batch_size=0).transform(X)
    with pytest.raises(ValueError, match="net=None builds an MLP for 2-D tables"):
        SkorchEmbedder().fit(images, np.arange(90) % 3)
    with pytest.raises(ValueError, match="valid_fraction must be in"):
        make_net(MLP(4, 2), valid_fraction=1.5)
    with pytest.raises(ValueError, match="max_bytes must be a non-negative int"):
        set_cache_limit(-1)


def test_head_and_with_head_errors(table_net):
    X, y = _table()
    with pytest.raises(ValueError, match="head\\(\\) needs the default embedding"):
        SkorchEmbedder(table_net, frozen=True, layer="body.0").head()
    embedder = SkorchEmbedder(table_net, frozen=True)
    with pytest.raises(NotFittedError):
        embedder.with_head(LastLayerRetrainer())
    with pytest.raises(ValueError, match="fitted on 4 features but the net's last layer"):
        embedder.with_head(LastLayerRetrainer().fit(X, y))
    E = embedder.transform(X)
    with pytest.raises(ValueError, match="differ from the net's classes"):
        embedder.with_head(LastLayerRetrainer().fit(E, y + 1))
    with pytest.raises(ValueError, match="must have to_torch"):
        embedder.with_head(LogisticRegression().fit(E, y))
    one_output = make_net(MLP(4, 1), verbose=0).initialize()
    with pytest.raises(ValueError, match="has 1 output; head\\(\\) needs one logit"):
        SkorchEmbedder(one_output, frozen=True).head()
    with pytest.raises(ValueError, match="weight must have shape"):
        LinearHead.from_weights(np.zeros((1, 3)), np.zeros(1), [0])
    with pytest.raises(ValueError, match="one entry per row of weight"):
        LinearHead.from_weights(np.zeros((2, 3)), np.zeros(3), [0, 1])
    with pytest.raises(ValueError, match="y holds 1 class"):
        LinearHead().fit(X, np.zeros(150))


# ---------------------------------------------------------------------- torch boundary


def test_the_core_imports_without_torch():
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys

        class HideTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "skorch"):
                    raise ImportError(f"{name} is hidden for this test")
                return None

        sys.meta_path.insert(0, HideTorch())
        import midlogit
        names = [m.name for m in pkgutil.iter_modules(midlogit.__path__)
                 if m.name != "backbones"]
        for name in names:
            importlib.import_module(f"midlogit.{name}")
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "skorch")]
        try:
            import midlogit.backbones
        except ImportError:
            print("blocked", sorted(names))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("blocked")
    for core in ("selection", "clustering", "retraining", "pipeline", "metrics"):
        assert f"'{core}'" in result.stdout


# ----------------------------------------------------------------------- pretraining


def test_convnet_new_parameters_keep_the_old_signature():
    from midlogit.backbones import sprite_convnet

    old = ConvNet(1, 3, 32, 1.0, 84, 0.2)
    assert isinstance(old.features[3], nn.AvgPool2d)
    assert old.features[0].out_channels == 6
    new = ConvNet(1, 3, image_size=32, channels=(16, 32), pooling="max", conv_dropout=0.0)
    assert isinstance(new.features[3], nn.MaxPool2d)
    assert [new.features[i].out_channels for i in (0, 4)] == [16, 32]
    dropouts = [m for m in new.features if isinstance(m, nn.Dropout)]
    assert [d.p for d in dropouts] == [0.0]
    assert new(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
    recipe = sprite_convnet(5, image_size=16)
    assert recipe(torch.zeros(1, 1, 16, 16)).shape == (1, 5)
    assert isinstance(recipe.features[3], nn.MaxPool2d)
    with pytest.raises(ValueError, match="pooling"):
        ConvNet(pooling="min")
    with pytest.raises(ValueError, match="channels"):
        ConvNet(channels=(4,))


_TINY = {"image_size": 16, "n_samples": 48, "max_epochs": 1, "batch_size": 16}


def test_pretrained_sprite_net_cache_key_and_reload(tmp_path):
    from midlogit.backbones import pretrained_sprite_net

    first = pretrained_sprite_net(**_TINY, cache_dir=tmp_path, random_state=0)
    assert first.pretraining_["loaded"] is False
    assert len(list(tmp_path.glob("sprite_net-*.pt"))) == 1
    second = pretrained_sprite_net(**_TINY, cache_dir=tmp_path, random_state=0)
    assert second.pretraining_["loaded"] is True
    assert second.pretraining_["path"] == first.pretraining_["path"]
    assert _same_state(
        {k: v for k, v in first.state_dict().items()},
        {k: v for k, v in second.state_dict().items()},
    )
    # any parameter changes the key, so nothing stale is loaded
    other = pretrained_sprite_net(**_TINY, cache_dir=tmp_path, random_state=1)
    assert other.pretraining_["loaded"] is False
    assert other.pretraining_["path"] != first.pretraining_["path"]
    label = pretrained_sprite_net(**_TINY, cache_dir=tmp_path, label="kind")
    assert label.pretraining_["loaded"] is False and label.head.out_features == 8
    assert len(list(tmp_path.glob("sprite_net-*.pt"))) == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_pretrained_sprite_net_is_reproducible_without_cache(tmp_path):
    from midlogit.backbones import pretrained_sprite_net

    a = pretrained_sprite_net(**_TINY, cache=False, random_state=3)
    b = pretrained_sprite_net(**_TINY, cache=False, random_state=3)
    assert a.pretraining_["path"] is None and not list(tmp_path.iterdir())
    assert _same_state(a.state_dict(), b.state_dict())
    with pytest.raises(ValueError, match="label must be"):
        pretrained_sprite_net(label="shape")
    with pytest.raises(ValueError, match="random_state must be an int"):
        pretrained_sprite_net(random_state=None)


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from midlogit.backbones import default_cache_dir, pretrained_sprite_net

    monkeypatch.delenv("MIDLOGIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "midlogit"
    monkeypatch.setenv("MIDLOGIT_CACHE_DIR", str(tmp_path / "own"))
    assert default_cache_dir() == tmp_path / "own"
    net = pretrained_sprite_net(**_TINY)
    assert net.pretraining_["path"].startswith(str(tmp_path / "own"))


def _pretrained(tmp_path):
    from midlogit.backbones import pretrained_sprite_net

    return pretrained_sprite_net(**_TINY, cache_dir=tmp_path, random_state=0)


@pytest.mark.parametrize("body_lr", [0.0, 1e-4, None])
def test_finetune_through_skorch_embedder(tmp_path, body_lr):
    from midlogit.backbones import make_finetune_net
    from midlogit.datasets import make_waterbirds_like

    pretrained = _pretrained(tmp_path)
    before = _state_of(pretrained)
    data = make_waterbirds_like(96, split="test", image_size=16, random_state=0)
    net = make_finetune_net(pretrained, 2, max_epochs=2, body_lr=body_lr, random_state=0)
    embedder = SkorchEmbedder(net, random_state=0).fit(data.data, data.target)
    assert _same_state(before, _state_of(pretrained))  # the pretrained net is untouched
    E = embedder.transform(data.data)
    assert E.shape == (96, 84) and E.dtype == np.float32
    assert embedder.head().coef_.shape[1] == 84
    after = embedder.net_.module_.state_dict()
    # weights and batch-norm statistics; the batch counter always counts
    body = [k for k in before if not k.startswith("head.") and "num_batches" not in k]
    body_same = all(torch.equal(before[k], after[k]) for k in body)
    assert body_same == (body_lr == 0.0)
    # the same seed gives the same fine-tuned net
    again = SkorchEmbedder(
        make_finetune_net(pretrained, 2, max_epochs=2, body_lr=body_lr, random_state=0),
        random_state=0,
    ).fit(data.data, data.target)
    assert np.array_equal(again.transform(data.data), E)


def test_finetune_body_lr_moves_the_body_less(tmp_path):
    from midlogit.backbones import make_finetune_net
    from midlogit.datasets import make_waterbirds_like

    pretrained = _pretrained(tmp_path)
    data = make_waterbirds_like(96, split="test", image_size=16, random_state=0)
    before = _state_of(pretrained)
    moved = {}
    for body_lr in (1e-5, 1e-3):
        net = make_finetune_net(pretrained, 2, max_epochs=2, body_lr=body_lr, random_state=0)
        after = SkorchEmbedder(net, random_state=0).fit(data.data, data.target).net_.module_
        weight = after.features[0].weight.detach()
        moved[body_lr] = float((weight - before["features.0.weight"]).abs().max())
    assert 0 < moved[1e-5] < moved[1e-3]


def test_finetune_errors():
    from midlogit.backbones import make_finetune_net

    with pytest.raises(ValueError, match="attribute 'head'"):
        make_finetune_net(nn.Sequential(nn.Linear(3, 2)), 2)
    with pytest.raises(ValueError, match="body_lr"):
        make_finetune_net(ConvNet(image_size=16), 2, body_lr=-1.0)


def _state_of(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_feature_names_out_name_every_embedding_dimension(table_net, image_net):
    X, y = _table()
    embedder = SkorchEmbedder(table_net, frozen=True)
    names = embedder.get_feature_names_out()
    assert names.tolist() == [f"skorchembedder{i}" for i in range(embedder.transform(X).shape[1])]
    frame = embedder.fit(X, y).set_output(transform="pandas").transform(X)
    assert frame.columns.tolist() == names.tolist()
    np.testing.assert_array_equal(frame.to_numpy(), embedder.embed(X)[0])
    X_img, y_img = _images()
    conv = SkorchEmbedder(image_net, layer="features", frozen=True)
    with pytest.raises(NotFittedError, match="after fit"):
        conv.get_feature_names_out()
    width = conv.fit(X_img, y_img).transform(X_img).shape[1]
    assert conv.get_feature_names_out().size == width == conv.n_embedding_dims_


class OutputLayerFirst(nn.Module):
    """A hand-written module that registers its output layer before its body."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(8, 2)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())

    def forward(self, X):
        return self.out(self.body(X))


def test_output_layer_is_found_by_the_forward_pass_not_registration_order():
    X, y = _table()
    net = make_net(OutputLayerFirst(), max_epochs=5, lr=1e-2, verbose=0, random_state=0)
    net.fit(X, y)
    embedder = SkorchEmbedder(net, frozen=True)
    with pytest.raises(ValueError, match=r"'body.0'.*8 outputs.*2 classes.*fit\(X\)"):
        embedder.head()
    embedder.fit(X, y)
    assert embedder.layer_ == "out"
    embeddings, logits = embedder.embed(X)
    assert embeddings.shape == (y.size, 8)
    head = embedder.head()
    np.testing.assert_allclose(
        head.decision_function(embeddings), logits[:, 1] - logits[:, 0], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(head.predict(embeddings), net.predict(X))
    # Training through the embedder works on such a module too.
    trained = SkorchEmbedder(
        make_net(OutputLayerFirst(), max_epochs=2, verbose=0, random_state=0), random_state=0
    ).fit(X, y)
    assert trained.layer_ == "out" and trained.transform(X).shape == (y.size, 8)


def test_make_net_cosine_schedule_anneals_the_learning_rate():
    X, y = _table()
    net = make_net(
        MLP(4, 2, hidden=(8,)),
        max_epochs=4,
        lr=0.1,
        lr_schedule="cosine",
        random_state=0,
        verbose=0,
    )
    embedder = SkorchEmbedder(net, random_state=0).fit(X, y)
    lrs = [group["lr"] for group in embedder.net_.optimizer_.param_groups]
    assert all(lr < 1e-6 for lr in lrs)  # annealed to zero after max_epochs
    plain = SkorchEmbedder(
        make_net(MLP(4, 2, hidden=(8,)), max_epochs=4, lr=0.1, random_state=0, verbose=0),
        random_state=0,
    ).fit(X, y)
    assert plain.net_.optimizer_.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="lr_schedule"):
        make_net(MLP(4, 2), lr_schedule="step")


# ------------------------------------------------------- a model someone already trained


class SoftmaxAtTheEnd(nn.Module):
    """Returns probabilities, as modules trained with skorch's default NLLLoss do."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.out = nn.Linear(8, 2)

    def forward(self, X):
        return torch.softmax(self.out(self.body(X)), dim=1)


@pytest.mark.parametrize("frozen", [True, False])
def test_a_module_returning_probabilities_is_refused(frozen):
    X, y = _table()
    net = NeuralNetClassifier(SoftmaxAtTheEnd, max_epochs=1, verbose=0, train_split=None)
    if frozen:
        net.fit(X, y)
    with pytest.raises(ValueError, match="returns probabilities .*Remove the final softmax"):
        SkorchEmbedder(net, frozen=frozen, random_state=0).fit(X, y)


def test_a_module_returning_logits_passes_the_probability_check(table_net):
    X, y = _table()
    SkorchEmbedder(table_net, frozen=True).fit(X, y)  # logits of two classes: accepted


def _trained_module():
    """A trained plain torch module (what a user has), three classes."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    X, y = _table()
    y = (X[:, 0] > 0.5).astype(int) + (X[:, 1] > 0.5)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(50):
        optimizer.zero_grad()
        nn.functional.cross_entropy(module(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        optimizer.step()
    return module, X, y


def test_from_module_wraps_a_trained_torch_module():
    module, X, y = _trained_module()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    embedder = SkorchEmbedder.from_module(module, classes=["a", "b", "c"])
    E = embedder.transform(X)
    with torch.no_grad():
        expected_logits = module(torch.from_numpy(X)).numpy()
        expected_E = module[1](module[0](torch.from_numpy(X))).numpy()
    np.testing.assert_allclose(E, expected_E, rtol=1e-6)
    head = embedder.head()
    np.testing.assert_allclose(head.decision_function(E), expected_logits, rtol=1e-5, atol=1e-5)
    assert head.classes_.tolist() == ["a", "b", "c"]
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    labels = np.array(["a", "b", "c"])[y]
    pipe = make_pipeline(
        embedder,
        LogitBandSelector(estimator=head, band_width=0.8, random_state=0),
        LastLayerRetrainer(random_state=0),
    )
    assert pipe.fit(X, labels).score(X, labels) > 0.8


def test_from_module_errors():
    module, _, _ = _trained_module()
    with pytest.raises(ValueError, match="module must be a torch.nn.Module instance"):
        SkorchEmbedder.from_module(nn.Sequential)
    with pytest.raises(ValueError, match="classes names 2 labels but .* 3 outputs"):
        SkorchEmbedder.from_module(module, classes=[0, 1])
    with pytest.raises(ValueError, match=r"plain torch module .*from_module"):
        SkorchEmbedder(module, frozen=True).transform(np.zeros((2, 4), dtype=np.float32))


def test_from_module_fine_tunes_a_copy():
    module, X, y = _trained_module()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    embedder = SkorchEmbedder.from_module(module, frozen=False, max_epochs=2, random_state=0).fit(
        X, y
    )
    assert embedder.transform(X).shape == (X.shape[0], 16)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


@pytest.mark.parametrize("wrap", [False, True], ids=["head", "FrozenEstimator(head)"])
def test_head_survives_cloning_in_a_grid_search(table_net, wrap):
    X, y = _table()
    embedder = SkorchEmbedder(table_net, frozen=True).fit(X, y)
    E = embedder.transform(X)
    head = embedder.head()
    assert clone(head) is head
    estimator = FrozenEstimator(head) if wrap else head
    pipe = make_pipeline(
        LogitBandSelector(estimator=estimator, random_state=0), LastLayerRetrainer()
    )
    search = GridSearchCV(
        pipe, {"logitbandselector__band_width": [0.4, 0.8]}, cv=3, error_score="raise"
    ).fit(E, y)
    selector = search.best_estimator_.named_steps["logitbandselector"]
    # the band was cut on the net's own logits (binary: columns -d and d)
    np.testing.assert_allclose(selector.logits_[:, 1], head.decision_function(E), rtol=1e-6)
    # fit leaves a frozen head as it is
    coef = head.coef_.copy()
    head.fit(E[:20], 1 - y[:20])
    np.testing.assert_array_equal(head.coef_, coef)


def test_head_keeps_float32_embeddings_float32(table_net):
    X, y = _table()
    embedder = SkorchEmbedder(table_net, frozen=True).fit(X, y)
    E = embedder.transform(X)
    head = embedder.head()
    assert head.coef_.dtype == head.intercept_.dtype == np.float32
    for method in ("decision_function", "predict_proba"):
        assert getattr(head, method)(E).dtype == np.float32
    assert head.decision_function(E.astype(np.float64)).dtype == np.float64
    fitted = LinearHead().fit(E, y)
    assert fitted.coef_.dtype == np.float32
    assert fitted.decision_function(E).dtype == np.float32
    np.testing.assert_allclose(
        head.decision_function(E),
        (embedder.logits(X)[:, 1] - embedder.logits(X)[:, 0]),
        rtol=1e-5,
        atol=1e-5,
    )


def test_the_demo_pretraining_is_shipped_and_read_from_the_package(tmp_path):
    from midlogit.backbones import pretrained_sprite_net
    from midlogit.experiments.demo import PRETRAINING

    # an empty user cache: the demo's weights come from the package, not from training
    module = pretrained_sprite_net(**PRETRAINING, cache_dir=tmp_path)
    assert module.pretraining_["loaded"] is True
    assert Path(module.pretraining_["path"]).parent.name == "weights"
    assert not any(tmp_path.iterdir())
