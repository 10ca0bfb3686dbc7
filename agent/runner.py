"""Dataset runs: every record through the agent, one checkpointed thread per sample.

Finished work is never lost: each sample's steps are checkpointed in
RUN_DIR/checkpoints.sqlite and its result line is fsynced to results.jsonl as soon as it
finishes. ``resume`` skips samples that have a result line and continues unfinished ones
from their last checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent.context import AgentContext
from agent.graph import build_graph
from agent.llm import LLMError
from agent.records import InputError, RecordError, parse_record, read_raw
from agent.results import RESULTS, ResultsFile, result_row, summarise, write_summary

CHECKPOINTS = "checkpoints.sqlite"
RECURSION_LIMIT = 100


@dataclass
class RunOptions:
    limit: int | None = None
    resume: bool = False
    concurrency: int = 1
    on_result: Callable[[dict], None] = field(default=lambda row: None)


def prepare_run_dir(run_dir: Path, resume: bool) -> None:
    results = run_dir / RESULTS
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"--out {run_dir} exists and is not a directory")
    if not resume and results.exists() and results.stat().st_size > 0:
        raise InputError(
            f"{run_dir} already holds results; pass --resume to continue that run "
            "or choose another --out directory"
        )
    run_dir.mkdir(parents=True, exist_ok=True)


async def run_dataset(input_path: Path, run_dir: Path, ctx: AgentContext, options: RunOptions) -> dict:
    """Process the records and return the run's summary (also written to summary.json)."""
    raws = list(islice(read_raw(input_path), options.limit))
    prepare_run_dir(run_dir, options.resume)
    # Sync nodes run in the loop's default executor: size it so that N samples can wait on
    # their LLM calls at once.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=options.concurrency + 2))
    started = time.monotonic()
    results = ResultsFile(run_dir)
    try:
        done = {row["id"] for row in results.rows()}
        async with AsyncSqliteSaver.from_conn_string(str(run_dir / CHECKPOINTS)) as saver:
            app = build_graph().compile(checkpointer=saver)
            limiter = asyncio.Semaphore(max(1, options.concurrency))
            seen: set[str] = set()

            async def one(raw) -> None:
                async with limiter:
                    row = await _process(app, ctx, raw, seen)
                if row["id"] not in done:
                    results.append(row)
                    done.add(row["id"])
                    options.on_result(row)

            await asyncio.gather(*(one(raw) for raw in raws if _pending(raw, done)))
        rows = results.rows()
    finally:
        results.close()
    mode = "llm" if ctx.llm is not None else "kg-only"
    summary = summarise(rows, mode, time.monotonic() - started)
    write_summary(run_dir, summary)
    return summary


def _pending(raw, done: set[str]) -> bool:
    try:
        return parse_record(raw)["id"] not in done
    except RecordError:
        return raw.default_id not in done


async def _process(app, ctx: AgentContext, raw, seen: set[str]) -> dict:
    try:
        record = parse_record(raw)
    except RecordError as exc:
        return result_row(raw.default_id, "", None, error=str(exc))
    if record["id"] in seen:
        return result_row(record["id"], "", None, error=f"{raw.where}: duplicate id {record['id']!r}")
    seen.add(record["id"])
    config = {"configurable": {"thread_id": record["id"]}, "recursion_limit": RECURSION_LIMIT}
    snapshot = await app.aget_state(config)
    try:
        if snapshot.values and not snapshot.next:
            state = snapshot.values  # finished before a crash, but its line was never written
        elif snapshot.values:
            state = await app.ainvoke(None, config, context=ctx)
        else:
            state = await app.ainvoke({"record": record}, config, context=ctx)
    except LLMError as exc:
        # The sample's finished steps stay checkpointed; --resume retries from there.
        partial = (await app.aget_state(config)).values
        return result_row(record["id"], record["id"], partial, error=str(exc))
    return result_row(record["id"], record["id"], state)
