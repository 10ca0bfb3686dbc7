"""Adopting a fork: a reviewer who fixed a sample by forking it (``replay --fork`` or the
viewer's fork command) makes the fork's final state the sample's result.

The sample's line in results.jsonl is replaced by the row of the fork's last checkpoint
(``result_row``, as the run writes rows), which says where it came from in ``adopted``:
the branch, its last checkpoint, the step it was forked at and what the fork changed, who
adopted it and when, and the status the run had given the sample. Nothing is lost: the row
it replaces is appended to RUN_DIR/adoptions.jsonl (one line per adoption, never rewritten)
and branch 0 of the checkpoints is the original run, so adopting branch 0 restores the row
the run wrote. An adoption is a reviewer's accept of the fork (a line in reviews.jsonl);
a restore is a flag, so the restored row is looked at again. summary.json's counts follow.
The run directory's lock is held throughout, so a run (or another adoption) never writes
results.jsonl at the same time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from agent.inspection import replay
from agent.runs.results import (RESULTS, CorruptLineError, JsonLinesLog, SummaryFileError, read_rows, recorded_summary, result_row,
                                rewrite_rows, summarise, write_summary)
from agent.runs.reviews import append_review, review_line
from agent.runs.run_lock import RunDirBusy, run_dir_lock

ADOPTIONS = "adoptions.jsonl"
# Row fields a fork's state does not make: what merge or a resume wrote onto the row.
KEPT_FROM_ROW = ("run",)


class AdoptionError(Exception):
    """The fork cannot be adopted (or the original restored); the message says why."""


def adopt(run_dir: Path, sample_id: str, branch: int, who: str, note: str = "") -> dict:
    """Make branch ``branch`` of ``sample_id``'s checkpoints its result (0: restore the row
    the run wrote). Returns the new row; refuses an unfinished branch, an unknown sample or
    branch, a run still writing, and an adoption without a reviewer's name."""
    who = (who or "").strip()
    if not who:
        raise AdoptionError("say who adopts the fork (--who NAME): an adopted result records its reviewer")
    results = run_dir / RESULTS
    if not results.is_file():
        raise AdoptionError(f"{run_dir} holds no {RESULTS}: only a run's samples can adopt a fork")
    try:
        with run_dir_lock(run_dir):
            rows = read_rows(results)
            at = next((i for i, r in enumerate(rows) if r["id"] == sample_id), None)
            if at is None:
                raise AdoptionError(f"no sample {sample_id!r} in {run_dir}")
            old = rows[at]
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            new = _original(run_dir, old) if branch == 0 else _fork_row(run_dir, old, branch, who, now)
            # the replaced row is kept before it is replaced, so a crash in between loses nothing
            _log(run_dir, {"id": sample_id, "branch": branch, "who": who, "note": note, "time": now, "replaced": old})
            rows[at] = new
            rewrite_rows(run_dir, rows)
            decision, said = ("accept", note or f"adopted fork branch {branch}") if branch else \
                ("flag", note or "restored the run's original result; review it again")
            append_review(run_dir, {**review_line(sample_id, decision, said, who), "adopted": branch})
            _resummarise(run_dir, rows)
            return new
    except RunDirBusy as exc:
        raise AdoptionError(str(exc)) from None
    except (replay.ReplayError, CorruptLineError) as exc:
        raise AdoptionError(str(exc)) from None


def _fork_row(run_dir: Path, old: dict, number: int, who: str, now: str) -> dict:
    thread = old.get("thread_id")
    if not thread:
        raise AdoptionError(f"sample {old['id']!r} never ran (its record was refused): it has no forks")
    with replay.open_run(run_dir) as app:
        chains = replay.branches(app, thread)
        if not 0 < number < len(chains):
            raise AdoptionError(f"sample {old['id']!r} has no fork {number}; its forks are "
                                f"{', '.join(map(str, range(1, len(chains)))) or 'none (make one with replay --fork)'}")
        last = chains[number][-1]
        if last.next:
            raise AdoptionError(f"fork {number} of {old['id']!r} did not finish (it stops before {', '.join(last.next)}); "
                                "adopt a finished fork")
        origin = replay.fork_origin(chains, number)
    row = {**result_row(old["id"], thread, last.values), **{k: old[k] for k in KEPT_FROM_ROW if k in old}}
    row["adopted"] = {
        "branch": number, **origin, "who": who, "time": now,
        "original_status": (old.get("adopted") or {}).get("original_status", old.get("status")),
    }
    return row


def _original(run_dir: Path, current: dict) -> dict:
    """The row the run wrote for this sample: what its first adoption replaced."""
    for line in adoptions(run_dir):
        if line["id"] == current["id"]:
            return line["replaced"]
    raise AdoptionError(f"sample {current['id']!r} has adopted no fork: its result is already the original run's (branch 0)")


def adoptions(run_dir: Path) -> list[dict]:
    """Every adoption of the run, oldest first (a torn last line, from a crash, is skipped)."""
    path = run_dir / ADOPTIONS
    return read_rows(path, required=("id", "branch", "replaced")) if path.is_file() else []


def _log(run_dir: Path, line: dict) -> None:
    log = JsonLinesLog(run_dir / ADOPTIONS)  # fsynced; a torn last line is cut first
    try:
        log.append(line)
    finally:
        log.close()


def _resummarise(run_dir: Path, rows: list[dict]) -> None:
    """summary.json with the counts of the rows as they now are; what the run measured
    (wall time, speed, its settings) stays as the run recorded it."""
    try:
        previous = recorded_summary(run_dir)
    except SummaryFileError:
        return  # a resume makes it anew; `view` counts the rows itself
    if not previous:
        return  # no summary to correct
    fresh = summarise(rows, previous.get("mode", "unknown"), previous.get("wall_time_s", 0.0))
    measured = ("mode", "wall_time_s", "samples_per_minute")
    write_summary(run_dir, {**previous, **{k: v for k, v in fresh.items() if k not in measured},
                            "adopted_forks": sum(1 for r in rows if r.get("adopted"))})
