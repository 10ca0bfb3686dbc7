"""One run at a time per RUN_DIR: an exclusive lock held for the whole run.

Two runs writing one RUN_DIR would both append result lines (duplicates) and split every
checkpoint thread into two branches. The lock is ``fcntl.flock`` on ``RUN_DIR/run.lock``:
the kernel releases it when the holding process ends, however it ends, so a run killed by
SIGKILL (or a crash, or a reboot) never leaves a stale lock behind, and ``--resume`` after a
kill just works. The file holds the holder's pid, host and start time, for the refusal
message only; it is never deleted (deleting a lock file lets a third process lock a new file
while a second still holds the old one). flock works on local file systems and on NFS
(Linux emulates it with NFS byte-range locks); it does not guard against another machine
on a file system without lock support.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from graphs.atomic import process_alive

LOCK = "run.lock"


class RunDirBusy(Exception):
    """Another process holds the run directory; the message names it."""


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` exclusively until the block ends (the directory must exist).
    Raises RunDirBusy when another process holds it, OSError when the lock file cannot be
    written (a read-only or full file system)."""
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirBusy(f"{run_dir} is in use by another run ({_holder(fd)}); wait for it to finish, "
                             "or stop it, then run again (with --resume to continue it)") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        os.fsync(fd)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """Who holds the lock. The holder writes its record just after locking, and the file may
    still hold a killed run's record until then, so wait briefly for a record of a live
    process (on this host; another host's pid cannot be checked)."""
    for _ in range(50):
        try:
            holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            if holder["host"] != socket.gethostname() or process_alive(holder["pid"]):
                return f"pid {holder['pid']} on host {holder['host']}, since {holder['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.02)
    return "holder unknown"
    return True
