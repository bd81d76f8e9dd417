import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from midlogit.base import balanced_indices
from midlogit.datasets import (
    BAND_EDGES,
    LazyImages,
    load_celeba,
    load_embeddings,
    load_waterbirds,
    make_biased_dsprites,
    make_colored_digits,
    make_dsprites,
    make_spurious_gaussians,
    render_sprites,
    save_embeddings,
)

# --------------------------------------------------------------------------- dSprites


def test_make_dsprites_shapes_dtypes_and_grid():
    sprites = make_dsprites(61, image_size=32, random_state=0)
    assert sprites.data.shape == (61, 1, 32, 32)
    assert sprites.data.dtype == np.float32
    assert set(np.unique(sprites.data)) == {0.0, 1.0}
    assert sprites.target_names.tolist() == ["square", "ellipse", "heart"]
    counts = np.bincount(sprites.target, minlength=3)
    assert counts.max() - counts.min() <= 1
    latents = sprites.latents
    assert np.array_equal(latents["shape"], sprites.target)
    assert np.allclose(latents["scale"], np.linspace(0.5, 1.0, 6)[latents["scale_idx"]])
    assert np.allclose(
        latents["orientation"], np.linspace(0, 2 * np.pi, 40)[latents["orientation_idx"]]
    )
    assert np.allclose(latents["pos_x"], latents["pos_x_idx"] / 31)
    assert np.allclose(latents["pos_y"], latents["pos_y_idx"] / 31)
    # every sprite is drawn, and fully inside the image
    assert (sprites.data.sum(axis=(1, 2, 3)) > 0).all()
    border = np.concatenate(
        [
            sprites.data[..., 0, :],
            sprites.data[..., -1, :],
            sprites.data[..., :, 0],
            sprites.data[..., :, -1],
        ],
        axis=-1,
    )
    assert border.sum() == 0


def test_make_dsprites_default_size_and_determinism():
    a = make_dsprites(5, random_state=3)
    b = make_dsprites(5, random_state=3)
    c = make_dsprites(5, random_state=4)
    assert a.data.shape == (5, 1, 64, 64)
    assert np.array_equal(a.data, b.data) and np.array_equal(a.latents, b.latents)
    assert not np.array_equal(a.latents, c.latents)


def test_position_latents_move_the_sprite():
    images = render_sprites(0, 0.5, 0.0, [0.0, 1.0, 0.5], [0.5, 0.5, 0.0], image_size=64)
    rows, cols = np.arange(64)[:, None], np.arange(64)[None, :]
    mass = images[:, 0].sum(axis=(1, 2))
    centre_x = (images[:, 0] * cols).sum(axis=(1, 2)) / mass
    centre_y = (images[:, 0] * rows).sum(axis=(1, 2)) / mass
    assert centre_x[0] < 20 < 44 < centre_x[1]  # pos_x: left to right
    assert centre_y[2] < 20  # pos_y = 0 is the top


def test_rendered_shapes_are_distinguishable():
    """A new rotation of a shape looks like its own shape, never like another one.

    Every shape at every scale and orientation, fixed position: 1-nearest-neighbour on
    pixels, trained on the even orientations and tested on the unseen odd ones.
    """
    shape, scale_idx, orientation_idx = (
        a.ravel() for a in np.meshgrid(np.arange(3), np.arange(6), np.arange(40), indexing="ij")
    )
    images = render_sprites(
        shape,
        np.linspace(0.5, 1.0, 6)[scale_idx],
        np.linspace(0, 2 * np.pi, 40)[orientation_idx],
        0.5,
        0.5,
        image_size=32,
    )
    X = images.reshape(shape.size, -1)
    train = orientation_idx % 2 == 0
    pred = KNeighborsClassifier(1).fit(X[train], shape[train]).predict(X[~train])
    assert (pred == shape[~train]).mean() > 0.95  # chance is 1/3
    heart_vs_ellipse = ((shape[~train] == 2) & (pred == 1)) | ((shape[~train] == 1) & (pred == 2))
    assert heart_vs_ellipse.sum() <= 3  # of 240 test hearts and ellipses
    # without rotation a linear model on pixels separates the three shapes across scales
    upright = orientation_idx == 0
    model = LogisticRegression(max_iter=2000).fit(X[upright], shape[upright])
    assert model.score(X[upright], shape[upright]) == 1.0
    # counterfactuals: same latents, another shape, visibly different pixels
    same = render_sprites([0, 1, 2], 1.0, 0.3, 0.5, 0.5, image_size=32)[:, 0].astype(bool)
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        overlap = (same[a] & same[b]).sum() / (same[a] | same[b]).sum()
        assert overlap < 0.8


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": 3}, "shape must hold shape ids"),
        ({"scale": 1.5}, "scale must lie in"),
        ({"scale": 0.0}, "scale must be positive"),
        ({"pos_x": -0.1}, "pos_x must lie in"),
        ({"pos_y": np.nan}, "pos_y must lie in"),
        ({"orientation": np.inf}, "orientation must be finite"),
        ({"image_size": 4}, "image_size must be an integer >= 8"),
    ],
)
def test_render_sprites_errors(kwargs, match):
    params = {"shape": 0, "scale": 1.0, "orientation": 0.0, "pos_x": 0.5, "pos_y": 0.5}
    image_size = kwargs.pop("image_size", 16)
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        render_sprites(**params, image_size=image_size)


@pytest.mark.parametrize(
    "maker, kwargs, match",
    [
        (make_dsprites, {"n_samples": 0}, "n_samples must be a positive integer"),
        (make_dsprites, {"n_samples": 2.5}, "n_samples must be a positive integer"),
        (make_dsprites, {"image_size": "big"}, "image_size must be an integer >= 8"),
        (make_biased_dsprites, {"image_size": (32, 16)}, r"image_size .* \(sprites are square\)"),
        (make_biased_dsprites, {"bias": 1.2}, "bias must be a number in"),
        (make_biased_dsprites, {"bias": True}, "bias must be a number in"),
        (make_colored_digits, {"bias": -0.1}, "bias must be a number in"),
        (make_colored_digits, {"n_classes": 3}, "n_classes must be 2"),
        (make_colored_digits, {"subset": "val"}, "subset must be 'all', 'train' or 'test'"),
        (make_colored_digits, {"n_samples": -1}, "n_samples must be a positive integer"),
        (make_spurious_gaussians, {"n_core": 1}, "n_core must be an integer >= n_classes"),
        (make_spurious_gaussians, {"n_spurious": 0}, "n_spurious must be an integer"),
        (make_spurious_gaussians, {"n_classes": 1}, "n_classes must be an integer >= 2"),
        (make_spurious_gaussians, {"core_strength": -1}, "core_strength must be a finite"),
        (
            make_spurious_gaussians,
            {"spurious_strength": np.nan},
            "spurious_strength must be a finite",
        ),
        (make_spurious_gaussians, {"bias": "high"}, "bias must be a number in"),
    ],
)
def test_generator_errors(maker, kwargs, match):
    with pytest.raises(ValueError, match=match):
        maker(**kwargs)


def _band_of(pos_x):
    band = np.full(pos_x.shape, -1)
    for k, (lo, hi) in enumerate(BAND_EDGES):
        band[(pos_x >= lo) & ((pos_x < hi) | (hi == 1.0))] = k
    return band


def test_biased_dsprites_bias_one_obeys_the_bands_exactly():
    data = make_biased_dsprites(300, bias=1.0, image_size=16, random_state=0)
    pos_x = data.latents["pos_x"]
    assert data.from_biased_subset.all()
    assert (pos_x[data.target == 0] < 0.3).all()
    assert ((pos_x[data.target == 1] >= 0.35) & (pos_x[data.target == 1] < 0.65)).all()
    assert (pos_x[data.target == 2] >= 0.7).all()
    assert np.array_equal(data.spurious, data.target)


@pytest.mark.parametrize("bias", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("n_samples", [90, 301])
def test_biased_dsprites_counts(bias, n_samples):
    data = make_biased_dsprites(n_samples, bias=bias, image_size=8, random_state=1)
    assert data.data.shape == (n_samples, 1, 8, 8)
    assert data.from_biased_subset.sum() == int(np.floor(bias * n_samples + 0.5))
    biased = data.from_biased_subset
    assert np.array_equal(data.spurious[biased], data.target[biased])
    # no row uses the positions between the bands; the band matches pos_x
    assert np.array_equal(_band_of(data.latents["pos_x"]), data.spurious)
    assert not np.isin(data.latents["pos_x_idx"], [10, 21]).any()
    # classes balanced overall and inside the biased subset
    for rows in (slice(None), biased):
        counts = np.bincount(data.target[rows], minlength=3)
        assert counts.max() - counts.min() <= 1
    # inside the control the band is balanced within every shape
    control = ~biased
    for shape in range(3):
        counts = np.bincount(data.spurious[control & (data.target == shape)], minlength=3)
        assert counts.max() - counts.min() <= 1
    assert np.array_equal(data.groups, data.target * 3 + data.spurious)


def test_biased_dsprites_test_data_is_unbiased():
    data = make_biased_dsprites(900, bias=0.0, image_size=8, random_state=2)
    table = np.bincount(data.groups, minlength=9).reshape(3, 3)
    assert (table == 100).all()  # shape and band independent, uniform
    # the positions inside a band and the other latents are spread, not fixed
    assert np.unique(data.latents["pos_x_idx"]).size == 30
    assert np.unique(data.latents["orientation_idx"]).size == 40


def test_biased_dsprites_fields_and_determinism():
    a = make_biased_dsprites(40, bias=0.5, image_size=16, random_state=5)
    b = make_biased_dsprites(40, bias=0.5, image_size=16, random_state=5)
    for key in ("data", "target", "spurious", "groups", "from_biased_subset", "latents"):
        assert np.array_equal(a[key], b[key])
    assert a.group_names.tolist()[:4] == [
        "square@left",
        "square@middle",
        "square@right",
        "ellipse@left",
    ]
    assert a.spurious_names.tolist() == ["left", "middle", "right"]
    images = render_sprites(
        a.latents["shape"],
        a.latents["scale"],
        a.latents["orientation"],
        a.latents["pos_x"],
        a.latents["pos_y"],
        image_size=16,
    )
    assert np.array_equal(images, a.data)


def test_biased_dsprites_shortcut_is_learnable_only_when_biased():
    """A linear model on pixels picks up x-position: it wins when biased, not in control."""
    train = make_biased_dsprites(600, bias=1.0, image_size=16, random_state=0)
    test = make_biased_dsprites(600, bias=0.0, image_size=16, random_state=1)
    model = LogisticRegression(max_iter=2000).fit(train.data.reshape(600, -1), train.target)
    pred = model.predict(test.data.reshape(600, -1))
    aligned = test.target == test.spurious
    assert (pred[aligned] == test.target[aligned]).mean() > 0.8
    assert (pred[~aligned] == test.target[~aligned]).mean() < 0.5


# ----------------------------------------------------------------------------- digits


def test_colored_digits_shapes_subsets_and_tint():
    digits = load_digits()
    train = make_colored_digits(subset="train", random_state=0)
    test = make_colored_digits(subset="test", random_state=0)
    full = make_colored_digits(random_state=0)
    assert train.data.shape == (1198, 3, 8, 8) and test.data.shape == (599, 3, 8, 8)
    assert full.data.shape == (1797, 3, 8, 8) and full.data.dtype == np.float32
    assert not np.intersect1d(train.image_index, test.image_index).size
    assert np.array_equal(np.sort(full.image_index), np.arange(1797))
    assert np.array_equal(train.digit, digits.target[train.image_index])
    assert np.array_equal(train.target, (train.digit >= 5).astype(int))
    # each image is its grey digit times its palette colour
    grey = digits.images[train.image_index] / 16.0
    expected = grey[:, None] * train.palette[train.spurious][:, :, None, None]
    np.testing.assert_allclose(train.data, expected, rtol=1e-6)
    assert train.spurious_names.tolist() == ["red", "green"]
    assert train.group_names.tolist() == ["0-4@red", "0-4@green", "5-9@red", "5-9@green"]
    assert np.array_equal(train.groups, train.target * 2 + train.spurious)


@pytest.mark.parametrize("bias", [0.0, 0.3, 0.9, 1.0])
def test_colored_digits_bias(bias):
    data = make_colored_digits(bias=bias, subset="train", random_state=1)
    assert data.from_biased_subset.sum() == int(np.floor(bias * 1198 + 0.5))
    biased = data.from_biased_subset
    assert np.array_equal(data.spurious[biased], data.target[biased])
    for label in (0, 1):
        counts = np.bincount(data.spurious[~biased & (data.target == label)], minlength=2)
        assert counts.max() - counts.min() <= 1
    agree = (data.spurious == data.target).mean()
    assert abs(agree - (bias + (1 - bias) / 2)) < 0.01


def test_colored_digits_ten_classes_and_resampling():
    data = make_colored_digits(2500, bias=1.0, n_classes=10, subset="test", random_state=0)
    assert data.data.shape == (2500, 3, 8, 8)
    assert np.array_equal(data.target, data.digit)
    assert np.array_equal(data.spurious, data.target)
    assert data.palette.shape == (10, 3) and len(set(data.spurious_names)) == 10
    assert data.image_index.min() >= 1198  # drawn from the test digits only
    small = make_colored_digits(100, subset="train", random_state=0)
    assert np.unique(small.image_index).size == 100  # no repeats while enough
    again = make_colored_digits(100, subset="train", random_state=0)
    assert np.array_equal(small.data, again.data)


# -------------------------------------------------------------------------- gaussians


def _worst_group_accuracy(model, data):
    pred = model.predict(data.data)
    return min(
        (pred[data.groups == g] == data.target[data.groups == g]).mean()
        for g in np.unique(data.groups)
    )


def test_spurious_gaussians_erm_fails_where_group_balancing_does_not():
    train = make_spurious_gaussians(2000, bias=0.9, random_state=0)
    test = make_spurious_gaussians(2000, bias=0.0, random_state=1)
    erm = LogisticRegression().fit(train.data, train.target)
    rows = balanced_indices(train.groups, random_state=0)
    balanced = LogisticRegression().fit(train.data[rows], train.target[rows])
    erm_worst = _worst_group_accuracy(erm, test)
    balanced_worst = _worst_group_accuracy(balanced, test)
    assert erm_worst < 0.5
    assert balanced_worst > 0.7
    assert balanced_worst - erm_worst > 0.3


def test_spurious_gaussians_structure():
    data = make_spurious_gaussians(
        2700,
        n_core=3,
        n_spurious=4,
        bias=0.0,
        core_strength=1.0,
        n_classes=3,
        random_state=0,
    )
    assert data.data.shape == (2700, 7) and data.data.dtype == np.float32
    assert data.feature_names.tolist() == [
        "core_0",
        "core_1",
        "core_2",
        "spurious_0",
        "spurious_1",
        "spurious_2",
        "spurious_3",
    ]
    assert (np.bincount(data.groups, minlength=9) == 300).all()
    # class means in the core block are 2 * core_strength apart
    means = np.stack([data.data[data.target == k, :3].mean(axis=0) for k in range(3)])
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1)[~np.eye(3, dtype=bool)]
    np.testing.assert_allclose(distances, 2.0, atol=0.15)
    # the core block predicts y imperfectly, the spurious block predicts its attribute
    core = LogisticRegression().fit(data.data[:1500, :3], data.target[:1500])
    spur = LogisticRegression().fit(data.data[:1500, 3:], data.spurious[:1500])
    assert 0.5 < core.score(data.data[1500:, :3], data.target[1500:]) < 0.9
    assert spur.score(data.data[1500:, 3:], data.spurious[1500:]) > 0.97
    assert spur.score(data.data[1500:, 3:], data.target[1500:]) < 0.45  # bias=0: no shortcut


def test_spurious_gaussians_bias_and_determinism():
    a = make_spurious_gaussians(101, bias=0.7, random_state=0)
    b = make_spurious_gaussians(101, bias=0.7, random_state=0)
    assert np.array_equal(a.data, b.data) and np.array_equal(a.groups, b.groups)
    assert a.from_biased_subset.sum() == 71
    assert np.array_equal(a.spurious[a.from_biased_subset], a.target[a.from_biased_subset])
    counts = np.bincount(a.target)
    assert counts.max() - counts.min() <= 1


# ---------------------------------------------------------------------------- loaders


def _write_image(path, colour, size=(20, 30), fmt=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


WATERBIRDS_ROWS = [
    # img_id, img_filename, y, split, place, place_filename
    (1, "001.Albatross/a1.png", 1, 0, 1, "o/ocean.jpg"),
    (2, "001.Albatross/a2.jpg", 1, 1, 0, "f/forest.jpg"),
    (3, "002.Sparrow/s1.png", 0, 0, 0, "f/forest.jpg"),
    (4, "002.Sparrow/s2.jpg", 0, 2, 1, "l/lake.jpg"),
    (5, "002.Sparrow/s3.png", 0, 0, 1, "o/ocean.jpg"),
]


@pytest.fixture
def waterbirds_root(tmp_path):
    lines = ["img_id,img_filename,y,split,place,place_filename"]
    for img_id, name, y, split, place, place_name in WATERBIRDS_ROWS:
        lines.append(f"{img_id},{name},{y},{split},{place},{place_name}")
        _write_image(tmp_path / name, (255 * y, 0, 255 * place))
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_load_waterbirds(waterbirds_root):
    birds = load_waterbirds(waterbirds_root)
    assert birds.target.tolist() == [1, 1, 0, 0, 0]
    assert birds.spurious.tolist() == [1, 0, 0, 1, 1]
    assert birds.groups.tolist() == [3, 2, 0, 1, 1]
    assert birds.split.tolist() == [0, 1, 0, 2, 0]
    assert birds.group_names.tolist() == [
        "landbird@land",
        "landbird@water",
        "waterbird@land",
        "waterbird@water",
    ]
    assert birds.filenames[0] == str((waterbirds_root / "001.Albatross/a1.png").resolve())
    assert isinstance(birds.images, LazyImages)
    assert birds.images.shape == (5, 3, 224, 224)
    image = birds.images[0]
    assert image.shape == (3, 224, 224) and image.dtype == np.float32
    np.testing.assert_allclose(image.mean(axis=(1, 2)), [1.0, 0.0, 1.0])


def test_load_waterbirds_split_and_eager_images(waterbirds_root):
    train = load_waterbirds(waterbirds_root, split="train", image_size=(8, 12), load_images=True)
    assert train.target.tolist() == [1, 0, 0] and (train.split == 0).all()
    assert isinstance(train.images, np.ndarray)
    assert train.images.shape == (3, 3, 8, 12) and train.images.dtype == np.float32
    # red channel = bird, blue channel = water, as written
    np.testing.assert_allclose(train.images[:, 0].mean(axis=(1, 2)), train.target)
    np.testing.assert_allclose(train.images[:, 2].mean(axis=(1, 2)), train.spurious)
    test = load_waterbirds(waterbirds_root, split=2)
    assert test.target.tolist() == [0]
    native = load_waterbirds(waterbirds_root, split="val", image_size=None)
    assert native.images[0].shape == (3, 30, 20)  # Pillow sizes are (width, height)


def test_lazy_images_indexing(waterbirds_root):
    images = load_waterbirds(waterbirds_root, image_size=6).images
    assert images[[0, 2]].shape == (2, 3, 6, 6)
    assert images[np.array([True, False, False, False, True])].shape == (2, 3, 6, 6)
    assert images[1:1].shape == (0, 3, 6, 6)
    assert np.asarray(images).shape == (5, 3, 6, 6)
    assert len(images) == 5 and "n_images=5" in repr(images)


def test_load_waterbirds_errors(waterbirds_root, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="metadata.csv"):
        load_waterbirds(empty)
    with pytest.raises(ValueError, match="split must be None, 'train'"):
        load_waterbirds(waterbirds_root, split="validation")

    metadata = waterbirds_root / "metadata.csv"
    original = metadata.read_text()
    metadata.write_text(original.replace(",place,", ",background,"))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['place'\]"):
        load_waterbirds(waterbirds_root)
    metadata.write_text(
        original.replace("1,001.Albatross/a1.png,1,0,1", "1,001.Albatross/a1.png,2,0,1")
    )
    with pytest.raises(ValueError, match=r"Column 'y' .* must hold \[0, 1\], found \[2\]"):
        load_waterbirds(waterbirds_root)
    metadata.write_text(
        original.replace("1,001.Albatross/a1.png,1,0,1", "1,001.Albatross/a1.png,yes,0,1")
    )
    with pytest.raises(ValueError, match="Column 'y' .* must hold integers"):
        load_waterbirds(waterbirds_root)
    metadata.write_text(original + "6,x.png,0\n")
    with pytest.raises(ValueError, match=r"line\(s\) \[7\] do not have 6 fields"):
        load_waterbirds(waterbirds_root)
    metadata.write_text(
        "\n".join(line for line in original.splitlines() if not line.startswith("4,")) + "\n"
    )
    with pytest.raises(ValueError, match="No rows .* belong to split 2"):
        load_waterbirds(waterbirds_root, split="test")

    metadata.write_text(original)
    (waterbirds_root / "002.Sparrow/s1.png").unlink()
    birds = load_waterbirds(waterbirds_root)  # images are only opened when read
    with pytest.raises(FileNotFoundError, match="s1.png"):
        birds.images[2]
    with pytest.raises(FileNotFoundError, match="s1.png"):
        load_waterbirds(waterbirds_root, load_images=True)


@pytest.mark.parametrize(
    "name", ["../elsewhere/private.png", "/etc/hostname", "a/../../b.png", "C:\\x.png", ""]
)
def test_load_waterbirds_refuses_names_outside_root(waterbirds_root, name):
    (waterbirds_root.parent / "elsewhere").mkdir(exist_ok=True)
    _write_image(waterbirds_root.parent / "elsewhere" / "private.png", (0, 0, 0))
    metadata = waterbirds_root / "metadata.csv"
    metadata.write_text(metadata.read_text() + f"6,{name},0,0,0,x.jpg\n")
    with pytest.raises(ValueError, match=r"metadata.csv, line 7: the file name .* relative"):
        load_waterbirds(waterbirds_root)


def test_loaders_refuse_symlinks_that_leave_root(waterbirds_root, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    _write_image(outside / "private.png", (9, 9, 9))
    (waterbirds_root / "002.Sparrow/s1.png").unlink()
    (waterbirds_root / "002.Sparrow/s1.png").symlink_to(outside / "private.png")
    birds = load_waterbirds(waterbirds_root)
    assert birds.images[0].shape == (3, 224, 224)  # the other files still read
    with pytest.raises(ValueError, match=r"s1.png resolves to .*private.png, outside"):
        birds.images[2]
    with pytest.raises(ValueError, match=r"s1.png resolves to .* outside"):
        load_waterbirds(waterbirds_root, load_images=True)
    # a link that stays inside root is fine
    (waterbirds_root / "002.Sparrow/s1.png").unlink()
    (waterbirds_root / "002.Sparrow/s1.png").symlink_to(waterbirds_root / "001.Albatross/a1.png")
    assert load_waterbirds(waterbirds_root).images[2].shape == (3, 224, 224)
    # the metadata file itself must not lead out either
    (outside / "metadata.csv").write_bytes((waterbirds_root / "metadata.csv").read_bytes())
    (waterbirds_root / "metadata.csv").unlink()
    (waterbirds_root / "metadata.csv").symlink_to(outside / "metadata.csv")
    with pytest.raises(ValueError, match="metadata.csv resolves to .* outside"):
        load_waterbirds(waterbirds_root)


def test_load_waterbirds_malformed_files(waterbirds_root):
    metadata = waterbirds_root / "metadata.csv"
    original = metadata.read_text()
    # a byte-order mark (Excel's "CSV UTF-8") is accepted, even before a needed column
    reordered = original.replace("img_id,img_filename", "img_filename,img_id", 1)
    reordered = "\n".join(
        [reordered.splitlines()[0]]
        + [
            ",".join([r.split(",")[1], r.split(",")[0], *r.split(",")[2:]])
            for r in original.splitlines()[1:]
        ]
    )
    metadata.write_bytes(b"\xef\xbb\xbf" + reordered.encode())
    assert load_waterbirds(waterbirds_root).target.tolist() == [1, 1, 0, 0, 0]
    metadata.write_bytes(original.replace("s2.jpg", "s\xe9.jpg").encode("latin-1"))
    with pytest.raises(ValueError, match=r"metadata.csv, line 5: byte 0xe9 is not UTF-8"):
        load_waterbirds(waterbirds_root)
    metadata.write_text(
        original.replace("3,002.Sparrow/s1.png,0,", "3,002.Sparrow/s1.png,1" + "0" * 25 + ",")
    )
    with pytest.raises(
        ValueError, match=r"Column 'y' of .*metadata.csv, line 4: 1000.* out of the"
    ):
        load_waterbirds(waterbirds_root)
    metadata.write_text(
        original.replace("4,002.Sparrow/s2.jpg,0,2,1", "4,002.Sparrow/s2.jpg,0,7,1")
    )
    with pytest.raises(ValueError, match=r"Column 'split' .* found \[7\] \(first at line 5\)"):
        load_waterbirds(waterbirds_root)
    metadata.write_text(original + "6,x.png,0,0,0,y.jpg,extra\n")
    with pytest.raises(ValueError, match=r"line\(s\) \[7\] do not have 6 fields"):
        load_waterbirds(waterbirds_root)
    metadata.write_bytes(b"")
    with pytest.raises(ValueError, match="metadata.csv is empty"):
        load_waterbirds(waterbirds_root)
    metadata.write_bytes(b"\x00\x01binary")
    with pytest.raises(ValueError, match="metadata.csv, line 1: a NUL byte"):
        load_waterbirds(waterbirds_root)


def test_lazy_images_size_mismatch(tmp_path):
    _write_image(tmp_path / "a.png", (0, 0, 0), size=(4, 4))
    _write_image(tmp_path / "b.png", (0, 0, 0), size=(5, 4))
    images = LazyImages([tmp_path / "a.png", tmp_path / "b.png"], image_size=None)
    with pytest.raises(ValueError, match="different sizes .* pass image_size"):
        images[:]
    with pytest.raises(ValueError, match="image_size must be an integer >= 1"):
        LazyImages([tmp_path / "a.png"], image_size=(0, 3))


ATTRIBUTES = ["Bald", "Blond_Hair", "Male", "Smiling"]
CELEBA_ROWS = [
    # filename, Bald, Blond_Hair, Male, Smiling, split
    ("000001.jpg", -1, 1, -1, 1, 0),
    ("000002.jpg", -1, -1, 1, -1, 0),
    ("000003.jpg", 1, -1, 1, 1, 1),
    ("000004.jpg", -1, 1, 1, -1, 2),
]


@pytest.fixture
def celeba_root(tmp_path):
    lines = [str(len(CELEBA_ROWS)), " ".join(ATTRIBUTES)]
    for name, *values, _ in CELEBA_ROWS:
        lines.append(name + "".join(f" {v:2d}" for v in values))
    (tmp_path / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "list_eval_partition.txt").write_text(
        "".join(f"{row[0]} {row[-1]}\n" for row in reversed(CELEBA_ROWS))
    )
    for name, _, blond, male, *_ in CELEBA_ROWS:
        _write_image(
            tmp_path / "img_align_celeba" / name,
            (255 * (blond > 0), 255 * (male > 0), 0),
            size=(178, 218),
            fmt="JPEG",
        )
    return tmp_path


def test_load_celeba(celeba_root):
    faces = load_celeba(celeba_root)
    assert faces.target.tolist() == [1, 0, 0, 1]
    assert faces.spurious.tolist() == [0, 1, 1, 1]
    assert faces.groups.tolist() == [2, 1, 1, 3]
    assert faces.split.tolist() == [0, 0, 1, 2]  # aligned by name, not by line order
    assert faces.attribute_names.tolist() == ATTRIBUTES
    assert faces.attributes.dtype == np.int8
    assert faces.attributes[:, 0].tolist() == [0, 0, 1, 0]
    assert faces.group_names.tolist() == [
        "not Blond_Hair@not Male",
        "not Blond_Hair@Male",
        "Blond_Hair@not Male",
        "Blond_Hair@Male",
    ]
    assert faces.filenames[1].endswith("img_align_celeba/000002.jpg")
    images = faces.images[[0, 1]]
    assert images.shape == (2, 3, 224, 224)
    np.testing.assert_allclose(images[:, 0].mean(axis=(1, 2)), [1, 0], atol=0.02)
    np.testing.assert_allclose(images[:, 1].mean(axis=(1, 2)), [0, 1], atol=0.02)

    smiling = load_celeba(
        celeba_root,
        target="Smiling",
        spurious="Bald",
        split="train",
        image_size=None,
        load_images=True,
    )
    assert smiling.target.tolist() == [1, 0] and smiling.spurious.tolist() == [0, 0]
    assert smiling.attributes.shape == (2, 4)
    assert smiling.images.shape == (2, 3, 218, 178)


def test_load_celeba_errors(celeba_root, tmp_path_factory):
    with pytest.raises(
        ValueError,
        match="target='Blonde' is not an attribute .* available: Bald, Blond_Hair, Male, Smiling",
    ):
        load_celeba(celeba_root, target="Blonde")
    with pytest.raises(ValueError, match="spurious='male' is not an attribute"):
        load_celeba(celeba_root, spurious="male")
    with pytest.raises(ValueError, match="must be different attributes"):
        load_celeba(celeba_root, target="Male", spurious="Male")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="list_attr_celeba.txt"):
        load_celeba(empty)
    (empty / "list_attr_celeba.txt").write_text("0\nMale\n")
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
        load_celeba(empty)

    attr = celeba_root / "list_attr_celeba.txt"
    original = attr.read_text()
    attr.write_text(original.replace("4\n", "5\n", 1))
    with pytest.raises(ValueError, match="announces 5 images .* lists 4"):
        load_celeba(celeba_root)
    attr.write_text(original.replace("000004.jpg -1", "000004.jpg  0"))
    with pytest.raises(ValueError, match="must be -1 or 1"):
        load_celeba(celeba_root)
    attr.write_text(original.replace("000004.jpg -1", "000004.jpg"))
    with pytest.raises(ValueError, match="every row must hold a file name and 4 values"):
        load_celeba(celeba_root)
    attr.write_text(original)
    part = celeba_root / "list_eval_partition.txt"
    part.write_text(part.read_text().replace("000003.jpg 1\n", ""))
    with pytest.raises(ValueError, match=r"has no split for \['000003.jpg'\]"):
        load_celeba(celeba_root)


def test_load_celeba_malformed_files(celeba_root):
    attr = celeba_root / "list_attr_celeba.txt"
    part = celeba_root / "list_eval_partition.txt"
    original, original_part = attr.read_text(), part.read_text()
    attr.write_bytes(b"\xef\xbb\xbf" + original.encode())
    assert load_celeba(celeba_root).target.tolist() == [1, 0, 0, 1]
    attr.write_bytes(original.replace("000003.jpg", "00000\xe9.jpg").encode("latin-1"))
    with pytest.raises(ValueError, match=r"list_attr_celeba.txt, line 5: byte 0xe9"):
        load_celeba(celeba_root)
    # one value too many was ignored before
    attr.write_text(original.replace("000002.jpg -1 -1  1 -1", "000002.jpg -1 -1  1 -1 1"))
    with pytest.raises(ValueError, match=r"line 4: 6 fields, but every row must hold a file"):
        load_celeba(celeba_root)
    attr.write_text(original.replace("000002.jpg -1", "000002.jpg 99999999999999999999"))
    with pytest.raises(ValueError, match=r"line 4: attribute value '9+'; .* must be -1 or 1"):
        load_celeba(celeba_root)
    attr.write_text(original.replace("000002.jpg", "../000002.jpg"))
    with pytest.raises(ValueError, match=r"line 4: the file name '../000002.jpg' must be"):
        load_celeba(celeba_root)
    attr.write_text("")
    with pytest.raises(ValueError, match="list_attr_celeba.txt is empty"):
        load_celeba(celeba_root)
    attr.write_text(original)
    part.write_text(original_part.replace("000003.jpg 1", "000003.jpg 1 0"))
    with pytest.raises(ValueError, match=r"list_eval_partition.txt, line 2: 3 fields"):
        load_celeba(celeba_root)
    part.write_text(original_part.replace("000003.jpg 1", "000003.jpg 99999999999999999999"))
    with pytest.raises(ValueError, match=r"list_eval_partition.txt, line 2: 9+ is out of"):
        load_celeba(celeba_root)
    part.write_text("")
    with pytest.raises(ValueError, match="list_eval_partition.txt is empty"):
        load_celeba(celeba_root)


# ------------------------------------------------------------------------- embeddings


def test_embeddings_round_trip_exact(tmp_path):
    rng = np.random.RandomState(0)
    E = rng.standard_normal((7, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0], dtype=np.int16)
    logits = rng.standard_normal((7, 3))
    classes = np.array(["cat", "dog", "bird"])
    path = save_embeddings(
        tmp_path / "feats.npz", E, y=y, logits=logits, classes=classes, epoch=80, model="lenet"
    )
    assert path == tmp_path / "feats.npz"
    data = load_embeddings(path)
    assert data.embeddings.dtype == np.float32 and np.array_equal(data.embeddings, E)
    assert data.y.dtype == np.int16 and np.array_equal(data.y, y)
    assert np.array_equal(data.logits, logits) and data.groups is None
    assert data.classes.tolist() == ["cat", "dog", "bird"]
    assert data.epoch == 80 and data.model == "lenet"
    E[0, 0] = 99.0  # the loaded copy is independent of the input
    assert data.embeddings[0, 0] != 99.0


def test_save_embeddings_does_not_modify_inputs(tmp_path):
    E = np.arange(6.0).reshape(3, 2)
    groups = [2, 0, 1]
    save_embeddings(tmp_path / "x", E, groups=groups)
    assert groups == [2, 0, 1] and np.array_equal(E, np.arange(6.0).reshape(3, 2))
    assert load_embeddings(tmp_path / "x.npz").groups.tolist() == [2, 0, 1]


def test_embeddings_errors(tmp_path):
    E = np.zeros((4, 2))
    with pytest.raises(ValueError, match="embeddings must be a 2-D array"):
        save_embeddings(tmp_path / "a", np.zeros(4))
    with pytest.raises(ValueError, match="y must have 4 rows like embeddings"):
        save_embeddings(tmp_path / "a", E, y=[0, 1])
    with pytest.raises(ValueError, match="logits must have 4 rows"):
        save_embeddings(tmp_path / "a", E, logits=np.zeros((4, 2, 1)))
    with pytest.raises(ValueError, match="meta is an object array"):
        save_embeddings(tmp_path / "a", E, meta={"a": 1})
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_embeddings(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", features=E)
    with pytest.raises(ValueError, match=r"no 'embeddings' array \(found \['features'\]\)"):
        load_embeddings(tmp_path / "other.npz")
    np.save(tmp_path / "bare.npy", E)
    with pytest.raises(ValueError, match=r"bare.npy is a .npy file .* not the .npz archive"):
        load_embeddings(tmp_path / "bare.npy")
    (tmp_path / "text.npz").write_text("embeddings\n1,2\n")
    with pytest.raises(ValueError, match="text.npz is not an .npz file"):
        load_embeddings(tmp_path / "text.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.npz is not an .npz file"):
        load_embeddings(tmp_path / "empty.npz")
    np.savez(tmp_path / "objects.npz", embeddings=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="objects.npz: cannot read as an .npz archive"):
        load_embeddings(tmp_path / "objects.npz")


# ------------------------------------------------------------------------------ import


def test_module_imports_without_torch_and_pillow():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'PIL'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import midlogit.datasets as d\n"
        "assert d.make_biased_dsprites(9, image_size=8, random_state=0).data.shape[0] == 9\n"
        "assert d.make_colored_digits(5, random_state=0).data.shape[0] == 5\n"
        "assert not {'torch', 'PIL'} & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------- pretraining sprites


def test_pretraining_sprites_shapes_balance_and_fields():
    from midlogit.datasets import SPRITE_KINDS, make_pretraining_sprites

    sprites = make_pretraining_sprites(403, image_size=16, random_state=0)
    assert sprites.data.shape == (403, 1, 16, 16)
    assert sprites.data.dtype == np.float32
    assert sprites.data.min() >= 0.0 and sprites.data.max() == 1.0
    assert sprites.target_names.tolist() == SPRITE_KINDS.tolist()
    for labels, k in ((sprites.target, 8), (sprites.background, 4)):
        counts = np.bincount(labels, minlength=k)
        assert counts.min() > 0 and counts.max() - counts.min() <= 1
    latents = sprites.latents
    assert np.array_equal(latents["kind"], sprites.target)
    assert np.array_equal(latents["background"], sprites.background)
    assert 0.5 <= latents["scale"].min() and latents["scale"].max() <= 1.0
    # continuous latents, not a grid
    assert np.unique(latents["pos_x"]).size == 403
    # plain backgrounds are black outside the sprite, textured ones are not
    plain = sprites.background == 0
    assert set(np.unique(sprites.data[plain])) == {0.0, 1.0}
    assert (sprites.data[~plain] == 0.5).any() or (
        (sprites.data[~plain] > 0) & (sprites.data[~plain] < 1)
    ).any()


def test_pretraining_sprites_kinds_differ_and_are_drawn():
    from midlogit.datasets import make_pretraining_sprites

    sprites = make_pretraining_sprites(800, image_size=32, backgrounds=False, random_state=1)
    assert (sprites.data.sum(axis=(1, 2, 3)) > 0).all()
    # the mean area differs between kinds (ring and star are thinner than the square)
    area = sprites.data.sum(axis=(1, 2, 3)) / sprites.latents["scale"] ** 2
    means = np.array([area[sprites.target == k].mean() for k in range(8)])
    assert np.unique(np.round(means, 0)).size >= 6
    # a kind classifier on pixels beats chance clearly
    X = sprites.data.reshape(800, -1)
    model = KNeighborsClassifier(1).fit(X[:600], sprites.target[:600])
    assert model.score(X[600:], sprites.target[600:]) > 0.25


def test_pretraining_sprites_no_shape_position_correlation():
    from midlogit.datasets import make_pretraining_sprites

    sprites = make_pretraining_sprites(4000, image_size=8, random_state=2)
    x_bin = np.minimum((sprites.latents["pos_x"] * 3).astype(int), 2)
    table = np.zeros((8, 3))
    np.add.at(table, (sprites.target, x_bin), 1)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = ((table - expected) ** 2 / expected).sum()
    assert chi2 < 36.1  # 14 degrees of freedom, p = 0.001
    # the kind says nothing about the x-position beyond chance
    model = LogisticRegression().fit(sprites.latents["pos_x"][:, None], sprites.target)
    assert model.score(sprites.latents["pos_x"][:, None], sprites.target) < 0.2


def test_pretraining_sprites_determinism_and_kinds_argument():
    from midlogit.datasets import make_pretraining_sprites

    a = make_pretraining_sprites(50, image_size=8, random_state=3)
    b = make_pretraining_sprites(50, image_size=8, random_state=3)
    c = make_pretraining_sprites(50, image_size=8, random_state=4)
    assert np.array_equal(a.data, b.data) and np.array_equal(a.latents, b.latents)
    assert not np.array_equal(a.data, c.data)
    two = make_pretraining_sprites(10, image_size=8, kinds=["ring", "L"], random_state=0)
    assert two.target_names.tolist() == ["ring", "L"]
    assert set(two.latents["kind"].tolist()) == {5, 7}
    with pytest.raises(ValueError, match="kinds must name kinds"):
        make_pretraining_sprites(10, kinds=["hexagon"])


# ----------------------------------------------------------------- Waterbirds-like


def test_waterbirds_like_group_counts_and_fields():
    from midlogit.datasets import make_waterbirds_like

    train = make_waterbirds_like(image_size=8, random_state=0)
    assert np.bincount(train.groups).tolist() == [3498, 184, 56, 1057]
    assert train.group_names.tolist() == [
        "landbird@land",
        "landbird@water",
        "waterbird@land",
        "waterbird@water",
    ]
    assert np.array_equal(train.groups, train.target * 2 + train.spurious)
    assert np.array_equal(train.from_biased_subset, train.target == train.spurious)
    assert train.data.shape == (4795, 1, 8, 8)
    val = make_waterbirds_like(split="val", image_size=8, random_state=1)
    assert np.bincount(val.groups).tolist() == [467, 466, 133, 133]
    test = make_waterbirds_like(1001, split="test", image_size=8, random_state=2)
    counts = np.bincount(test.groups)
    assert counts.sum() == 1001 and counts.max() - counts.min() <= 1
    small = make_waterbirds_like(100, random_state=0)
    assert np.bincount(small.groups, minlength=4).sum() == 100
    assert np.bincount(small.groups)[0] > np.bincount(small.groups)[3]


def test_waterbirds_like_background_is_the_shortcut_and_shape_the_target():
    from midlogit.datasets import SPRITE_KINDS, make_waterbirds_like

    data = make_waterbirds_like(400, split="test", kinds=("square", "ring"), random_state=3)
    assert (
        SPRITE_KINDS[data.latents["kind"]].tolist()
        == np.array(["square", "ring"])[data.target].tolist()
    )
    # backgrounds differ by kind: checkered rows vary along both axes, striped mostly
    # along one, so a pixel classifier reads the background easily
    X = data.data.reshape(400, -1)
    model = KNeighborsClassifier(1).fit(X[:300], data.spurious[:300])
    assert model.score(X[300:], data.spurious[300:]) > 0.6
    a = make_waterbirds_like(50, random_state=5)
    b = make_waterbirds_like(50, random_state=5)
    assert np.array_equal(a.data, b.data)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "validation"}, "split must be"),
        ({"kinds": ("ring", "ring")}, "two different"),
        ({"kinds": ("ring", "blob")}, "kinds must name"),
        ({"n_samples": 0}, "n_samples must be"),
    ],
)
def test_waterbirds_like_errors(kwargs, match):
    from midlogit.datasets import make_waterbirds_like

    with pytest.raises(ValueError, match=match):
        make_waterbirds_like(**kwargs)
