"""RUN_DIR/results.jsonl and summary.json: exactly one line per input record, never torn.

Each line is written with a single ``write`` and fsynced before the next sample counts as
done, so a crash or SIGKILL leaves at most a partial last line, which the next open cuts.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from agent.state import SampleState

RESULTS = "results.jsonl"
SUMMARY = "summary.json"


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
        "attempts": state.get("attempts", []),
        "usage": state.get("usage") or {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0},
        "error": error,
        "thread_id": thread_id,
    }


class ResultsFile:
    """Append-only results; reading it tells which samples are finished."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / RESULTS
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

    def rows(self) -> list[dict]:
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def append(self, row: dict) -> None:
        self._out.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._out.flush()
        os.fsync(self._out.fileno())

    def close(self) -> None:
        self._out.close()


def summarise(rows: list[dict], mode: str, wall_time: float) -> dict[str, Any]:
    counts = Counter(r["status"] for r in rows)
    finished = [r for r in rows if r["status"] != "error"]
    reasons = Counter(
        r["verification"]["reason"] if r.get("verification") else "no verification"
        for r in rows
        if r["status"] == "rejected"
    )
    errors = Counter((r["error"] or "").split(": ", 1)[-1][:80] for r in rows if r["status"] == "error")
    usage = Counter()
    for r in rows:
        usage.update(r.get("usage") or {})
    total = len(rows)
    return {
        "mode": mode,
        "records": total,
        "counts": {s: counts.get(s, 0) for s in ("accepted", "rejected", "error")},
        "accepted_share": round(counts.get("accepted", 0) / total, 4) if total else 0.0,
        "with_path_share": round(sum(1 for r in rows if r["paths"]) / total, 4) if total else 0.0,
        "mean_attempts": round(sum(len(r["attempts"]) for r in finished) / len(finished), 3) if finished else 0.0,
        "rejection_reasons": dict(reasons.most_common()),
        "error_reasons": dict(errors.most_common()),
        "usage": dict(usage),
        "wall_time_s": round(wall_time, 2),
    }


def write_summary(run_dir: Path, summary: dict) -> None:
    tmp = run_dir / (SUMMARY + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, run_dir / SUMMARY)
