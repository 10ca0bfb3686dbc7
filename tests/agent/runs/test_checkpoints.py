"""A run's SQLite checkpoint store is written by several processes at once (the actors of a
local Ray run, each starting on a new file)."""

import asyncio
import sqlite3

from agent.runs.checkpoints import CheckpointStore
from tests.processes import at_once

ROUNDS, PROCESSES = 40, 4


async def set_up(location: str) -> None:
    async with CheckpointStore.at(location).open_async() as saver:
        await saver.setup()  # the saver's own tables, and its switch to write-ahead logging


def open_store(location: str) -> str:
    asyncio.run(set_up(location))
    return location


def test_processes_opening_a_new_store_at_once_all_open_it(tmp_path):
    with at_once(PROCESSES) as run:
        for round in range(ROUNDS):
            location = str(tmp_path / f"{round}.sqlite")
            assert run(open_store, [(location,)] * PROCESSES) == [location] * PROCESSES
            with sqlite3.connect(location) as db:
                assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
                assert db.execute("SELECT COUNT(*) FROM checkpoints").fetchone() == (0,)
