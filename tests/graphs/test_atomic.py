"""The one atomic writer: complete or untouched, no temporaries left, normal permissions."""

import os
import subprocess
import sys

import pytest

from graphs.atomic import atomic_file, is_stale_partial, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as f:
            f.write("half of the new")
            raise RuntimeError("disk gone")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.jsonl"
    code = (f"import os, sys; sys.path.insert(0, {os.getcwd()!r}); from graphs.atomic import atomic_file\n"
            f"writing = atomic_file(__import__('pathlib').Path({str(target)!r})); f = writing.__enter__()\n"
            "f.write('x'); f.flush()\n"
            "os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code])
    (left,) = [p for p in tmp_path.iterdir()]
    assert left.name.startswith(".out.jsonl.partial-") and is_stale_partial(left)
    write_text(target, "complete\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"] and target.read_text() == "complete\n"


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    target = tmp_path / "out.jsonl"
    mine = tmp_path / f".out.jsonl.partial-{os.getpid()}-abc.tmp"
    mine.write_text("being written")
    write_text(target, "done")
    assert mine.exists() and not is_stale_partial(mine)


def test_the_file_gets_the_permissions_of_a_newly_created_file(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
