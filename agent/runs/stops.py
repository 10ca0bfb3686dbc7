"""Why a run stopped when no sample was at fault: its environment failed under it (a full
disk, the checkpoint database or the Chroma server gone) — said in one line, with what to do,
and distinct from a bug, whose traceback goes to RUN_DIR/crash.log for a report.

Every such failure keeps the finished rows, and the run goes on with ``--resume`` once the
cause is gone: a disk freed, a server back (its data is on the server: nothing is redone but
the samples in flight).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from agent.runs.checkpoints import CheckpointStore, CheckpointStoreError, database_errors, reason
from graphs.embedding import VectorCacheError
from graphs.entity_index import IndexStoreError


@dataclass(frozen=True)
class EnvironmentStop:
    cause: str  # what failed, naming the file system, database or server
    remedy: str  # what to do before resuming


def environment_stop(exc: BaseException, store: CheckpointStore | None) -> EnvironmentStop | None:
    """What in the run's environment ``exc`` says failed, or None when it is a bug."""
    database = f"the checkpoint database {store}" if store else "the checkpoint database"
    if isinstance(exc, OSError):
        return EnvironmentStop(f"{exc.strerror or exc} ({type(exc).__name__})", "fix the cause (e.g. free space)")
    if isinstance(exc, VectorCacheError):
        return EnvironmentStop(str(exc), "fix the cause (e.g. free space, or delete the file: its vectors are computed again)")
    if isinstance(exc, IndexStoreError):
        return EnvironmentStop(f"the entity index is unusable: {exc}", "start the Chroma server again (or wait until it is back)")
    if isinstance(exc, (sqlite3.Error, CheckpointStoreError)):
        return EnvironmentStop(f"{database} failed: {exc} ({type(exc).__name__})", "fix the cause (e.g. free space)")
    if isinstance(exc, database_errors()):  # psycopg's: the PostgreSQL server of the checkpoints is gone or failing
        return EnvironmentStop(f"{database} failed: {reason(exc, store.url if store and store.url else '')} "
                               f"({type(exc).__name__})", "bring the PostgreSQL server back")
    return None
