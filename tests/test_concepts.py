"""Concepts from known factors, and a logit explained over all rows and over its band."""

import numpy as np
import pytest

from midlogit.concepts import dataset_concepts, explain_logit, make_concepts
from midlogit.datasets import load_celeba, make_biased_dsprites, make_waterbirds_like


def test_categorical_factors_are_one_hot_and_numeric_ones_binned():
    data = make_biased_dsprites(300, bias=0.0, image_size=16, random_state=0)
    concepts = make_concepts(data.latents, n_bins=3, names={"shape": list(data.target_names)})
    names = concepts.concept_names.tolist()
    assert {"shape=square", "shape=ellipse", "shape=heart"} <= set(names)
    C = concepts.data
    assert C.dtype == bool and C.shape == (300, len(names))
    # every factor's concepts partition the rows
    for column in np.unique(concepts.columns):
        np.testing.assert_array_equal(C[:, concepts.columns == column].sum(axis=1), 1)
    np.testing.assert_array_equal(C[:, names.index("shape=heart")], data.target == 2)
    # a numeric factor with many values: quantile bins of about a third of the rows each
    x_bins = C[:, concepts.columns == "pos_x"]
    assert x_bins.shape[1] == 3
    assert np.all(np.abs(x_bins.mean(axis=0) - 1 / 3) < 0.1)


def test_factors_must_be_aligned_one_dimensional_columns():
    with pytest.raises(ValueError, match="one entry per row"):
        make_concepts({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(ValueError, match="non-numeric"):
        make_concepts({"id": np.array([f"r{i}" for i in range(20)])})
    with pytest.raises(TypeError, match="DataFrame, a dict"):
        make_concepts([1, 2, 3])
    with pytest.raises(ValueError, match="n_bins"):
        make_concepts({"a": np.arange(20.0)}, n_bins=1)


def test_the_band_explanation_reads_only_the_band_rows():
    rng = np.random.default_rng(1)
    n = 4000
    shape = rng.random(n) < 0.5
    marker = rng.random(n) < 0.5
    logit = 2.0 * shape + rng.normal(size=n)
    # in the middle of the logit's range only, rows with the marker rank higher
    lo, hi = np.quantile(logit, [0.35, 0.65])
    middle = (logit >= lo) & (logit <= hi)
    logit[middle & marker] += 0.3 * (hi - lo)
    C = np.c_[shape, ~shape, marker, ~marker]
    names = ["shape", "not shape", "marker", "no marker"]
    result = explain_logit(logit, C, concept_names=names, band_width=0.3, max_length=1)
    assert str(result.all.best.formula) == "shape"
    assert result.all.best.auc > 0.9
    band_auc = dict(zip(names, result.band.concept_auc))
    all_auc = dict(zip(names, result.all.concept_auc))
    assert band_auc["marker"] > 0.6 > all_auc["marker"]
    assert result.band.labeler.activation_range == pytest.approx((0.35, 0.65))


def test_noise_gives_no_finding():
    rng = np.random.default_rng(2)
    C = rng.random((1000, 6)) < 0.3
    result = explain_logit(rng.normal(size=1000), C)
    assert result.all.best is None and result.band.best is None
    assert result.all.explanations  # formulas are still listed, just not as findings


def test_dataset_concepts_names_class_attribute_and_recorded_factors():
    birds = make_waterbirds_like(300, image_size=16, random_state=0)
    concepts = dataset_concepts(birds, target="bird", spurious="place")
    names = concepts.concept_names.tolist()
    C = concepts.data
    np.testing.assert_array_equal(C[:, names.index("bird=waterbird")], birds.target == 1)
    np.testing.assert_array_equal(C[:, names.index("place=water")], birds.spurious == 1)
    # the latent kind and background recode the class and the place: left out
    assert not any(n.startswith(("kind", "background")) for n in names)
    assert any(n.startswith("pos_y in") for n in names)
    chosen = dataset_concepts(birds, factors=("scale",))
    assert set(chosen.columns.tolist()) == {"class", "attribute", "scale"}
    with pytest.raises(ValueError, match="not latent fields"):
        dataset_concepts(birds, factors=("colour",))


def test_dataset_concepts_reads_celeba_attribute_columns(tmp_path):
    attributes = ["Blond_Hair", "Male", "Smiling"]
    rows = [("000001.jpg", 1, -1, 1), ("000002.jpg", -1, 1, 1), ("000003.jpg", -1, -1, -1)]
    lines = [str(len(rows)), " ".join(attributes)]
    lines += [f"{name} {a} {b} {c}" for name, a, b, c in rows]
    (tmp_path / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{r[0]} 0\n" for r in rows))
    faces = load_celeba(tmp_path)
    concepts = dataset_concepts(faces, target="blond", spurious="male")
    names = concepts.concept_names.tolist()
    assert concepts.data[:, names.index("Smiling=yes")].tolist() == [True, True, False]
    assert concepts.data[:, names.index("blond=Blond_Hair")].tolist() == [True, False, False]
