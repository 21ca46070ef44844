"""Shared fixtures: the real annotation sheets, and frame trees that stand in for licensed images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ANNOTATIONS = FIXTURES / "annotations"
REPO = Path(__file__).resolve().parents[1]


def skip_unless_ci(reason: str) -> None:
    """Skip the test with ``reason``; under CI (``CI=true``, as CI services set it) fail instead: there the
    test's prerequisites are guaranteed, so a test that cannot run is a broken CI, not a pass."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a skip here is a failure)")
    pytest.skip(reason)


def touch_frames(folder: Path, names) -> None:
    """Empty frame files: indexing lists frames, it never decodes them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


def write_video(images: list, path: Path, fps: float = 25) -> None:
    """An MJPG .avi of grey (or BGR) frames, as the tests make their own videos."""
    import cv2

    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for image in images:
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image)
    writer.release()


@pytest.fixture(scope="session")
def real_layout(tmp_path_factory) -> dict:
    """The real sheets and GT beside empty frame trees in the real folder layouts.

    Frame folders are derived from the sheets with pandas, independently of the adapters under test.
    """
    root = tmp_path_factory.mktemp("real")
    casme_sheet = root / "CASME2-coding-20140508.xlsx"
    samm_sheet = root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    gt = root / "combined_3class_gt.csv"
    for source, target in [
        ("CASME2-coding-20140508.xlsx", casme_sheet),
        ("SAMM_Micro_FACS_Codes_v2.xlsx", samm_sheet),
        ("combined_3class_gt.csv", gt),
    ]:
        shutil.copy(ANNOTATIONS / source, target)

    casme = pd.read_excel(casme_sheet, dtype=str)
    for row in casme.itertuples():
        first, last = int(row.OnsetFrame), int(row.OffsetFrame)
        touch_frames(
            root / "CASME2" / f"sub{int(row.Subject):02d}" / row.Filename,
            (f"img{n}.jpg" for n in range(first - 2, last + 3)),
        )
    samm = pd.read_excel(samm_sheet, sheet_name="MICRO_ONLY", skiprows=13, dtype=str)
    for row in samm.itertuples():
        subject = f"{int(row.Subject):03d}"
        first, last = int(row._4), int(row._6)  # Onset Frame, Offset Frame
        touch_frames(root / "SAMM" / subject / row.Filename, (f"{subject}_{n:05d}.jpg" for n in range(first, last + 1)))
    table = pd.read_csv(gt, header=None, names=["dataset", "subject", "clip", "label"], dtype=str)
    folder = {"0": "negative", "1": "positive", "2": "surprise"}
    for row in table[table.dataset == "smic"].itertuples():
        number = int(row.subject[1:])
        _, code, index = row.clip.split("_")
        touch_frames(
            root / "SMIC" / "HS" / f"s{number}" / "micro" / folder[row.label] / f"s{number}_{code}_{index}",
            (f"image{n:06d}.bmp" for n in range(100230, 100262)),
        )
    touch_frames(root / "SMIC" / "HS" / "s1" / "non_micro" / "s1_nm_01", ["image000001.bmp"])
    datasets = [
        {"name": "casme2", "kind": "casme2", "root": str(root / "CASME2"), "annotations": str(casme_sheet)},
        {"name": "samm", "kind": "samm", "root": str(root / "SAMM"), "annotations": str(samm_sheet)},
        {"name": "smic", "kind": "smic", "root": str(root / "SMIC" / "HS")},
    ]
    return {"root": root, "datasets": datasets, "gt": gt, "casme_sheet": casme_sheet, "samm_sheet": samm_sheet}


def synthetic_datasets(root: Path) -> list[dict]:
    """The dataset specs of a synthetic corpus written to ``root`` (its three layouts)."""
    return [
        {
            "name": "casme2",
            "kind": "casme2",
            "root": str(root / "casme2"),
            "annotations": str(root / "casme2" / "CASME2-coding-20140508.xlsx"),
        },
        {
            "name": "samm",
            "kind": "samm",
            "root": str(root / "samm"),
            "annotations": str(root / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx"),
        },
        {"name": "smic", "kind": "smic", "root": str(root / "smic" / "HS")},
    ]


@pytest.fixture(scope="session")
def tiny_indexed_corpus(tmp_path_factory) -> dict:
    """A tiny synthetic corpus (three layouts, one subject each, one clip per class) and its index."""
    from localmer import config, datasets, synth

    root = tmp_path_factory.mktemp("tiny_corpus")
    params = config.schema_defaults("synthetic")
    params.update(seed=11, image_size=[160, 180], duration_s=[0.1, 0.3])
    params["parts"] = {
        part: {"subjects": 1, "clips_per_class": 1, "extra_clips_per_subject": 0, "fps": 50}
        for part in ("casme2", "samm", "smic")
    }
    synth.write_corpus(root, params)
    specs = synthetic_datasets(root)
    task = {"name": "megc2019", "ground_truth": str(root / "megc2019_gt.csv"), "strict": True}
    index = datasets.build_index(specs, task)
    return {"root": root, "datasets": specs, "samples": index.samples}


def preprocessing_params(**changes) -> dict:
    """The default preprocessing settings with an absolute region-table path, flow by DIS (fast; the
    tests of a flow method choose it themselves)."""
    from localmer import config

    params = config.schema_defaults("preprocessing")
    params["regions"] = str(REPO / "config" / "regions.yaml")
    params["flow"]["method"] = "dis"
    params.update(changes)
    return params


@pytest.fixture(scope="session")
def tiny_preprocessed(tiny_indexed_corpus, tmp_path_factory) -> dict:
    """The tiny corpus preprocessed with 6 frames per clip (three subjects, three clips each)."""
    from localmer import preprocess

    out = tmp_path_factory.mktemp("tiny_preprocessed")
    params = preprocessing_params(frames="resample", n_frames=6)
    report = preprocess.preprocess_all(tiny_indexed_corpus["samples"], params, out)

    def files(stage: str) -> dict[str, str]:
        return {p.relative_to(out / stage).with_suffix("").as_posix(): str(p) for p in (out / stage).rglob("*.h5")}

    return {
        "out": out,
        "samples": tiny_indexed_corpus["samples"],
        "report": report,
        "patch_files": files("patches"),
        "flow_files": files("flow"),
        "flow_patch_files": files("flowpatches"),
        "params": params,
    }


def render_and_align(plan, clip, geometry, source, folder: Path, mirrored: bool = False) -> dict:
    """A synthetic clip rendered to lossless frames (mirrored left-right if asked) and taken through the
    clip pipeline's steps as the workflow's stages do, keeping every frame of onset..offset: the aligned
    faces (F, H, W), their frame numbers, the reference frame's aligned landmarks and the region boxes."""
    import cv2

    from localmer import clip_pipeline, regions, synth
    from localmer.frames import ClipFrames

    folder.mkdir(parents=True)
    frames = synth.render_clip(plan, clip, geometry, source)
    for number, frame in zip(range(clip.first_frame, clip.last_frame + 1), frames, strict=True):
        cv2.imwrite(
            str(folder / synth.frame_name(plan.part, plan.name, number, "png")),
            cv2.flip(frame, 1) if mirrored else frame,
        )
    params = preprocessing_params(frames="onset_offset")
    table = regions.load_region_table(params["regions"])
    clip_frames = ClipFrames.open(folder)
    selected = clip_pipeline.select_frames(clip_frames.numbers, clip.onset, clip.offset, params["frames"], 0)
    face = clip_pipeline.find_face(clip_frames, selected, clip.onset, params["landmarks"])
    assert face["status"] == "ok", face["reason"]
    matrices, points = clip_pipeline.alignment_matrices(face["landmarks"], len(selected), params["alignment"])
    return {
        "faces": clip_pipeline.align_clip(clip_frames, selected, matrices, params["alignment"]["face_size"]),
        "numbers": selected,
        "landmarks": points[0],
        "boxes": regions.region_boxes(points[0], table, params["alignment"]["iod"]),
        "table": table,
    }


CLASSES = ["negative", "positive", "surprise"]


def tiny_training_settings(tiny_preprocessed: dict, **model) -> dict:
    """The experiment settings the tiny trainings use: default model (``model`` overrides), 1-2 epochs."""
    from localmer import config

    return {
        "datasets": [],
        "task": {"name": "megc2019"},
        "preprocessing": tiny_preprocessed["params"],
        "model": config.with_defaults(model, "#/properties/model"),
        "training": config.with_defaults(
            {"spatial": {"epochs": 1, "batch_size": 16}, "temporal": {"epochs": 2, "batch_size": 4, "steps": 4}},
            "#/properties/training",
        ),
    }


@pytest.fixture(scope="session")
def tiny_fold(tiny_preprocessed, tmp_path_factory) -> dict:
    """Every stage of one LOSO fold of the tiny corpus, for real (1-2 epochs): the fold holding out the
    last subject, so its models are also those of a bundle that has never seen that subject. Shared by
    the training tests (provenance, features, predictions) and the predict tests (the bundle)."""
    from localmer import labels, tfsetup, training
    from localmer.regions import REGION_NAMES

    out = tmp_path_factory.mktemp("tiny_fold")
    settings = tiny_training_settings(tiny_preprocessed)
    tfsetup.configure_tensorflow(1, settings["training"]["seed"])
    samples = training.usable_samples(tiny_preprocessed["samples"], tiny_preprocessed["report"])
    region_labels = labels.region_labels(samples, labels.load_au_regions(REPO / "config" / "au_regions.yaml"))
    fold = training.make_folds(sorted(samples.subject.unique()))[-1]
    patch_files = tiny_preprocessed["patch_files"]
    spatial = {
        region: {
            "history": str(out / f"{region}.history"),
            "provenance": str(out / f"{region}.provenance"),
            "model": str(out / f"{region}.keras"),
            "checkpoints": str(out / "checkpoints" / region),
        }
        for region in REGION_NAMES
    }
    features = out / "features.h5"  # written by the spatial job, as rule train_spatial does
    training.train_spatial_regions(samples, region_labels, patch_files, fold, settings, CLASSES, spatial, features)
    models = {region: paths["model"] for region, paths in spatial.items()}
    temporal = {key: str(out / f"temporal.{key}") for key in ("history", "provenance", "predictions")}
    temporal.update(
        model=str(out / "temporal.keras"),
        checkpoints=str(out / "checkpoints" / "temporal"),
        normalisation=str(out / "normalisation.npz"),
    )
    predictions = training.train_temporal(samples, features, fold, settings, CLASSES, temporal)
    return {
        "out": out,
        "settings": settings,
        "fold": fold,
        "samples": samples,
        "models": models,
        "features": features,
        "temporal": temporal,
        "predictions": predictions,
    }
