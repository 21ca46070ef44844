"""Keras models of the two stages, their squeeze-and-excitation block and the focal loss.

``spatial_model``   one region of one frame, (m, h, w, C) float32 -> class probabilities; its
                    256-unit ReLU layer ``feature`` is the exported spatial feature (``feature_extractor``)
``temporal_model``  one clip: ``sequences`` (steps, regions, feature_size) standardised features, zero
                    padded, and ``lengths`` (the number of real steps) -> class probabilities

Targets are one-hot (batch, classes). Weights use the Keras default initialisers: the paper's N(0, 1)
initialisation makes activations explode through a 2048-unit layer and training diverge.

The models follow the global Keras dtype policy: float32 by default (the papers'); built inside
``dtype_policy("mixed_bfloat16")`` (``training.spatial.precision``) they compute in bfloat16 with float32
weights, while the softmax and the loss stay float32 (see benchmarks/RESULTS.md for what that buys).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import keras
import numpy as np
from keras import layers, ops

PATCH_CHANNELS = 72  # per patch: 8 max-pooled + 4 x 16 multi-scale convolution channels
FEATURE_SIZE = 256
LSTM_UNITS = 64


# ----------------------------------------------------------------------------------------------- blocks


def patch_cnn(patch_size: tuple[int, int], channels: int = 1, name: str = "patch_cnn") -> keras.Model:
    """The patch CNN of Aouayeb et al. (2019) (the paper's Figure 4): (h, w, channels) -> (h // 2, w // 2,
    72). The paper's input is one grey channel; only the first convolution's kernels see ``channels``.

    Output channels in the order max-pool 8, conv 1x1, 3x3, 5x5, 7x7 (16 each).
    """
    patch = keras.Input((*patch_size, channels), name="patch")
    low = layers.Conv2D(4, 5, padding="same", activation="relu", name="conv4_5x5")(patch)
    edges = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv8_3x3")(low)
    branches = [layers.MaxPooling2D(2, name="maxpool")(edges)]
    for kernel in (1, 3, 5, 7):
        scale = layers.Conv2D(16, kernel, padding="same", activation="relu", name=f"conv16_{kernel}x{kernel}")(edges)
        branches.append(layers.MaxPooling2D(2, name=f"maxpool_{kernel}x{kernel}")(scale))
    return keras.Model(patch, layers.Concatenate(name="multiscale")(branches), name=name)


def excitation(descriptor, ratio: float, name: str):
    """The excitation of squeeze-and-excitation (Hu et al. 2018; the paper's Figure 5): (batch, F) channel
    descriptors -> FC round(ratio * F) ReLU -> FC F sigmoid -> one weight per channel. At least one unit in
    the bottleneck."""
    channels = descriptor.shape[-1]
    bottleneck = layers.Dense(max(1, round(ratio * channels)), activation="relu", name=f"{name}_reduce")(descriptor)
    return layers.Dense(channels, activation="sigmoid", name=f"{name}_excite")(bottleneck)


def squeeze_excitation(features, ratio: float, name: str):
    """Squeeze-and-excitation over the last axis of ``features`` (batch, ..., F): the mean over all other
    axes (squeeze) -> ``excitation`` -> every channel rescaled by its weight."""
    channels = features.shape[-1]
    squeeze = {3: layers.GlobalAveragePooling1D, 4: layers.GlobalAveragePooling2D}[len(features.shape)]
    weights = excitation(squeeze(name=f"{name}_squeeze")(features), ratio, name)
    broadcastable = layers.Reshape((1,) * (len(features.shape) - 2) + (channels,), name=f"{name}_weights")(weights)
    return layers.Multiply(name=f"{name}_rescale")([features, broadcastable])


@keras.saving.register_keras_serializable(package="localmer")
class StepMask(layers.Layer):
    """(sequences (batch, steps, ...), lengths (batch,)) -> (batch, steps) bool: True on the real steps."""

    def call(self, sequences, lengths):
        steps = ops.arange(ops.shape(sequences)[1], dtype="int32")
        return ops.expand_dims(steps, 0) < ops.expand_dims(ops.cast(lengths, "int32"), 1)


@keras.saving.register_keras_serializable(package="localmer")
class FoldPatches(layers.Layer):
    """(batch, patches, h, w, channels) -> (batch * patches, h, w, channels), for patches of a size
    known only when the model runs."""

    def call(self, region):
        shape = ops.shape(region)
        return ops.reshape(region, (-1, shape[2], shape[3], shape[4]))

    def compute_output_shape(self, input_shape):
        batch, patches = input_shape[:2]
        return (None if batch is None else batch * patches, *input_shape[2:])


# ----------------------------------------------------------------------------------------------- models


def spatial_model(
    patches: int,
    patch_size: tuple[int, int],
    classes: int,
    *,
    se_ratio: float = 0.25,
    spatial_se: bool = True,
    share_patch_cnn: bool = True,
    channels: int = 1,
    name: str = "spatial",
) -> keras.Model:
    """The spatial model of one region (the paper's Figure 3). Input (patches, h, w, channels): one channel
    of grey in [0, 1] or the onset difference in [-1, 1], or three of flow (``localmer.inputs``).
    ``patch_size=None`` takes patches of any size: the model of every region at once, its weights those
    of the model of a given size (nothing after the global average pooling depends on the size).

    Patch CNN on every patch -> patch features concatenated, (h/2, w/2, 72 * patches) -> SE over those
    channels (``spatial_se``) -> GAP -> FC 2048 ReLU -> Dropout 0.5 -> FC 256 ReLU ("feature") ->
    Dropout 0.5 -> FC classes softmax. ``patches=1, spatial_se=False`` is the 2019 whole-region model.
    SE and GAP are computed in the other order, which gives the same numbers (see below); layer
    ``patch_means`` holds the GAP before SE, (72 * patches,), patch by patch.
    """
    height, width = patch_size or (None, None)
    if patch_size is not None and (height < 2 or width < 2):
        raise ValueError(f"patches must be at least 2x2 pixels, not {patch_size}")
    region = keras.Input((patches, height, width, channels), name="patches")
    if share_patch_cnn:
        # One CNN for all patches: fold the patches into the batch and run it once on batch * patches.
        if patch_size is None:
            folded = FoldPatches(name="fold_patches")(region)
        else:
            folded = ops.reshape(region, (-1, height, width, channels))
        folded_means = layers.GlobalAveragePooling2D(name="gap")(patch_cnn((height, width), channels)(folded))
        # Back to one sample per row, patch by patch: (patches, 72) -> (patches * 72).
        patch_means = layers.Reshape((patches * PATCH_CHANNELS,), name="patch_means")(
            ops.reshape(folded_means, (-1, patches, PATCH_CHANNELS))
        )
    else:
        # One CNN per patch, as towers: the grouped-convolution form (patches as channel groups) trained at
        # 8 samples/s against ~500 on a CPU (TensorFlow 2.21 has no fast CPU grouped convolution).
        towers = [
            patch_cnn((height, width), channels, name=f"patch_cnn_{index}")(region[:, index])
            for index in range(patches)
        ]
        patch_means = layers.GlobalAveragePooling2D(name="patch_means")(layers.Concatenate()(towers))
    pooled_features = patch_means
    if spatial_se:
        # SE rescales each channel of the concatenated patch maps by a weight computed from the channel's
        # mean, and the GAP that follows averages the rescaled map: that is the mean times the weight. So
        # the means are rescaled, not the maps: the same numbers without a pass over the maps (a training
        # step 7 % faster in float32 and 19 % in bfloat16 on a CPU).
        weights = excitation(patch_means, se_ratio, name="patch_se")
        pooled_features = layers.Multiply(name="patch_se_rescale")([patch_means, weights])
    hidden = layers.Dropout(0.5)(layers.Dense(2048, activation="relu", name="fc2048")(pooled_features))
    feature = layers.Dense(FEATURE_SIZE, activation="relu", name="feature")(hidden)
    # float32 softmax whatever the dtype policy: the loss needs precise probabilities.
    probabilities = layers.Dense(classes, activation="softmax", dtype="float32", name="classes")(
        layers.Dropout(0.5)(feature)
    )
    return keras.Model(region, probabilities, name=name)


def temporal_model(
    regions: int,
    steps: int | None,
    feature_size: int,
    classes: int,
    *,
    temporal_se: bool = True,
    se_ratio: float = 0.25,
    name: str = "temporal",
) -> keras.Model:
    """The temporal model (the paper's Figure 6). Inputs: ``sequences`` (steps, regions, feature_size), the
    standardised spatial features of each frame and region, zero-padded after the clip; ``lengths`` (),
    int32, the clip's number of frames. ``steps=None`` accepts any padded length.

    Per region LSTM(64) -> LeakyReLU -> Dropout 0.2; the region vectors as SE channels (each region's
    vector squeezed by its mean, FC round(se * regions) ReLU -> FC regions sigmoid -> each vector rescaled;
    ``temporal_se=False``: plain concatenation) -> FC 256 LeakyReLU -> Dropout 0.5 -> FC classes softmax.
    The padding is masked explicitly by ``lengths``: padded steps never reach an LSTM state, whatever
    their values.
    """
    sequences = keras.Input((steps, regions, feature_size), name="sequences")
    lengths = keras.Input((), dtype="int32", name="lengths")
    real_steps = StepMask(name="real_steps")(sequences, lengths)
    region_vectors = []
    for region in range(regions):
        last_state = layers.LSTM(LSTM_UNITS, name=f"lstm_region{region}")(sequences[:, :, region], mask=real_steps)
        # The paper gives no LeakyReLU slope: Keras' default (0.3).
        region_vectors.append(layers.Dropout(0.2)(layers.LeakyReLU()(last_state)))
    spatiotemporal = ops.stack(region_vectors, axis=-1)  # (LSTM units, regions): regions are the channels
    if temporal_se:
        spatiotemporal = squeeze_excitation(spatiotemporal, se_ratio, name="region_se")
    fused = layers.Flatten(name="fused_regions")(spatiotemporal)
    hidden = layers.Dropout(0.5)(layers.LeakyReLU()(layers.Dense(256, name="fc256")(fused)))
    probabilities = layers.Dense(classes, activation="softmax", dtype="float32", name="classes")(hidden)
    return keras.Model([sequences, lengths], probabilities, name=name)


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Models built inside follow the Keras dtype policy ``name`` ("float32", "mixed_bfloat16"); the global
    policy is restored on exit. A saved model keeps its policy when loaded."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def feature_extractor(model: keras.Model) -> keras.Model:
    """The sub-model from a spatial model's input to its 256-d ``feature`` layer (after the ReLU)."""
    return keras.Model(model.input, model.get_layer("feature").output, name=f"{model.name}_features")


# ------------------------------------------------------------------------------------- loss and training


@keras.saving.register_keras_serializable(package="localmer")
class FocalLoss(keras.losses.Loss):
    """Categorical focal loss (Lin et al.): -sum_i alpha_i (1 - p_i)^gamma y_i log p_i per sample.

    With gamma = 0 and every alpha_i = 1 it is the categorical cross-entropy; with a normalised uniform
    alpha (1/K each) it is the cross-entropy / K. Probabilities are clipped to [eps, 1 - eps] (no NaN).
    """

    def __init__(self, alpha: Sequence[float], gamma: float = 2.0, name: str = "focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = [float(weight) for weight in alpha]
        self.gamma = float(gamma)
        if not all(np.isfinite(self.alpha)) or min(self.alpha) < 0 or self.gamma < 0:
            raise ValueError(f"alpha must be finite and >= 0 and gamma >= 0, not {self.alpha}, {self.gamma}")

    def class_weights(self):
        return ops.convert_to_tensor(self.alpha, dtype="float32")

    def call(self, y_true, y_pred):
        epsilon = keras.config.epsilon()
        probabilities = ops.clip(ops.cast(y_pred, "float32"), epsilon, 1.0 - epsilon)
        modulation = self.class_weights() * (1.0 - probabilities) ** self.gamma
        return -ops.sum(ops.cast(y_true, "float32") * modulation * ops.log(probabilities), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


class SettableFocalLoss(FocalLoss):
    """The focal loss with its class weights in a variable (``set_alpha``), so that one traced training
    step serves models trained one after another with other weights (``localmer.training.SpatialTrainer``).
    Its rounding is not FocalLoss's: TensorFlow folds FocalLoss's constant weights into other constants of
    the step's gradient. Not saved with a model: a saved model is compiled with ``FocalLoss``."""

    def __init__(self, alpha: Sequence[float], gamma: float = 2.0, name: str = "focal_loss", **kwargs):
        super().__init__(alpha, gamma, name=name, **kwargs)
        self.alpha_variable = keras.Variable(self.alpha, dtype="float32", trainable=False, name="focal_alpha")

    def set_alpha(self, alpha: Sequence[float]) -> None:
        checked = FocalLoss(alpha, self.gamma).alpha
        if len(checked) != len(self.alpha):
            raise ValueError(f"alpha must have {len(self.alpha)} class weights, not {len(checked)}")
        self.alpha = checked
        self.alpha_variable.assign(checked)

    def class_weights(self):
        return self.alpha_variable


def focal_loss(alpha: Sequence[float], gamma: float = 2.0) -> FocalLoss:
    """The focal loss with class weights ``alpha`` (e.g. ``inverse_frequency_alpha``) and focus ``gamma``."""
    return FocalLoss(alpha, gamma)


def inverse_frequency_alpha(labels: np.ndarray, classes: int) -> np.ndarray:
    """Focal-loss class weights from the training labels (class indices): 1 / count, normalised to sum 1.

    A class absent from the training split gets weight 0: no training target has it, so its weight would
    multiply only zero terms of the loss anyway, and 0 keeps the present classes' weights unchanged.
    """
    labels = np.asarray(labels).ravel()
    if labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels must be a non-empty array of integer class indices")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"labels must lie in [0, {classes}), found {labels.min()}..{labels.max()}")
    counts = np.bincount(labels, minlength=classes)
    inverse = np.divide(1.0, counts, out=np.zeros(classes), where=counts > 0)
    return inverse / inverse.sum()


def _compile(
    model: keras.Model, alpha: Sequence[float], learning_rate: float, gamma: float, loss: type = FocalLoss
) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss(alpha, gamma),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model


def compile_spatial(
    model: keras.Model,
    alpha: Sequence[float],
    learning_rate: float = 1e-4,
    *,
    gamma: float = 2.0,
    settable_alpha: bool = False,
) -> keras.Model:
    """Focal loss (class weights ``alpha``, focus ``gamma``; a ``SettableFocalLoss`` with
    ``settable_alpha``), Adam 1e-4, accuracy; returns the model."""
    return _compile(model, alpha, learning_rate, gamma, SettableFocalLoss if settable_alpha else FocalLoss)


def compile_temporal(
    model: keras.Model, alpha: Sequence[float], learning_rate: float = 5e-5, *, gamma: float = 2.0
) -> keras.Model:
    """Focal loss (class weights ``alpha``, focus ``gamma``), Adam 5e-5, accuracy; returns the model."""
    return _compile(model, alpha, learning_rate, gamma)
