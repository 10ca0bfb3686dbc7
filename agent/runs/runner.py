"""Dataset runs: every record through the agent, one checkpointed thread per sample.

Finished work is never lost: each sample's steps are checkpointed in
RUN_DIR/checkpoints.sqlite and its result line is fsynced to results.jsonl as soon as it
finishes. A run is planned first (``plan_run``: read, select and parse the records, read
which are already done) and then executed (``execute``): N samples at a time on this event
loop, or N per actor over Ray actors (``agent.runs.executors``), this process writing every row.
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
import os
import signal
import sqlite3
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.runs import executors

from agent.reasoning import resources
from agent.runs import fingerprint as fingerprints
from agent.runs.checkpoints import CHECKPOINTS, CheckpointStore, CheckpointStoreError, run_store
from agent.runs.cost import Meter
from agent.config import Settings
from agent.runs.executors import ExecutorName
from agent.runs.fingerprint import PLAIN_THREADS, read_fingerprint, thread_id, write_fingerprint
from agent.redaction import redact
from agent.runs.records import (
    DEFAULT_FIELDS, FieldMap, InputError, RawRecord, RecordError, detect_cop_base, own_id, parse_record, read_raw,
)
from agent.runs.results import (
    RESULTS, ResultsFile, StartedLog, SummaryFileError, read_rows, recorded_summary, rewrite_rows, started_threads, summarise, write_summary,
)
from agent.runs.run_lock import LOCK, RunDirBusy, run_dir_lock
from agent.runs.samples import Job, SampleProcessor

CRASH_LOG = "crash.log"
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
    allow_changed: bool = False  # with resume: go on with changed settings, recording the change
    info: dict[str, Any] = field(default_factory=dict)  # recorded in summary.json (kg, model, input)
    executor: ExecutorName = "local"  # where samples run (agent.runs.executors); concurrency is per Ray actor
    ray_address: str | None = None  # an existing Ray cluster; None starts a local one for the run
    actors: int | None = None  # Ray actors; None: one per CPU of the cluster
    checkpoints: str | None = None  # a PostgreSQL URL (--checkpoints); None: the run's own store
    exclude_overlap: tuple[str, ...] = ()  # evaluation sets: records overlapping them get ``excluded`` rows
    meter: Meter | None = None  # spend, sample times and the budget (agent.runs.cost): asked before each sample starts


@dataclass
class Plan:
    jobs: list[Job]  # every selected record, in input order
    pending: list[Job]  # those without a result line yet
    done: Counter  # statuses of the result lines already written
    duplicates: list[str] = field(default_factory=list)  # ids that results.jsonl held more than once
    set_aside: Path | None = None  # where --fresh-checkpoints moved the old checkpoint database
    input_path: Path | None = None
    store: CheckpointStore | None = None  # where the samples' steps are checkpointed
    fingerprint: dict | None = None  # the run's, once ``identify`` has read or written it
    # pending samples started before whose checkpoints are gone: they start from scratch
    lost: list[str] = field(default_factory=list)


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


def read_jobs(input_path: Path, options: RunOptions, stem: str | None = None) -> list[Job]:
    """The selected records of the input, parsed; raises InputError when there is nothing to run.
    ``stem`` names records without an id (``recorded_stem``)."""
    return parse_jobs(read_raw(input_path, options.encoding, stem), options)


def parse_jobs(raws: list[RawRecord], options: RunOptions) -> list[Job]:
    """The selected ``raws`` parsed, each under the id a run gives it: its own, else its
    file's (or content's) name for it; a repeated id gets an error row named by where it is."""
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
    try:
        store = run_store(run_dir, options.checkpoints)
        set_aside = None
        if options.fresh_checkpoints:
            set_aside = _set_checkpoints_aside(store)
        lost = []
        if not options.fresh_checkpoints and pending:
            store.check()
            _check_checkpoints(store, [j.id for j in pending])
            lost = started_without_checkpoints(run_dir, store, [j.id for j in pending])
    except CheckpointStoreError as exc:
        raise RunDirError(str(exc)) from None
    return Plan(jobs, pending, Counter(r["status"] for r in rows), duplicates, set_aside, input_path, store,
                lost=lost)


def started_without_checkpoints(run_dir: Path, store: CheckpointStore, pending: list[str]) -> list[str]:
    """The ``pending`` samples that an earlier session started (``StartedLog``) but of which
    the checkpoint store holds no step: their checkpoints vanished (a SQLite database whose
    content was all in a deleted -wal passes SQLite's check; a database restored from an
    older copy) or the session stopped before their first step was saved. They will run
    from scratch, paying again for whatever LLM calls they had made.

    The run warns and goes on rather than refusing. What is redone is bounded: a sample is
    started only when a slot frees, so the samples started but unfinished are those that were
    in flight when a session stopped (``--concurrency``, in each Ray actor), with the error
    rows that ``--retry-errors`` runs again; finished samples are never redone. The
    tool cannot bring the checkpoints back, so a refusal would only stop the automatic
    resumes of batch systems (a Slurm requeue, a systemd restart), which cannot add a flag,
    and would also stop them for a sample killed an instant after it started, before its
    first checkpoint. The warning comes before the KG loads and any LLM call, and the ids
    are recorded in summary.json (``checkpoints_lost``)."""
    started = started_threads(run_dir)
    expected = {sample: started[sample] for sample in pending if sample in started}
    present = store.threads_with_checkpoints(expected.values())
    return [sample for sample, thread in expected.items() if thread not in present]


def identify(plan: Plan, run_dir: Path, settings: Settings, options: RunOptions) -> dict:
    """The run's fingerprint (``agent.runs.fingerprint``), written when the run first starts.

    On resume the stored one is compared with what this session would record: a change
    (another model, graph, prompt set, result-changing setting or input) is refused with a
    RunDirError naming it, unless ``options.allow_changed``: then it is recorded, with the ids
    of the rows made before it, so that no row is relabelled. A run from before fingerprints
    existed keeps its checkpoint threads under plain sample ids. Opens the KG (once per process).
    It records where the checkpoints are (a PostgreSQL URL without its password, or None
    for RUN_DIR's SQLite file), which ``--resume``, ``replay`` and ``view`` then open."""
    from agent.reasoning import resources

    loaded = resources.load_kg(settings)
    new = fingerprints.make(
        settings, fingerprints.kg_identity(loaded.manifest, settings.kg_dir), plan.input_path,
        reading={"fields": asdict(options.fields), "encoding": options.encoding},
        selection={"offset": options.offset, "limit": options.limit,
                   "shard": list(options.shard) if options.shard else None},
    )
    store = plan.store or CheckpointStore.of(run_dir)
    new["checkpoints"] = str(store) if store.is_postgres else None
    stored = read_fingerprint(run_dir)
    if stored is None:
        if options.resume and ((run_dir / RESULTS).exists() or (run_dir / CHECKPOINTS).exists()):
            new[PLAIN_THREADS] = True
        write_fingerprint(run_dir, new)
        plan.fingerprint = new
        return new
    changed = fingerprints.differences(stored, new)
    if changed:
        made = [r["id"] for r in read_rows(run_dir / RESULTS)] if (run_dir / RESULTS).exists() else []
        if not options.allow_changed:
            raise RunDirError(
                f"{run_dir} was started with other settings than this --resume, so its {len(made)} finished "
                "row(s) and the rest would not be made alike. Changed:\n  " + "\n  ".join(changed) + "\n"
                "Resume with the run's own settings, choose a new --out directory for the new ones, or pass "
                "--allow-changed to go on in this run (the change is recorded in fingerprint.json with the rows "
                "made before it)."
            )
        stored = fingerprints.with_change(stored, new, changed, made)
        write_fingerprint(run_dir, stored)
    plan.fingerprint = stored
    return stored


def recorded_stem(input_path: Path, run_dir: Path) -> str | None:
    """The file stem a resumed run's ids were made from, when INPUT holds the same records
    under another name: ids like ``questions-4`` then survive a rename."""
    stored = read_fingerprint(run_dir)
    if stored is None or not input_path.is_file():
        return None
    recorded = stored.get("input") or {}
    if recorded.get("sha256") != fingerprints.file_sha256(input_path):
        return None
    return Path(recorded.get("name", input_path.name)).stem


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


def _check_checkpoints(store: CheckpointStore, pending: list[str]) -> None:
    """Refuse, before anything is loaded or paid for, a checkpoint database SQLite cannot read
    (a half-written copy, a truncated file, a mismatched -wal): the pending samples would
    otherwise fail one by one after their LLM calls. (PostgreSQL keeps its own integrity.)"""
    path = store.path
    if path is None or not path.exists():
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


def _set_checkpoints_aside(store: CheckpointStore) -> Path | None:
    """Rename checkpoints.sqlite (with its -wal and -shm, so the set stays openable) to
    checkpoints.<time>.sqlite; unfinished samples then start from scratch."""
    if store.is_postgres:
        raise CheckpointStoreError(
            f"--fresh-checkpoints sets a damaged SQLite file aside; this run's checkpoints are in {store}, "
            "which PostgreSQL keeps consistent itself: resume without it"
        )
    path, run_dir = store.path, store.path.parent
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
    with ExitStack() as held:
        plan = prepare(input_path, run_dir, options, held)
        if plan.pending:
            identify(plan, run_dir, settings, options)
        return await execute(plan, run_dir, settings, options)


def prepare(input_path: Path, run_dir: Path, options: RunOptions, held: ExitStack) -> Plan:
    """Everything that can refuse a run before the KG loads or an LLM call is paid for: read
    the input, claim RUN_DIR (held by ``held`` until the run ends), plan what is left."""
    stem = recorded_stem(input_path, run_dir) if options.resume else None
    jobs = read_jobs(input_path, options, stem)
    evals = None
    if options.exclude_overlap:  # an unreadable evaluation set is refused before RUN_DIR is touched
        from agent.runs import overlap

        evals = overlap.read_sets(options.exclude_overlap)
    held.enter_context(claim_run_dir(run_dir, options.resume))
    plan = plan_run(input_path, run_dir, options, jobs)
    if evals is not None:
        exclude_overlap(plan, run_dir, options, evals)
    return plan


def exclude_overlap(plan: Plan, run_dir: Path, options: RunOptions, evals) -> None:
    """``--exclude-overlap``: the pending records that match a question of the evaluation sets
    (``overlap.QuestionSet``) get their row now, status ``excluded`` with the match as reason,
    so no LLM call is ever made for them; what was checked against what goes to summary.json
    (``overlap_check``)."""
    from agent.runs import overlap

    rows, info = overlap.excluded_rows(plan.pending, evals)
    if rows:
        results = ResultsFile(run_dir)
        for row in rows.values():
            results.append(row)
        results.close()
    plan.pending = [j for j in plan.pending if j.id not in rows]
    plan.done.update(row["status"] for row in rows.values())
    options.info["overlap_check"] = info


async def execute(plan: Plan, run_dir: Path, settings: Settings, options: RunOptions) -> dict:
    """Run the pending jobs on the executor ``options`` name (``agent.runs.executors``: this event
    loop, or Ray actors), with the graph, index and model that ``settings`` open, and write
    each row here as it comes back. On cancellation, or when a sample fails the run (a full
    disk, a broken database), the other samples are cancelled and the summary is written
    before the error goes on. SIGTERM (what Slurm, Kubernetes, systemd and ``timeout`` send)
    is Ctrl-C's twin: the samples in flight are cancelled, the summary written, then
    ``Terminated`` is raised."""
    started = time.monotonic()
    results = ResultsFile(run_dir)
    started_log = StartedLog(run_dir)
    processed = 0
    interrupted = False
    meter = options.meter
    terminated = _cancel_on_sigterm()
    try:
        if plan.pending:
            fingerprint = plan.fingerprint or identify(plan, run_dir, settings, options)
            executor = executors.for_run(options.executor, settings, (plan.store or CheckpointStore.of(run_dir)).location,
                                         options.concurrency, options.ray_address, options.actors)
            async with executor.slots() as slots:
                queue = iter(plan.pending)

                async def worker(process: SampleProcessor) -> None:
                    nonlocal processed
                    for job in queue:  # one shared iterator: each job goes to one worker (ids are unique)
                        if meter is not None and not await meter.admit(job.id, job.record):
                            break  # the budget is reached: start no more samples
                        thread = thread_id(fingerprint, job.id)
                        if job.record is not None:  # durably, before its first step: see started_without_checkpoints
                            started_log.started(job.id, thread)
                        row = await process(job, thread)
                        results.append(row)
                        processed += 1
                        if meter is not None:
                            await meter.finished(row)
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
        if terminated.is_set():
            raise Terminated(signal.SIGTERM) from None
        raise
    finally:
        if terminated.handled:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        results.close()
        started_log.close()
        summary = _summary(run_dir, plan, settings, options, time.monotonic() - started, processed, interrupted)
    return summary


class Terminated(Exception):
    """The run was stopped by a signal (SIGTERM) after writing its summary."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class _SigtermSeen(threading.Event):
    handled = False  # whether this run installed the handler (only the main thread can)


def _cancel_on_sigterm() -> _SigtermSeen:
    """Cancel the running task on SIGTERM, as asyncio does on Ctrl-C."""
    seen = _SigtermSeen()
    if threading.current_thread() is not threading.main_thread():
        return seen
    task = asyncio.current_task()

    def cancel() -> None:
        seen.set()
        task.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, cancel)
    seen.handled = True
    return seen


# What an earlier session recorded of where its rows came from, kept when this one runs nothing.
CARRIED_OVER = ("mode", "model", "base_url", "kg", "run_id", "overlap_check")


def run_provenance(previous: dict[str, Any], plan: Plan, settings: Settings, options: RunOptions) -> dict[str, Any]:
    """What summary.json records of where the rows came from: the input, shard and grounding
    bar; the mode, model, endpoint (never with credentials), KG and run id of this session when
    it ran samples (else those the ``previous`` session's summary recorded), the changes
    ``--allow-changed`` let through, and every session's started samples whose checkpoints had
    vanished."""
    info: dict[str, Any] = {
        "input": str(plan.input_path), "shard": "/".join(map(str, options.shard)) if options.shard else None,
        "min_grounding": settings.min_grounding, **{k: previous[k] for k in CARRIED_OVER if k in previous},
    }
    lost = list(dict.fromkeys([*previous.get("checkpoints_lost", []), *plan.lost]))
    if lost:  # every session's, so the reader of a batch log finds them
        info["checkpoints_lost"] = lost
    if plan.fingerprint is not None:  # this session ran samples: it says what it ran them with
        llm = settings.llm_configured
        info.update(
            mode=settings.mode, model=settings.model if llm else None,
            base_url=fingerprints.endpoint(settings.base_url) if llm and settings.base_url else None,
            run_id=plan.fingerprint["run_id"],
            changes=[{"at": c["at"], "changed": c["changed"], "rows_before": len(c["rows_before"])}
                     for c in plan.fingerprint.get("changes", [])],
            kg=fingerprints.kg_identity(resources.load_kg(settings).manifest, settings.kg_dir),
        )
    return info


def _summary(run_dir: Path, plan: Plan, settings: Settings, options: RunOptions, wall: float, processed: int, interrupted: bool) -> dict:
    rows = read_rows(run_dir / RESULTS)
    ids = {r["id"] for r in rows}
    try:  # a resumed run's earlier session: its wall time adds up, its provenance carries over
        previous = recorded_summary(run_dir) if options.resume else {}
    except SummaryFileError:  # made anew from the rows
        previous = {}
    if options.resume and not previous:  # what ran the rows, as the run's fingerprint recorded it
        stored = read_fingerprint(run_dir) or {}
        previous = {k: v for k, v in {"mode": stored.get("mode"), "model": stored.get("model"), "base_url": stored.get("endpoint"),
                                      "kg": stored.get("kg"), "run_id": stored.get("run_id")}.items() if v is not None}
    earlier = previous.get("wall_time_s", 0.0)
    info = {**run_provenance(previous, plan, settings, options), **options.info}
    mode = info.pop("mode", None) or settings.mode
    if plan.store is not None and plan.store.is_postgres:
        info["checkpoints"] = str(plan.store)  # never with its password
    if settings.llm_configured:  # what structured output the run used, and what the endpoint was found to honour
        info["structured_output"] = resources.load_llm(settings).report()
    if options.meter is not None:  # spend of every session, the budget, the projection for what is left
        info.update(options.meter.report(rows, sum(1 for j in plan.jobs if j.id not in ids)))
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


def write_crash_log(run_dir: Path, exc: BaseException) -> Path:
    """Append the traceback of the bug that stopped a run to RUN_DIR/crash.log, for a report;
    the user is shown a few lines instead."""
    path = run_dir / CRASH_LOG
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} medreason-agent {fingerprints.tool_version()}\n")
        f.write(redact("".join(traceback.format_exception(exc))))
    return path
