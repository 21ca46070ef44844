"""Writing the synthetic corpus: plan, render every subject (optionally in parallel), write the sheets.

A rerun replaces the part folders of an earlier synthetic corpus (each carries PART_MARKER) and refuses
to touch any other non-empty folder. The corpus is written into a partial folder beside the parts and
moved into place when complete, ``corpus.json`` last: a run that fails leaves the earlier corpus as it
was, never a half-rendered one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..atomic import partial_path
from ..runlog import progress
from ..tasks.megc2019 import MEGC2019_CLASSES
from .plan import BASE_PHOTOS, PART_KEYS, plan_corpus, resolve_params
from .render import render_subject
from .sheets import write_casme2_sheet, write_megc_ground_truth, write_samm_sheet, write_truth

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
PART_MARKER = ".localmer-synthetic"  # marks a part folder as ours, so that a rerun may replace it


CORPUS_FILES = ("megc2019_gt.csv", "synth_clips.tsv", "corpus.json")  # beside the parts; corpus.json last


def _check_replaceable(out_dir: Path) -> None:
    """Refuse when a part folder exists, is not empty and is not from an earlier synthetic corpus."""
    for part in PART_KEYS:
        folder = out_dir / part
        if folder.exists() and not (folder / PART_MARKER).exists() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} exists and is not a synthetic corpus part; not overwriting it")


def _install(staged: Path, out_dir: Path, parts) -> None:
    """Move a complete corpus from ``staged`` into ``out_dir``, replacing the earlier one's parts."""
    (out_dir / "corpus.json").unlink(missing_ok=True)  # no corpus.json while parts are being swapped
    for part in PART_KEYS:
        if (out_dir / part / PART_MARKER).exists():
            shutil.rmtree(out_dir / part)
    for name in [*parts, *CORPUS_FILES]:
        if (out_dir / name).is_dir():  # an empty folder, checked by _check_replaceable
            (out_dir / name).rmdir()
        os.replace(staged / name, out_dir / name)
    staged.rmdir()


def write_corpus(out_dir: str | Path, params: dict, *, workers: int = 1) -> dict:
    """Write the synthetic corpus to out_dir and return a summary (counts per part, seed, null flag).

    params: the `synthetic` config block (schema defaults filled; `enabled` and `out` are ignored).
    workers: processes rendering subjects in parallel; the output is the same for any value.
    """
    out_dir = Path(out_dir)
    resolved = resolve_params(params)
    subjects = plan_corpus(resolved)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_replaceable(out_dir)
    staged = partial_path(out_dir / "corpus")
    try:
        summary = _write_staged(staged, resolved, subjects, workers)
        _install(staged, out_dir, resolved["parts"])
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return summary


def _write_staged(out_dir: Path, resolved: dict, subjects: list, workers: int) -> dict:
    """The whole corpus written into ``out_dir`` (the partial folder); returns the summary."""
    shutil.rmtree(out_dir, ignore_errors=True)  # left by an earlier killed process with the same id
    out_dir.mkdir()
    for part in resolved["parts"]:
        (out_dir / part).mkdir()
        (out_dir / part / PART_MARKER).write_text("written by localmer.synth; replaced on the next run\n")
    rendered = []  # (frames, IOD) per subject
    with contextlib.ExitStack() as stack:
        if workers > 1:
            # fork: spawn and forkserver would re-import the caller's __main__ (a Snakemake script).
            pool = stack.enter_context(
                ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
            )
            results = pool.map(render_subject, subjects, itertools.repeat(out_dir))
        else:
            results = map(render_subject, subjects, itertools.repeat(out_dir))
        for subject, (frames, iod) in progress(zip(subjects, results, strict=True), len(subjects), "subjects"):
            log.info(
                "%s %s: %d clips, %d frames (%s)", subject.part, subject.name, len(subject.clips), frames, subject.photo
            )
            rendered.append((frames, iod))
    frame_counts = [frames for frames, _ in rendered]

    clips = [clip for subject in subjects for clip in subject.clips]
    if "casme2" in resolved["parts"]:
        write_casme2_sheet([c for c in clips if c.part == "casme2"], out_dir / "casme2" / "CASME2-coding-20140508.xlsx")
    if "samm" in resolved["parts"]:
        write_samm_sheet([c for c in clips if c.part == "samm"], out_dir / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx")
    write_megc_ground_truth(clips, out_dir / "megc2019_gt.csv")
    write_truth(subjects, [iod for _, iod in rendered], out_dir / "synth_clips.tsv")

    counts = {
        part: {
            "subjects": sum(s.part == part for s in subjects),
            "clips": sum(c.part == part for c in clips),
            "megc_clips": sum(c.part == part and c.label in MEGC2019_CLASSES for c in clips),
            "frames": sum(n for s, n in zip(subjects, frame_counts, strict=True) if s.part == part),
        }
        for part in resolved["parts"]
    }
    summary = {
        "format_version": FORMAT_VERSION,
        "seed": resolved["seed"],
        "null": bool(resolved["null"]),
        "parts": counts,
        "clips": len(clips),
        "frames": int(sum(frame_counts)),
    }
    corpus = {**summary, "generator": "localmer.synth", "base_photos": list(BASE_PHOTOS), "params": resolved}
    (out_dir / "corpus.json").write_text(json.dumps(corpus, indent=2, sort_keys=True) + "\n")
    return summary
