"""Atomic, durable file writes: the one way the project replaces a file.

A KG cache, a run's summary and fingerprint, a rewritten results file and every export must
appear complete or not at all: a crash, a full disk or SIGKILL mid-write leaves the old file as
it was. The data goes to a temporary file in the target's directory (named
``.<target>.partial-<pid>-<random>.tmp``, so a user sees what it is and whose it was), is
fsynced, then renamed over the target with ``os.replace`` (atomic on POSIX). A temporary left by
a killed writer cannot clean itself up, so the next write of the same target removes those of
processes that no longer run. The file gets the permissions a newly created file gets (0666 less
the umask), not mkstemp's 0600.

It lives in ``graphs``, the lowest layer, so the KG cache and the agent's run files share it.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

PARTIAL = ".partial-"  # in a temporary's name: .<target>.partial-<pid>-<random>.tmp


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO]:
    """A file opened for writing (``"w"`` text in UTF-8, or ``"wb"``) that replaces ``path``
    when the block ends without an exception; on any exception it is removed and ``path`` is
    untouched. OSError passes through for the caller to word."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{PARTIAL}{os.getpid()}-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with open(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """``text`` as the whole content of ``path``, atomically and durably."""
    with atomic_file(path) as f:
        f.write(text)


def is_partial(path: Path) -> bool:
    """Whether ``path`` is one of ``atomic_file``'s temporaries (of any target)."""
    return path.name.startswith(".") and PARTIAL in path.name and path.name.endswith(".tmp")


def is_stale_partial(path: Path) -> bool:
    """Whether ``path`` is a temporary of ``atomic_file`` whose writer is gone (a killed export):
    a directory holding only such files is as good as empty, and the next write of their target
    removes them."""
    if not is_partial(path):
        return False
    pid = path.name.rsplit(PARTIAL, 1)[1].split("-", 1)[0]
    return not pid.isdigit() or not process_alive(int(pid))


def remove_stale_partials(path: Path) -> None:
    """Remove the temporaries of ``path`` left by writers that no longer run."""
    for partial in path.parent.glob(f"{glob.escape(f'.{path.name}{PARTIAL}')}*.tmp"):
        if is_stale_partial(partial):
            partial.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether a process of this host has ``pid`` (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
