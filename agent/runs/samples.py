"""One sample through the agent, on its own checkpointed thread: a job in, its result row out.

This is what every executor runs (``agent.runs.executors``): the driver's event loop for a local
run, each Ray actor's for a distributed one. It opens what it needs from plain values — the
run's ``Settings`` (graph, index and model through ``agent.reasoning.resources``) and the location of
the checkpoint store — so it can be opened in any process. Only a sample's own expected
failure (the LLM failing for good, a runaway retry loop) becomes its ``error`` row; anything
else (a full disk, a broken database, a bug) propagates and stops the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from langgraph.errors import GraphRecursionError

from agent.runs.checkpoints import CheckpointStore
from agent.config import Settings
from agent.reasoning.graph import RECURSION_LIMIT, compile_graph
from agent.reasoning.llm import LLMError, failure_message
from agent.runs.records import RawRecord
from agent.runs.results import result_row
from agent.reasoning.state import Record, add_usage

# The failures that belong to one sample and become its error row; anything else stops the run.
SAMPLE_FAILURES = (LLMError, GraphRecursionError)


@dataclass
class Job:
    raw: RawRecord
    id: str
    record: Record | None  # None when the record is malformed: ``error`` says why
    error: str | None = None


# (job, its checkpoint thread id) → its result row
SampleProcessor = Callable[[Job, str], Awaitable[dict]]


@asynccontextmanager
async def open_samples(settings: Settings, checkpoints: str) -> AsyncIterator[SampleProcessor]:
    """A function that runs one job through the graph (checkpointed at ``checkpoints``, with
    what ``settings`` open) and returns its result row; callable for many jobs at once."""
    async with CheckpointStore.at(checkpoints).open_async() as saver:
        app = compile_graph(saver)

        async def process(job: Job, thread: str) -> dict:
            return await _process(app, settings, job, thread)

        yield process


async def _process(app, settings: Settings, job: Job, thread: str) -> dict:
    if job.record is None:
        return result_row(job.id, "", None, error=job.error)
    record = job.record
    config = {"configurable": {"thread_id": thread}, "recursion_limit": RECURSION_LIMIT}
    snapshot = await app.aget_state(config)
    try:
        # ``next`` leaves out tasks whose writes were saved before a crash, so only an empty
        # ``tasks`` means the graph reached its end.
        if snapshot.values and not snapshot.tasks:
            state = snapshot.values  # finished before a crash, but its line was never written
        elif snapshot.values:
            state = await _invoke(app, None, config, settings)  # from the last checkpoint
        else:
            state = await _invoke(app, {"record": record}, config, settings)
    except SAMPLE_FAILURES as exc:
        # The sample's finished steps stay checkpointed; --resume --retry-errors continues there.
        partial = (await app.aget_state(config)).values or {"record": record}
        message = failure_message(exc)
        # The failed node's requests are in no checkpoint; the error carries them.
        partial = {**partial, "usage": add_usage(partial.get("usage"), exc.usage if isinstance(exc, LLMError) else None)}
        return result_row(record["id"], thread, partial, error=message)
    if state.get("status") not in ("accepted", "rejected"):
        return result_row(record["id"], thread, state,
                          error=f"the sample ended without a verdict (status {state.get('status')!r})")
    return result_row(record["id"], thread, state)


async def _invoke(app, graph_input, config: dict, settings: Settings) -> dict:
    try:
        return await app.ainvoke(graph_input, config, context=settings)
    except asyncio.CancelledError as exc:
        # LangGraph saves a cancelled step's writes in a task it hands over in the error's
        # args. Wait for it: if the saver closed first, its half-done write transaction would
        # keep the database locked for whoever opens it next.
        saving = [a for a in exc.args if isinstance(a, asyncio.Task)]
        if saving:
            await asyncio.gather(*saving, return_exceptions=True)
        raise
