"""OFF-ApexNet (Gan et al. 2019, "OFF-ApexNet on micro-expression recognition system"; no official code,
and the two public reimplementations disagree: PEERS.md).

Input: the onset->apex u and v at 28 x 28, min-max scaled per image and channel (``deep.flow_image``, the
same image as STSTNet's without the strain). No mean image is subtracted: no source describes one for
OFF-ApexNet (STSTNet's comes from its MATLAB input layer), and the inputs are already in [0, 1].

Model (``model``): the paper's two-stream form (as Off-TANet's reimplementation): per stream, u or v 28 x
28 x 1: Conv 5 x 5 6 filters "same" ReLU -> MaxPool 2 -> Conv 5 x 5 16 filters "same" ReLU -> MaxPool 2;
the two 7 x 7 x 16 maps flattened and concatenated (1,568) -> Dense 1024 ReLU -> Dropout 0.5 -> Dense
1024 ReLU -> Dropout 0.5 -> Dense softmax. 2,664,475 parameters at 3 classes. Choices: ReLU after each
convolution (the two-stream description names no activation there; ReLU as in its dense layers and in
meb's single-stream form); Keras' default initialisers (Glorot uniform kernels, zero biases).

Training (``deep.fitter``): cross-entropy without class weights, Adam 1e-4, 3,000 epochs (paper), the last
epoch's weights (the paper does not say which epoch it reports; no epoch is chosen on the test subject).
The batch size is unpublished: 256, STSTNet's (the same group, the same 28 x 28 flow images and about
the same few hundred training clips per fold).
"""

from __future__ import annotations

import numpy as np

from . import deep
from .method import Method, Published

CHANNELS = ("u", "v")


def clip_input(clip: dict, settings: dict) -> np.ndarray:
    """(size, size, 2) float32: the clip's onset->apex u, v, resized and min-max scaled."""
    return deep.flow_image(clip, CHANNELS, settings["size"])


def model(input_shape: tuple[int, ...], classes: int, settings: dict):
    """OFF-ApexNet's two streams, u (channel 0) and v (channel 1), then its dense layers (``settings`` has
    nothing that changes it)."""
    import keras
    from keras import layers

    if input_shape[-1] != len(CHANNELS):
        raise ValueError(f"OFF-ApexNet input: expected {len(CHANNELS)} channels (u, v), got shape {input_shape}")
    image = keras.Input(input_shape, name="flow")
    streams = []
    for index, channel in enumerate(CHANNELS):
        x = image[..., index : index + 1]
        x = layers.Conv2D(6, 5, padding="same", activation="relu", name=f"{channel}_conv1")(x)
        x = layers.MaxPooling2D(2, name=f"{channel}_maxpool1")(x)
        x = layers.Conv2D(16, 5, padding="same", activation="relu", name=f"{channel}_conv2")(x)
        x = layers.MaxPooling2D(2, name=f"{channel}_maxpool2")(x)
        streams.append(layers.Flatten(name=f"{channel}_flatten")(x))
    x = layers.Concatenate(name="streams")(streams)
    x = layers.Dense(1024, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.5, name="dropout1")(x)
    x = layers.Dense(1024, activation="relu", name="dense2")(x)
    x = layers.Dropout(0.5, name="dropout2")(x)
    scores = layers.Dense(classes, activation="softmax", name="scores")(x)
    return keras.Model(image, scores, name="off_apexnet")


METHOD = Method(
    name="off_apexnet",
    summary="OFF-ApexNet: a two-stream CNN on the onset->apex u and v at 28 x 28",
    source="flow",
    clip_input=clip_input,
    input_keys=("size",),
    fit=deep.fitter("off_apexnet", model, subtract_mean=False),
    model_suffix=".keras",
    deep=True,
    published=(
        Published(
            "Gan et al. 2019",
            "epoch choice unknown, no official code; LOSO on the MEGC 2019 composite, pooled",
            {
                "FULL": (0.7196, 0.7096),
                "smic": (0.6817, 0.6695),
                "casme2": (0.8764, 0.8681),
                "samm": (0.5409, 0.5392),
            },
        ),
        Published(
            "MEB toolkit, Varanka et al.",
            "a leak-free re-run: fixed epochs, pooled predictions; FULL UF1 only",
            {"FULL": (0.703, None)},
        ),
    ),
)
