"""The apex spotter's error on the synthetic corpus, whose true apex is known, against the middle frame.

Writes a synthetic corpus (``localmer.synth``; default the demo's size: 3 subjects per part, 3 clips per
class, 81 megc2019 clips, blinks and sensor noise as in the demo), indexes it, finds landmarks and aligns
the faces (``preprocess.detect_subject``, ``align_subject``) twice: keeping every frame of onset..offset
(``frames: onset_offset``, so that the spotter can hit the true apex) and the demo's ``resample`` to 8
frames. On each clip it runs ``apex.spot_apex`` on the aligned faces within ``apex.spotting_masks`` (the
clip's region boxes without the eyelids) and compares with the generator's apex (``synth_clips.tsv``):
absolute error in frames and as a fraction of the clip's onset..offset span, per part, for the spotter,
the spotter with the eyelids left in the regions, the ``middle`` baseline and (resample) the kept frame
nearest the true apex, the best any choice among the kept frames can do. Clips whose blink overlaps
onset..offset are also counted apart. An error measurement, not a timing: it prints a Markdown section
and appends it to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/apex_benchmark.py [--out DIR] [--subjects 3] [--clips-per-class 3] [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from localmer import apex, config, preprocess, regions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from preprocess_benchmark import REPO, build_corpus, index_corpus, machine  # noqa: E402

FRAME_MODES = {"onset_offset": {"frames": "onset_offset"}, "resample 8": {"frames": "resample", "n_frames": 8}}
PARTS = ("casme2", "samm", "smic")


def align_corpus(samples: pd.DataFrame, params: dict, out: Path) -> list[Path]:
    """Landmarks and aligned faces of every subject (reused when already there); the aligned files."""
    paths = []
    for subject in sorted(samples["subject"].unique()):
        landmarks_path, aligned_path = (out / stage / f"{subject}.h5" for stage in ("landmarks", "aligned"))
        if not aligned_path.exists():
            landmarks_path.parent.mkdir(parents=True, exist_ok=True)
            aligned_path.parent.mkdir(parents=True, exist_ok=True)
            preprocess.detect_subject(samples, subject, landmarks_path, params)
            preprocess.align_subject(samples, subject, landmarks_path, aligned_path, params)
        paths.append(aligned_path)
    return paths


def truth_by_sample(samples: pd.DataFrame, corpus: Path) -> pd.DataFrame:
    """The generator's truth row of every indexed clip, indexed by sample_id (matched on the frame folder:
    clip names repeat across subjects, and SMIC's sample names are zero-padded where its folders are not)."""
    truth = pd.read_csv(corpus / "synth_clips.tsv", sep="\t", keep_default_na=False).set_index("frame_dir")
    folders = samples["frame_dir"].map(lambda d: Path(d).resolve().relative_to(corpus.resolve()).as_posix())
    return truth.loc[folders].set_index(samples["sample_id"].to_numpy())


def clip_errors(aligned_paths: list[Path], samples: pd.DataFrame, truth: pd.DataFrame, params: dict) -> pd.DataFrame:
    """One row per aligned clip: the true apex, the spotted and middle ones, the nearest kept frame."""
    table = regions.load_region_table(params["regions"])
    by_sample = samples.set_index("sample_id")
    rows = []
    for path in aligned_paths:
        with h5py.File(path, "r") as h5:
            for group in h5["clips"].values():
                sample_id = group.attrs["sample_id"]
                sample, true = by_sample.loc[sample_id], truth.loc[sample_id]
                faces, numbers = group["faces"][()], group["frame_numbers"][()]
                boxes = preprocess.reference_boxes(group, table, params["alignment"]["iod"])
                mask = apex.spotting_masks(boxes, group["landmarks"][0], faces.shape[1:])
                # The same spotter with the eyelids left in: what leaving blinks out is worth.
                boxes_only = np.stack([apex.region_mask({name: box}, faces.shape[1:]) for name, box in boxes.items()])
                onset, offset = int(sample["onset"]), int(sample["offset"])
                blink = [int(n) for n in true["blink"].split("-")] if true["blink"] else None
                rows.append(
                    {
                        "sample_id": sample_id,
                        "part": sample["dataset"],
                        "span": offset - onset,
                        "true": int(true["apex"]),
                        "spotted": apex.spot_apex(faces, numbers, onset, mask, offset),
                        "eyelids_kept": apex.spot_apex(faces, numbers, onset, boxes_only, offset),
                        "middle": apex.middle_apex(onset, offset),
                        "nearest_kept": int(numbers[np.argmin(np.abs(numbers - int(true["apex"])))]),
                        "blink": bool(blink and blink[0] <= offset and blink[1] >= onset),
                    }
                )
    return pd.DataFrame(rows)


def error_lines(errors: pd.DataFrame, mode: str) -> list[str]:
    """A Markdown table: per part (and all), mean / median |error| in frames and as a fraction of the span."""
    choices = ["spotted", "eyelids_kept", "middle"] + (["nearest_kept"] if mode != "onset_offset" else [])
    lines = [
        "| part | clips (blink) | span frames, median | "
        + " | ".join(f"{c}: mean / median frames | {c}: mean / median of span" for c in choices)
        + " |",
        "|---|---:|---:|" + "---:|---:|" * len(choices),
    ]
    groups = [(part, errors[errors["part"] == part]) for part in PARTS if (errors["part"] == part).any()]
    groups += [("all", errors), ("clips with a blink", errors[errors["blink"]])]
    for name, rows in groups:
        if rows.empty:
            continue
        cells = [name, f"{len(rows)} ({int(rows['blink'].sum())})", f"{rows['span'].median():.0f}"]
        for choice in choices:
            frames = (rows[choice] - rows["true"]).abs()
            share = frames / rows["span"]
            cells += [f"{frames.mean():.1f} / {frames.median():.1f}", f"{share.mean():.2f} / {share.median():.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="scratch folder (corpus, aligned faces), reused; default a temp dir")
    parser.add_argument("--subjects", type=int, default=3, help="subjects per dataset part (default 3, the demo's)")
    parser.add_argument("--clips-per-class", type=int, default=3, help="clips per subject and class (default 3)")
    parser.add_argument("--seed", type=int, default=2019, help="synthetic corpus seed (default 2019)")
    parser.add_argument(
        "--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md", help="Markdown file to append to"
    )
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to --results")
    args = parser.parse_args(argv)
    # build_corpus's other settings: the demo's frame size and face (the schema defaults).
    args.image_size, args.iod_fraction = [256, 288], 0.4

    with contextlib.ExitStack() as stack:
        out = args.out or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="localmer-apex-")))
        out.mkdir(parents=True, exist_ok=True)
        build_corpus(out / "corpus", args)
        samples = index_corpus(out / "corpus")
        truth = truth_by_sample(samples, out / "corpus")
        info = machine()
        lines = [
            f"## Apex spotting error on the synthetic corpus, {info['date']}",
            "",
            f"- Machine: {info['cpu']}",
            f"- Versions: {info['versions']}",
            f"- Corpus: `localmer.synth` seed {args.seed}, 256x288, {args.subjects} subjects per part, "
            f"{args.clips_per_class} clips per class: {len(samples)} megc2019 clips; the demo's nuisances "
            "(blink probability 0.35, sensor noise sigma 2 grey levels, head drift, flicker)",
            "- Error = |chosen apex - the generator's apex| in frames, and as a fraction of the clip's "
            "onset..offset span (offset - onset frames)",
        ]
        for mode, changes in FRAME_MODES.items():
            params = config.schema_defaults("preprocessing") | changes
            params["regions"] = str(REPO / "config" / "regions.yaml")
            start = time.perf_counter()
            aligned = align_corpus(samples, params, out / mode.replace(" ", "-"))
            errors = clip_errors(aligned, samples, truth, params)
            print(f"{mode}: {len(errors)} clips in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            lines += ["", f"Frames `{mode}` ({len(errors)} clips aligned):", "", *error_lines(errors, mode)]
        section = "\n".join([*lines, ""])
    print(section)
    if not args.no_record:
        with args.results.open("a") as results:
            results.write(section + "\n")
        print(f"appended to {args.results}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
