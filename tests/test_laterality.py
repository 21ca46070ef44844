"""Laterality end to end: a synthetic clip with a one-sided action unit (L12 / R12, the subject's left /
right lip corner) moves the cheek crop that ``region_labels`` marks with the clip's class, after the
clip went through the preprocessing steps (dlib landmarks, alignment, the region table), and not the
other cheek, which is marked not_concerned. The control mirrors the frames: the motion then lands in
the other crop, so the check fails when image side and subject side are confused anywhere on the way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, render_and_align

from localmer import clip_pipeline, config, labels, synth
from localmer.synth.identity import subject_source

CHEEKS = ("left_cheek", "right_cheek")  # the lateral regions around the lip corners
LABEL = "positive"


@pytest.fixture(scope="module")
def subject():
    """One CASME II-like subject, its first clip as the plan draws it (nuisances included)."""
    params = config.schema_defaults("synthetic")
    params.update(seed=11, image_size=[160, 180], duration_s=[0.1, 0.3])
    params["parts"] = {"casme2": {"subjects": 1, "clips_per_class": 1, "extra_clips_per_subject": 0, "fps": 50}}
    plan = synth.plan_corpus(params)[0]
    return {"plan": plan, "geometry": synth.subject_geometry(plan), "source": subject_source(plan)}


def apex_regions(subject: dict, clip, folder: Path, mirrored: bool) -> dict[str, np.ndarray]:
    """The clip rendered (mirrored left-right if asked) and preprocessed in memory as the workflow's
    stages do: each region's crop of the aligned apex frame."""
    aligned = render_and_align(subject["plan"], clip, subject["geometry"], subject["source"], folder, mirrored)
    sizes = {name: spec["size"] for name, spec in aligned["table"].items()}
    crops = clip_pipeline.clip_regions(aligned["faces"], aligned["boxes"], sizes)
    apex = aligned["numbers"].index(clip.apex)
    return {name: region[apex].astype(np.int16) for name, region in crops.items()}


def region_motion(subject: dict, code: str, folder: Path, mirrored: bool) -> dict[str, float]:
    """Per region, the mean |apex frame - the same apex frame without the action| over its crop. The
    clip without its action (null mode: gain 0) has the very same noise, head drift, blink and lighting,
    and the same landmarks (the onset frames are identical), so the difference is the action alone."""
    clip = subject["plan"].clips[0]
    moving = apex_regions(subject, dataclasses.replace(clip, aus=code, action_gain=1.0), folder / "action", mirrored)
    still = apex_regions(subject, dataclasses.replace(clip, aus=code, action_gain=0.0), folder / "null", mirrored)
    return {name: float(np.abs(moving[name] - still[name]).mean()) for name in moving}


def marked_cheek(code: str) -> str:
    """The cheek that region_labels gives the clip's class (asserting the other is not_concerned)."""
    table = labels.load_au_regions(REPO / "config" / "au_regions.yaml")
    row = labels.region_labels(pd.DataFrame([{"sample_id": "x", "aus": code, "label": LABEL}]), table).iloc[0]
    assert row["mouth"] == LABEL
    (marked,) = [cheek for cheek in CHEEKS if row[cheek] == LABEL]
    (other,) = [cheek for cheek in CHEEKS if cheek != marked]
    assert row[other] == labels.NOT_CONCERNED
    return marked


@pytest.mark.parametrize(("code", "cheek"), [("L12", "left_cheek"), ("R12", "right_cheek")])
def test_a_one_sided_action_moves_the_crop_its_region_label_names(subject, tmp_path, code, cheek):
    assert marked_cheek(code) == cheek  # FACS L = the subject's left = region left_*
    (other,) = [c for c in CHEEKS if c != cheek]
    motion = region_motion(subject, code, tmp_path / "plain", mirrored=False)
    assert motion[cheek] > 0.5 and motion["mouth"] > 0.5, motion  # grey levels: the action is visible
    assert motion[other] < 0.1 * motion[cheek], motion

    # Control: the mirrored clip moves the other crop, so the check above fails for the wrong side.
    mirrored = region_motion(subject, code, tmp_path / "mirrored", mirrored=True)
    assert mirrored[other] > 0.5 and mirrored[cheek] < 0.1 * mirrored[other], mirrored
