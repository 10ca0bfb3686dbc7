"""SQLite files that several processes open at once (the vector cache; a run's checkpoints,
written by every Ray actor) use write-ahead logging, so readers never wait for a writer."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path


def write_ahead(db: sqlite3.Connection, wait: float) -> None:
    """Switch ``db``'s file to write-ahead logging, waiting up to ``wait`` seconds for other
    processes doing the same: when two open a new file at once, the second's switch fails at
    once with "database is locked", without SQLite's busy wait (a no-op once the file is in
    WAL mode, which the file keeps)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def write_ahead_file(path: Path, wait: float) -> None:
    """``write_ahead`` on the file at ``path``, through a connection of its own (for a file
    another library opens: LangGraph's checkpoint saver switches without waiting)."""
    with closing(sqlite3.connect(path, timeout=wait)) as db:
        write_ahead(db, wait)
