"""The deep peers STSTNet and OFF-ApexNet (``localmer.methods.ststnet``, ``off_apexnet``, ``deep``): the
architectures against their sources' parameter counts, the flow image on an analytic field, and a fold's
fit: it learns, repeats with its seed, keeps the training mean image, saves a model that predicts the
same, and resumes exactly from a checkpoint written every k epochs."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from localmer import tfsetup, training
from localmer.methods import deep, off_apexnet, ststnet

SEED = 3
METHODS = {"ststnet": (ststnet, 3), "off_apexnet": (off_apexnet, 2)}  # module, input channels
FAST = {"size": 28, "epochs": 5, "batch_size": 8, "patience": None, "checkpoint_every": 3}
LEARNING_RATE = {"ststnet": 1e-2, "off_apexnet": 1e-3}  # a few epochs to learn the blobs


def blobs(n: int, channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of 3 separable classes: noise plus a Gaussian blob at a class's place (jittered)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    rows, cols = np.mgrid[0:28, 0:28]
    x = 0.5 * rng.random((n, 28, 28, channels), dtype=np.float32)
    for i, label in enumerate(y):
        row, col = np.array([(7, 7), (7, 20), (20, 14)][label]) + rng.normal(0, 1.5, 2)
        x[i] += np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / 18)[..., None]
    return x.astype(np.float32), y


def fit(name, x, y, folder, *, seed=SEED, validation=None, **changes):
    module = METHODS[name][0]
    settings = {**FAST, "learning_rate": LEARNING_RATE[name], **changes}
    return module.METHOD.fit(
        x, y, 3, settings, seed=seed, validation=validation, checkpoint_dir=str(folder), label=f"test {name}"
    )


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)


@pytest.fixture(scope="module", autouse=True)
def tensorflow():
    tfsetup.configure_tensorflow(1, SEED)  # as every training job starts


# ------------------------------------------------------------------------------------ architectures


def test_architectures_have_their_sources_parameter_counts_and_shapes():
    net = ststnet.model((28, 28, 3), 3, {})
    assert sum(int(np.prod(w.shape)) for w in net.trainable_weights) == 1683  # the paper: 0.00167 M
    assert net.get_layer("streams").output.shape == (None, 10, 10, 16)
    assert net.get_layer("flatten").output.shape == (None, 400)
    assert net.output.shape == (None, 3)
    net = off_apexnet.model((28, 28, 2), 3, {})
    assert net.count_params() == 2_664_475
    assert net.get_layer("u_conv1").input.shape == (None, 28, 28, 1)
    assert net.get_layer("streams").output.shape == (None, 1568)
    assert net.output.shape == (None, 3)
    with pytest.raises(ValueError, match="expected 2 channels"):
        off_apexnet.model((28, 28, 3), 3, {})


# ------------------------------------------------------------------------------------ flow image


def test_the_flow_image_is_the_resized_field_min_max_scaled_per_channel():
    """u = x and v = y ramps on a 56 x 84 field: area resizing to 28 x 28 averages 2 x 3 blocks, so the
    scaled u is column / 27 and v row / 27; the constant strain becomes zeros (no NaN)."""
    rows, cols = np.mgrid[0:56, 0:84].astype(np.float32)
    field = np.stack([cols, rows, np.full_like(rows, 0.7), np.hypot(cols, rows)], axis=-1)
    clip = {"sample_id": "d/s1/c1", "onset_apex": field}
    image = ststnet.clip_input(clip, {"size": 28})
    expected_u = np.broadcast_to(np.arange(28) / 27, (28, 28))
    assert image.shape == (28, 28, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image[..., 0], expected_u, atol=1e-6)
    np.testing.assert_allclose(image[..., 1], expected_u.T, atol=1e-6)
    assert np.array_equal(image[..., 2], np.zeros((28, 28)))  # control: u and v above span [0, 1]
    np.testing.assert_array_equal(off_apexnet.clip_input(clip, {"size": 28}), image[..., :2])
    with pytest.raises(ValueError, match="no onset_apex"):
        ststnet.clip_input({"sample_id": "d/s1/c1"}, {"size": 28})
    with pytest.raises(ValueError, match=r"expected \(H, W, 4\)"):
        ststnet.clip_input({"onset_apex": field[..., :3]}, {"size": 28})
    field[3, 5, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        ststnet.clip_input(clip, {"size": 28})


# ------------------------------------------------------------------------------------ fit


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """fits(name): the method's fits on the blobs, each made once: two with the seed; STSTNet's also one
    with another seed (the control of the repeat), all with early stopping on a validation set (a patience
    the epochs never reach) for the resume test."""
    made = {}

    def fits_of(name: str) -> dict:
        if name not in made:
            folder = tmp_path_factory.mktemp(name)
            channels = METHODS[name][1]
            x, y = blobs(24, channels, 0)
            run = {"validation": blobs(6, channels, 1), "patience": 100} if name == "ststnet" else {}
            seeds = (SEED, SEED, SEED + 1) if name == "ststnet" else (SEED, SEED)
            runs = [fit(name, x, y, folder / str(i), seed=seed, **run) for i, seed in enumerate(seeds)]
            made[name] = {"x": x, "y": y, "run": run, "runs": runs, "folder": folder}
        return made[name]

    return fits_of


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_deep_fit_learns_its_training_folds(fits, name):
    made = fits(name)
    first = made["runs"][0]
    probabilities = first.predict(made["x"])
    assert probabilities.shape == (len(made["x"]), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)  # softmax
    assert (probabilities.argmax(axis=1) == made["y"]).mean() > 0.9
    assert list(first.history.epoch) == list(range(FAST["epochs"]))
    assert first.history.loss.iloc[-1] < first.history.loss.iloc[0]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_deep_fit_repeats_exactly_with_its_seed(fits, name):
    first, again, *other = (run.arrays() for run in fits(name)["runs"])
    assert same(first, again)
    if other:  # control (one method's: the check is the same): the seed changes the fit
        assert not same(first, other[0])


@pytest.mark.parametrize("name", sorted(METHODS))
def test_the_saved_model_predicts_as_the_fitted_one(fits, name):
    import keras

    made = fits(name)
    first = made["runs"][0]
    path = made["folder"] / f"{name}.keras"
    first.save(str(path))
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = blobs(10, METHODS[name][1], 2)[0]
    batch = FAST["batch_size"]  # as Fitted.predict batches (a float sum's order depends on the batch)
    np.testing.assert_array_equal(loaded.predict(x, batch_size=batch, verbose=0), first.predict(x))
    if deep.MEAN_IMAGE in first.arrays():  # control: without its mean image layer the model predicts otherwise
        core = loaded.get_layer(name)
        assert not np.allclose(core.predict(x, batch_size=batch, verbose=0), first.predict(x))


def test_the_mean_image_is_the_training_inputs_mean(tmp_path):
    """STSTNet subtracts the mean of the fold's training inputs: a changed validation input leaves it as it
    is, a changed training input changes it. OFF-ApexNet subtracts none. (Fits of 0 epochs: the mean is
    taken before training.)"""
    x, y = blobs(12, 3, 0)
    validation = blobs(6, 3, 1)
    mean = fit("ststnet", x, y, tmp_path / "a", validation=validation, epochs=0).arrays()[deep.MEAN_IMAGE]
    np.testing.assert_allclose(mean, x.mean(axis=0), atol=1e-6)
    validation[0][2] += 1
    again = fit("ststnet", x, y, tmp_path / "b", validation=validation, epochs=0).arrays()[deep.MEAN_IMAGE]
    assert np.array_equal(again, mean)
    x[4] += 1
    changed = fit("ststnet", x, y, tmp_path / "c", validation=validation, epochs=0).arrays()[deep.MEAN_IMAGE]
    assert not np.array_equal(changed, mean)  # control
    assert deep.MEAN_IMAGE not in fit("off_apexnet", x[..., :2], y, tmp_path / "d", epochs=0).arrays()


def test_an_interrupted_fit_resumes_exactly_from_a_checkpoint_every_k_epochs(fits, tmp_path, monkeypatch, caplog):
    """5 epochs with a checkpoint every 3 (and after the last) and early stopping on a validation set (its
    state resumed too). Interrupted in epoch 5, the newest checkpoint is epoch 3; the rerun repeats epochs
    4 and 5 and ends bit for bit as the uninterrupted fit. Control: a resume from a wrong state (epoch 3's
    saved as 4) ends otherwise."""
    import keras

    made = fits("ststnet")
    whole = made["runs"][0]
    assert [p.name for p in (made["folder"] / "0").iterdir()] == ["epoch-5"]  # saved after the last epoch
    real_fit = keras.Model.fit

    class KillInEpoch5(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 4:
                raise KeyboardInterrupt

    def killed_in_epoch_5(model, *args, callbacks=(), **kwargs):
        return real_fit(model, *args, callbacks=[*callbacks, KillInEpoch5()], **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(keras.Model, "fit", killed_in_epoch_5)
        with pytest.raises(KeyboardInterrupt):
            fit("ststnet", made["x"], made["y"], tmp_path / "resumed", **made["run"])
    assert [p.name for p in (tmp_path / "resumed").iterdir()] == ["epoch-3"]
    shutil.copytree(tmp_path / "resumed" / "epoch-3", tmp_path / "wrong" / "epoch-4")
    with caplog.at_level(logging.INFO, logger="localmer.training"):
        resumed = fit("ststnet", made["x"], made["y"], tmp_path / "resumed", **made["run"])
    assert "resuming after epoch 3" in caplog.text
    assert same(resumed.arrays(), whole.arrays())
    assert resumed.history.equals(whole.history)
    wrong = fit("ststnet", made["x"], made["y"], tmp_path / "wrong", **made["run"])
    assert not same(wrong.arrays(), whole.arrays())


def test_checkpoint_every_must_be_a_whole_number_from_1():
    with pytest.raises(ValueError, match="checkpoint_every: expected a whole number >= 1, got 0"):
        training.fit_epochs(
            None,
            None,
            1,
            epochs=1,
            seed=0,
            batch_size=1,
            validation_data=None,
            patience=None,
            checkpoint_dir="unused",
            identity="",
            label="",
            checkpoint_every=0,
        )
