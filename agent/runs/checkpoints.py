"""Where a run's checkpoints live: ``RUN_DIR/checkpoints.sqlite`` by default, or a PostgreSQL
database (``run … --checkpoints postgresql://USER@HOST:PORT/DB``) that many runs, machines and
chat sessions share.

Runs sharing one database never see each other's samples: every thread is scoped by its run
(``<run_id>:<sample id>``, ``agent.runs.fingerprint.thread_id``). The database's URL is recorded
with the run, without its password (``public_url``), so ``--resume``, ``replay`` and ``view``
open the same store; the password comes from the environment (``PGPASSWORD``) or
``~/.pgpass``, as for every libpq client, or from a ``--checkpoints`` URL given again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from agent import redaction
from agent.redaction import redact
from graphs.sqlite_wal import write_ahead_file

CHECKPOINTS = "checkpoints.sqlite"
# Several processes (the actors of a local Ray) write one SQLite file: a writer waits this long
# for another's transaction before SQLite reports "database is locked".
SQLITE_BUSY_TIMEOUT_S = 60.0
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Two runs starting on a fresh database would both create the tables: the first to take this
# advisory lock does, the other then finds them.
_SETUP_LOCK = 0x6D656472  # "medr"


class CheckpointStoreError(Exception):
    """The checkpoint store cannot be used (unreachable server, bad URL); the message says why."""


@dataclass(frozen=True)
class CheckpointStore:
    """A run's checkpoint store: a SQLite file, or a PostgreSQL URL (``url``)."""

    path: Path | None = None
    url: str | None = None

    @classmethod
    def of(cls, run_dir: Path, url: str | None = None) -> CheckpointStore:
        """``url`` when given (a PostgreSQL URL), else the run directory's SQLite file."""
        if url is None:
            return cls(path=Path(run_dir) / CHECKPOINTS)
        if urlsplit(url).scheme not in POSTGRES_SCHEMES:
            raise CheckpointStoreError(
                f"--checkpoints {public_url(url)!r}: expected postgresql://USER@HOST:PORT/DB "
                "(leave it out for RUN_DIR/checkpoints.sqlite)"
            )
        try:
            import langgraph.checkpoint.postgres  # noqa: F401
        except ImportError:
            raise CheckpointStoreError(
                f"checkpoints in PostgreSQL ({public_url(url)}) need the postgres extra: pip install -e \".[postgres]\""
            ) from None
        return cls(url=url)

    @classmethod
    def at(cls, location: str) -> CheckpointStore:
        """The store at ``location`` (``.location``, a plain string a Ray actor is sent)."""
        return cls(url=location) if urlsplit(location).scheme in POSTGRES_SCHEMES else cls(path=Path(location))

    @property
    def location(self) -> str:
        """Where the store is, for another process (a Ray actor, sent it as it is sent the
        settings and their key): the SQLite file, or the URL with the password this process
        has from PGPASSWORD, which the other's environment may lack."""
        if self.url is None:
            return str(self.path)
        parts = urlsplit(self.url)
        if parts.password is not None or not os.environ.get("PGPASSWORD") or not parts.username:
            return self.url
        netloc = f"{parts.username}:{quote(os.environ['PGPASSWORD'], safe='')}@{parts.netloc.rsplit('@', 1)[-1]}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    def __str__(self) -> str:
        return public_url(self.url) if self.url else str(self.path)

    def check(self) -> None:
        """Refuse, before anything is loaded or paid for, a database the run could not write."""
        if not self.is_postgres:
            return
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=10):
                pass
        except psycopg.Error as exc:
            raise CheckpointStoreError(f"cannot reach the checkpoint database {self}: {reason(exc, self.url)}") from None

    def threads_with_checkpoints(self, threads: Collection[str]) -> set[str]:
        """Which of ``threads`` have at least one checkpoint in the store, read without
        creating anything (no file, no table): a store that was never written, or whose
        content vanished (a SQLite database whose pages were all in a deleted -wal), has none."""
        wanted = list(dict.fromkeys(threads))
        if not wanted:
            return set()
        if not self.is_postgres:
            if not self.path.exists():
                return set()
            with closing(sqlite3.connect(self.path)) as db:
                if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'").fetchone():
                    return set()
                return {t for t in wanted
                        if db.execute("SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (t,)).fetchone()}
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=10) as conn:
                if conn.execute("SELECT to_regclass('checkpoints')").fetchone()[0] is None:
                    return set()
                rows = conn.execute("SELECT DISTINCT thread_id FROM checkpoints WHERE thread_id = ANY(%s)", (wanted,))
                return {thread for (thread,) in rows.fetchall()}
        except psycopg.Error as exc:
            raise CheckpointStoreError(f"cannot read the checkpoint database {self}: {reason(exc, self.url)}") from None

    @asynccontextmanager
    async def open_async(self) -> AsyncIterator:
        """The async saver a run writes through. A SQLite write that cancellation cut is
        rolled back before the file closes (``_end_cancelled_write``)."""
        if not self.is_postgres:
            import aiosqlite
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            # before the saver's own switch, which does not wait; off the loop, which a wait would hold
            await asyncio.to_thread(write_ahead_file, self.path, SQLITE_BUSY_TIMEOUT_S)
            async with aiosqlite.connect(str(self.path), timeout=SQLITE_BUSY_TIMEOUT_S) as conn:
                saver = AsyncSqliteSaver(conn)
                try:
                    yield saver
                finally:
                    await _end_cancelled_write(saver)
            return
        import psycopg
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        _quiet_teardown(logging.getLogger("psycopg"))

        async with AsyncExitStack() as stack:
            try:
                saver = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(self.url))
            except psycopg.Error as exc:
                raise CheckpointStoreError(f"cannot reach the checkpoint database {self}: {reason(exc, self.url)}") from None
            # try, sleep, try again: a session waiting inside pg_advisory_lock holds a snapshot that
            # the migrations' CREATE INDEX CONCURRENTLY waits for, a deadlock PostgreSQL then breaks
            # by failing one run
            while not (await (await saver.conn.execute("SELECT pg_try_advisory_lock(%s) AS got",
                                                       (_SETUP_LOCK,))).fetchone())["got"]:
                await asyncio.sleep(0.1)
            try:
                await saver.setup()
            finally:
                await saver.conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
            yield saver

    @contextmanager
    def open_sync(self) -> Iterator:
        """The sync saver that ``replay`` and ``view`` read (and forks write) through."""
        if not self.is_postgres:
            from langgraph.checkpoint.sqlite import SqliteSaver

            conn = sqlite3.connect(str(self.path), check_same_thread=False)
            try:
                yield SqliteSaver(conn)
            finally:
                conn.close()
            return
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver

        with ExitStack() as stack:
            try:
                saver = stack.enter_context(PostgresSaver.from_conn_string(self.url))
            except psycopg.Error as exc:
                raise CheckpointStoreError(f"cannot reach the checkpoint database {self}: {reason(exc, self.url)}") from None
            saver.setup()
            yield saver


class _TeardownNoise(logging.Filter):
    """psycopg logs at WARNING each pipeline it cannot close once its server is gone ("error
    ignored terminating …: the connection is lost"), a stray line amid the run's progress:
    the run stops with its own message naming the server (``agent.runs.stops``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error ignored terminating")


def _quiet_teardown(logger: logging.Logger) -> None:
    if not any(isinstance(f, _TeardownNoise) for f in logger.filters):
        logger.addFilter(_TeardownNoise())


async def _end_cancelled_write(saver) -> None:
    """Roll back a SQLite checkpoint write that cancellation cut between its INSERT and its
    COMMIT. Closed with that transaction open and the write's cursor never closed, the
    connection lingers (SQLite keeps it as a "zombie" until the cursor is garbage-collected)
    and holds the database's write lock, so the next run on RUN_DIR — a --resume in the same
    process — fails with "database is locked". The cut write's step is simply run again on
    resume. (A PostgreSQL connection rolls back the transaction it is closed in.)"""
    async with saver.lock:
        if saver.conn.in_transaction:
            await saver.conn.rollback()


def delete_checkpoints(saver, thread: str, checkpoint_ids: Collection[str]) -> None:
    """Remove these checkpoints of ``thread`` with their pending writes: what a fork that
    failed had written, so that it leaves no branch (as ``delete_thread`` does for a thread;
    a PostgreSQL blob left unreferenced by them is never read)."""
    ids = list(checkpoint_ids)
    if not ids:
        return
    if hasattr(saver, "_cursor"):  # PostgresSaver
        with saver._cursor(pipeline=True) as cur:
            for table in ("checkpoints", "checkpoint_writes"):
                cur.execute(f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id = ANY(%s)", (thread, ids))
        return
    with saver.cursor() as cur:  # SqliteSaver
        for table in ("checkpoints", "writes"):
            cur.executemany(f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id = ?", [(thread, i) for i in ids])


def database_errors() -> tuple[type[Exception], ...]:
    """What a checkpoint database raises when it fails under a run (a full disk, a server gone):
    the run stops with its cause, finished work kept, instead of failing sample after sample."""
    try:
        import psycopg
    except ImportError:  # the postgres extra is not installed: only SQLite can be in use
        return (sqlite3.Error, CheckpointStoreError)
    return (sqlite3.Error, CheckpointStoreError, psycopg.Error)


def run_store(run_dir: Path, given: str | None = None) -> CheckpointStore:
    """The checkpoint store of a run: the one its fingerprint records (``checkpoints``), or
    RUN_DIR's SQLite file. A ``given`` URL must name that same database (it may add the
    password the record leaves out); a run's checkpoints are never looked for elsewhere."""
    from agent.runs.fingerprint import read_fingerprint

    recorded = (read_fingerprint(run_dir) or {}).get("checkpoints")
    if given is None:
        return CheckpointStore.of(run_dir, recorded)
    if recorded is not None and public_url(given) != recorded or recorded is None and read_fingerprint(run_dir):
        raise CheckpointStoreError(
            f"{run_dir} keeps its checkpoints in {recorded or Path(run_dir) / CHECKPOINTS}, not {public_url(given)}; "
            "leave out --checkpoints or give that database (its password may come from PGPASSWORD)"
        )
    return CheckpointStore.of(run_dir, given)


def thread_ids(saver, prefix: str = "") -> list[str]:
    """Every thread of a store (those starting with ``prefix``), in the order first written."""
    if isinstance(saver.conn, sqlite3.Connection):
        try:
            rows = saver.conn.execute(
                "SELECT thread_id, MIN(rowid) FROM checkpoints WHERE thread_id LIKE ? ESCAPE '\\' "
                "GROUP BY thread_id ORDER BY 2", (_like(prefix),)).fetchall()
        except sqlite3.OperationalError:  # an empty store: the table was never created
            return []
        return [r[0] for r in rows]
    with saver._cursor() as cur:
        cur.execute("SELECT thread_id, MIN(checkpoint_id) AS first FROM checkpoints WHERE thread_id LIKE %s "
                    "GROUP BY thread_id ORDER BY first", (_like(prefix),))
        return [r["thread_id"] for r in cur.fetchall()]


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def public_url(url: str) -> str:
    """The database URL as it is recorded and shown: with its user, without its password or
    query string (``redaction.public_url``)."""
    return redaction.public_url(url, keep_user=True)


def reason(exc: Exception, url: str) -> str:
    """psycopg's message, first line (host, port, what failed), with the URL's password removed
    should a message ever echo it."""
    text = str(exc).strip()
    return redact(text.splitlines()[0] if text else type(exc).__name__, redaction.url_secrets(url))
