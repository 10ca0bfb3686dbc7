"""Human reviews of a run's samples: RUN_DIR/reviews.jsonl, appended to, never rewritten.

One line per review: ``{"id", "decision", "note", "who", "time"}``. A sample may be reviewed
more than once (a reviewer changes their mind, a second reviewer disagrees); what counts is its
latest review. Reviews live beside results.jsonl and never modify it: the export reads both.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

REVIEWS = "reviews.jsonl"
DECISIONS = ("accept", "reject", "flag")
# How an export uses the reviews: every selected row, the ones a reviewer did not reject,
# or only the ones a reviewer accepted.
ReviewFilter = Literal["any", "not-rejected", "accepted"]


class ReviewError(Exception):
    """A review cannot be recorded, or reviews.jsonl cannot be read; the message says why."""


def review_line(sample_id: str, decision: str, note: str = "", who: str | None = None) -> dict:
    if decision not in DECISIONS:
        raise ReviewError(f"unknown decision {decision!r}; choose one of {', '.join(DECISIONS)}")
    return {"id": sample_id, "decision": decision, "note": note, "who": who or None,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def append_review(run_dir: Path, review: dict) -> None:
    """One line, written with a single ``write`` on a file opened for appending and fsynced,
    so concurrent reviewers never interleave and a crash leaves at most a torn last line."""
    data = (json.dumps(review, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(run_dir / REVIEWS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_reviews(run_dir: Path) -> dict[str, dict]:
    """The latest review of each reviewed sample; {} when nobody has reviewed the run.
    A torn last line (a crash mid-write) is skipped; any other bad line is an error."""
    return {review["id"]: review for review in review_history(run_dir)}


def review_history(run_dir: Path) -> list[dict]:
    """Every review of the run, oldest first (what ``merge`` carries over: a later reader
    sees who changed their mind, not only the outcome)."""
    path = run_dir / REVIEWS
    if not path.is_file():
        return []
    reviews = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n") or not line.strip():
                continue
            try:
                review = json.loads(line)
                _, decision = review["id"], review["decision"]  # every review names its sample
            except (ValueError, KeyError, TypeError) as exc:
                raise ReviewError(f"{path} line {number} is not a review ({exc}); fix or remove that line") from None
            if decision not in DECISIONS:
                raise ReviewError(f"{path} line {number}: unknown decision {decision!r}")
            reviews.append(review)
    return reviews
