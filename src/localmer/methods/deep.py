"""What the deep peers (STSTNet, OFF-ApexNet) share: their input image of the onset->apex flow, and a
fold's fit.

Input: the chosen channels of the clip's ``onset_apex`` field (``localmer.flow.CHANNELS``) resized to
size x size and min-max scaled per channel to [0, 1], as the published STSTNet images are (OFF-ApexNet's
authors, the same group, give no other scaling).

Fit, as the papers train: categorical cross-entropy without class weights (neither paper weights its
classes), Adam at ``learning_rate``, ``batch_size``, a fixed number of ``epochs`` and the last epoch's
weights: no epoch is chosen on the test subject. With a validation set (carved from the training
subjects by the caller) and ``patience``, early stopping on its loss restores the best validation
epoch. Epochs run through ``localmer.training.fit_epochs`` (exact resume after SIGTERM; each epoch's
randomness a function of (seed, epoch)), checkpointed every ``checkpoint_every`` epochs. The fit leaves
``checkpoint_dir`` in place (a rerun after the fit ended resumes its last checkpoint at once); the caller
removes it (``training.remove_checkpoints``) once its outputs are written.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .. import flow, regions, training

MEAN_IMAGE = "mean_image"  # the name of the input layer subtracting the training mean, and its arrays() key


def flow_image(clip: dict, channels: tuple[str, ...], size: int) -> np.ndarray:
    """(size, size, len(channels)) float32: the clip's onset->apex ``channels`` resized, then min-max scaled
    per channel to [0, 1] (a constant channel gives zeros).

    Resizing is ``regions.crop_frames``'s over the whole field: cv2's INTER_AREA when shrinking (the
    aligned face, 160 x 192 px by default, to 28 x 28), which averages every pixel under an output pixel,
    as MATLAB's anti-aliased ``imresize`` of the STSTNet authors does; point sampling (bilinear) would
    keep a few noisy flow pixels of each 6 x 7 block and alias. The aspect ratio is not kept: the papers
    resize their face crops to a square too.
    """
    field = clip.get("onset_apex")
    if field is None:
        raise ValueError(f"clip {clip.get('sample_id', '?')}: no onset_apex flow (preprocessing.flow.pairs)")
    field = np.asarray(field)
    if field.ndim != 3 or field.shape[2] != len(flow.CHANNELS):
        raise ValueError(
            f"clip {clip.get('sample_id', '?')}: onset_apex has shape {field.shape}, expected (H, W, "
            f"{len(flow.CHANNELS)}) ({', '.join(flow.CHANNELS)})"
        )
    if not np.isfinite(field).all():
        raise ValueError(f"clip {clip.get('sample_id', '?')}: onset_apex holds non-finite values")
    chosen = np.ascontiguousarray(field[..., [flow.CHANNELS.index(name) for name in channels]], dtype=np.float32)
    height, width = chosen.shape[:2]
    image = regions.crop_frames(chosen[None], (0, 0, width, height), (size, size))[0].reshape(size, size, -1)
    low = image.min(axis=(0, 1))
    span = image.max(axis=(0, 1)) - low
    scaled = np.divide(image - low, span, out=np.zeros_like(image), where=span > 0)
    return scaled.astype(np.float32)


class DeepFitted:
    """A fold's fitted deep peer: its Keras model, the training mean image its input layer subtracts (or
    None), and the fit's per-epoch history."""

    scores_are_probabilities = True  # softmax outputs

    def __init__(self, model, mean_image: np.ndarray | None, history: pd.DataFrame, batch_size: int):
        self.model = model
        self.mean_image = mean_image
        self.history = history
        self.batch_size = batch_size

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(clips, classes) softmax probabilities."""
        if not len(inputs):
            return np.zeros((0, self.model.output_shape[-1]), dtype=np.float32)
        return self.model.predict(np.asarray(inputs, dtype=np.float32), batch_size=self.batch_size, verbose=0)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every weight of the model (batch-norm statistics included) by variable path, and the mean image."""
        weights = {variable.path: np.asarray(variable.numpy()) for variable in self.model.weights}
        if len(weights) != len(self.model.weights):
            raise AssertionError("two of the model's variables share a path")
        if self.mean_image is not None:
            weights[MEAN_IMAGE] = self.mean_image
        return weights

    def save(self, path: str) -> None:
        """The model as .keras, the mean image (when subtracted) in it as its input layer's constant."""
        self.model.save(path)


def _check_inputs(x: np.ndarray, y: np.ndarray, classes: int, what: str) -> None:
    if x.ndim != 4 or len(x) != len(y) or not len(x):
        raise ValueError(f"{what}: expected inputs (N, H, W, C) and N targets, N > 0; got {x.shape} and {y.shape}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= classes:
        raise ValueError(f"{what}: targets must be class indices in [0, {classes}), got {np.unique(y).tolist()}")


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int):
    """The (validation) arrays in order as a batched tf.data pipeline."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def fitter(name: str, build: Callable, *, subtract_mean: bool) -> Callable[..., DeepFitted]:
    """The fit of a deep peer whose model ``build(input_shape, classes, settings)`` makes; with
    ``subtract_mean``, the model's first layer subtracts the training inputs' mean image (a constant of a
    Keras Normalization layer of variance 1: saved in the .keras, read in safe mode)."""

    def fit(x, y, classes, settings, *, seed, validation, checkpoint_dir, label) -> DeepFitted:
        import keras

        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y)
        _check_inputs(x, y, classes, f"{label} training")
        batch_size = settings["batch_size"]
        validation_data, validation_arrays = None, ()
        if validation is not None:
            x_val, y_val = np.asarray(validation[0], dtype=np.float32), np.asarray(validation[1])
            _check_inputs(x_val, y_val, classes, f"{label} validation")
            validation_data = _batches(x_val, keras.utils.to_categorical(y_val, classes), batch_size)
            validation_arrays = (x_val, y_val)
        keras.utils.set_random_seed(seed)  # initial weights from the seed, whatever ran before
        core = build(x.shape[1:], classes, settings)
        mean_image = None
        model = core
        if subtract_mean:
            mean_image = x.mean(axis=0, dtype=np.float64).astype(np.float32)  # the training inputs only
            inputs = keras.Input(x.shape[1:], name="flow_image")
            centred = keras.layers.Normalization(
                axis=(1, 2, 3), mean=mean_image, variance=np.ones_like(mean_image), name=MEAN_IMAGE
            )(inputs)
            model = keras.Model(inputs, core(centred), name=core.name)
        model.compile(
            optimizer=keras.optimizers.Adam(settings["learning_rate"]),
            loss="categorical_crossentropy",
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
        one_hot = keras.utils.to_categorical(y, classes)
        history = training.fit_epochs(
            model,
            training.gathered_batches(x, one_hot),
            len(x),
            epochs=settings["epochs"],
            seed=seed,
            batch_size=batch_size,
            validation_data=validation_data,
            patience=settings["patience"] if validation is not None else None,
            checkpoint_dir=checkpoint_dir,
            identity=training.fit_identity(
                {"method": name, "classes": classes, "seed": seed, "settings": settings}, x, y, *validation_arrays
            ),
            label=label,
            checkpoint_every=settings["checkpoint_every"],
        )
        return DeepFitted(model, mean_image, history, batch_size)

    return fit
