"""The seed's method (``method: localmer``): six regions x m patches -> patch CNN fused by SE per region ->
256-d features -> LSTM per region fused by SE. Its stages are the workflow's own (preprocessing patches,
train_spatial with the feature export, train_temporal: ``localmer.training``); it has no per-clip input here."""

from __future__ import annotations

from .method import LOCALMER, Method, Published

METHOD = Method(
    name=LOCALMER,
    summary="six facial regions x m patches: patch CNN + SE per region, LSTM per region + SE (the seed)",
    source=None,
    clip_input=None,
    input_keys=(),
    fit=None,
    deep=True,
    published=(
        Published(
            source="the seed paper, 2019",
            protocol="test subjects in the CNN's training data (a random 50 % split of all frames): not leak-free",
            parts={
                "FULL": (0.9022, 0.9018),
                "smic": (0.8886, 0.8828),
                "casme2": (0.9857, 0.9857),
                "samm": (0.7855, 0.8103),
            },
        ),
    ),
)
