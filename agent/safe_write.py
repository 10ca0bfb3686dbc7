"""Writing output files without ever destroying something: refused targets, atomic writes.

``export`` and ``merge`` write files a user names. A wrong ``--out`` must not overwrite the
run it reads from, nor any existing file unless asked (``--force``), and a failed write (a
full disk, a killed process) must leave the old file as it was and no temporary file behind:
the data goes to a uniquely named temporary file in the target's directory, is fsynced, and
replaces the target with ``os.replace`` (atomic on POSIX), or is deleted on any failure.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from agent.results import RESULTS, STARTED, SUMMARY
from agent.fingerprint import FINGERPRINT
from agent.reviews import REVIEWS
from agent.run_lock import LOCK, process_alive


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
        if out.is_dir() and not force and any(not _stale_partial(p) for p in out.rglob("*") if not p.is_dir()):
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


PARTIAL = ".partial-"  # in a temporary's name: .<target>.partial-<pid>-<random>.tmp


@contextmanager
def atomic_text(path: Path) -> Iterator[TextIO]:
    """A text file that appears at ``path`` complete, or not at all, with the permissions a
    newly created file gets (0666 less the umask). A temporary left by an export that was
    killed (SIGKILL leaves no chance to clean up) is removed by the next write of the same
    target; one of a live process is left alone."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{PARTIAL}{os.getpid()}-", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with open(fd, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        os.unlink(tmp)
        raise


def _remove_stale_partials(path: Path) -> None:
    for partial in path.parent.glob(f".{glob.escape(path.name)}{PARTIAL}*.tmp"):
        if _stale_partial(partial):
            partial.unlink(missing_ok=True)


def _stale_partial(path: Path) -> bool:
    """Whether ``path`` is a temporary of ``atomic_text`` whose writer is gone (a killed
    export): a directory holding only such files is as good as empty, and they are removed
    by the next write of their target."""
    name = path.name
    if not (name.startswith(".") and name.endswith(".tmp") and PARTIAL in name):
        return False
    pid = name.rsplit(PARTIAL, 1)[1].split("-", 1)[0]
    return not pid.isdigit() or not process_alive(int(pid))


def _umask() -> int:
    """The process's umask, read without changing it (os.umask can only set it, and a set-and-
    restore would race with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
