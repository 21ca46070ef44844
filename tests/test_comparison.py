"""The comparison table: this run's experiments with their intervals, the published figures beside them,
each labelled as published with its protocol caveat, never mistaken for this run's."""

from __future__ import annotations

import pandas as pd
import pytest

from localmer import comparison, evaluation
from localmer.methods.registry import METHODS, PEERS, published_figures


def _metrics(folder, predicted):
    rows = [
        {"sample_id": f"{d}/s{i}/c{j}", "dataset": d, "subject": f"{d}/s{i}", "true": true, "predicted": guess}
        for d in ("casme2", "samm")
        for i in range(3)
        for j, (true, guess) in enumerate(zip(("negative", "positive", "surprise"), predicted, strict=True))
    ]
    evaluation.write_report(pd.DataFrame(rows), folder, n_boot=100)
    return folder / "metrics.json"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("comparison")
    files = {
        "full": _metrics(folder / "full", ("negative", "positive", "surprise")),
        "ststnet": _metrics(folder / "ststnet", ("negative", "negative", "negative")),
    }
    methods = {"full": "localmer", "ststnet": "ststnet"}
    return comparison.comparison_table(files, methods, "synthetic corpus", published_figures(methods.values()))


def test_this_runs_rows_hold_its_figures_and_intervals(table):
    mine = table[table.origin == comparison.THIS_RUN]
    assert mine.entry.unique().tolist() == ["full", "ststnet"]
    assert mine[mine.entry == "full"].part.tolist() == ["FULL", "casme2", "samm"]
    full = mine[(mine.entry == "full") & (mine.part == "FULL")].iloc[0]
    assert full.uf1 == 1.0 and full.uar == 1.0 and full.n == 18 and full.data == "synthetic corpus"
    chance = mine[(mine.entry == "ststnet") & (mine.part == "FULL")].iloc[0]
    assert chance.uar == pytest.approx(1 / 3)
    assert chance.uf1_lo <= chance.uf1 <= chance.uf1_hi


def test_published_rows_are_the_registrys_each_labelled_with_its_protocol(table):
    published = table[table.origin == comparison.PUBLISHED]
    # Only the methods this run ran; every publication of each, every part it reports.
    assert set(published.method) == {"localmer", "ststnet"}
    expected = sum(len(p.parts) for name in ("localmer", "ststnet") for p in METHODS[name].published)
    assert len(published) == expected
    assert published.uf1_lo.isna().all() and published.n.isna().all()  # no interval: not this run's
    assert (published.data == comparison.PUBLISHED_DATA).all()
    assert published.protocol.str.len().min() > 10
    seed = published[(published.method == "localmer") & (published.part == "FULL")].iloc[0]
    assert (seed.uf1, seed.uar) == (0.9022, 0.9018)


def test_the_markdown_marks_published_rows_and_lists_their_caveats(table):
    text = comparison.comparison_markdown(table)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| entry | method | FULL UF1 / UAR | casme2 UF1 / UAR | samm UF1 / UAR")
    full_line = next(line for line in lines if line.startswith("| full |"))
    assert "1.0000 [1.0000, 1.0000] / 1.0000 [1.0000, 1.0000]" in full_line
    published = [line for line in lines if "*published*" in line]
    assert len(published) == table[table.origin == comparison.PUBLISHED].entry.nunique()
    assert all("[" not in line.split("|", 3)[3] for line in published)  # no interval on a published figure
    for entry in table[table.origin == comparison.PUBLISHED].entry.unique():
        assert f"- {entry}: " in text
    # A published part that a source does not give is n/a, not 0.
    assert "n/a" in text or all(len(p.parts) == 4 for name in ("localmer", "ststnet") for p in METHODS[name].published)


def test_the_figure_is_written(table, tmp_path):
    comparison.comparison_figure(table, tmp_path / "comparison.png", chance=1 / 3)
    assert (tmp_path / "comparison.png").stat().st_size > 10_000


def test_every_peer_reports_its_published_figures():
    for name in PEERS:
        assert METHODS[name].published, name
        for published in METHODS[name].published:
            assert "FULL" in published.parts


def test_a_part_of_this_run_without_an_interval_is_marked(tmp_path):
    rows = [
        {"sample_id": f"casme2/s1/c{j}", "dataset": "casme2", "subject": "casme2/s1", "true": label, "predicted": label}
        for j, label in enumerate(("negative", "positive", "surprise"))
    ]
    evaluation.write_report(pd.DataFrame(rows), tmp_path / "one", n_boot=100)
    table = comparison.comparison_table(
        {"one": tmp_path / "one" / "metrics.json"}, {"one": "localmer"}, "one subject", {}
    )
    line = next(line for line in comparison.comparison_markdown(table).splitlines() if line.startswith("| one |"))
    assert line.count(evaluation.NO_INTERVAL_MARK) == 4  # UF1 and UAR of FULL and casme2
