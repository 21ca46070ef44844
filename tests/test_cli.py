"""The localmer command: a subcommand per stage, errors with exit code 2 and a message."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import yaml
from conftest import REPO

from localmer.cli import main as cli


def test_help_lists_a_subcommand_per_stage():
    result = subprocess.run([sys.executable, "-m", "localmer", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("config", "synth", "index"):
        assert f"    {command} " in result.stdout


def test_ffmpeg_messages_only_with_verbose_and_localmer_errors_always(tmp_path):
    """An unreadable video: ffmpeg's "moov atom not found" stays out of stderr by default, localmer's
    one-line error does not; --verbose (the control) shows ffmpeg's message and the traceback."""
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    config = ["--config", str(REPO / "config" / "config.yaml"), "--base-dir", str(REPO)]
    command = [
        sys.executable,
        "-m",
        "localmer",
        "inspect",
        str(tmp_path / "broken.mp4"),
        "--out",
        str(tmp_path),
        *config,
    ]
    # Without the variables an in-process cli() call of an earlier test has set (they would win).
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL")}
    quiet = subprocess.run(command, capture_output=True, text=True, env=env)
    assert quiet.returncode == 2
    assert quiet.stderr.splitlines() == [
        f"localmer inspect: error: video '{tmp_path / 'broken.mp4'}' cannot be read by OpenCV (corrupt or "
        "unsupported codec)"
    ]
    verbose = subprocess.run([*command[:3], "--verbose", *command[3:]], capture_output=True, text=True, env=env)
    assert verbose.returncode == 1 and "moov atom not found" in verbose.stderr and "Traceback" in verbose.stderr


def test_tensorflows_load_notices_are_dropped_and_its_errors_pass(tmp_path):
    """What a TensorFlow prints from C++ while it loads (before absl's log is set up, so whatever
    TF_CPP_MIN_LOG_LEVEL says): its INFO/WARNING lines and absl's note go, an ERROR line and Python's own
    stderr stay. A stand-in package writes them to file descriptor 2 as the real one does (which prints
    its notice only on some CPUs). Control: --verbose's setting keeps every line."""
    package = tmp_path / "tensorflow"
    package.mkdir()
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796193132.410404    5522 port.cc:153] oneDNN custom operations are on.",
        "W0000 00:00:1796193132.410404    5522 cpu_feature_guard.cc:1] a warning",
        "E0000 00:00:1796193132.410404    5522 some.cc:1] a real error",
    ]
    (package / "__init__.py").write_text(
        f"import os, sys\nos.write(2, {repr(chr(10).join(lines) + chr(10))}.encode())\n"
        "print('from python', file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "src")])}

    def stderr_of(verbose: bool) -> list[str]:
        code = f"from localmer import runlog; runlog.quiet_libraries({verbose}); import tensorflow"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        return result.stderr.splitlines()

    assert stderr_of(False) == [lines[3], "from python"]
    assert stderr_of(True) == [*lines, "from python"]


def index_config(real_layout, tmp_path, **task) -> str:
    cfg = {
        "synthetic": {"enabled": False},
        "datasets": real_layout["datasets"],
        "task": {"name": "megc2019", "ground_truth": str(real_layout["gt"]), **task},
        "experiments": {"full": {}, "casme2_only": {"datasets": real_layout["datasets"][:1]}},
        "run": ["full"],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_index_writes_the_tables_per_experiment(real_layout, tmp_path, capsys):
    config = index_config(real_layout, tmp_path)
    assert cli(["index", "--config", config, "--experiment", "full", "--out", str(tmp_path / "full")]) == 0
    for name in ("samples.tsv", "excluded.tsv", "reconciliation.tsv", "index_summary.tsv"):
        assert (tmp_path / "full" / name).exists()
    assert len(pd.read_csv(tmp_path / "full" / "samples.tsv", sep="\t")) == 442
    assert "FULL" in capsys.readouterr().out

    # An experiment is its overrides: only CASME II here, still reconciled against the GT's CASME II part.
    assert cli(["index", "--config", config, "--experiment", "casme2_only", "--out", str(tmp_path / "c")]) == 0
    samples = pd.read_csv(tmp_path / "c" / "samples.tsv", sep="\t")
    assert len(samples) == 145 and set(samples.dataset) == {"casme2"}


def test_index_error_is_a_message_and_exit_code_2(real_layout, tmp_path, capsys):
    gt = tmp_path / "gt.csv"
    gt.write_bytes(real_layout["gt"].read_bytes() + b"casme2,sub01,EP99_99,1\r\n")
    config = index_config(real_layout, tmp_path, ground_truth=str(gt))
    assert cli(["index", "--config", config, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "localmer index: error: 1 clip(s) differ" in err and "missing: casme2/sub01/EP99_99" in err
    assert "Traceback" not in err


def test_index_with_strict_false_says_how_many_clips_differ_and_where(real_layout, tmp_path, capsys, caplog):
    gt = tmp_path / "gt.csv"
    gt.write_bytes(real_layout["gt"].read_bytes() + b"casme2,sub01,EP99_99,1\r\n")
    config = index_config(real_layout, tmp_path, ground_truth=str(gt), strict=False)
    out = tmp_path / "out"
    assert cli(["index", "--config", config, "--out", str(out)]) == 0
    line = f"1 clip(s) differ from the ground truth (1 missing, 0 label_mismatch): see {out / 'reconciliation.tsv'}"
    assert f"task.strict is false: {line}" in capsys.readouterr().out.splitlines()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "task.strict is false: 1 clip(s) differ from the ground truth (1 missing, 0 label_mismatch): see " in (
        " ".join(warned)
    )
    # Control: no difference, no line.
    caplog.clear()
    config = index_config(real_layout, tmp_path, strict=False)
    assert cli(["index", "--config", config, "--out", str(tmp_path / "same")]) == 0
    assert "differ" not in capsys.readouterr().out and "differ" not in caplog.text


def test_synth_writes_a_corpus_and_checks_its_flags(tmp_path, capsys):
    out = tmp_path / "corpus"
    flags = ["--subjects", "1", "--clips-per-class", "1", "--extra-clips-per-subject", "0", "--fps", "30"]
    assert cli(["synth", "--out", str(out), "--parts", "smic", "--image-size", "128", "144", *flags]) == 0
    assert '"frames"' in capsys.readouterr().out
    clips = sorted(p.name for p in (out / "smic" / "HS" / "s1" / "micro").glob("*/*"))
    assert clips == ["s1_ne_01", "s1_po_01", "s1_sur_01"]
    assert (out / "megc2019_gt.csv").read_bytes().count(b"\r\n") == 3
    assert cli(["synth", "--out", str(out), "--subjects", "0"]) == 2
    assert "config key 'synthetic.parts.casme2.subjects': 0 is less than the minimum of 1" in capsys.readouterr().err
    assert cli(["synth", "--out", str(out), "--iod-fraction", "0.05"]) == 2
    assert "config key 'synthetic.iod_fraction': 0.05 is less than the minimum of 0.1" in capsys.readouterr().err


def test_metrics_recomputes_from_a_predictions_file(tmp_path, capsys):
    published = [[231, 12, 7], [11, 97, 1], [8, 1, 74]]
    rows = [
        (f"d/s{i % 68}/c{i}", "d", f"d/s{i % 68}", true, predicted)
        for i, (true, predicted) in enumerate(
            (t, p) for t, row in enumerate(published) for p, count in enumerate(row) for _ in range(count)
        )
    ]
    path = tmp_path / "predictions.tsv"
    pd.DataFrame(rows, columns=["sample_id", "dataset", "subject", "true", "predicted"]).to_csv(
        path, sep="\t", index=False
    )
    assert cli(["metrics", str(path), "--out", str(tmp_path / "out"), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert "0.9095" in out and "0.9018" in out
    assert (tmp_path / "out" / "metrics.json").exists() and (tmp_path / "out" / "confusion" / "FULL.png").exists()
    path.write_text("sample_id\tdataset\ttrue\n")
    assert cli(["metrics", str(path)]) == 2
    assert "predicted" in capsys.readouterr().err


def test_progress_logs_counts_and_time_to_go(caplog):
    from localmer import runlog

    with caplog.at_level("INFO", logger="localmer.progress"):
        assert list(runlog.progress(range(5), 5, "clips", every_s=0)) == [0, 1, 2, 3, 4]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 5 and messages[-1].startswith("clips: 5/5 (100%)")
    assert "s to go" in messages[0]
