"""Preprocessing stages per subject: landmarks -> aligned faces -> six regions x m patches, and optical
flow on the aligned faces with its own region patches, in HDF5.

Five stages, one HDF5 file per subject each, so that LOSO folds read subsets cheaply and a change of
patch count re-runs only the crop stages. Each loops over a subject's clips, runs the steps of
``localmer.clip_pipeline`` on each (the same functions ``localmer predict`` runs in memory) and stores
what they return:

``detect_subject``     landmarks/<subject>.h5    one reference geometry per clip (or a smoothed track);
                                                 clips without a face, or whose face is not on every
                                                 frame checked, are recorded as skipped, with why
``align_subject``      aligned/<subject>.h5      grey aligned faces (frames, H, W) uint8 + transforms
``crop_subject``       patches/<subject>.h5      per clip and region, patches (frames, m, h, w) uint8
``flow_subject``       flow/<subject>.h5         per clip, the apex chosen and flow fields from the onset
                                                 face (u, v, strain, magnitude) float32
``crop_flow_subject``  flowpatches/<subject>.h5  per clip and region, flow patches (F, m, h, w, 3) float32
                                                 (u, v, strain), cut with the patches file's boxes

Layout of a patches file (``read_clip`` reads it back)::

    /                       attrs: format, subject, regions (names), patches, region_sizes (JSON),
                                   params (JSON of the preprocessing config), localmer_version
    /clips/<clip>           attrs: sample_id, label, onset, apex, offset, reference_frame, boxes (JSON)
        frame_numbers       (F,) int64        absolute frame numbers kept
        landmarks           (F, 68, 2) float32 aligned-face coordinates
        transforms          (F, 2, 3) float32 frame -> aligned face (cv2.warpAffine convention)
        patches/<region>    (F, m, h, w) uint8 grey, patches row by row from the top-left

Layout of a flow file (``read_flow_clip`` reads one clip back)::

    /                       attrs: format, stage (flow), subject, params, localmer_version,
                                   channels (u, v, strain, magnitude), method
    /clips/<clip>           attrs: sample_id, onset, apex, apex_source, offset, reference_frame
        frame_numbers       (F,) int64           the kept frames (those of the aligned file)
        onset_apex          (H, W, 4) float32    onset face -> apex face
        onset_frames        (F, H, W, 4) float32 onset face -> every kept face (preprocessing.flow.pairs)
        apex_offset         (H, W, 4) float32    apex face -> offset face (preprocessing.flow.pairs)

A flow-patches file has the layout of a patches file (root attrs format, stage (flowpatches), subject,
regions, patches, region_sizes, params, localmer_version, and channels (u, v, strain), source
(onset_frames or onset_apex); clip attrs sample_id, label, onset, apex, apex_source, offset,
reference_frame, boxes), with ``frame_numbers`` (F,) (one row, the apex, for source onset_apex) and
``patches/<region>`` (F, m, h, w, 3) float32, so ``group["patches"][region]`` reads the same way.

Clip group names are the clip names (``EP02_01f``); sample ids are ``dataset/subject/clip``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from . import __version__, apex, clip_pipeline, flow, regions
from .atomic import atomic_output
from .frames import ClipFrames
from .runlog import progress

log = logging.getLogger(__name__)

FORMAT = "localmer-preprocess-1"
LANDMARK_COLUMNS = [
    "sample_id",
    "status",
    "reason",
    "reference_frame",
    "faces",
    "upsample",
    "score",
    "roll_deg",
    "iod_px",
]
# The preprocessing settings each stage's code reads. A workflow job gets only these as its params, so
# that a setting of another stage (the patch count, a flow method) does not rerun it.
STAGE_SETTINGS = {
    "landmarks": ("landmarks", "frames", "n_frames", "strict"),
    "aligned": ("alignment",),
    "region_sizes": ("regions", "alignment"),
    "patches": ("regions", "patches", "alignment"),
    "flow": ("regions", "alignment", "flow", "apex"),
    "flowpatches": ("flow",),
}
# What the preprocessing report adds from the flow files: the apex each clip's flow used, and its source.
APEX_COLUMNS = ["apex", "apex_source"]


class PreprocessError(RuntimeError):
    """A clip that cannot be preprocessed with strict: true."""


def flow_in_use(flow_settings: dict) -> dict:
    """``preprocessing.flow`` without the parameter blocks of the methods not chosen."""
    method = flow_settings["method"]
    return {"method": method, "pairs": flow_settings["pairs"], method: flow_settings.get(method, {})}


def stage_settings(params: dict, stage: str) -> dict:
    """The part of the ``preprocessing`` block that ``stage`` (of ``STAGE_SETTINGS``) reads (of the flow
    settings, the chosen method's parameters only)."""
    chosen = {key: params[key] for key in STAGE_SETTINGS[stage] if key in params}
    if "flow" in chosen:
        chosen["flow"] = flow_in_use(chosen["flow"])
    return chosen


def _h5_write(group: h5py.Group, name: str, data: np.ndarray) -> None:
    """Contiguous, uncompressed datasets. Measured on the synthetic corpus: LZF saved 5 % on faces, grew
    patches and cost about a third of the run time; per-frame chunks cost ~15 % of the crop stage and buy
    nothing without compression (HDF5 reads one frame of a contiguous dataset as one byte range)."""
    group.create_dataset(name, data=data)


def _subject_samples(samples: pd.DataFrame, subject: str) -> pd.DataFrame:
    rows = samples[samples.subject == subject]
    if rows.empty:
        raise ValueError(f"subject {subject!r} has no clips in the sample table")
    return rows


# --------------------------------------------------------------------------------------------- landmarks


def detect_subject(samples: pd.DataFrame, subject: str, out_path: str | Path, params: dict) -> pd.DataFrame:
    """Stage 1 for one subject. ``params`` is the ``preprocessing`` config block. Returns report rows."""
    landmark_params = params["landmarks"]
    rows = []
    with atomic_output(out_path) as partial, h5py.File(partial, "w") as h5:
        h5.attrs.update(
            format=FORMAT, stage="landmarks", subject=subject, params=json.dumps(params), localmer_version=__version__
        )
        h5.create_group("clips")
        clips = _subject_samples(samples, subject).to_dict("records")
        for sample in progress(clips, len(clips), f"{subject} landmarks"):
            frames = ClipFrames.from_sample(sample)
            selected = clip_pipeline.select_frames(
                frames.numbers, sample["onset"], sample["offset"], params["frames"], params["n_frames"]
            )
            result = clip_pipeline.find_face(frames, selected, sample["onset"], landmark_params)
            if result["status"] == "ok":
                face_problem = clip_pipeline.check_face_presence(frames, selected, result, landmark_params)
                result = {"status": "skipped", "reason": face_problem} if face_problem else result
            if result["status"] != "ok" and params["strict"]:
                raise PreprocessError(f"{sample['sample_id']}: {result['reason']} (preprocessing.strict is true)")
            group = h5.create_group(f"clips/{sample['clip']}")
            group.attrs.update(sample_id=sample["sample_id"], status=result["status"], reason=result["reason"])
            group.create_dataset("frame_numbers", data=np.asarray(selected, dtype=np.int64))
            if result["status"] == "ok":
                group.attrs.update({k: result[k] for k in ("reference_frame", "faces", "upsample", "score", "box")})
                group.create_dataset("landmarks", data=result["landmarks"])
            else:
                log.warning("%s skipped: %s", sample["sample_id"], result["reason"])
            rows.append({"sample_id": sample["sample_id"], **{k: result.get(k, "") for k in LANDMARK_COLUMNS[1:]}})
    return pd.DataFrame(rows, columns=LANDMARK_COLUMNS)


def preprocessing_report(
    landmark_paths: Iterable[str | Path], flow_paths: Iterable[str | Path], sample_ids: Collection[str] | None = None
) -> pd.DataFrame:
    """``landmark_report`` with each clip's apex and apex_source from the flow files (empty for a
    skipped clip, which has no flow)."""
    report = landmark_report(landmark_paths, sample_ids)
    apexes = {}
    for path in flow_paths:
        with h5py.File(path, "r") as h5:
            for group in h5["clips"].values():
                apexes[group.attrs["sample_id"]] = {key: group.attrs[key] for key in APEX_COLUMNS}
    for column in APEX_COLUMNS:
        report[column] = [apexes.get(sample_id, {}).get(column, "") for sample_id in report.sample_id]
    return report


def landmark_report(paths: Iterable[str | Path], sample_ids: Collection[str] | None = None) -> pd.DataFrame:
    """One row per clip over landmark files: status (ok | skipped), reason, reference frame, ...

    ``sample_ids``: an experiment's clips (its task's), where the files hold more (preprocessing covers
    every annotated clip of the datasets, whatever the task); None: every clip of the files."""
    rows = []
    for path in paths:
        with h5py.File(path, "r") as h5:
            for group in h5["clips"].values():
                attrs = dict(group.attrs)
                if sample_ids is not None and attrs["sample_id"] not in sample_ids:
                    continue
                if attrs["status"] == "ok":
                    points = group["landmarks"][0]
                    attrs.update(roll_deg=regions.roll_degrees(points), iod_px=regions.inter_ocular_distance(points))
                rows.append({column: attrs.get(column, "") for column in LANDMARK_COLUMNS})
    return pd.DataFrame(rows, columns=LANDMARK_COLUMNS)


# --------------------------------------------------------------------------------------------- alignment


def align_subject(
    samples: pd.DataFrame, subject: str, landmarks_path: str | Path, out_path: str | Path, params: dict
) -> int:
    """Stage 2 for one subject: every kept frame warped to the aligned face. Returns frames written."""
    alignment = params["alignment"]
    written = 0
    by_clip = _subject_samples(samples, subject).set_index("clip")
    with h5py.File(landmarks_path, "r") as source, atomic_output(out_path) as partial, h5py.File(partial, "w") as h5:
        h5.attrs.update(
            format=FORMAT, stage="aligned", subject=subject, params=json.dumps(params), localmer_version=__version__
        )
        h5.create_group("clips")
        for clip, detected in progress(source["clips"].items(), len(source["clips"]), f"{subject} alignment"):
            if detected.attrs["status"] != "ok":
                continue
            sample = by_clip.loc[clip].to_dict() | {"clip": clip}
            numbers = detected["frame_numbers"][()].tolist()
            matrices, aligned_points = clip_pipeline.alignment_matrices(
                detected["landmarks"][()], len(numbers), alignment
            )
            faces = clip_pipeline.align_clip(ClipFrames.from_sample(sample), numbers, matrices, alignment["face_size"])
            group = h5.create_group(f"clips/{clip}")
            group.attrs.update(sample_id=detected.attrs["sample_id"], reference_frame=detected.attrs["reference_frame"])
            group.create_dataset("frame_numbers", data=np.asarray(numbers, dtype=np.int64))
            group.create_dataset("transforms", data=matrices)
            group.create_dataset("landmarks", data=aligned_points)
            _h5_write(group, "faces", faces)
            written += len(numbers)
    return written


# --------------------------------------------------------------------------------------------- regions


def reference_boxes(aligned_group: h5py.Group, table: dict, iod: float) -> dict[str, tuple[int, int, int, int]]:
    """Region boxes of a clip, from its reference (first kept) frame's aligned landmarks."""
    return regions.region_boxes(aligned_group["landmarks"][0], table, iod)


def region_sizes(aligned_paths: Iterable[str | Path], table: dict, iod: float) -> dict:
    """Final region sizes per dataset: configured ones, and ``auto`` = mean box size over that dataset."""
    boxes: dict[str, dict[str, list]] = {}
    for path in aligned_paths:
        with h5py.File(path, "r") as h5:
            dataset = str(h5.attrs["subject"]).split("/", 1)[0]
            boxes.setdefault(dataset, {})
            for group in h5["clips"].values():
                for name, (x0, y0, x1, y1) in reference_boxes(group, table, iod).items():
                    boxes[dataset].setdefault(name, []).append((x1 - x0, y1 - y0))
    sizes = {}
    for dataset, measured in sorted(boxes.items()):
        sizes[dataset] = {}
        for name, spec in table.items():
            if spec["size"] != "auto":
                sizes[dataset][name] = list(spec["size"])
            elif measured.get(name):
                sizes[dataset][name] = regions.auto_size(measured[name])
            else:
                raise ValueError(
                    f"region {name!r} has size auto but dataset {dataset!r} has no aligned clip to measure"
                )
    return sizes


def crop_subject(
    aligned_path: str | Path,
    out_path: str | Path,
    samples: pd.DataFrame,
    params: dict,
    sizes_path: str | Path | None = None,
) -> int:
    """Stage 3 for one subject: regions resized and cut into patches. Returns clips written.

    ``params`` is the ``preprocessing`` config block; ``sizes_path`` the region_sizes.json of
    ``region_sizes`` (needed only when a region's size is auto).
    """
    table = regions.load_region_table(params["regions"])
    patches = params["patches"]
    iod = params["alignment"]["iod"]
    written = 0
    by_sample = samples.set_index("sample_id")
    with h5py.File(aligned_path, "r") as source, atomic_output(out_path) as partial, h5py.File(partial, "w") as h5:
        subject = str(source.attrs["subject"])
        dataset = subject.split("/", 1)[0]
        if sizes_path:
            sizes = json.loads(Path(sizes_path).read_text())[dataset]
        elif any(spec["size"] == "auto" for spec in table.values()):
            raise ValueError("a region size is auto: pass the region_sizes.json measured over the dataset")
        else:
            sizes = {name: spec["size"] for name, spec in table.items()}
        h5.attrs.update(
            format=FORMAT,
            stage="patches",
            subject=subject,
            regions=list(regions.REGION_NAMES),
            patches=patches,
            region_sizes=json.dumps(sizes),
            params=json.dumps(params),
            localmer_version=__version__,
        )
        h5.create_group("clips")
        for clip, aligned in progress(source["clips"].items(), len(source["clips"]), f"{subject} patches"):
            sample = by_sample.loc[aligned.attrs["sample_id"]]
            faces = aligned["faces"][()]
            boxes = reference_boxes(aligned, table, iod)
            group = h5.create_group(f"clips/{clip}")
            group.attrs.update(
                sample_id=aligned.attrs["sample_id"],
                label=sample["label"],
                onset=int(sample["onset"]),
                apex=int(sample["apex"]),
                offset=int(sample["offset"]),
                reference_frame=aligned.attrs["reference_frame"],
                boxes=json.dumps(boxes),
            )
            for name in ("frame_numbers", "landmarks", "transforms"):
                group.create_dataset(name, data=aligned[name][()])
            for name, region_patches in clip_pipeline.clip_patches(faces, boxes, sizes, patches).items():
                _h5_write(group, f"patches/{name}", region_patches)
            written += 1
    return written


# --------------------------------------------------------------------------------------------- flow


def flow_subject(
    samples: pd.DataFrame, subject: str, aligned_path: str | Path, out_path: str | Path, params: dict
) -> int:
    """Stage 4 for one subject: each aligned clip's apex (``apex.choose_apex``; the spotter looks within
    the region boxes, ``apex.spotting_masks``) and its flow fields (``clip_pipeline.clip_flow``,
    ``preprocessing.flow``) from the aligned onset face. Clips skipped at the landmarks stage are absent,
    as from the aligned file. Onset, apex or offset frames the selection dropped are read from the clip's
    frames and warped with the clip's alignment. Returns clips written."""
    flow_settings = params["flow"]
    settings = params["apex"]
    spotting = "spotted" in (settings["source"], settings["fallback"])
    table = regions.load_region_table(params["regions"])
    alignment = params["alignment"]
    by_clip = _subject_samples(samples, subject).set_index("clip")
    written = 0
    with h5py.File(aligned_path, "r") as source, atomic_output(out_path) as partial, h5py.File(partial, "w") as h5:
        h5.attrs.update(
            format=FORMAT,
            stage="flow",
            subject=subject,
            params=json.dumps(params),
            localmer_version=__version__,
            channels=list(flow.CHANNELS),
            method=flow_settings["method"],
        )
        h5.create_group("clips")
        for clip, aligned in progress(source["clips"].items(), len(source["clips"]), f"{subject} flow"):
            sample = by_clip.loc[clip].to_dict() | {"clip": clip}
            numbers = aligned["frame_numbers"][()]
            faces = aligned["faces"][()]
            masks = None
            if spotting:
                boxes = reference_boxes(aligned, table, alignment["iod"])
                masks = apex.spotting_masks(boxes, aligned["landmarks"][0], faces.shape[1:])
            apex_frame, apex_source = apex.choose_apex(sample, settings, faces, numbers, masks)
            onset, offset = int(sample["onset"]), int(sample["offset"])
            wanted = [onset, apex_frame] + ([offset] if "apex_offset" in flow_settings["pairs"] else [])
            others = clip_pipeline.unkept_faces(
                ClipFrames.from_sample(sample), wanted, numbers, aligned["transforms"][()], alignment["face_size"]
            )
            fields = clip_pipeline.clip_flow(
                faces, numbers, onset, apex_frame, flow_settings, offset=offset, other_faces=others
            )
            group = h5.create_group(f"clips/{clip}")
            group.attrs.update(
                sample_id=aligned.attrs["sample_id"],
                onset=onset,
                apex=apex_frame,
                apex_source=apex_source,
                offset=offset,
                reference_frame=aligned.attrs["reference_frame"],
            )
            group.create_dataset("frame_numbers", data=np.asarray(numbers, dtype=np.int64))
            for pair, values in fields.items():
                _h5_write(group, pair, values)
            written += 1
    return written


def read_flow_clip(path: str | Path, clip: str) -> dict:
    """A clip of a flow file: its attrs, 'frame_numbers' and each stored pair's fields."""
    with h5py.File(path, "r") as h5:
        group = h5["clips"][clip]
        return {
            **dict(group.attrs),
            **{name: group[name][()] for name in ("frame_numbers", *clip_pipeline.FLOW_PAIRS) if name in group},
        }


def flow_patch_source(params: dict) -> str:
    """Which flow the flow patches are cut from: onset_frames (a row per kept frame) when configured,
    else onset_apex (one row)."""
    return "onset_frames" if "onset_frames" in params["flow"]["pairs"] else "onset_apex"


def crop_flow_subject(flow_path: str | Path, patches_path: str | Path, out_path: str | Path, params: dict) -> int:
    """Stage 5 for one subject: each clip's flow (u, v, strain) cut into the six regions x m patches
    with the boxes and region sizes of the patches file (``clip_pipeline.clip_flow_patches``). Returns
    clips written. The two files must hold the same clips (both follow the aligned file)."""
    source_pair = flow_patch_source(params)
    written = 0
    with (
        h5py.File(flow_path, "r") as flows,
        h5py.File(patches_path, "r") as cut,
        atomic_output(out_path) as partial,
        h5py.File(partial, "w") as h5,
    ):
        if sorted(flows["clips"]) != sorted(cut["clips"]):
            raise ValueError(
                f"{flow_path} and {patches_path} hold different clips "
                f"({sorted(set(flows['clips']) ^ set(cut['clips']))}): expected those of one aligned file"
            )
        subject = str(cut.attrs["subject"])
        sizes = json.loads(cut.attrs["region_sizes"])
        patches = int(cut.attrs["patches"])
        h5.attrs.update(
            format=FORMAT,
            stage="flowpatches",
            subject=subject,
            regions=list(regions.REGION_NAMES),
            patches=patches,
            region_sizes=json.dumps(sizes),
            params=json.dumps(params),
            localmer_version=__version__,
            channels=list(clip_pipeline.FLOW_PATCH_CHANNELS),
            source=source_pair,
        )
        h5.create_group("clips")
        for clip, fields in progress(flows["clips"].items(), len(flows["clips"]), f"{subject} flow patches"):
            if source_pair not in fields:
                raise ValueError(
                    f"{flow_path}: clip {clip} has no {source_pair} flow: expected preprocessing.flow.pairs "
                    f"to include it when the flow file was written"
                )
            stacked = fields[source_pair][()]
            if source_pair == "onset_apex":
                stacked, numbers = stacked[None], np.asarray([fields.attrs["apex"]], dtype=np.int64)
            else:
                numbers = fields["frame_numbers"][()]
            boxes = json.loads(cut["clips"][clip].attrs["boxes"])
            group = h5.create_group(f"clips/{clip}")
            group.attrs.update(
                sample_id=fields.attrs["sample_id"],
                label=cut["clips"][clip].attrs["label"],
                **{key: fields.attrs[key] for key in ("onset", "apex", "apex_source", "offset", "reference_frame")},
                boxes=json.dumps(boxes),
            )
            group.create_dataset("frame_numbers", data=numbers)
            for name, region_patches in clip_pipeline.clip_flow_patches(stacked, boxes, sizes, patches).items():
                _h5_write(group, f"patches/{name}", region_patches)
            written += 1
    return written


def read_clip(path: str | Path, clip: str) -> dict:
    """A clip of a patches file: {'patches': {region: (F, m, h, w)}, 'frame_numbers', 'landmarks', ...}."""
    with h5py.File(path, "r") as h5:
        group = h5["clips"][clip]
        return {
            **{key: (json.loads(value) if key == "boxes" else value) for key, value in group.attrs.items()},
            "frame_numbers": group["frame_numbers"][()],
            "landmarks": group["landmarks"][()],
            "transforms": group["transforms"][()],
            "patches": {name: group["patches"][name][()] for name in h5.attrs["regions"]},
        }


def _digest(*parts) -> str:
    import hashlib

    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]


def clips_key(experiment: dict) -> str:
    """The digest naming the clips preprocessing covers: every annotated clip of the experiment's
    datasets, whatever its task (tasks pick among them), so that experiments of different tasks share
    every preprocessed file."""
    return _digest({"datasets": experiment["datasets"]})


def stage_keys(experiment: dict, base_dir: str | Path = ".") -> dict[str, str]:
    """Short digests naming each stage's output folder, from exactly the settings that stage depends on
    (and those of the stages before it). Experiments with equal keys share preprocessed files; changing
    the patch count changes only the ``patches`` and ``flowpatches`` keys, so landmarks, alignment and
    flow are not redone; a flow or apex setting changes ``flow`` and ``flowpatches`` only. The task is
    not in them: preprocessing covers every annotated clip (``clips_key``)."""
    settings = experiment["preprocessing"]
    landmark_key = _digest(clips_key(experiment), settings["landmarks"], settings["frames"], settings["n_frames"])
    aligned_key = _digest(landmark_key, settings["alignment"])
    table = regions.load_region_table(Path(base_dir) / settings["regions"])
    patches_key = _digest(aligned_key, table, settings["patches"])
    chosen = settings["apex"]
    # The region table only where the spotter's masks (the region boxes) are used.
    flow_key = _digest(
        aligned_key,
        flow_in_use(settings["flow"]),
        chosen,
        table if "spotted" in (chosen["source"], chosen["fallback"]) else None,
    )
    return {
        "landmarks": landmark_key,
        "aligned": aligned_key,
        "patches": patches_key,
        "flow": flow_key,
        "flowpatches": _digest(flow_key, patches_key),
    }


def preprocess_all(
    samples: pd.DataFrame, params: dict, out_dir: str | Path, subjects: Iterable[str] | None = None
) -> pd.DataFrame:
    """All five stages for the given subjects (default: all) without Snakemake, subject by subject.

    Writes ``out_dir/{landmarks,aligned,patches,flow,flowpatches}/<subject>.h5``,
    ``patches/region_sizes.json`` and ``preprocessing_report.tsv``; returns the report (one row per
    clip, ok or skipped, with the apex its flow used).
    """
    out = Path(out_dir)
    subjects = sorted(samples.subject.unique()) if subjects is None else list(subjects)
    table = regions.load_region_table(params["regions"])
    stages = ("landmarks", "aligned", "patches", "flow", "flowpatches")
    paths = {stage: {s: out / stage / f"{s}.h5" for s in subjects} for stage in stages}
    for subject in subjects:
        for stage in paths:
            paths[stage][subject].parent.mkdir(parents=True, exist_ok=True)
        detect_subject(samples, subject, paths["landmarks"][subject], params)
        align_subject(samples, subject, paths["landmarks"][subject], paths["aligned"][subject], params)
        flow_subject(samples, subject, paths["aligned"][subject], paths["flow"][subject], params)
        log.info("%s: landmarks, aligned faces and flow written", subject)
    sizes_path = out / "patches" / "region_sizes.json"
    sizes = region_sizes(paths["aligned"].values(), table, params["alignment"]["iod"])
    with atomic_output(sizes_path) as partial:
        partial.write_text(json.dumps(sizes, indent=2))
    for subject in subjects:
        crop_subject(paths["aligned"][subject], paths["patches"][subject], samples, params, sizes_path)
        crop_flow_subject(paths["flow"][subject], paths["patches"][subject], paths["flowpatches"][subject], params)
    report = preprocessing_report(paths["landmarks"].values(), paths["flow"].values())
    with atomic_output(out / "preprocessing_report.tsv") as partial:
        report.to_csv(partial, sep="\t", index=False)
    return report
