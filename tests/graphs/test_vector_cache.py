"""The transformer's vectors kept on disk (``VectorCache``) are shared by processes: the Ray
actors of one run open the same file, often a new one, at the same moment."""

import numpy as np

from graphs.embedding import VectorCache
from tests.processes import at_once

ROUNDS, PROCESSES = 60, 4


def open_and_keep(directory, name: str) -> str:
    VectorCache(directory, "model", 4).keep({name: np.full(4, len(name), dtype=np.float32)})
    return name


def test_processes_opening_a_new_cache_at_once_all_open_it_and_keep_their_vectors(tmp_path):
    # Two processes switching a new SQLite file to write-ahead logging at once: the second's
    # switch failed at once ("database is locked"), a few rounds in a hundred.
    with at_once(PROCESSES) as run:
        for round in range(ROUNDS):
            directory = tmp_path / str(round)
            names = [f"text {round} {p}" for p in range(PROCESSES)]
            assert run(open_and_keep, [(directory, n) for n in names]) == names
            found = VectorCache(directory, "model", 4).found(names)
            assert {n: v.tolist() for n, v in found.items()} == {n: [float(len(n))] * 4 for n in names}
