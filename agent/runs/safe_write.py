"""Writing output files without ever destroying something: refused targets, atomic writes.

``export`` and ``merge`` write files a user names. A wrong ``--out`` must not overwrite the
run it reads from, nor any existing file unless asked (``--force``), and a failed write (a
full disk, a killed process) must leave the old file as it was and no temporary file behind:
writes go through ``graphs.atomic``, the project's one atomic writer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from agent.runs.fingerprint import FINGERPRINT
from agent.runs.results import RESULTS, STARTED, SUMMARY
from agent.runs.reviews import REVIEWS
from agent.runs.run_lock import LOCK
from graphs.atomic import PARTIAL, atomic_file, is_partial, is_stale_partial


class OutputError(Exception):
    """The output cannot or may not be written; the message says why and what to do."""


# Every name a run owns or may create, present or not: results, summary, the record of started
# samples, lock, fingerprint, reviews, crash log, the temporaries they are written through, and
# the checkpoint databases with their -wal and -shm (which SQLite creates, and a resume would replace).
RUN_FILES = frozenset({RESULTS, SUMMARY, STARTED, LOCK, FINGERPRINT, REVIEWS, "crash.log"})


def is_run_file(path: Path) -> bool:
    """Whether ``path``'s name is one a run directory lives on (``RUN_FILES``, their ``.tmp``
    and every ``checkpoints*`` file)."""
    name = path.name.removesuffix(".tmp")
    if is_partial(path):
        name = name[1:].split(PARTIAL, 1)[0]
    return name in RUN_FILES or name.startswith("checkpoints")


def check_target(out: Path, sources: list[Path], force: bool, directory: bool = False) -> None:
    """Refuse ``out`` when it is (or, for a ``directory`` target, is) one of the ``sources``
    run directories or their files, names the wrong kind of thing, or exists without ``force``."""
    for run_dir in sources:
        if directory and _same(out, run_dir):
            raise OutputError(f"--out {out} is the run directory {run_dir} itself; choose another directory")
        if _same(out.parent, run_dir) and is_run_file(out):
            raise OutputError(f"--out {out} is a name the run {run_dir} owns ({out.name}); writing there would "
                              "destroy the run or be destroyed by it. Choose a path outside it")
        for existing in (run_dir.iterdir() if run_dir.is_dir() else []):
            if is_run_file(existing) and _same(out, existing):
                raise OutputError(f"--out {out} is {existing.name} of the run {run_dir}; writing there would "
                                  "destroy the run. Choose a path outside it")
    if directory:
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out} exists and is not a directory")
        if out.is_dir() and not force and any(not is_stale_partial(p) for p in out.rglob("*") if not p.is_dir()):
            raise OutputError(f"--out {out} is not empty; pass --force to overwrite its files, or choose a new directory")
        return
    if out.is_dir():
        raise OutputError(f"--out {out} is a directory; name a file to write")
    if out.exists() and not force:
        raise OutputError(f"--out {out} already exists; pass --force to overwrite it")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b) or a.resolve() == b.resolve()
    except OSError:
        return False


@contextmanager
def atomic_text(path: Path) -> Iterator[TextIO]:
    """A text file that appears at ``path`` complete, or not at all (``graphs.atomic``), with a
    failure to write said as an OutputError naming the file."""
    try:
        with atomic_file(path) as f:
            yield f
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
