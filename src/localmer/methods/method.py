"""What a method is: the per-clip input it needs, how one fold fits and predicts, its published figures.

A method other than ``localmer`` (the seed's staged pipeline, whose rules live in workflow/rules/train.smk)
is a function of per-clip inputs. Those are fold-independent, so the workflow computes them once per clip
from one preprocessing stage's per-subject files (``source``: ``flow``, the onset->apex flow on the
aligned face; ``aligned``, the aligned grey faces) with ``clip_input`` and caches them
(``localmer.methods.inputs``). One fold then fits on its training subjects' inputs and predicts its test
subject's (``localmer.methods.fold``): ``fit`` returns a ``Fitted`` whose ``arrays`` hold every fitted
parameter and statistic, which the leakage tests compare bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

LOCALMER = "localmer"  # the seed's method: spatial CNN + SE per region -> features -> LSTM + SE
SOURCES = ("flow", "aligned")  # the preprocessing stages a method's clip inputs are computed from


@dataclass(frozen=True)
class Published:
    """A method's figures as a publication reports them (``../shared/PEERS.md``), with its protocol caveat.

    ``parts`` maps FULL, casme2, samm, smic to (UF1, UAR); a figure the source does not give is None.
    """

    source: str  # who reported it, e.g. "Liong et al. 2019" or "MEB toolkit, Varanka et al."
    protocol: str  # how it was obtained, with what makes it not comparable to a leak-free run
    parts: Mapping[str, tuple[float | None, float | None]]


class Fitted(Protocol):
    """A fold's fitted method."""

    history: pd.DataFrame | None  # per-epoch losses (deep methods); None for a closed-form fit
    scores_are_probabilities: bool  # False: predict gives scores (an SVM's decision values), softmaxed for prob_

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(clips, classes) scores; the predicted class is the argmax."""

    def arrays(self) -> dict[str, np.ndarray]:
        """Every fitted parameter and statistic by name (weights, normalisation, class weights)."""

    def save(self, path: str) -> None:
        """The fitted method, in a file that needs no pickle to read."""


# (training inputs (N, ...), training targets (N,) class indices, number of classes, the method's
#  settings, seed, validation (inputs, targets) or None, checkpoint folder, label for the log) -> Fitted
Fit = Callable[..., Fitted]


@dataclass(frozen=True)
class Method:
    name: str
    summary: str  # one line for docs and tables
    source: str | None  # one of SOURCES; None for localmer (its own stages)
    clip_input: Callable[[dict, dict], np.ndarray] | None  # (clip of the source file, settings) -> input
    input_keys: tuple[str, ...]  # the settings clip_input reads (they name the cached inputs' folder)
    fit: Fit | None
    model_suffix: str = ""  # the saved model's file suffix (.keras, .npz)
    deep: bool = False  # trained by epochs (has a training history)
    published: tuple[Published, ...] = field(default=())
