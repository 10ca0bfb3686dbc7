"""RUN_DIR/results.jsonl and summary.json: exactly one line per input record, never torn;
and started.jsonl, which samples were started.

Each line is written with a single ``write`` and fsynced before the next sample counts as
done, so a crash or SIGKILL leaves at most a partial last line, which the next open cuts.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from agent.reasoning.grounding import distribution
from agent.reasoning.state import SampleState
from graphs.atomic import atomic_file, write_text

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
STARTED = "started.jsonl"


def result_row(record_id: str, thread_id: str, state: SampleState | None, error: str | None = None) -> dict:
    state = state or {}
    verification = state.get("verification")
    status = "error" if error else state.get("status", "error")
    record = state.get("record", {})
    return {
        "id": record_id,
        "status": status,
        "question": record.get("question"),
        "options": record.get("options"),
        "answer": record.get("answer"),
        "answer_idx": record.get("answer_idx"),
        "reasoning": state.get("reasoning", ""),
        "paths": state.get("pruned", []),
        "entities": state.get("entities", []),
        "mappings": state.get("mappings", []),
        "verification": verification,
        "grounding": state.get("grounding"),
        "relevance": state.get("relevance"),
        "attempts": state.get("attempts", []),
        "usage": state.get("usage") or {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0},
        "degraded": state.get("degraded", []),
        "thinking": state.get("thinking", []),
        "error": error,
        "thread_id": thread_id,
        "dataset": record.get("dataset"),
        "extra": record.get("extra"),
        "position": record.get("position"),
    }


class JsonLinesLog:
    """An append-only JSON Lines file whose every line is fsynced before ``append`` returns;
    a torn last line (a crash mid-write) is cut when it is opened again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cut_torn_tail()
        self._out = open(self.path, "a", encoding="utf-8")

    def _cut_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(end)

    def append(self, row: dict) -> None:
        self._out.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._out.flush()
        os.fsync(self._out.fileno())

    def close(self) -> None:
        self._out.close()


class ResultsFile(JsonLinesLog):
    """Append-only results; reading it tells which samples are finished."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir / RESULTS)


class StartedLog(JsonLinesLog):
    """RUN_DIR/started.jsonl: one line (``id``, ``thread_id``) written by the driver before a
    sample's first step runs, whichever executor runs it. A sample listed here without a
    result line was started before; ``--resume`` expects checkpoints of it
    (``agent.runs.runner.started_without_checkpoints``)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir / STARTED)

    def started(self, sample_id: str, thread_id: str) -> None:
        self.append({"id": sample_id, "thread_id": thread_id})


def started_threads(run_dir: Path) -> dict[str, str]:
    """Each sample ever started in RUN_DIR, with its checkpoint thread (the latest line wins)."""
    path = run_dir / STARTED
    return {row["id"]: row["thread_id"] for row in read_rows(path, ("id", "thread_id"))} if path.exists() else {}


def error_kind(row: dict) -> str:
    """Why an error row failed: the record itself, or the LLM while processing it."""
    message = row.get("error") or ""
    if not row.get("thread_id"):
        return "duplicate id" if "duplicate id" in message else "invalid record"
    node = message.split(": ", 1)[0]
    return "LLM error" if node in ("extract", "map", "path", "prune", "generate", "verify") else "internal error"


def rejection_kind(row: dict) -> str:
    return row["verification"]["reason"] if row.get("verification") else "no verification"


def summarise(rows: list[dict], mode: str, wall_time: float, processed: int | None = None, **info: Any) -> dict[str, Any]:
    """Counts and figures over every row so far; ``processed`` rows took ``wall_time``."""
    counts = Counter(r["status"] for r in rows)
    finished = [r for r in rows if r["status"] in ("accepted", "rejected")]
    reasons = Counter(rejection_kind(r) for r in rows if r["status"] == "rejected")
    errors = Counter((r["error"] or "").split(": ", 1)[-1][:80] for r in rows if r["status"] == "error")
    kinds = Counter(error_kind(r) for r in rows if r["status"] == "error")
    usage = Counter({"llm_calls": 0, "input_tokens": 0, "output_tokens": 0})
    for r in rows:
        usage.update(r.get("usage") or {})
    # samples per node that fell back to the node's KG-only behaviour
    degraded = Counter(node for r in rows for node in {d.split(": ", 1)[0] for d in r.get("degraded") or []})
    total = len(rows)
    processed = total if processed is None else processed
    accepted = counts.get("accepted", 0)
    return {
        "mode": mode,
        "records": total,
        "counts": {s: counts.get(s, 0) for s in ("accepted", "rejected", "error") + (("excluded",) if counts.get("excluded") else ())},
        "accepted_share": round(accepted / total, 4) if total else 0.0,
        "with_path_share": round(sum(1 for r in rows if r["paths"]) / total, 4) if total else 0.0,
        "mean_attempts": round(sum(len(r["attempts"]) for r in finished) / len(finished), 3) if finished else 0.0,
        "degraded": {"samples": sum(1 for r in rows if r.get("degraded")), "by_node": dict(degraded.most_common())},
        # Why samples were rejected (the verifier's reason) and why rows are errors: two
        # questions, two keys (a third that summed them only repeated them).
        "rejection_reasons": dict(reasons.most_common()),
        "error_kinds": dict(kinds.most_common()),
        "error_reasons": dict(errors.most_common()),
        "usage": dict(usage),
        "llm_calls_per_accepted": round(usage["llm_calls"] / accepted, 2) if accepted else 0.0,
        "grounding": distribution(r.get("grounding") for r in rows),
        "relevance": relevance_summary(rows),
        "wall_time_s": round(wall_time, 2),
        "samples_per_minute": round(60 * processed / wall_time, 1) if wall_time >= 0.01 else 0.0,
        **info,
    }


def relevance_summary(rows: list[dict]) -> dict[str, Any]:
    """The relevance of the paths samples reasoned over (``agent.reasoning.relevance``):
    mean over accepted samples, over all that had paths, and accepted samples by bin. Unlike
    a KG-only grounding score (1.0 by construction: the steps are the paths), it tells a
    sound sample from one that is merely derived from the graph."""
    scored = [r for r in rows if r.get("relevance") is not None]
    accepted = [r["relevance"] for r in scored if r["status"] == "accepted"]
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    bins = {"0.5-1": 0, "0.25-0.5": 0, "0-0.25": 0}
    for score in accepted:
        bins["0.5-1" if score >= 0.5 else "0.25-0.5" if score >= 0.25 else "0-0.25"] += 1
    return {"samples": len(scored), "mean": mean([r["relevance"] for r in scored]),
            "accepted_mean": mean(accepted), "accepted_bins": bins}


ROW_FIELDS = ("id", "status", "paths", "attempts", "error")
STATUSES = ("accepted", "rejected", "error", "excluded")  # excluded: agent.runs.overlap


class CorruptLineError(ValueError):
    """A complete line of a run's JSON Lines file that is not one of its rows (a hand edit,
    a bad copy). Every reader stops at it with the same message: which file and line, and
    what to do; a torn last line (a crash mid-write) is not one, it is skipped."""


def iter_rows(path: Path, required: tuple[str, ...] = ROW_FIELDS) -> Iterator[tuple[int, dict]]:
    """(byte offset, row) of each complete line of ``path`` (a torn last line is skipped);
    raises CorruptLineError at a line that is not a JSON object holding ``required``
    (and, for result rows, a known ``status``)."""
    offset = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if line.endswith(b"\n") and line.strip():
                yield offset, _row(path, number, line, required)
            offset += len(line)


def _row(path: Path, number: int, line: bytes, required: tuple[str, ...]) -> dict:
    try:
        row = json.loads(line.rstrip(b"\r\n"))
    except ValueError as exc:  # JSONDecodeError names the column; UnicodeDecodeError the byte
        problem = f"not JSON ({exc})"
    else:
        missing = [field for field in required if not isinstance(row, dict) or field not in row]
        if not isinstance(row, dict):
            problem = f"a JSON {type(row).__name__}, not an object"
        elif missing:
            problem = f"missing {', '.join(missing)}"
        elif "status" in required and row["status"] not in STATUSES:
            problem = f"status {row['status']!r} is none of {', '.join(STATUSES)}"
        else:
            return row
    raise CorruptLineError(
        f"{path} line {number} is not a row of this run: {problem}. Fix that line, or delete it "
        "(that sample then counts as not done: `run … --resume` makes it again)")


def read_rows(path: Path, required: tuple[str, ...] = ROW_FIELDS) -> list[dict]:
    """The rows of a results file (a torn last line, from a crash, is skipped; a corrupt
    line elsewhere raises CorruptLineError)."""
    return [row for _, row in iter_rows(path, required)]


class SummaryFileError(ValueError):
    """RUN_DIR/summary.json is there but is not a run summary (a hand edit, a bad copy). It is
    made from results.jsonl, so what works from the rows (a resumed run, an adoption, the
    viewer) goes on without it; what only it records (the graph, model and overlap check an
    export's provenance and card name) cannot, and stops at it with this message."""


def recorded_summary(run_dir: Path) -> dict:
    """RUN_DIR's summary.json as written; {} when there is none yet. One reader for every
    command, so a missing and an unreadable summary mean the same everywhere: nothing
    recorded yet, and SummaryFileError saying which file and how to make it anew."""
    path = run_dir / SUMMARY
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise SummaryFileError(_unreadable_summary(path, str(exc))) from exc
    try:
        summary = json.loads(text)
    except ValueError as exc:
        raise SummaryFileError(_unreadable_summary(path, f"not JSON: {exc}")) from exc
    if not isinstance(summary, dict):
        raise SummaryFileError(_unreadable_summary(path, f"a JSON {type(summary).__name__}, not an object"))
    return summary


def _unreadable_summary(path: Path, why: str) -> str:
    return (f"{path} cannot be read ({why}); it is made from {RESULTS}: resuming the run "
            f"(run INPUT --out {path.parent} --resume) writes it anew")


def write_summary(run_dir: Path, summary: dict) -> None:
    write_text(run_dir / SUMMARY, json.dumps(summary, indent=2))


def rewrite_rows(run_dir: Path, rows: list[dict]) -> None:
    """Replace results.jsonl with ``rows``, atomically (for --retry-errors and duplicates)."""
    with atomic_file(run_dir / RESULTS) as dst:
        for row in rows:
            dst.write(json.dumps(row, ensure_ascii=False) + "\n")
