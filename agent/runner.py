"""Dataset runs: every record through the agent, one checkpointed thread per sample.

Finished work is never lost: each sample's steps are checkpointed in
RUN_DIR/checkpoints.sqlite and its result line is fsynced to results.jsonl as soon as it
finishes. A run is planned first (``plan_run``: read, select and parse the records, read
which are already done) and then executed (``execute``) by N workers on one event loop.
``resume`` skips samples that have a result line, without building any work for them, and
continues unfinished ones from their last checkpoint: a finished step is never run again.
An interrupted run (Ctrl-C, cancellation) still writes summary.json with what is done.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent.context import AgentContext
from agent.graph import RECURSION_LIMIT, build_graph
from agent.llm import LLMError
from agent.records import (
    DEFAULT_FIELDS, FieldMap, InputError, RawRecord, RecordError, detect_cop_base, parse_record, read_raw,
)
from agent.results import RESULTS, SUMMARY, ResultsFile, drop_rows, read_rows, result_row, summarise, write_summary
from agent.state import Record, add_usage

CHECKPOINTS = "checkpoints.sqlite"


@dataclass
class RunOptions:
    limit: int | None = None
    resume: bool = False
    concurrency: int = 1
    on_result: Callable[[dict], None] = field(default=lambda row: None)
    offset: int = 0
    shard: tuple[int, int] | None = None  # (I, N): records whose position % N == I
    fields: FieldMap = DEFAULT_FIELDS
    retry_errors: bool = False  # with resume: run samples that failed on the LLM again
    info: dict[str, Any] = field(default_factory=dict)  # recorded in summary.json (kg, model, input)


@dataclass
class Job:
    raw: RawRecord
    id: str
    record: Record | None  # None when the record is malformed: ``error`` says why
    error: str | None = None


@dataclass
class Plan:
    jobs: list[Job]  # every selected record, in input order
    pending: list[Job]  # those without a result line yet
    done: Counter  # statuses of the result lines already written


def prepare_run_dir(run_dir: Path, resume: bool) -> None:
    results = run_dir / RESULTS
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"--out {run_dir} exists and is not a directory")
    if not resume and results.exists() and results.stat().st_size > 0:
        raise InputError(
            f"{run_dir} already holds results; pass --resume to continue that run "
            "or choose another --out directory"
        )
    if not resume and run_dir.is_dir() and any(run_dir.iterdir()):
        raise InputError(
            f"{run_dir} is not empty (it may hold an interrupted run's checkpoints); pass --resume "
            "to continue that run or choose another --out directory"
        )
    run_dir.mkdir(parents=True, exist_ok=True)


def select(raws: list[RawRecord], options: RunOptions) -> list[RawRecord]:
    """--offset and --limit cut the input; --shard I/N then keeps positions ≡ I (mod N)."""
    end = options.offset + options.limit if options.limit is not None else None
    chosen = raws[options.offset:end]
    if options.shard:
        index, count = options.shard
        chosen = [r for r in chosen if r.position % count == index]
    return chosen


def plan_run(input_path: Path, run_dir: Path, options: RunOptions) -> Plan:
    """What is left to do; raises InputError when the run cannot start."""
    raws = list(read_raw(input_path))
    fields = options.fields
    if fields.cop_base is None:
        fields = replace(fields, cop_base=detect_cop_base(raws))
    prepare_run_dir(run_dir, options.resume)
    jobs, seen = [], set()
    for raw in select(raws, options):
        try:
            record = parse_record(raw, fields)
            job = Job(raw, record["id"], record)
        except RecordError as exc:
            job = Job(raw, raw.default_id, None, str(exc))
        if job.id in seen:  # its own row, under an id that says where it was
            job = Job(raw, f"{job.id}@{raw.where}", None, f"{raw.where}: duplicate id {job.id!r}")
        seen.add(job.id)
        jobs.append(job)
    rows = read_rows(run_dir / RESULTS) if (run_dir / RESULTS).exists() else []
    if options.retry_errors:
        retry = {r["id"] for r in rows if r["status"] == "error" and r.get("thread_id")}
        if retry:
            drop_rows(run_dir, retry)
            rows = [r for r in rows if r["id"] not in retry]
    done = {r["id"] for r in rows}
    return Plan(jobs, [j for j in jobs if j.id not in done], Counter(r["status"] for r in rows))


async def run_dataset(input_path: Path, run_dir: Path, ctx: AgentContext, options: RunOptions) -> dict:
    """Process the records and return the run's summary (also written to summary.json)."""
    return await execute(plan_run(input_path, run_dir, options), run_dir, ctx, options)


async def execute(plan: Plan, run_dir: Path, ctx: AgentContext | None, options: RunOptions) -> dict:
    """Run the pending jobs, ``options.concurrency`` at a time; ``ctx`` may be None when
    nothing is pending. On cancellation the summary is written before CancelledError goes on."""
    started = time.monotonic()
    results = ResultsFile(run_dir)
    processed = 0
    interrupted = False
    executor = None
    try:
        if plan.pending:
            # Sync nodes (KG work, LLM calls) run in the loop's default executor, off the loop:
            # size it so that N samples can wait on their LLM calls at once.
            executor = ThreadPoolExecutor(max_workers=options.concurrency + 2, thread_name_prefix="node")
            asyncio.get_running_loop().set_default_executor(executor)
            async with AsyncSqliteSaver.from_conn_string(str(run_dir / CHECKPOINTS)) as saver:
                app = build_graph().compile(checkpointer=saver)
                queue = iter(plan.pending)

                async def worker() -> None:
                    nonlocal processed
                    for job in queue:  # one shared iterator: each job goes to one worker (ids are unique)
                        row = await _process(app, ctx, job)
                        results.append(row)
                        processed += 1
                        options.on_result(row)

                await asyncio.gather(*(worker() for _ in range(min(max(1, options.concurrency), len(plan.pending)))))
    except asyncio.CancelledError:
        interrupted = True
        raise
    finally:
        results.close()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        summary = _summary(run_dir, plan, ctx, options, time.monotonic() - started, processed, interrupted)
    return summary


def _summary(run_dir: Path, plan: Plan, ctx, options: RunOptions, wall: float, processed: int, interrupted: bool) -> dict:
    rows = read_rows(run_dir / RESULTS)
    ids = {r["id"] for r in rows}
    try:  # wall time and rate add up over the sessions of a resumed run
        earlier = json.loads((run_dir / SUMMARY).read_text()).get("wall_time_s", 0.0) if options.resume else 0.0
    except (OSError, ValueError):
        earlier = 0.0
    mode = options.info.get("mode") or ("llm" if ctx is not None and ctx.llm is not None else "kg-only")
    info = {k: v for k, v in options.info.items() if k != "mode"}
    summary = summarise(
        rows, mode, earlier + wall, len(rows), interrupted=interrupted, processed_this_session=processed,
        session_wall_time_s=round(wall, 2),
        unfinished=sum(1 for j in plan.jobs if j.id not in ids), **info,
    )
    write_summary(run_dir, summary)
    return summary


async def _process(app, ctx: AgentContext, job: Job) -> dict:
    if job.record is None:
        return result_row(job.id, "", None, error=job.error)
    record = job.record
    config = {"configurable": {"thread_id": record["id"]}, "recursion_limit": RECURSION_LIMIT}
    snapshot = await app.aget_state(config)
    try:
        # ``next`` leaves out tasks whose writes were saved before a crash, so only an empty
        # ``tasks`` means the graph reached its end.
        if snapshot.values and not snapshot.tasks:
            state = snapshot.values  # finished before a crash, but its line was never written
        elif snapshot.values:
            state = await app.ainvoke(None, config, context=ctx)  # from the last checkpoint
        else:
            state = await app.ainvoke({"record": record}, config, context=ctx)
    except (LLMError, Exception) as exc:  # noqa: BLE001 - one sample's failure never stops the run
        # The sample's finished steps stay checkpointed; --resume --retry-errors continues there.
        partial = (await app.aget_state(config)).values or {"record": record}
        message = str(exc) if isinstance(exc, LLMError) else f"{type(exc).__name__}: {exc}"
        # The failed node's requests are in no checkpoint; the error carries them.
        partial = {**partial, "usage": add_usage(partial.get("usage"), exc.usage if isinstance(exc, LLMError) else None)}
        return result_row(record["id"], record["id"], partial, error=message)
    if state.get("status") not in ("accepted", "rejected"):
        return result_row(record["id"], record["id"], state,
                          error=f"the sample ended without a verdict (status {state.get('status')!r})")
    return result_row(record["id"], record["id"], state)
