"""Where a dataset run's samples execute: on this process's event loop (``local``), or spread
over Ray actors (``ray``), each of which is a local executor in its own process.

Both follow one interface, ``slots()``: an async context manager that opens what the samples
need and yields one sample processor (``agent.runs.samples``: a job in, its result row out) per
sample that may be in flight at once. The driver (``agent.runs.runner.execute``) feeds the slots
from one queue and is the only writer of results.jsonl, under its RUN_DIR lock, so every row
is written exactly once whichever executor ran it.

A Ray actor receives only plain values — the run's ``Settings`` and the location of the
checkpoint store — and opens the graph, the index and the checkpointer itself, once, through
the same loader as everything else. What the endpoint honours is found once, by the driver
(``endpoint_found``): the actors are given ``structured_output`` already resolved and whether
it makes tool calls, so a run probes once and summary.json's report covers every probe. A killed actor is restarted by Ray and its unfinished
samples are sent to it again; each goes on from its last checkpoint, since the checkpoint
store is shared (the run's SQLite file on a local Ray's shared disk).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Literal, Protocol

import agent
from agent.reasoning import resources
from agent.config import Settings
from agent.reasoning.llm import LLMError
from agent.runs.records import InputError
from agent.runs.samples import Job, SampleProcessor, open_samples

ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "ray")
# A killed actor is restarted, and its samples sent again, this many times before the run
# stops with the cause (an actor that keeps dying is a fault to look at, not to retry forever).
ACTOR_RESTARTS = 3
# Passed on to the actors' processes, which a Ray cluster starts with its own environment.
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_HOME", "TRANSFORMERS_OFFLINE", "SENTENCE_TRANSFORMERS_HOME")
# The package's directory: actors import the driver's code, not another installed copy.
CODE_ROOT = str(Path(agent.__file__).resolve().parents[1])


class ExecutorError(InputError):
    """The executor cannot start (Ray not installed, or its cluster unreachable)."""


class Executor(Protocol):
    def slots(self) -> AbstractAsyncContextManager[list[SampleProcessor]]:
        """Open what the samples need; yield one processor per sample that may be in flight."""


class LocalExecutor:
    """``concurrency`` samples at once on the running event loop."""

    def __init__(self, settings: Settings, checkpoints: str, concurrency: int) -> None:
        self.settings, self.checkpoints, self.concurrency = settings, checkpoints, max(1, concurrency)

    @asynccontextmanager
    async def slots(self) -> AsyncIterator[list[SampleProcessor]]:
        # Sync nodes (KG work, LLM calls) run in the loop's default executor, off the loop:
        # size it so that every sample in flight can wait on its LLM call at once.
        pool = ThreadPoolExecutor(max_workers=self.concurrency + 2, thread_name_prefix="node")
        asyncio.get_running_loop().set_default_executor(pool)
        try:
            async with open_samples(self.settings, self.checkpoints) as process:
                yield [process] * self.concurrency
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


class SampleActor:
    """A local executor in a Ray worker process. What it works with is opened on first use, so
    an actor Ray restarts after a crash opens it again by itself."""

    def __init__(self, settings: Settings, checkpoints: str, concurrency: int, tool_calls: bool | None = None) -> None:
        self.executor = LocalExecutor(settings, checkpoints, concurrency)
        self.tool_calls = tool_calls  # whether the endpoint makes tool calls, as the driver found it
        self.opened = AsyncExitStack()
        self.processor: SampleProcessor | None = None
        self.opening = asyncio.Lock()

    async def ready(self) -> int:
        """Open the graph, index, model and checkpoint store; the actor's pid."""
        await self._processor()
        return os.getpid()

    async def process(self, job: Job, thread: str) -> dict:
        return await (await self._processor())(job, thread)

    async def close(self) -> None:
        await self.opened.aclose()
        self.processor = None

    async def _processor(self) -> SampleProcessor:
        async with self.opening:
            if self.processor is None:
                ctx = await asyncio.to_thread(resources.load, self.executor.settings)
                if ctx.llm is not None:
                    ctx.llm.knows_tool_calls(self.tool_calls)
                self.processor = (await self.opened.enter_async_context(self.executor.slots()))[0]
            return self.processor


class RayExecutor:
    """Samples spread over ``actors`` Ray actors (default: one per CPU of the cluster),
    ``concurrency`` at once in each. Without an ``address`` a local Ray instance is started
    for the run and stopped after it."""

    def __init__(self, settings: Settings, checkpoints: str, concurrency: int,
                 address: str | None = None, actors: int | None = None) -> None:
        self.settings, self.checkpoints, self.concurrency = settings, checkpoints, max(1, concurrency)
        self.address, self.actors = address, actors

    @asynccontextmanager
    async def slots(self) -> AsyncIterator[list[SampleProcessor]]:
        ray = _ray()
        async with AsyncExitStack() as stack:
            if not ray.is_initialized():
                _connect(ray, self.address)
                stack.callback(ray.shutdown)
            actor_class = ray.remote(SampleActor).options(
                num_cpus=1, max_concurrency=self.concurrency, max_restarts=ACTOR_RESTARTS,
                max_task_retries=ACTOR_RESTARTS, runtime_env={"env_vars": _actor_env()},
            )
            count = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
            settings, tool_calls = await asyncio.to_thread(endpoint_found, self.settings)
            actors = [actor_class.remote(settings, self.checkpoints, self.concurrency, tool_calls) for _ in range(count)]
            stack.callback(lambda: [ray.kill(a) for a in actors])
            await asyncio.gather(*(a.ready.remote() for a in actors))
            # Interleaved, so that fewer jobs than slots still spread over every actor.
            yield [_remote_processor(actors[i % count]) for i in range(count * self.concurrency)]
            await asyncio.gather(*(a.close.remote() for a in actors))


def endpoint_found(settings: Settings) -> tuple[Settings, bool | None]:
    """``settings`` with ``structured_output`` as this process found the endpoint to honour it
    (``auto`` resolved by its probe, which the run header has usually made already), and
    whether the endpoint makes tool calls (asked here when a retry may explore the graph,
    else None): what the actors are given, so that they ask the endpoint nothing and summary.json
    reports every probe of the run. An endpoint that cannot be asked (down, refusing the key)
    leaves ``settings`` as they are: each sample says what failed."""
    llm = resources.load_llm(settings)
    if llm is None:
        return settings, None
    try:
        mode = llm.structured_output()
        tool_calls = llm.makes_tool_calls() if settings.max_attempts > 1 else None
    except LLMError:
        return settings, None
    return settings.model_copy(update={"structured_output": mode}), tool_calls


def _remote_processor(actor) -> SampleProcessor:
    async def process(job: Job, thread: str) -> dict:
        return await actor.process.remote(job, thread)

    return process


def _ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError("--executor ray needs Ray: pip install -e '.[ray]' in the project's checkout (or pip install ray)") from None
    return ray


def _connect(ray, address: str | None) -> None:
    # A run never reports usage statistics to Ray's servers unless the user asked for it.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # ray.init replaces the SIGTERM handler with one that exits at once (Ray's stack dump,
    # exit 134): the run's own (agent.runs.runner) is put back, so SIGTERM writes the summary
    # and exits 143 as under the local executor.
    own_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        # "local" starts a new instance even where `ray start` left one this run was not pointed at.
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False)
    except ConnectionError as exc:
        raise ExecutorError(f"--ray-address {address}: no Ray cluster reachable there ({exc})") from None
    finally:
        if own_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, own_sigterm)


def _actor_env() -> dict[str, str]:
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, (CODE_ROOT, os.environ.get("PYTHONPATH"))))}


def for_run(name: ExecutorName, settings: Settings, checkpoints: str, concurrency: int,
            ray_address: str | None = None, actors: int | None = None) -> Executor:
    if name == "ray":
        return RayExecutor(settings, checkpoints, concurrency, ray_address, actors)
    return LocalExecutor(settings, checkpoints, concurrency)
