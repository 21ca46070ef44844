"""atomic_output: a target appears complete or not at all, and a failed rewrite leaves the old one."""

from __future__ import annotations

import pytest

from localmer.atomic import atomic_output


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "out" / "table.tsv"
    with atomic_output(target) as partial:
        assert partial.parent == target.parent and partial.suffix == ".tsv" and "partial" in partial.name
        partial.write_text("old\n")
        assert not target.exists()  # nothing under the final name while writing
    assert target.read_text() == "old\n"
    for interruption in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)), atomic_output(target) as partial:
            partial.write_text("half of the new")
            raise interruption
        assert target.read_text() == "old\n"
        assert sorted(p.name for p in target.parent.iterdir()) == ["table.tsv"]
    with atomic_output(target) as partial:  # control: a write that completes replaces it
        partial.write_text("new\n")
    assert target.read_text() == "new\n" and sorted(p.name for p in target.parent.iterdir()) == ["table.tsv"]


def test_a_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "bundle"
    (target / "spatial").mkdir(parents=True)
    (target / "old.txt").write_text("old")
    with pytest.raises(ValueError), atomic_output(target) as partial:
        partial.mkdir()
        (partial / "new.txt").write_text("new")
        raise ValueError("a model failed to copy")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt", "spatial"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    with atomic_output(target) as partial:
        partial.mkdir()
        (partial / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
