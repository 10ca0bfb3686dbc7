"""The transformer's vectors kept on disk (``VectorCache``) are shared by processes: the Ray
actors of one run open the same file, often a new one, at the same moment."""

import multiprocessing

import numpy as np

from graphs.embedding import VectorCache

ROUNDS, PROCESSES = 60, 4


def open_and_keep(directory: str, name: str, barrier) -> str:
    barrier.wait()  # every process opens the new file at the same moment
    cache = VectorCache(directory, "model", 4)
    cache.keep({name: np.full(4, len(name), dtype=np.float32)})
    return name


def test_processes_opening_a_new_cache_at_once_all_open_it_and_keep_their_vectors(tmp_path):
    # Two processes switching a new SQLite file to write-ahead logging at once: the second's
    # switch fails at once ("database is locked"), a few rounds in a hundred.
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(PROCESSES) as pool:
        barrier = manager.Barrier(PROCESSES)
        for round in range(ROUNDS):
            directory = tmp_path / str(round)
            names = [f"text {round} {p}" for p in range(PROCESSES)]
            assert sorted(pool.starmap(open_and_keep, [(directory, n, barrier) for n in names])) == names
            found = VectorCache(directory, "model", 4).found(names)
            assert {n: v.tolist() for n, v in found.items()} == {n: [float(len(n))] * 4 for n in names}
