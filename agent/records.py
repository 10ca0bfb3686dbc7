"""Reading QA records: one bad record becomes an error row, only an unusable file stops a run.

Input is JSONL or a JSON array of objects in the MedQA/MedBullets schema (``question``,
``options`` {letter: text}, ``answer``, ``answer_idx``, optional ``id``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.state import Record


class InputError(Exception):
    """The input cannot be read at all; the run cannot proceed."""


class RecordError(ValueError):
    """One record is malformed; the message names where and which field."""


@dataclass(frozen=True)
class RawRecord:
    where: str  # "data.jsonl:3", for messages
    default_id: str  # used when the record carries no id of its own
    data: Any = None
    error: str | None = None  # set when the text could not even be parsed


def read_raw(path: Path) -> Iterator[RawRecord]:
    """Every record of the file, in order; raises InputError when there is nothing to run."""
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    if path.is_dir():
        raise InputError(f"input {path} is a directory, not a file")
    if path.stat().st_size == 0 or not path.read_text(encoding="utf-8", errors="replace").strip():
        raise InputError(f"input file {path} is empty")
    if path.suffix.lower() == ".json":
        yield from _json_array(path)
    else:
        yield from _json_lines(path)


def _json_lines(path: Path) -> Iterator[RawRecord]:
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{line_no}"
            try:
                yield RawRecord(where, f"{path.stem}-{line_no}", json.loads(line))
            except json.JSONDecodeError as exc:
                yield RawRecord(where, f"{path.stem}-{line_no}", error=f"{where}: not valid JSON ({exc.msg}, column {exc.colno})")


def _json_array(path: Path) -> Iterator[RawRecord]:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from exc
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a JSON array of records, found {type(items).__name__}")
    for n, item in enumerate(items, start=1):
        yield RawRecord(f"{path.name}[{n}]", f"{path.stem}-{n}", item)


def parse_record(raw: RawRecord) -> Record:
    """A validated record, or RecordError naming the record and the field at fault."""
    if raw.error:
        raise RecordError(raw.error)
    data = raw.data
    if not isinstance(data, dict):
        raise RecordError(f"{raw.where}: a record must be a JSON object, found {type(data).__name__}")
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise RecordError(f"{raw.where}: field 'question' is missing or empty")
    options = _options(raw.where, data.get("options"))
    answer, answer_idx = _answer(raw.where, data, options)
    record_id = data.get("id")
    return Record(
        id=str(record_id) if record_id not in (None, "") else raw.default_id,
        question=question.strip(),
        options=options,
        answer=answer,
        answer_idx=answer_idx,
    )


def _options(where: str, options: Any) -> dict[str, str]:
    if options is None or options == {}:
        return {}
    if isinstance(options, list):
        raise RecordError(
            f"{where}: field 'options' must be an object mapping letters to texts "
            '(e.g. {"A": "...", "B": "..."}), found a list'
        )
    if not isinstance(options, dict):
        raise RecordError(f"{where}: field 'options' must be an object, found {type(options).__name__}")
    bad = [k for k, v in options.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise RecordError(f"{where}: field 'options' has an empty or non-text option {bad[0]!r}")
    return {str(k).strip(): v.strip() for k, v in options.items()}


def _answer(where: str, data: dict, options: dict[str, str]) -> tuple[str, str | None]:
    answer, idx = data.get("answer"), data.get("answer_idx")
    if idx is not None and not isinstance(idx, str):
        raise RecordError(f"{where}: field 'answer_idx' must be an option letter, found {idx!r}")
    if idx and idx not in options:
        raise RecordError(f"{where}: field 'answer_idx' is {idx!r}, which is not one of the options")
    if not isinstance(answer, str) or not answer.strip():
        if idx:
            return options[idx], idx
        raise RecordError(f"{where}: field 'answer' is missing or empty")
    answer = answer.strip()
    if not idx and options:
        idx = next((letter for letter, text in options.items() if text == answer), None)
    return answer, idx
