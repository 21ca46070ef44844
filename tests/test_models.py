"""The spatial and temporal models, their SE blocks and the focal loss: shapes, the folded patch CNN against
per-patch application, masking, saving, class weights, and a tiny training run."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from localmer import models

PATCH_CNN_PARAMETERS = 11216  # conv 4@5x5 (104) + conv 8@3x3 (296) + conv 16@{1,3,5,7} on 8 channels (10816)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


def patch_size(region: tuple[int, int], patches: int) -> tuple[int, int]:
    side = int(np.sqrt(patches))
    return region[0] // side, region[1] // side


def random_patches(rng, samples: int, patches: int, size: tuple[int, int]) -> np.ndarray:
    return rng.random((samples, patches, *size, 1), dtype=np.float32)


# --------------------------------------------------------------------------------------------- spatial


@pytest.mark.parametrize("region", [(36, 48), (24, 24)])
@pytest.mark.parametrize("patches", [1, 4, 9, 16])
def test_spatial_model_shapes_probabilities_and_feature(region, patches):
    size = patch_size(region, patches)
    model = models.spatial_model(patches, size, 3)
    x = random_patches(np.random.default_rng(patches), 2, patches, size)
    probabilities = np.asarray(model(x))
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    features = np.asarray(models.feature_extractor(model)(x))
    assert features.shape == (2, models.FEATURE_SIZE)
    assert (features >= 0).all()
    assert model.get_layer("patch_means").output.shape == (None, 72 * patches)


@pytest.mark.parametrize(("patches", "spatial_se", "share"), [(9, False, True), (9, True, False), (1, False, True)])
def test_spatial_model_options(patches, spatial_se, share):
    size = patch_size((36, 48), patches)
    model = models.spatial_model(patches, size, 4, spatial_se=spatial_se, share_patch_cnn=share)
    probabilities = np.asarray(model(random_patches(np.random.default_rng(0), 2, patches, size)))
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    names = {layer.name for layer in model.layers}
    assert ("patch_se_excite" in names) == spatial_se
    assert ("patch_cnn" in names) == share
    assert ({f"patch_cnn_{index}" for index in range(patches)} <= names) == (not share)


def test_se_bottleneck_follows_the_ratio():
    model = models.spatial_model(9, (12, 16), 3, se_ratio=0.5)
    assert model.get_layer("patch_se_reduce").units == 0.5 * 9 * 72
    assert model.get_layer("patch_se_excite").units == 9 * 72
    # Six regions x 0.25 = 1.5 channels: rounded, at least one.
    assert models.temporal_model(6, 8, 16, 3).get_layer("region_se_reduce").units == 2
    assert models.temporal_model(2, 8, 16, 3, se_ratio=0.1).get_layer("region_se_reduce").units == 1


def test_shared_patch_cnn_does_not_grow_with_the_patch_count():
    shared = [models.spatial_model(m, patch_size((36, 48), m), 3) for m in (1, 4, 9, 16)]
    assert [model.get_layer("patch_cnn").count_params() for model in shared] == [PATCH_CNN_PARAMETERS] * 4
    totals = [model.count_params() for model in shared]
    assert totals == sorted(totals) and len(set(totals)) == 4  # SE and FC 2048 grow with 72 * m channels
    unshared = models.spatial_model(4, (18, 24), 3, share_patch_cnn=False)
    towers = [unshared.get_layer(f"patch_cnn_{index}").count_params() for index in range(4)]
    assert towers == [PATCH_CNN_PARAMETERS] * 4


def patch_maps(model: keras.Model, x: np.ndarray, share: bool) -> np.ndarray:
    """The paper's concatenated patch maps (batch, h/2, w/2, 72 * patches): each patch through its CNN."""
    patches = x.shape[1]
    cnns = [model.get_layer("patch_cnn" if share else f"patch_cnn_{index}") for index in range(patches)]
    return np.concatenate([np.asarray(cnns[index](x[:, index])) for index in range(patches)], axis=-1)


@pytest.mark.parametrize("share", [True, False])
def test_patch_means_are_the_gap_of_the_patch_cnn_applied_patch_by_patch(share):
    """Folding into the batch (shared) and the towers (unshared) keep each patch's 72 channels together,
    patches in order: the same as running each patch through its CNN, concatenating and averaging."""
    patches, size = 9, (12, 16)
    model = models.spatial_model(patches, size, 3, share_patch_cnn=share)
    x = random_patches(np.random.default_rng(1), 3, patches, size)
    patch_means = np.asarray(keras.Model(model.input, model.get_layer("patch_means").output)(x))
    maps = patch_maps(model, x, share)
    assert maps.shape == (3, 6, 8, patches * 72)
    np.testing.assert_allclose(patch_means, maps.mean(axis=(1, 2)), atol=1e-5)
    assert np.abs(maps).max() > 0  # not trivially equal


def test_spatial_se_equals_rescaling_the_maps_before_the_gap():
    """The paper's order (SE rescales the concatenated maps, then GAP), written out with the model's own
    weights, gives the model's FC 2048 input."""
    patches, size = 4, (18, 24)
    model = models.spatial_model(patches, size, 3)
    x = random_patches(np.random.default_rng(2), 3, patches, size)
    maps = patch_maps(model, x, share=True)
    (reduce_kernel, reduce_bias), (excite_kernel, excite_bias) = (
        model.get_layer(f"patch_se_{step}").get_weights() for step in ("reduce", "excite")
    )
    squeezed = maps.mean(axis=(1, 2))
    weights = 1 / (1 + np.exp(-(np.maximum(squeezed @ reduce_kernel + reduce_bias, 0) @ excite_kernel + excite_bias)))
    paper_order = (maps * weights[:, None, None, :]).mean(axis=(1, 2))
    ours = np.asarray(keras.Model(model.input, model.get_layer("patch_se_rescale").output)(x))
    np.testing.assert_allclose(ours, paper_order, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours, squeezed, atol=1e-3)  # the SE weights do change the features


@pytest.mark.parametrize("share", [True, False])
def test_spatial_model_of_three_channels(share):
    """Flow input (u, v, strain): only the first convolution sees the channels; the rest is unchanged.
    (tests/test_flow_input.py trains one on flow patches.)"""
    size = (6, 8)
    model = models.spatial_model(4, size, 3, share_patch_cnn=share, channels=3)
    grey = models.spatial_model(4, size, 3, share_patch_cnn=share)
    assert model.input.shape == (None, 4, *size, 3)
    first = "patch_cnn" if share else "patch_cnn_0"
    assert model.get_layer(first).get_layer("conv4_5x5").kernel.shape == (5, 5, 3, 4)
    # Everything after the first convolution has the one-channel model's shapes: 2 x 4 x 25 weights more.
    assert model.count_params() - grey.count_params() == (1 if share else 4) * 2 * 4 * 25
    x = np.random.default_rng(3).uniform(-1, 1, (2, 4, *size, 3)).astype(np.float32)
    assert np.asarray(models.feature_extractor(model)(x)).shape == (2, models.FEATURE_SIZE)


@pytest.mark.parametrize("share", [True, False])
def test_a_spatial_model_of_any_patch_size_is_each_sizes_model(share):
    """spatial_model(patch_size=None) (the model a job's regions train on, training.SpatialTrainer) has
    the weights a model of a given size has from the same seed, and gives its outputs on patches of
    several sizes; control: another seed's weights differ."""
    built = {}
    for name, size, seed in (("any", None, 5), ("12x16", (12, 16), 5), ("6x6", (6, 6), 5), ("other", None, 6)):
        keras.utils.set_random_seed(seed)
        built[name] = models.spatial_model(4, size, 3, share_patch_cnn=share)
    weights = {name: model.get_weights() for name, model in built.items()}
    assert built["any"].input.shape == (None, 4, None, None, 1)
    assert all(np.array_equal(a, b) for a, b in zip(weights["any"], weights["12x16"], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(weights["any"], weights["other"], strict=True))
    rng = np.random.default_rng(0)
    for name, size in (("12x16", (12, 16)), ("6x6", (6, 6))):
        built[name].set_weights(weights["any"])
        x = rng.uniform(-1, 1, (3, 4, *size, 1)).astype(np.float32)
        for extract in (lambda model: model, models.feature_extractor):
            assert np.array_equal(np.asarray(extract(built["any"])(x)), np.asarray(extract(built[name])(x)))


def test_settable_focal_loss_is_the_focal_loss_of_its_weights():
    """SettableFocalLoss (class weights in a variable) gives FocalLoss's value for the weights last set,
    and checks them as FocalLoss does."""
    y_true = keras.utils.to_categorical([0, 1, 2, 1], 3)
    y_pred = np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.1, 0.1, 0.8], [0.5, 0.25, 0.25]], np.float32)
    settable = models.SettableFocalLoss([1 / 3] * 3, gamma=2.0)
    for alpha in ([0.2, 0.3, 0.5], [0.6, 0.4, 0.0]):
        settable.set_alpha(alpha)
        assert float(settable(y_true, y_pred)) == pytest.approx(
            float(models.focal_loss(alpha)(y_true, y_pred)), rel=1e-6
        )
    assert float(settable(y_true, y_pred)) != pytest.approx(float(models.focal_loss([0.2, 0.3, 0.5])(y_true, y_pred)))
    with pytest.raises(ValueError, match="3 class weights"):
        settable.set_alpha([0.5, 0.5])
    with pytest.raises(ValueError, match="finite"):
        settable.set_alpha([np.nan, 0.5, 0.5])


def test_spatial_model_rejects_tiny_patches():
    with pytest.raises(ValueError, match="2x2"):
        models.spatial_model(16, (1, 12), 3)


# -------------------------------------------------------------------------------------------- temporal


def padded(sequences: np.ndarray, steps: int, fill: float | np.ndarray = 0.0) -> np.ndarray:
    batch, length, regions, size = sequences.shape
    out = np.empty((batch, steps, regions, size), np.float32)
    out[:] = fill
    out[:, :length] = sequences
    return out


@pytest.mark.parametrize("temporal_se", [True, False])
def test_temporal_model_ignores_padding(temporal_se):
    rng = np.random.default_rng(2)
    model = models.temporal_model(6, None, 8, 3, temporal_se=temporal_se)
    clips = rng.standard_normal((2, 5, 6, 8)).astype(np.float32)
    lengths = np.array([5, 3], np.int32)
    clips[1, 3:] = 0.0  # the second clip is 3 frames long, zero-padded to 5
    to_8 = np.asarray(model({"sequences": padded(clips, 8), "lengths": lengths}))
    to_12 = np.asarray(model({"sequences": padded(clips, 12), "lengths": lengths}))
    garbage = rng.normal(0, 100, (2, 12, 6, 8)).astype(np.float32)
    garbage[:, :5] = clips
    garbage[1, :3] = clips[1, :3]
    noisy = np.asarray(model({"sequences": garbage, "lengths": lengths}))
    assert to_8.shape == (2, 3)
    np.testing.assert_allclose(to_8.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(to_8, to_12, atol=1e-5)
    np.testing.assert_allclose(to_8, noisy, atol=1e-5)
    # The lengths matter: the same tensor read as 5 frames long gives another answer.
    longer = np.asarray(model({"sequences": padded(clips, 8), "lengths": np.array([5, 5], np.int32)}))
    assert np.abs(longer[1] - to_8[1]).max() > 1e-6


def test_temporal_model_with_fixed_steps():
    model = models.temporal_model(6, 16, 256, 4)
    assert model.get_layer("fused_regions").output.shape == (None, 6 * models.LSTM_UNITS)
    out = model({"sequences": np.zeros((1, 16, 6, 256), np.float32), "lengths": np.array([16], np.int32)})
    assert out.shape == (1, 4)


# ------------------------------------------------------------------------------------- loss and weights


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    rng = np.random.default_rng(3)
    y_true = keras.utils.to_categorical(rng.integers(0, 3, 16), 3)
    y_pred = rng.dirichlet(np.ones(3), 16).astype(np.float32)
    cross_entropy = float(keras.losses.CategoricalCrossentropy()(y_true, y_pred))
    assert float(models.focal_loss([1, 1, 1], gamma=0)(y_true, y_pred)) == pytest.approx(cross_entropy, rel=1e-5)
    uniform = models.inverse_frequency_alpha(np.array([0, 1, 2]), 3)
    assert float(models.focal_loss(uniform, gamma=0)(y_true, y_pred)) == pytest.approx(cross_entropy / 3, rel=1e-5)


def test_focal_loss_down_weights_easy_examples():
    y_true = np.array([[1.0, 0.0]])
    easy, hard = np.array([[0.9, 0.1]]), np.array([[0.3, 0.7]])
    focal, plain = models.focal_loss([1, 1], gamma=2), keras.losses.CategoricalCrossentropy()
    easy_share = float(focal(y_true, easy)) / float(plain(y_true, easy))
    hard_share = float(focal(y_true, hard)) / float(plain(y_true, hard))
    assert easy_share == pytest.approx(0.1**2, rel=1e-4)
    assert hard_share == pytest.approx(0.7**2, rel=1e-4)


def test_focal_loss_is_finite_at_certain_predictions():
    y_true = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    y_pred = tf.Variable([[0.0, 1.0], [0.0, 1.0]])
    with tf.GradientTape() as tape:
        loss = models.focal_loss([0.5, 0.5])(y_true, y_pred)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert np.isfinite(tape.gradient(loss, y_pred).numpy()).all()


def test_focal_loss_config_round_trip_and_checks():
    loss = models.focal_loss([0.25, 0.75], gamma=1.5)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, models.FocalLoss)
    assert (again.alpha, again.gamma) == ([0.25, 0.75], 1.5)
    for alpha, gamma in [([np.inf, 1.0], 2.0), ([np.nan, 1.0], 2.0), ([-0.1, 1.0], 2.0), ([1.0, 1.0], -1.0)]:
        with pytest.raises(ValueError):
            models.focal_loss(alpha, gamma)


def test_inverse_frequency_alpha():
    alpha = models.inverse_frequency_alpha(np.array([0, 0, 0, 1]), 2)
    np.testing.assert_allclose(alpha, [0.25, 0.75])
    assert alpha[1] > alpha[0]
    # A class absent from the training split: weight 0, the others still sum to 1, nothing infinite.
    absent = models.inverse_frequency_alpha(np.array([0, 0, 0, 1]), 3)
    np.testing.assert_allclose(absent, [0.25, 0.75, 0.0])
    assert np.isfinite(absent).all()
    np.testing.assert_allclose(models.inverse_frequency_alpha(np.array([2, 2]), 3), [0, 0, 1])
    for labels in [np.array([], int), np.array([0, 3]), np.array([-1, 0]), np.array([0.0, 1.0])]:
        with pytest.raises(ValueError):
            models.inverse_frequency_alpha(labels, 3)


def test_compile_sets_the_papers_optimisers():
    spatial = models.compile_spatial(models.spatial_model(1, (12, 12), 2), [0.5, 0.5])
    temporal = models.compile_temporal(models.temporal_model(2, 4, 8, 2), [0.5, 0.5])
    assert float(spatial.optimizer.learning_rate) == pytest.approx(1e-4)
    assert float(temporal.optimizer.learning_rate) == pytest.approx(5e-5)
    assert isinstance(spatial.loss, models.FocalLoss) and spatial.loss.gamma == 2.0
    assert models.compile_temporal(models.temporal_model(2, 4, 8, 2), [0.5, 0.5], gamma=1.0).loss.gamma == 1.0


# --------------------------------------------------------------------------------------- saving, training


def test_save_and_load_safe_mode(tmp_path):
    rng = np.random.default_rng(4)
    spatial = models.compile_spatial(models.spatial_model(4, (6, 8), 3), [0.2, 0.3, 0.5])
    temporal = models.compile_temporal(models.temporal_model(3, None, 8, 3), [0.2, 0.3, 0.5])
    x_spatial = random_patches(rng, 4, 4, (6, 8))
    x_temporal = {"sequences": rng.standard_normal((4, 6, 3, 8)).astype(np.float32), "lengths": np.array([6, 2, 4, 1])}
    for model, x in [(spatial, x_spatial), (temporal, x_temporal)]:
        model.fit(x, keras.utils.to_categorical([0, 1, 2, 0], 3), epochs=1, verbose=0)  # optimizer state too
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
        assert isinstance(loaded.loss, models.FocalLoss) and loaded.loss.alpha == [0.2, 0.3, 0.5]
        assert loaded.optimizer.iterations == model.optimizer.iterations == 1
    loaded_features = models.feature_extractor(keras.saving.load_model(tmp_path / "spatial.keras", safe_mode=True))
    features = models.feature_extractor(spatial)
    np.testing.assert_allclose(np.asarray(loaded_features(x_spatial)), np.asarray(features(x_spatial)), atol=1e-6)


def test_training_learns_a_toy_problem():
    """Class 1: a bright spot in the top-left patch; class 0: the same spot in the bottom-right patch."""
    rng = np.random.default_rng(5)
    labels = np.tile([0, 1], 24)
    x = rng.uniform(0, 0.2, (48, 4, 6, 6, 1)).astype(np.float32)
    x[labels == 1, 0, 1:4, 1:4] = 0.9
    x[labels == 0, 3, 1:4, 1:4] = 0.9
    y = keras.utils.to_categorical(labels, 2)
    model = models.compile_spatial(
        models.spatial_model(4, (6, 6), 2), models.inverse_frequency_alpha(labels, 2), learning_rate=1e-3
    )
    before = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)["loss"]
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    after = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)["loss"]
    assert np.isfinite(history.history["loss"]).all()
    assert after < 0.9 * before
