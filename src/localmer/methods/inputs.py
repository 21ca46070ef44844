"""A peer method's per-clip inputs, computed once per clip and cached per subject.

The inputs (28 x 28 flow images, LBP-TOP or Bi-WOOF histograms) depend on the clip and the method's
input settings only, never on a fold: the workflow computes them once (rule method_inputs) and every
fold reads the clips it needs. Nothing here is fitted.

Layout of a method-inputs file::

    /                 attrs: format, stage (method_inputs), method, subject, settings (JSON of the
                             method's input settings), source (the stage read: flow or aligned),
                             localmer_version
    /clips/<clip>     attrs: sample_id
        input         the method's input for the clip (float32; the same shape for every clip)

Clips the landmarks stage skipped are absent from the source file and so from this one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .. import __version__
from ..atomic import atomic_output
from ..runlog import progress
from .registry import get_method

FORMAT = "localmer-method-inputs-1"
STAGE = "method_inputs"


def input_settings(name: str, settings: dict) -> dict:
    """The part of method ``name``'s settings its ``clip_input`` reads."""
    method = get_method(name)
    return {key: settings[key] for key in method.input_keys}


def input_key(name: str, settings: dict, source_key: str) -> str:
    """The folder key of a method's cached inputs: a digest of the source stage's key (which digests
    every setting before it) and the method's input settings."""
    text = json.dumps([source_key, name, input_settings(name, settings)], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _clip_of(group: h5py.Group) -> dict:
    """A clip of a source file (flow or aligned): its attrs and every dataset."""
    return {**dict(group.attrs), **{name: item[()] for name, item in group.items() if isinstance(item, h5py.Dataset)}}


def compute_subject_inputs(name: str, settings: dict, source_path: str | Path, out_path: str | Path) -> int:
    """Every clip of one subject's source file (flow or aligned, as the method's ``source`` says) through
    the method's ``clip_input``; written whole or not at all. Returns clips written. ValueError naming the
    file when it is of another stage, or a clip whose input differs in shape from the others."""
    method = get_method(name)
    if method.clip_input is None:
        raise ValueError(f"method {name!r} has no per-clip inputs (its stages are the workflow's own)")
    chosen = input_settings(name, settings)
    shape = None
    with h5py.File(source_path, "r") as source, atomic_output(out_path) as partial, h5py.File(partial, "w") as h5:
        stage = source.attrs.get("stage")
        if stage != method.source:
            raise ValueError(f"{source_path}: a {stage!r} file, but method {name!r} reads {method.source!r} files")
        subject = str(source.attrs["subject"])
        h5.attrs.update(
            format=FORMAT,
            stage=STAGE,
            method=name,
            subject=subject,
            settings=json.dumps(chosen, sort_keys=True),
            source=method.source,
            localmer_version=__version__,
        )
        h5.create_group("clips")
        clips = source["clips"]
        written = len(clips)
        for clip, group in progress(clips.items(), written, f"{subject} {name} inputs"):
            value = np.asarray(method.clip_input(_clip_of(group), chosen), dtype=np.float32)
            if shape is not None and value.shape != shape:
                raise ValueError(
                    f"{source_path}, clip {clip}: method {name!r} input of shape {value.shape}, the clips before "
                    f"it {shape}"
                )
            shape = value.shape
            cached = h5.create_group(f"clips/{clip}")
            cached.attrs["sample_id"] = group.attrs["sample_id"]
            cached.create_dataset("input", data=value)
    return written


def input_files_of(paths: Sequence[str | Path]) -> dict[str, str]:
    """subject -> method-inputs file, from the files' own subject attribute."""
    files = {}
    for path in paths:
        with h5py.File(path, "r") as h5:
            files[str(h5.attrs["subject"])] = str(path)
    return files


def load_inputs(files: dict[str, str], samples: pd.DataFrame, name: str) -> np.ndarray:
    """The cached inputs of the given samples (rows of samples.tsv), stacked in sample order. ValueError
    naming the file when it holds another method's inputs or lacks a clip."""
    rows = []
    for sample in samples.itertuples():
        path = files.get(sample.subject)
        if path is None:
            raise ValueError(f"no {name} inputs file for subject {sample.subject!r} (sample {sample.sample_id})")
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("stage") != STAGE or h5.attrs.get("method") != name:
                raise ValueError(
                    f"{path}: holds {h5.attrs.get('method')!r} {h5.attrs.get('stage')!r} data, expected method "
                    f"{name!r} inputs"
                )
            if sample.clip not in h5["clips"]:
                raise ValueError(f"{path}: no clip {sample.clip!r} (sample {sample.sample_id})")
            rows.append(h5["clips"][sample.clip]["input"][()])
    return np.stack(rows).astype(np.float32)
