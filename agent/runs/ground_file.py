"""``ground``: any chain-of-thought file checked step by step against a knowledge graph.

Reads the formats chain-of-thought data comes in, detected per record:

| format | reasoning read from | paths read from |
| --- | --- | --- |
| our results.jsonl | ``reasoning`` | ``paths`` (node ids) |
| our hf export | ``reasoning`` | ``paths`` (their text) |
| MedReason (``question``, ``reasoning``) | ``reasoning`` | its ``Finding reasoning paths:`` |
| HuatuoGPT-o1 (``Question``, ``Complex_CoT``, ``Response``) | ``Complex_CoT`` | — |
| TRL ``messages`` | the last assistant turn's thinking | its ``Finding reasoning paths:`` |

and writes one JSON line per record, ``{"id": …, "grounding": …}``, or ``{"id": …, "error": …}``
for a record it cannot read (the file goes on). Only paths the graph holds count as evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from agent.reasoning.grounding import Evidence, distribution, ground_reasoning, listed_paths, path_evidence
from agent.runs.records import RawRecord, lone_surrogate
from agent.runs.safe_write import atomic_text
from graphs.store import KnowledgeGraph

REASONING_FIELDS = ("reasoning", "Complex_CoT", "messages")
# The thinking of an assistant turn: MedReason's and HuatuoGPT-o1's training targets, or <think> tags.
_THINKING = re.compile(
    r"<think>(?P<tags>.*?)</think>|##\s*Thinking\s*(?P<heads>.*?)(?=##\s*Final (?:Answer|Response)|\Z)", re.S | re.I
)


class RecordProblem(ValueError):
    """A record holds no chain of thought that can be read; the message says why."""


def record_id(raw: RawRecord) -> str:
    """The record's own id (a lone surrogate in it cannot be written: then its place)."""
    data = raw.data if isinstance(raw.data, dict) else {}
    if data.get("id") not in (None, ""):
        own = str(data["id"])
    elif data.get("id_in_dataset") is not None:
        own = f"{data.get('dataset_name') or 'record'}:{data['id_in_dataset']}"
    else:
        return raw.default_id
    return raw.default_id if lone_surrogate(own) else own


def chain_of_thought(kg: KnowledgeGraph, data: object) -> tuple[str, list[Evidence]]:
    """The reasoning of one record and the paths it may lean on; raises RecordProblem."""
    if not isinstance(data, dict):
        raise RecordProblem(f"expected a JSON object, found {type(data).__name__}")
    problem = lone_surrogate(data)  # such text cannot be written out, nor graded
    if problem:
        raise RecordProblem(problem)
    field = next((f for f in REASONING_FIELDS if f in data), None)
    if field is None:
        raise RecordProblem(f"no chain of thought: none of the fields {', '.join(REASONING_FIELDS)}")
    reasoning = _assistant_thinking(data[field]) if field == "messages" else data[field]
    if not isinstance(reasoning, str):
        raise RecordProblem(f"field {field!r} holds {type(reasoning).__name__}, not text")
    return reasoning, _paths(kg, data.get("paths"), reasoning)


def _assistant_thinking(messages: object) -> str:
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise RecordProblem("field 'messages' is not a list of {role, content} turns")
    turns = [m.get("content") for m in messages if m.get("role") == "assistant"]
    if not turns or not isinstance(turns[-1], str):
        raise RecordProblem("field 'messages' has no assistant turn with text")
    found = _THINKING.search(turns[-1])
    return (found.group("tags") or found.group("heads") or "") if found else turns[-1]


def _paths(kg: KnowledgeGraph, paths: object, reasoning: str) -> list[Evidence]:
    """Our rows' paths (records with node ids kept when the graph has those nodes, texts
    walked on the graph), else the paths the reasoning lists."""
    if not isinstance(paths, list) or not paths:
        return listed_paths(kg, reasoning)
    records = [p for p in paths if isinstance(p, dict) and all(n in kg for n in p.get("nodes") or [None])]
    texts = "\n".join(p for p in paths if isinstance(p, str))
    return path_evidence(records) + (listed_paths(kg, f"Finding reasoning paths:\n{texts}") if texts else [])


def ground_records(kg: KnowledgeGraph, raws: list[RawRecord]) -> Iterator[dict]:
    """One output line per record, in input order."""
    for raw in raws:
        line = {"id": record_id(raw)}
        if raw.error:
            yield {**line, "error": raw.error}
            continue
        try:
            reasoning, paths = chain_of_thought(kg, raw.data)
        except RecordProblem as exc:
            yield {**line, "error": f"{raw.where}: {exc}"}
            continue
        yield {**line, "grounding": ground_reasoning(kg, reasoning, paths)}


def summary_path(out: Path) -> Path:
    return out.with_name(out.name + ".summary.json")


def ground_file(kg: KnowledgeGraph, raws: list[RawRecord], out: Path) -> dict:
    """Write ``out`` (JSON Lines, then its summary beside it) and return the summary; raises
    OutputError when they cannot be written."""
    rows = []
    with atomic_text(out) as f:
        for row in ground_records(kg, raws):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows.append({"error": row.get("error"), "grounding": row.get("grounding")})
    errors = sum(1 for r in rows if r["error"])
    summary = {"records": len(rows), "graded": len(rows) - errors, "errors": errors,
               **distribution(r["grounding"] for r in rows)}
    with atomic_text(summary_path(out)) as f:
        f.write(json.dumps(summary, indent=2) + "\n")
    return summary
