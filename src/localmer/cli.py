"""The ``localmer`` command: one subcommand per pipeline stage.

Each subcommand is a thin shell over the library function that does the work, so that the
Snakemake rules, the tests and a user at a terminal all run the same code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__
from . import config as configuration

log = logging.getLogger("localmer")


def _synth(args: argparse.Namespace) -> int:
    from . import synth

    if args.config:
        params = configuration.load(args.config, check_paths=False)["synthetic"]
    else:
        params = configuration.schema_defaults("synthetic")
    if args.seed is not None:
        params["seed"] = args.seed
    if args.null:
        params["null"] = True
    for key in ("preset", "preset_subjects", "preset_frame_scale", "preset_max_frames"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if params.get("preset") is not None:
        # The preset fixes these; a flag that would be ignored is an error instead.
        fixed = ["subjects", "clips_per_class", "image_size", "iod_fraction"]
        given = [f"--{key.replace('_', '-')}" for key in fixed if getattr(args, key) is not None]
        if given:
            raise configuration.ConfigError(
                f"{', '.join(given)}: the preset {params['preset']!r} fixes subjects, clips per class and frame "
                "sizes; scale it with --preset-subjects, --preset-frame-scale, --preset-max-frames"
            )
    if args.image_size:
        params["image_size"] = list(args.image_size)
    if args.iod_fraction is not None:
        params["iod_fraction"] = args.iod_fraction
    if args.parts:
        params["parts"] = {part: params["parts"].get(part, {}) for part in args.parts}
    for part in params["parts"].values():
        for key in ("subjects", "clips_per_class", "extra_clips_per_subject", "fps"):
            value = getattr(args, key)
            if value is not None:
                part[key] = value
    # Re-validate what the flags made, so a bad flag gets the same message as a bad config key.
    configuration.validate_section("synthetic", params)
    summary = synth.write_corpus(args.out, params)
    print(json.dumps(summary, indent=2))
    return 0


def _index(args: argparse.Namespace) -> int:
    from . import datasets

    if args.out is None and not args.sheets_only:
        raise ValueError("localmer index: --out is required (only --sheets-only may go without it)")
    cfg = configuration.load(args.config, base_dir=args.base_dir)
    experiment = configuration.experiment(cfg, args.experiment, base_dir=args.base_dir)
    index = datasets.build_index(
        experiment["datasets"], experiment["task"], base_dir=args.base_dir, attach_frames=not args.sheets_only
    )
    if args.out is not None:
        index.write(args.out)
    if args.sheets_only:
        print(sheet_check(index, experiment["task"]))
        return 0
    print(index.summary().to_string(index=False))
    differences = index.differences_line(Path(args.out) / "reconciliation.tsv")
    if differences:
        print(f"task.strict is false: {differences}")
    return 0


def sheet_check(index, task: dict) -> str:
    """What `localmer index --sheets-only` prints: clips per part and class of the task, the exclusions
    by reason, and the ground-truth reconciliation by status (the differences clip by clip)."""
    lines = [f"task {task['name']}: clips per dataset part and class (from the annotations, no frame read)"]
    lines += [index.summary().drop(columns="excluded").to_string(index=False), ""]
    excluded = index.excluded
    if len(excluded):
        lines.append(f"excluded: {len(excluded)} clip(s)")
        for (dataset, reason), count in excluded.groupby(["dataset", "reason"]).size().items():
            lines.append(f"  {dataset}: {count} x {reason}")
    else:
        lines.append("excluded: none")
    reconciliation = index.reconciliation
    if task.get("ground_truth"):
        counts = reconciliation.status.value_counts()
        shown = ", ".join(f"{counts[status]} {status}" for status in sorted(counts.index))
        lines += ["", f"ground truth {task['ground_truth']}: {shown or 'no clip'}"]
        for row in index.differences().itertuples():
            ours = f"GT {row.gt_label or '-'}, ours {row.label or '-'}"
            lines.append(f"  {row.status}: {row.subject}/{row.clip} ({ours}) {row.detail}")
    else:
        lines += ["", "ground truth: none configured (task.ground_truth)"]
    return "\n".join(lines)


def _preprocessing_settings(args: argparse.Namespace) -> dict:
    """The experiment's ``preprocessing`` block, its region-table path resolved against --base-dir."""
    cfg = configuration.load(args.config, base_dir=args.base_dir, check_paths=False)
    params = configuration.experiment(cfg, args.experiment, base_dir=args.base_dir, check_paths=False)["preprocessing"]
    return {**params, "regions": str(Path(args.base_dir) / params["regions"])}


def _preprocess(args: argparse.Namespace) -> int:
    import pandas as pd

    from . import preprocess

    params = _preprocessing_settings(args)
    samples = pd.read_csv(args.samples, sep="\t", keep_default_na=False)
    report = preprocess.preprocess_all(samples, params, args.out, args.subjects)
    print(report.status.value_counts().to_string())
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from . import qc, regions

    params = _preprocessing_settings(args)
    info = qc.inspect(args.input, args.out, params, regions.load_region_table(params["regions"]))
    print(
        json.dumps(
            {k: info[k] for k in ("input", "frame", "faces", "face_used", "roll_deg", "iod_px", "flow")}, indent=2
        )
    )
    return 0


def _flow(args: argparse.Namespace) -> int:
    from . import flow_command

    done = flow_command.run(
        args.inputs,
        args.out,
        _preprocessing_settings(args),
        onset=args.onset,
        apex=args.apex,
        spot=args.spot,
        method=args.method,
        align=not args.no_align,
    )
    pair = done["pair"]
    face = "aligned face" if pair.aligned else "image"
    print(
        f"{pair.source}: onset {pair.onset}, apex {pair.apex} ({pair.apex_source}); {done['method']} flow on the "
        f"{face} ({pair.first.shape[1]}x{pair.first.shape[0]} px)"
    )
    print("wrote " + ", ".join(str(path) for path in done["files"]))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from . import bundle, predict, tfsetup

    # Argument errors before the bundle is read or TensorFlow starts.
    if args.stride is not None and args.window is None:
        raise ValueError("--stride needs --window")
    predict.check_windowing(args.window, args.stride)
    if args.out:
        predict.output_format(args.out)
    bundle.check_bundle(args.bundle)  # format, version and digests, before TensorFlow starts
    tfsetup.configure_tensorflow(args.threads, 0)  # threads are set before the first TensorFlow op
    model = bundle.read_bundle(args.bundle)
    table = predict.predict(model, args.inputs, args.onset, args.offset, args.window, args.stride, args.qc)
    if args.out:
        predict.write_predictions(table, args.out)
    print(table.to_string(index=False))
    skipped = table[table.status != "ok"]
    if len(skipped) == len(table):
        raise predict.PredictError(
            f"nothing was predicted: all {len(table)} rows skipped "
            f"(first: {table.input.iloc[0]}: {table.reason.iloc[0]})"
        )
    if len(skipped):
        print(
            f"localmer predict: {len(skipped)} of {len(table)} rows not predicted (status skipped, see reason)",
            file=sys.stderr,
        )
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from . import evaluation
    from .tasks import resolve_task

    classes = list(resolve_task({"name": args.task}).classes)
    predictions = evaluation.read_predictions(args.predictions, classes)
    if args.out:
        document = evaluation.write_report(predictions, args.out, classes, n_boot=args.bootstrap, seed=args.seed)
    else:
        parts = evaluation.evaluate(predictions, classes, n_boot=args.bootstrap, seed=args.seed)
        document = {"classes": classes, "notes": [], "parts": parts}
    print(evaluation.format_table(document))
    return 0


def _config(args: argparse.Namespace) -> int:
    import yaml

    cfg = configuration.load(args.config, base_dir=args.base_dir, check_paths=not args.no_path_check)
    resolved = configuration.experiment(cfg, args.experiment, base_dir=args.base_dir) if args.experiment else cfg
    print(yaml.safe_dump(resolved, sort_keys=False), end="")
    return 0


def _experiment_arguments(parser: argparse.ArgumentParser, experiment_help: str) -> None:
    """--config, --experiment and --base-dir, as every experiment-reading subcommand takes them."""
    parser.add_argument("--config", default="config/config.yaml", help="config YAML (default: %(default)s)")
    parser.add_argument("--experiment", default="full", help=f"{experiment_help} (default: %(default)s)")
    parser.add_argument("--base-dir", default=".", help="where relative paths start (default: current folder)")


def build_parser() -> argparse.ArgumentParser:
    from .flow import METHODS

    parser = argparse.ArgumentParser(
        prog="localmer",
        description="Micro-expression recognition from local facial regions. One subcommand per stage; "
        "the Snakemake workflow runs them in order.",
    )
    parser.add_argument("--version", action="version", version=f"localmer {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, TensorFlow's and ffmpeg's own messages, and a traceback with an error",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("config", help="validate a config file and print it with defaults filled")
    check.add_argument("config", nargs="?", default="config/config.yaml", help="config YAML (default: %(default)s)")
    check.add_argument("--experiment", help="print this experiment's resolved configuration")
    check.add_argument("--base-dir", default=".", help="where relative paths start (default: current folder)")
    check.add_argument("--no-path-check", action="store_true", help="do not check that dataset paths exist")
    check.set_defaults(func=_config)

    synth = commands.add_parser(
        "synth",
        help="write the synthetic micro-expression corpus (CASME II, SAMM, SMIC-HS layouts + MEGC GT)",
        description="Write the synthetic corpus. Parameters come from --config's `synthetic` block, else the "
        "schema defaults; the flags below override them (size flags apply to every part).",
    )
    synth.add_argument("--out", required=True, help="corpus folder")
    synth.add_argument("--config", help="take the `synthetic` block of this config file")
    synth.add_argument("--seed", type=int)
    synth.add_argument("--null", action="store_true", help="no facial action (leakage control)")
    synth.add_argument("--parts", nargs="+", choices=["casme2", "samm", "smic"], help="dataset layouts to write")
    synth.add_argument("--subjects", type=int, help="subjects per part")
    synth.add_argument("--clips-per-class", type=int, help="clips per subject and class")
    synth.add_argument("--extra-clips-per-subject", type=int, help="clips outside the task per subject")
    synth.add_argument("--fps", type=float, help="frame rate of every part")
    synth.add_argument("--image-size", type=int, nargs=2, metavar=("WIDTH", "HEIGHT"))
    synth.add_argument("--iod-fraction", type=float, help="inter-ocular distance / frame width (default 0.4)")
    synth.add_argument("--preset", help="a real corpus's shape: megc2019 (the MEGC 2019 composite's subjects, clips)")
    synth.add_argument("--preset-subjects", type=float, help="preset: keep this fraction of each part's subjects")
    synth.add_argument("--preset-frame-scale", type=float, help="preset: factor on its frame sizes (0.1-1)")
    synth.add_argument("--preset-max-frames", type=int, help="preset: the most frames per clip folder (3 or more)")
    synth.set_defaults(func=_synth)

    index = commands.add_parser(
        "index",
        help="read the configured datasets into one sample table (samples.tsv)",
        description="Build an experiment's sample index: samples.tsv, excluded.tsv, reconciliation.tsv "
        "(MEGC ground-truth check, clip by clip) and index_summary.tsv. With --sheets-only, read the annotation "
        "sheets (and folder names where a kind has none) without any frame and print the task's clip counts "
        "per part and class, the exclusions and the ground-truth reconciliation: the first check of a new copy "
        "of a dataset.",
    )
    index.add_argument("--out", help="output folder (required unless --sheets-only)")
    index.add_argument(
        "--sheets-only", action="store_true", help="read the annotations only (no frame): print counts and checks"
    )
    _experiment_arguments(index, "experiment name")
    index.set_defaults(func=_index)

    prep = commands.add_parser(
        "preprocess",
        help="landmarks, alignment, six regions x m patches (HDF5 per subject) for a samples.tsv",
        description="Run the three preprocessing stages without Snakemake: OUT/landmarks, OUT/aligned, "
        "OUT/patches (<dataset>/<subject>.h5 each) and OUT/preprocessing_report.tsv.",
    )
    prep.add_argument("--samples", required=True, help="samples.tsv written by `localmer index`")
    prep.add_argument("--out", required=True, help="output folder")
    prep.add_argument("--subjects", nargs="+", help="only these subjects (dataset/subject)")
    _experiment_arguments(prep, "experiment whose preprocessing settings apply")
    prep.set_defaults(func=_preprocess)

    inspect = commands.add_parser(
        "inspect",
        help="landmarks, aligned face, region crops and a QC overlay of one image, video or frame folder",
        description=(
            "Writes landmarks.csv, aligned.png, one PNG per region, overlay.png and inspect.json; for a video or "
            "a folder of frames (one clip: first frame = onset) also the onset->apex flow.png and strain.png."
        ),
    )
    inspect.add_argument("input", help="an image file, a video (mp4/avi/mov/mkv) or a folder of frames")
    inspect.add_argument("--out", required=True, help="output folder")
    _experiment_arguments(inspect, "experiment whose preprocessing settings apply")
    inspect.set_defaults(func=_inspect)

    flows = commands.add_parser(
        "flow",
        help="optical flow (u, v, strain) from onset to apex of an image pair, a frame folder or a video",
        description="Finds and aligns the face as the workflow does (unless --no-align) and computes the flow "
        "from the onset to the apex frame: u right, v down, in px of the face. Writes OUT/flow.npz (u, v, strain, "
        "magnitude; onset, apex, apex_source), OUT/flow.png (hue = direction, brightness = magnitude) and "
        "OUT/strain.png. In a frame folder or video the apex is --apex, else spotted: the frame after the onset "
        "whose face changes most (apex_source annotated or spotted).",
    )
    flows.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="two image files (onset, apex), a frame folder or a video"
    )
    flows.add_argument("--onset", type=int, help="onset frame number (default: the first frame)")
    flows.add_argument("--apex", type=int, help="apex frame number (default: spotted)")
    flows.add_argument("--spot", action="store_true", help="spot the apex (the default without --apex)")
    flows.add_argument("--method", choices=list(METHODS), help="flow method (default: the config's, tvl1)")
    flows.add_argument("--no-align", action="store_true", help="use the frames as they are, without face alignment")
    flows.add_argument("--out", required=True, help="output folder")
    _experiment_arguments(flows, "experiment whose preprocessing settings apply")
    flows.set_defaults(func=_flow)

    pred = commands.add_parser(
        "predict",
        help="apply a model bundle to new clips: frame folders, videos or a manifest CSV",
        description="Per-class probabilities and the predicted class of each clip (or window), and the "
        "reference frame whose face gave the geometry. A clip or window without a face, or whose face is not "
        "on every frame checked, is a row with status skipped and the reason (exit status 2 only when no row "
        "was predicted). A bundle is written by the workflow target results/<experiment>/bundle/bundle.json. "
        "Runs on CPU; uses a GPU when TensorFlow finds one.",
    )
    pred.add_argument("bundle", help="bundle folder (with bundle.json)")
    pred.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="frame folder, video (mp4/avi/mov/mkv) or manifest CSV (column path; optional onset, offset)",
    )
    pred.add_argument("--onset", type=int, help="onset frame number (default: the first frame)")
    pred.add_argument("--offset", type=int, help="offset frame number (default: the last frame)")
    pred.add_argument(
        "--window",
        type=int,
        help="slide a window of this many frames (at least 2, at most the clip's) over each clip; a last "
        "window ends on the clip's last frame when the strides do not",
    )
    pred.add_argument("--stride", type=int, help="frames between window starts (default: half the window)")
    pred.add_argument("--out", help="write the table here: a .csv or .json file name")
    pred.add_argument("--qc", help="write a QC overlay per clip (or window) into this folder")
    pred.add_argument("--threads", type=int, default=1, help="CPU threads for TensorFlow (default: %(default)s)")
    pred.set_defaults(func=_predict)

    metrics = commands.add_parser(
        "metrics",
        help="MEGC 2019 metrics (accuracy, UF1, UAR, per class, bootstrap CIs) of a predictions file (any task)",
        description="Recompute the metrics from any predictions file with columns sample_id, dataset, true, "
        "predicted (class names or integers; optional subject for intervals over subjects).",
    )
    metrics.add_argument("predictions", help="predictions TSV (or .csv)")
    metrics.add_argument("--out", help="also write metrics.json, metrics.tsv, metrics.md and confusion/ here")
    metrics.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default: %(default)s)")
    metrics.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    metrics.add_argument(
        "--task",
        default="megc2019",
        help="the task whose classes the labels are: a registered task or a task table .yaml (default: %(default)s)",
    )
    metrics.set_defaults(func=_metrics)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .preprocess import PreprocessError
    from .runlog import quiet_libraries, to_stderr

    args = build_parser().parse_args(argv)
    to_stderr(args.verbose)
    quiet_libraries(args.verbose)
    try:
        return args.func(args)
    # Bad input (config, sheets, frames, predictions) is a ValueError naming the file and field: a
    # message, not a traceback (--verbose shows the traceback).
    except (ValueError, PreprocessError) as err:
        if args.verbose:
            raise
        print(f"localmer {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
