"""Dataset runs: every record through the agent, one checkpointed thread per sample.

Finished work is never lost: each sample's steps are checkpointed in
RUN_DIR/checkpoints.sqlite and its result line is fsynced to results.jsonl as soon as it
finishes. A run is planned first (``plan_run``: read, select and parse the records, read
which are already done) and then executed (``execute``): N samples at a time on this event
loop, or N per actor over Ray actors (``agent.executors``), this process writing every row.
``resume`` skips samples that have a result line, without building any work for them, and
continues unfinished ones from their last checkpoint: a finished step is never run again.
An interrupted run (Ctrl-C, cancellation) still writes summary.json with what is done.

A run holds RUN_DIR exclusively (``claim_run_dir``, an flock the kernel drops when the process
dies) from planning to its summary, and checks before anything is loaded or paid for that
RUN_DIR is writable, has room, and that its checkpoint database is readable. Only a sample's
own expected failure (the LLM failing for good, a runaway retry loop) becomes its ``error``
row; anything else — a full disk, a broken database, a bug — stops the run with its cause,
finished work kept, so a fault is never disguised as data.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agent import executors, resources
from agent import fingerprint as fingerprints
from agent.config import Settings
from agent.executors import ExecutorName
from agent.fingerprint import PLAIN_THREADS, read_fingerprint, thread_id, write_fingerprint
from agent.records import (
    DEFAULT_FIELDS, FieldMap, InputError, RawRecord, RecordError, detect_cop_base, own_id, parse_record, read_raw,
)
from agent.results import RESULTS, SUMMARY, ResultsFile, read_rows, rewrite_rows, summarise, write_summary
from agent.run_lock import LOCK, RunDirBusy, run_dir_lock
from agent.samples import Job, SampleProcessor

CHECKPOINTS = "checkpoints.sqlite"
# Below this much free space a run is refused before anything loads: one sample's checkpoints
# take tens of KB (hundreds with an LLM), and SQLite needs room for its journal on top.
MIN_FREE_BYTES = 1 << 20


class RunDirError(InputError):
    """RUN_DIR cannot be used (busy, unwritable, full, or its checkpoints unreadable)."""


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
    fresh_checkpoints: bool = False  # with resume: set the checkpoint database aside, redo unfinished samples
    encoding: str | None = None  # of the input file; None: UTF-8, refused with the line number if it is not
    info: dict[str, Any] = field(default_factory=dict)  # recorded in summary.json (kg, model, input)
    executor: ExecutorName = "local"  # where samples run (agent.executors); concurrency is per Ray actor
    ray_address: str | None = None  # an existing Ray cluster; None starts a local one for the run
    actors: int | None = None  # Ray actors; None: one per CPU of the cluster


@dataclass
class Plan:
    jobs: list[Job]  # every selected record, in input order
    pending: list[Job]  # those without a result line yet
    done: Counter  # statuses of the result lines already written
    duplicates: list[str] = field(default_factory=list)  # ids that results.jsonl held more than once
    set_aside: Path | None = None  # where --fresh-checkpoints moved the old checkpoint database
    input_path: Path | None = None
    fingerprint: dict | None = None  # the run's, once ``identify`` has read or written it


@contextmanager
def claim_run_dir(run_dir: Path, resume: bool) -> Iterator[None]:
    """Hold RUN_DIR for the whole run, after checking that it can take one: a directory
    (created if needed), writable, with room, and empty unless resuming. Raises RunDirError."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--out {run_dir} exists and is not a directory")
    with ExitStack() as stack:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(run_dir_lock(run_dir))  # writes and fsyncs the holder: RUN_DIR takes writes
        except RunDirBusy as exc:
            raise RunDirError(str(exc)) from None
        except OSError as exc:
            raise RunDirError(f"--out {run_dir} cannot be written: {exc.strerror or exc}") from None
        _check_room(run_dir)
        _check_empty(run_dir, resume)
        yield


def _check_room(run_dir: Path) -> None:
    stats = os.statvfs(run_dir)
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE_BYTES:
        raise RunDirError(f"--out {run_dir}: only {free // 1024} KB free on its file system; a run needs at least "
                          f"{MIN_FREE_BYTES // 1024} KB for results and checkpoints")


def _check_empty(run_dir: Path, resume: bool) -> None:
    if resume:
        return
    results = run_dir / RESULTS
    if results.exists() and results.stat().st_size > 0:
        raise RunDirError(
            f"{run_dir} already holds results; pass --resume to continue that run "
            "or choose another --out directory"
        )
    if any(p.name != LOCK for p in run_dir.iterdir()):
        raise RunDirError(
            f"{run_dir} is not empty (it may hold an interrupted run's checkpoints); pass --resume "
            "to continue that run or choose another --out directory"
        )


def select(raws: list[RawRecord], options: RunOptions) -> list[RawRecord]:
    """--offset and --limit cut the input; --shard I/N then keeps positions ≡ I (mod N)."""
    end = options.offset + options.limit if options.limit is not None else None
    chosen = raws[options.offset:end]
    if options.shard:
        index, count = options.shard
        chosen = [r for r in chosen if r.position % count == index]
    return chosen


def read_jobs(input_path: Path, options: RunOptions) -> list[Job]:
    """The selected records of the input, parsed; raises InputError when there is nothing to run."""
    raws = list(read_raw(input_path, options.encoding))
    fields = options.fields
    if fields.cop_base is None:
        fields = replace(fields, cop_base=detect_cop_base(raws))
    jobs, seen = [], set()
    for raw in select(raws, options):
        try:
            record = parse_record(raw, fields)
            job = Job(raw, record["id"], record)
        except RecordError as exc:
            job = Job(raw, own_id(raw, fields) or raw.default_id, None, str(exc))
        if job.id in seen:  # its own row, under an id that says where it was
            job = Job(raw, f"{job.id}@{raw.where}", None, f"{raw.where}: duplicate id {job.id!r}")
        seen.add(job.id)
        jobs.append(job)
    return jobs


def plan_run(input_path: Path, run_dir: Path, options: RunOptions, jobs: list[Job] | None = None) -> Plan:
    """What is left to do; raises InputError when the run cannot start. RUN_DIR must be
    claimed (``claim_run_dir``): the results and checkpoints read here are the run's own."""
    jobs = read_jobs(input_path, options) if jobs is None else jobs
    rows = read_rows(run_dir / RESULTS) if (run_dir / RESULTS).exists() else []
    rows, duplicates = _one_row_per_id(rows)
    kept = [r for r in rows if not (r["status"] == "error" and r.get("thread_id"))] if options.retry_errors else rows
    if duplicates or len(kept) != len(rows):
        rewrite_rows(run_dir, kept)
    rows = kept
    done = {r["id"] for r in rows}
    pending = [j for j in jobs if j.id not in done]
    set_aside = None
    if options.fresh_checkpoints:
        set_aside = _set_checkpoints_aside(run_dir)
    elif pending:
        _check_checkpoints(run_dir, [j.id for j in pending])
    return Plan(jobs, pending, Counter(r["status"] for r in rows), duplicates, set_aside, input_path)


def identify(plan: Plan, run_dir: Path, settings: Settings, options: RunOptions) -> dict:
    """The run's fingerprint (``agent.fingerprint``): the one RUN_DIR holds, or a new one
    written now, when the run first starts. A run from before fingerprints existed, resumed,
    keeps its checkpoint threads under plain sample ids. Opens the KG (once per process)."""
    from agent import resources

    stored = read_fingerprint(run_dir)
    if stored is None:
        loaded = resources.load_kg(settings)
        stored = fingerprints.make(
            settings, fingerprints.kg_identity(loaded.manifest, settings.kg_dir), plan.input_path,
            reading={"fields": asdict(options.fields), "encoding": options.encoding},
            selection={"offset": options.offset, "limit": options.limit,
                       "shard": list(options.shard) if options.shard else None},
        )
        if options.resume and ((run_dir / RESULTS).exists() or (run_dir / CHECKPOINTS).exists()):
            stored[PLAIN_THREADS] = True
        write_fingerprint(run_dir, stored)
    plan.fingerprint = stored
    return stored


def _one_row_per_id(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The rows with each id once (a finished row over an error row, else the first), and the
    ids that were repeated: two runs writing one RUN_DIR before it was locked left such files."""
    kept: dict[str, dict] = {}
    repeated = []
    for row in rows:
        first = kept.get(row["id"])
        if first is None:
            kept[row["id"]] = row
            continue
        repeated.append(row["id"])
        if first["status"] == "error" and row["status"] != "error":
            kept[row["id"]] = row
    return list(kept.values()), list(dict.fromkeys(repeated))


def _check_checkpoints(run_dir: Path, pending: list[str]) -> None:
    """Refuse, before anything is loaded or paid for, a checkpoint database SQLite cannot read
    (a half-written copy, a truncated file, a mismatched -wal): the pending samples would
    otherwise fail one by one after their LLM calls."""
    path = run_dir / CHECKPOINTS
    if not path.exists():
        return
    try:
        with sqlite3.connect(path) as db:
            problem = db.execute("PRAGMA quick_check").fetchone()[0]
        db.close()
    except sqlite3.DatabaseError as exc:
        problem = str(exc)
    if problem == "ok":
        return
    shown = ", ".join(pending[:10]) + (f" and {len(pending) - 10} more" if len(pending) > 10 else "")
    raise RunDirError(
        f"{path} is damaged ({problem}); the {len(pending)} unfinished sample(s) would continue from it: {shown}. "
        "Finished samples in results.jsonl are not affected. To redo the unfinished samples from scratch, "
        "run again with --resume --fresh-checkpoints (the damaged database is kept beside it, renamed)."
    )


def _set_checkpoints_aside(run_dir: Path) -> Path | None:
    """Rename checkpoints.sqlite (with its -wal and -shm, so the set stays openable) to
    checkpoints.<time>.sqlite; unfinished samples then start from scratch."""
    path = run_dir / CHECKPOINTS
    if not path.exists():
        return None
    aside = run_dir / f"checkpoints.{time.strftime('%Y%m%d-%H%M%S')}.sqlite"
    for suffix in ("-wal", "-shm", ""):  # the database last: a crash in between leaves it in place
        part = run_dir / (CHECKPOINTS + suffix)
        if part.exists():
            os.replace(part, aside.with_name(aside.name + suffix))
    return aside


async def run_dataset(input_path: Path, run_dir: Path, settings: Settings, options: RunOptions) -> dict:
    """Process the records and return the run's summary (also written to summary.json)."""
    jobs = read_jobs(input_path, options)
    with claim_run_dir(run_dir, options.resume):
        plan = plan_run(input_path, run_dir, options, jobs)
        if plan.pending:
            identify(plan, run_dir, settings, options)
        return await execute(plan, run_dir, settings, options)


async def execute(plan: Plan, run_dir: Path, settings: Settings, options: RunOptions) -> dict:
    """Run the pending jobs on the executor ``options`` name (``agent.executors``: this event
    loop, or Ray actors), with the graph, index and model that ``settings`` open, and write
    each row here as it comes back. On cancellation, or when a sample fails the run (a full
    disk, a broken database), the other samples are cancelled and the summary is written
    before the error goes on."""
    started = time.monotonic()
    results = ResultsFile(run_dir)
    processed = 0
    interrupted = False
    try:
        if plan.pending:
            fingerprint = plan.fingerprint or identify(plan, run_dir, settings, options)
            executor = executors.for_run(options.executor, settings, str(run_dir / CHECKPOINTS), options.concurrency,
                                         options.ray_address, options.actors)
            async with executor.slots() as slots:
                queue = iter(plan.pending)

                async def worker(process: SampleProcessor) -> None:
                    nonlocal processed
                    for job in queue:  # one shared iterator: each job goes to one worker (ids are unique)
                        row = await process(job, thread_id(fingerprint, job.id))
                        results.append(row)
                        processed += 1
                        options.on_result(row)

                workers = [asyncio.create_task(worker(process)) for process in slots[: len(plan.pending)]]
                try:
                    await asyncio.gather(*workers)
                finally:  # one failed or we were cancelled: stop the rest, and let every one
                    for task in workers:  # finish its checkpoint writes before the store closes
                        task.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
    except asyncio.CancelledError:
        interrupted = True
        raise
    finally:
        results.close()
        summary = _summary(run_dir, plan, settings, options, time.monotonic() - started, processed, interrupted)
    return summary


def _summary(run_dir: Path, plan: Plan, settings: Settings, options: RunOptions, wall: float, processed: int, interrupted: bool) -> dict:
    rows = read_rows(run_dir / RESULTS)
    ids = {r["id"] for r in rows}
    try:  # wall time and rate add up over the sessions of a resumed run
        earlier = json.loads((run_dir / SUMMARY).read_text()).get("wall_time_s", 0.0) if options.resume else 0.0
    except (OSError, ValueError):
        earlier = 0.0
    mode = options.info.get("mode") or settings.mode
    info = {k: v for k, v in options.info.items() if k != "mode"}
    if settings.llm_configured:  # what structured output the run used, and what the endpoint was found to honour
        info["structured_output"] = resources.load_llm(settings).report()
    summary = summarise(
        rows, mode, earlier + wall, len(rows), interrupted=interrupted, processed_this_session=processed,
        session_wall_time_s=round(wall, 2),
        unfinished=sum(1 for j in plan.jobs if j.id not in ids), **info,
    )
    try:
        write_summary(run_dir, summary)
    except OSError as exc:  # a full disk: the results are what counts, and they are safe
        summary["summary_not_written"] = str(exc)
    return summary
