"""Turning a run's results into datasets, and merging the runs of several shards.

Formats (accepted samples by default; ``include_all`` adds rejected and error rows):

- ``sft``: chat-format JSONL, one ``{"messages": [user, assistant]}`` per sample; the user
  turn is the question with its lettered options (and a PubMedQA context), the assistant
  turn the reasoning followed by ``Answer: <letter>. <text>``.
- ``medreason``: JSONL with the fields of the MedReason dataset (UCSC-VLAA/MedReason):
  ``dataset_name``, ``id_in_dataset``, ``question``, ``answer``, ``reasoning``, ``options``
  (``"Answer Choices:\\nA. …\\nB. …"``, empty for free-text questions).
- ``hf``: a directory loadable with ``datasets.load_dataset(DIR)``: ``data/train.jsonl``
  (flat, Arrow-friendly columns) and a ``README.md`` dataset card naming the KG source and
  hash, the model and the counts, as recorded in the run's summary.json.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from agent.results import RESULTS, SUMMARY, read_rows, summarise, write_summary
from agent.safe_write import atomic_text, check_target

FORMATS = ("sft", "medreason", "hf")
MERGED_KEYS = ("mode", "model", "base_url", "kg")


class ExportError(Exception):
    """The export or merge cannot be done; the message says why."""


def load_run(run_dir: Path) -> tuple[list[dict], dict]:
    results = run_dir / RESULTS
    if not results.exists():
        raise ExportError(f"{run_dir} holds no {RESULTS}")
    summary_path = run_dir / SUMMARY
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return read_rows(results), summary


def user_prompt(row: dict) -> str:
    parts = []
    context = (row.get("extra") or {}).get("context")
    if context:
        parts.append(f"Context:\n{context}\n")
    parts.append(row["question"])
    if row.get("options"):
        parts.append("\n".join(f"{letter}. {text}" for letter, text in row["options"].items()))
    return "\n".join(parts)


def answer_line(row: dict) -> str:
    letter = row.get("answer_idx")
    return f"{letter}. {row['answer']}" if letter else row["answer"]


def options_text(row: dict) -> str:
    if not row.get("options"):
        return ""
    return "Answer Choices:\n" + "\n".join(f"{letter}. {text}" for letter, text in row["options"].items())


def sft_item(row: dict) -> dict:
    reasoning = (row.get("reasoning") or "").strip()
    assistant = f"{reasoning}\n\nAnswer: {answer_line(row)}" if reasoning else f"Answer: {answer_line(row)}"
    return {"messages": [{"role": "user", "content": user_prompt(row)}, {"role": "assistant", "content": assistant}]}


def medreason_item(row: dict) -> dict:
    return {
        "dataset_name": row.get("dataset") or "custom",
        "id_in_dataset": row["id"],
        "question": row["question"],
        "answer": answer_line(row),
        "reasoning": row.get("reasoning") or "",
        "options": options_text(row),
    }


def hf_item(row: dict) -> dict:
    verification = row.get("verification") or {}
    extra = row.get("extra") or {}
    return {
        **medreason_item(row),
        "answer_idx": row.get("answer_idx") or "",
        "status": row["status"],
        "paths": [p["text"] for p in row.get("paths") or []],
        "verification": verification.get("reason") or "",
        "attempts": len(row.get("attempts") or []),
        "llm_calls": (row.get("usage") or {}).get("llm_calls", 0),
        "context": extra.get("context") or "",
        "long_answer": extra.get("long_answer") or "",
        "messages": sft_item(row)["messages"],
    }


def export_run(run_dir: Path, format: str, out: Path, include_all: bool = False, force: bool = False) -> int:
    """Write ``format`` to ``out``; returns the number of samples written."""
    check_target(out, [run_dir], force, directory=format == "hf")
    rows, summary = load_run(run_dir)
    if not include_all:
        rows = [r for r in rows if r["status"] == "accepted"]
    else:
        rows = [r for r in rows if r.get("question")]  # malformed input rows have no question to export
    if format == "hf":
        return _export_hf(rows, summary, out, include_all)
    item = {"sft": sft_item, "medreason": medreason_item}.get(format)
    if item is None:
        raise ExportError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    _write_jsonl(out, (item(r) for r in rows))
    return len(rows)


def _write_jsonl(path: Path, items) -> None:
    with atomic_text(path) as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")


def _export_hf(rows: list[dict], summary: dict, out: Path, include_all: bool) -> int:
    _write_jsonl(out / "data" / "train.jsonl", (hf_item(r) for r in rows))
    with atomic_text(out / "README.md") as f:
        f.write(dataset_card(rows, summary, include_all))
    return len(rows)


def dataset_card(rows: list[dict], summary: dict, include_all: bool) -> str:
    kg = summary.get("kg") or {}
    statuses = Counter(r["status"] for r in rows)
    datasets = Counter(r.get("dataset") or "custom" for r in rows)
    size = "n<1K" if len(rows) < 1000 else "1K<n<10K" if len(rows) < 10_000 else "10K<n<100K" if len(rows) < 100_000 else "n>100K"
    counts = summary.get("counts", {})
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data/train.jsonl",
        "language:",
        "- en",
        "task_categories:",
        "- question-answering",
        "tags:",
        "- medical",
        "- chain-of-thought",
        "- knowledge-graph",
        f"size_categories:\n- {size}",
        "---",
        "",
        "# KG-grounded medical reasoning",
        "",
        "Chain-of-thought for medical QA pairs grounded in knowledge-graph paths, after MedReason "
        "(arXiv 2504.00993), generated by the MedReason Agent.",
        "",
        f"- Samples: {len(rows):,} ({', '.join(f'{s} {n:,}' for s, n in statuses.most_common())})"
        + ("" if include_all else " — accepted samples only"),
        f"- Source datasets: {', '.join(f'{d} {n:,}' for d, n in datasets.most_common())}",
        f"- Run: {summary.get('records', len(rows)):,} records; accepted {counts.get('accepted', 0):,}, "
        f"rejected {counts.get('rejected', 0):,}, error {counts.get('error', 0):,}",
        f"- Mode: {summary.get('mode', 'unknown')}; model: {summary.get('model') or 'none (KG-only)'}",
        f"- Knowledge graph: {kg.get('source', 'unknown')} ({kg.get('nodes', '?')} nodes, {kg.get('edges', '?')} facts), "
        f"source sha256 `{kg.get('sha256') or 'unknown'}`, entity embeddings {kg.get('embedding_model') or 'unknown'}",
        "",
        "Columns: `dataset_name`, `id_in_dataset`, `question`, `answer`, `reasoning`, `options` (as in "
        "UCSC-VLAA/MedReason), `answer_idx`, `status`, `paths` (the KG paths the reasoning used), "
        "`verification`, `attempts`, `llm_calls`, `context`, `long_answer`, `messages` (chat format).",
        "",
    ]
    return "\n".join(lines)


def merge_runs(run_dirs: list[Path], out: Path) -> dict:
    """One results.jsonl and a recomputed summary.json in ``out`` from several runs."""
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"--out {out} is not empty; choose a new directory")
    rows, owner, duplicates, infos = [], {}, [], []
    wall = 0.0
    for run_dir in run_dirs:
        run_rows, summary = load_run(run_dir)
        infos.append({k: summary.get(k) for k in MERGED_KEYS if k in summary})
        wall += summary.get("wall_time_s", 0.0)
        for row in run_rows:
            if row["id"] in owner:
                duplicates.append(f"{row['id']!r} in {owner[row['id']]} and {run_dir}")
            owner.setdefault(row["id"], run_dir)
            rows.append(row)
    if duplicates:
        shown = "; ".join(duplicates[:5]) + (f" (and {len(duplicates) - 5} more)" if len(duplicates) > 5 else "")
        raise ExportError(f"{len(duplicates)} duplicate id(s): {shown}")
    info = next((i for i in infos if i), {})
    conflicts = [k for k in MERGED_KEYS if len({json.dumps(i.get(k), sort_keys=True) for i in infos if k in i}) > 1]
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / RESULTS, rows)
    summary = summarise(rows, info.pop("mode", "unknown"), wall, len(rows), **info,
                        merged_from=[str(d) for d in run_dirs], conflicting=conflicts)
    write_summary(out, summary)
    return summary
