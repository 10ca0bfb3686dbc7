"""Several processes doing one thing at the same moment, as the Ray actors of a run do when
they start: each call waits at a barrier, then runs."""

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial


def _after_barrier(function: Callable, barrier, *args):
    barrier.wait()
    return function(*args)


@contextmanager
def at_once(processes: int) -> Iterator[Callable[[Callable, list[tuple]], list]]:
    """A runner ``run(function, arguments)``: ``function(*args)`` for each of ``processes``
    argument tuples, in as many spawned processes released together; the results in order.
    ``function`` must be importable (a module-level function)."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(processes) as pool:
        barrier = manager.Barrier(processes)
        yield lambda function, arguments: pool.starmap(partial(_after_barrier, function, barrier), arguments)
