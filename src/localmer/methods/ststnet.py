"""STSTNet (Liong et al. 2019, "Shallow Triple Stream Three-dimensional CNN (STSTNet) for micro-expression
recognition"; christy1206/STSTNet, whose MATLAB ``STSTNet.mat`` and PyTorch ``main.py`` agree).

Input: the onset->apex u, v and optical strain at 28 x 28, min-max scaled per image and channel
(``deep.flow_image``); the training inputs' mean image subtracted, as the MATLAB image input layer does
(a statistic of the fold's training clips only, in ``arrays()`` and in the saved model).

Model (``model``), as the paper's figure: three parallel streams on the same input, Conv 3 x 3 with 3 / 5
/ 8 filters "same" -> ReLU -> BatchNorm -> MaxPool 3 x 3 stride 3 "same" -> Dropout 0.5; concatenated (16
channels, 10 x 10) -> AvgPool 2 x 2 stride 2 -> flatten (400) -> Dense softmax. 1,683 trainable parameters
at 28 x 28 x 3 and 3 classes (the paper: 0.00167 M). Where the sources are silent: Keras' default
initialisers (Glorot uniform kernels, zero biases; MATLAB's defaults too); batch norm with the PyTorch
code's epsilon 1e-5 and momentum 0.1 (Keras momentum 0.9), not Keras' 1e-3 / 0.99, whose slow moving
averages would lag behind the few steps of a short run.

Training (``deep.fitter``): cross-entropy without class weights, Adam 5e-5, batch 256, 500 epochs (the
MATLAB run; the PyTorch port runs 800), the last epoch's weights (the public code's choice; no epoch is
chosen on the test subject).
"""

from __future__ import annotations

import numpy as np

from . import deep
from .method import Method, Published

CHANNELS = ("u", "v", "strain")
STREAM_FILTERS = (3, 5, 8)


def clip_input(clip: dict, settings: dict) -> np.ndarray:
    """(size, size, 3) float32: the clip's onset->apex u, v, strain, resized and min-max scaled."""
    return deep.flow_image(clip, CHANNELS, settings["size"])


def model(input_shape: tuple[int, ...], classes: int, settings: dict):
    """STSTNet as the paper's figure draws it (``settings`` has nothing that changes it)."""
    import keras
    from keras import layers

    image = keras.Input(input_shape, name="flow")
    streams = []
    for filters in STREAM_FILTERS:
        x = layers.Conv2D(filters, 3, padding="same", name=f"conv{filters}")(image)
        x = layers.ReLU(name=f"relu{filters}")(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"batchnorm{filters}")(x)
        x = layers.MaxPooling2D(3, strides=3, padding="same", name=f"maxpool{filters}")(x)
        x = layers.Dropout(0.5, name=f"dropout{filters}")(x)
        streams.append(x)
    x = layers.Concatenate(name="streams")(streams)
    x = layers.AveragePooling2D(2, strides=2, name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    scores = layers.Dense(classes, activation="softmax", name="scores")(x)
    return keras.Model(image, scores, name="ststnet")


METHOD = Method(
    name="ststnet",
    summary="STSTNet: a shallow three-stream CNN on the onset->apex u, v and strain at 28 x 28",
    source="flow",
    clip_input=clip_input,
    input_keys=("size",),
    fit=deep.fitter("ststnet", model, subtract_mean=True),
    model_suffix=".keras",
    deep=True,
    published=(
        Published(
            "Liong et al. 2019",
            "last epoch (public code); LOSO on the MEGC 2019 composite, pooled; SMIC apex spotted (D&C-RoIs)",
            {
                "FULL": (0.7353, 0.7605),
                "smic": (0.6801, 0.7013),
                "casme2": (0.8382, 0.8686),
                "samm": (0.6588, 0.6810),
            },
        ),
        Published(
            "MEB toolkit, Varanka et al.",
            "a leak-free re-run: fixed epochs, pooled predictions; FULL UF1 only",
            {"FULL": (0.713, None)},
        ),
    ),
)
