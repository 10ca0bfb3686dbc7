"""Turning a run's results into training files, and merging the runs of several shards.

Each format is a function from one result row to one item (``ITEMS``), kept apart from
writing files, and matches what its consumer reads (docs/export_formats.md has the facts):

- ``medreason``: the MedReason dataset's fields (UCSC-VLAA/MedReason): ``dataset_name``,
  ``id_in_dataset`` (0-based position in the input file), ``question`` (without options;
  a PubMedQA context goes first), ``answer`` as the reference writes it per source,
  ``reasoning``, ``options`` (``"Answer Choices:\nA. …"``, empty for free text). MedReason's
  ``SFT.py`` reads ``question``/``reasoning``/``answer`` when its data path contains "ours".
- ``huatuo``: ``Question`` (with options), ``Complex_CoT``, ``Response``: HuatuoGPT-o1's
  ``SFT_stage1.py`` (a JSON array: write to ``*.json``) and MedReason's ``SFT.py`` read these.
- ``sft``: chat ``messages`` (optional system, user, assistant) as TRL's SFTTrainer reads
  them; the assistant turn is "## Thinking … ## Final Answer …" (the MedReason target) or,
  with ``thinking_tags``, ``<think>…</think>`` followed by the answer. With
  ``include_thinking``, a reasoning model's own thinking behind the reasoning (the row's
  ``thinking`` of its generate node) goes first, in ``<think>…</think>``.

- ``hf``: a directory that ``datasets.load_dataset(DIR)`` reads: ``data/train.jsonl`` (the
  medreason fields plus run columns and ``messages``) and a ``README.md`` dataset card.

``--out`` ending in ``.json`` gets one JSON array; any other file gets JSON Lines.

Which rows an export takes is one decision per row (``left_out_reason``): a row is written,
or left out for the first reason that applies, and every reason is counted (``Exported.left_out``),
so an export never drops a sample silently. Samples that fell back to a KG-only behaviour at
some node (the row's ``degraded``) are left out unless ``include_degraded``; a model's thinking
never enters any item's reasoning. The latest human review of each sample (reviews.jsonl) and
an adopted fork (the row's ``adopted``) go into every item's provenance and the dataset card.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path

from agent.runs.fingerprint import identity, identity_of_rows, read_fingerprint
from agent.reasoning.grounding import below, distribution
from agent.runs.results import RESULTS, read_rows, recorded_summary, summarise, write_summary
from agent.runs.reviews import REVIEWS, ReviewError, ReviewFilter, read_reviews, review_history
from agent.runs.safe_write import atomic_text, check_target
from agent.reasoning.verbalise import options_text, question_text

FORMATS = ("sft", "medreason", "huatuo", "hf")


class ExportError(Exception):
    """The export or merge cannot be done; the message says why."""


@dataclass(frozen=True)
class ExportOptions:
    dataset_name: str | None = None  # else each row's detected schema (medqa, medmcqa, pubmedqa, …)
    thinking_tags: bool = False  # sft: <think>reasoning</think> then the answer
    system: str | None = None  # sft: a system turn first
    include_all: bool = False  # also rejected and error rows (those with a question)
    reviewed: ReviewFilter = "any"  # of those, the ones reviewers did not reject, or accepted
    provenance: bool = False  # a provenance object per item (hf always has one)
    min_grounding: float | None = None  # only samples whose grounding score reaches this
    include_degraded: bool = False  # also samples where a node fell back to its KG-only behaviour
    include_thinking: bool = False  # sft: the model's thinking behind the reasoning, in <think>


@dataclass(frozen=True)
class RunSource:
    """What every row's provenance shares: the KG, the model and the run's fingerprint."""

    kg: dict
    model: str | None
    fingerprint: dict | None
    overlap_check: dict | None = None  # what the input was checked against (run --exclude-overlap)


def provenance(row: dict, source: RunSource) -> dict:
    """Where a sample's reasoning comes from: the nodes its mentions were mapped to, the
    paths it used (relation labels and node ids per hop), each step's grounding, the KG
    (source and hash), the model and the run's fingerprint; who reviewed it (its latest
    review, or null) and the fork it was adopted from (or null). A row's own ``run`` (a merge
    of runs made differently, a run resumed with --allow-changed) comes before the run's."""
    run = row.get("run")
    run_kg = (run or {}).get("kg") or source.kg
    return {
        "nodes": [{"mention": m["mention"], "role": m["role"], "node_id": m["node_id"], "name": m["name"]}
                  for m in row.get("mappings") or []],
        "paths": [{"text": p["text"], "nodes": p["nodes"], "names": p["names"],
                   "relations": [[f["label"] for f in hop] for hop in p["hops"]]} for p in row.get("paths") or []],
        "grounding": row.get("grounding"),
        "kg": {"source": run_kg.get("source"), "sha256": run_kg.get("sha256")},
        "model": run["model"] if run else source.model,
        "fingerprint": source.fingerprint,
        "overlap_check": source.overlap_check,
        "review": review_of(row),
        "adopted": adoption_of(row),
    }


def review_of(row: dict) -> dict | None:
    """The sample's latest review as exports carry it: decision, note, who, time."""
    review = row.get("review")
    return {k: review.get(k) for k in ("decision", "note", "who", "time")} if review else None


def adoption_of(row: dict) -> dict | None:
    """Which fork the row's result comes from, who adopted it and when (null: the original run)."""
    adopted = row.get("adopted")
    return {k: adopted.get(k) for k in ("branch", "checkpoint_id", "forked_at_step", "changes", "settings", "who", "time",
                                        "original_status")} if adopted else None


def load_run(run_dir: Path) -> tuple[list[dict], dict]:
    results = run_dir / RESULTS
    if not results.exists():
        raise ExportError(f"{run_dir} holds no {RESULTS}")
    return read_rows(results), recorded_summary(run_dir)


# -- the pieces every format is made of ------------------------------------------------------


def answer_choices(row: dict) -> str:
    """MedReason's options block: ``Answer Choices:\nA. …\nB. …``; empty for free text."""
    return "Answer Choices:\n" + options_text(row) if row.get("options") else ""


def question_with_options(row: dict) -> str:
    """What a model is asked: the evidence (PubMedQA), the question, then the options."""
    return "\n".join(filter(None, (question_text(row), answer_choices(row))))


def reference_answer(row: dict) -> str:
    """The answer as MedReason's data writes it per source: MedQA/MedBullets the answer
    text, MedMCQA "text. Explanation: …", PubMedQA "The final decision is: yes. <long answer>"."""
    extra = row.get("extra") or {}
    if row.get("dataset") == "pubmedqa":
        return " ".join(filter(None, (f"The final decision is: {row['answer']}.", extra.get("long_answer"))))
    if row.get("dataset") == "medmcqa" and extra.get("explanation"):
        return f"{row['answer']}. Explanation: {extra['explanation']}"
    return row["answer"]


def answer_sentence(row: dict) -> str:
    """The final answer as a sentence: the option letter with its text, and the source's
    explanation or long answer when it has one."""
    if row.get("dataset") == "pubmedqa" or not row.get("answer_idx"):
        return reference_answer(row)
    sentence = f"The answer is {row['answer_idx']}. {row['answer']}."
    explanation = (row.get("extra") or {}).get("explanation") if row.get("dataset") == "medmcqa" else None
    return f"{sentence} Explanation: {explanation}" if explanation else sentence


def position(row: dict) -> int:
    if not isinstance(row.get("position"), int):
        raise ExportError(
            f"sample {row['id']!r} has no recorded position in its input file (id_in_dataset); "
            "it comes from a run or chat turn that did not record one: run its input again"
        )
    return row["position"]


# -- one item per format ---------------------------------------------------------------------


def medreason_item(row: dict, options: ExportOptions) -> dict:
    return {
        "dataset_name": options.dataset_name or row.get("dataset") or "custom",
        "id_in_dataset": position(row),
        "question": question_text(row),
        "answer": reference_answer(row),
        "reasoning": row.get("reasoning") or "",
        "options": answer_choices(row),
    }


def huatuo_item(row: dict, options: ExportOptions) -> dict:
    return {
        "Question": question_with_options(row),
        "Complex_CoT": row.get("reasoning") or "",
        "Response": answer_sentence(row),
    }


def generate_thinking(row: dict) -> str:
    """The model's thinking behind the row's reasoning: its last generate node's."""
    return next((t["text"] for t in reversed(row.get("thinking") or []) if t["node"] == "generate"), "")


def sft_item(row: dict, options: ExportOptions) -> dict:
    reasoning = (row.get("reasoning") or "").strip()
    final = answer_sentence(row)
    if not reasoning:
        assistant = final
    elif options.thinking_tags:
        assistant = f"<think>\n{reasoning}\n</think>\n\n{final}"
    else:
        assistant = f"## Thinking\n\n{reasoning}\n\n## Final Answer\n\n{final}"
    thinking = generate_thinking(row) if options.include_thinking and reasoning else ""
    if thinking:
        assistant = f"<think>\n{thinking}\n</think>\n\n{assistant}"
    system = [{"role": "system", "content": options.system}] if options.system else []
    return {"messages": [*system, {"role": "user", "content": question_with_options(row)},
                         {"role": "assistant", "content": assistant}]}


def hf_item(row: dict, options: ExportOptions, source: RunSource) -> dict:
    verification = row.get("verification") or {}
    extra = row.get("extra") or {}
    return {
        **medreason_item(row, options),
        "question": row["question"],  # the context has its own column here
        "id": row["id"],
        "answer_idx": row.get("answer_idx") or "",
        "status": row["status"],
        "paths": [p["text"] for p in row.get("paths") or []],
        "verification": verification.get("reason") or "",
        "attempts": len(row.get("attempts") or []),
        "llm_calls": (row.get("usage") or {}).get("llm_calls", 0),
        "context": extra.get("context") or "",
        "long_answer": extra.get("long_answer") or "",
        "messages": sft_item(row, options)["messages"],
        "review_decision": (row.get("review") or {}).get("decision") or "",
        "review_note": (row.get("review") or {}).get("note") or "",
        "reviewer": (row.get("review") or {}).get("who") or "",
        "adopted_fork": (row.get("adopted") or {}).get("branch") or 0,
        "provenance": provenance(row, source),
    }


ITEMS = {"sft": sft_item, "medreason": medreason_item, "huatuo": huatuo_item}


# Why a row is left out of an export, by key (what --json and the dataset card give); each
# status other than the ones taken is its own ``status:<name>`` key, each review decision its
# own ``review:<decision>``, so a status or decision added later is counted without a change here.
TAKEN_STATUSES = ("accepted",)  # --all adds ALL_STATUSES
ALL_STATUSES = ("accepted", "rejected", "error")
LEFT_OUT_HINTS = {
    "no question": "malformed input records: nothing to export",
    "status:rejected": "rejected by the run; --all takes them",
    "status:error": "errors; --all takes those with a question",
    "status:excluded": "excluded before the run (they overlap an evaluation set)",
    "run rejected, reviewer accepted": "a reviewer accepted them but their row is still the run's rejected one: "
                                       "adopt the fork that fixed each (`adopt`, or the viewer), or pass --all",
    "degraded": "a node fell back to its KG-only behaviour; --include-degraded takes them",
    "below min grounding": "grounding score below --min-grounding",
    "review:reject": "a reviewer rejected them",
    "review:flag": "flagged by a reviewer, not accepted (--only-reviewed)",
    "review:none": "not reviewed (--only-reviewed)",
    "no reasoning": "no reasoning (they never reached generation): a training file never holds an empty chain of thought",
}


def left_out_hint(reason: str) -> str:
    """What a left-out reason means and, where one exists, the option that takes such rows."""
    return LEFT_OUT_HINTS.get(reason) or (f"status {reason.split(':', 1)[1]}" if reason.startswith("status:") else reason)


def left_out_reason(row: dict, format: str, options: ExportOptions, reviews: dict[str, dict]) -> str | None:
    """Why ``row`` is left out of this export (a ``LEFT_OUT_HINTS`` key, or ``status:<name>``), or
    None when it is written. The first reason that applies counts: what the run made of the row,
    then the export's filters, then the reviews, then what the format needs."""
    status, review = row.get("status"), reviews.get(row["id"])
    decision = review["decision"] if review else None
    if not row.get("question"):
        return "no question"
    if status not in (ALL_STATUSES if options.include_all else TAKEN_STATUSES):
        if status in ALL_STATUSES and decision == "accept":
            return "run rejected, reviewer accepted"
        return f"status:{status}"
    if row.get("degraded") and not options.include_degraded and not options.include_all:
        return "degraded"
    if options.min_grounding is not None and below(row.get("grounding") or {"score": None}, options.min_grounding):
        return "below min grounding"
    if options.reviewed == "not-rejected" and decision == "reject":
        return "review:reject"
    if options.reviewed == "accepted" and decision != "accept":
        return f"review:{decision or 'none'}"
    if format in TRAINING_FORMATS and not (row.get("reasoning") or "").strip():
        return "no reasoning"
    return None


def choose_rows(rows: list[dict], format: str, options: ExportOptions, reviews: dict[str, dict]) -> tuple[list[dict], Counter]:
    """The rows ``format`` takes, each with its latest review (``review``), and how many were
    left out for each reason."""
    kept, left_out = [], Counter()
    for row in rows:
        reason = left_out_reason(row, format, options, reviews)
        if reason:
            left_out[reason] += 1
        else:
            kept.append({**row, "review": reviews.get(row["id"])})
    return kept, left_out


def run_reviews(run_dir: Path, wanted: ReviewFilter) -> dict[str, dict]:
    """The latest review of each sample; a filter by reviews on a run nobody reviewed is refused."""
    try:
        reviews = read_reviews(run_dir)
    except ReviewError as exc:
        raise ExportError(str(exc)) from exc
    if wanted != "any" and not reviews:
        raise ExportError(f"{run_dir} has no reviews yet; review samples with `view {run_dir}` first")
    return reviews


def export_items(rows: list[dict], format: str, options: ExportOptions, source: RunSource) -> list[dict]:
    """The items of ``format`` for the rows ``choose_rows`` took, each with its provenance when asked
    (hf always has one)."""
    if format == "hf":
        return [hf_item(r, options, source) for r in rows]
    item = ITEMS[format]  # export_run refused any other
    if options.provenance:
        return [{**item(r, options), "provenance": provenance(r, source)} for r in rows]
    return [item(r, options) for r in rows]


class Exported(NamedTuple):
    written: int  # samples written
    left_out: dict[str, int]  # rows left out, by reason (``left_out_reason``), most first


TRAINING_FORMATS = ("sft", "medreason", "huatuo")


def export_run(run_dir: Path, format: str, out: Path, options: ExportOptions = ExportOptions(), force: bool = False) -> Exported:
    """Write ``format`` to ``out`` and say what was left out and why. A training format never
    holds an empty chain of thought: rows without one (with --all, samples that never reached
    generation) are left out and counted."""
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    check_target(out, [run_dir], force, directory=format == "hf")
    rows, summary = load_run(run_dir)
    reviews = run_reviews(run_dir, options.reviewed)
    rows, left_out = choose_rows(rows, format, options, reviews)
    identities = run_identities(run_dir, rows, summary)
    rows = [{**r, "run": identities[r["id"]]} for r in rows]
    source = RunSource(summary.get("kg") or {}, summary.get("model"), read_fingerprint(run_dir), summary.get("overlap_check"))
    items = export_items(rows, format, options, source)
    reasons = dict(left_out.most_common())
    if format == "hf":
        _write_jsonl(out / "data" / "train.jsonl", items)
        _write_text(out / "README.md", dataset_card(rows, summary, options, items, reasons))
    else:
        write_items(out, items)
    return Exported(len(items), reasons)


def write_items(path: Path, items: Iterable[dict]) -> None:
    """``path`` ending in .json: one JSON array (what json.load-based trainers read); else
    JSON Lines. Written to a temporary file and renamed, so a failed export leaves no half file."""
    if path.suffix.lower() == ".json":
        _write_text(path, json.dumps(list(items), ensure_ascii=False, indent=1) + "\n")
    else:
        _write_jsonl(path, items)


def _write_text(path: Path, text: str) -> None:
    with atomic_text(path) as f:
        f.write(text)


def _write_jsonl(path: Path, items) -> None:
    with atomic_text(path) as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")


def _made_with(rows: list[dict], summary: dict) -> list[str]:
    """The card's lines on mode, model and graph: one of each when every row shares them,
    else each (KG, mode, model) with its number of samples."""
    sources = _sources(rows) if rows and all(r.get("run") for r in rows) else [
        {"kg": summary.get("kg") or {}, "mode": summary.get("mode", "unknown"), "model": summary.get("model"), "rows": len(rows)}]

    def graph(kg: dict) -> str:
        return (f"{kg.get('source') or 'unknown'} ({kg.get('nodes', '?')} nodes, {kg.get('edges', '?')} facts), source "
                f"sha256 `{kg.get('sha256') or 'unknown'}`, entity embeddings {kg.get('embedding_model') or 'unknown'}")

    if len(sources) == 1:
        [one] = sources
        return [f"- Mode: {one['mode']}; model: {one['model'] or 'none (KG-only)'}", f"- Knowledge graph: {graph(one['kg'])}"]
    return ["- Made in different ways (each sample's `provenance` says how):",
            *(f"  - {s['rows']:,} samples: mode {s['mode']}, model {s['model'] or 'none (KG-only)'}, knowledge graph "
              f"{graph(s['kg'])}" for s in sources)]


def dataset_card(rows: list[dict], summary: dict, options: ExportOptions, items: list[dict], left_out: dict[str, int]) -> str:
    statuses = Counter(r["status"] for r in rows)
    datasets = Counter(i["dataset_name"] for i in items)
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
        + ("" if options.include_all else " — accepted samples only"),
        f"- Source datasets: {', '.join(f'{d} {n:,}' for d, n in datasets.most_common())}",
        f"- Run: {summary.get('records', len(rows)):,} records; accepted {counts.get('accepted', 0):,}, "
        f"rejected {counts.get('rejected', 0):,}, error {counts.get('error', 0):,}",
        *_made_with(rows, summary),
        f"- Grounding (share of reasoning steps the graph backs): {_grounding_line(rows)}",
        f"- Decontamination: {_overlap_line(summary)}",
        *_review_lines(rows, options),
        *_left_out_lines(left_out),
        "",
        "Columns: `dataset_name`, `id_in_dataset` (0-based position in the input file), `question`, `answer`, "
        "`reasoning`, `options` (as in UCSC-VLAA/MedReason), `id`, `answer_idx`, `status`, `paths` (the KG paths "
        "the reasoning used), `verification`, `attempts`, `llm_calls`, `context`, `long_answer`, `messages` "
        "(chat format, as TRL's SFTTrainer reads it), `provenance` (the mapped nodes, the paths with their relation "
        "labels and node ids, each reasoning step's grounding against the graph, the KG source and hash, the model, "
        "the run's fingerprint, the latest human `review` and the fork a result was `adopted` from), `review_decision`, "
        "`review_note`, `reviewer` (the latest human review; empty when none), `adopted_fork` (the branch of the "
        "sample's checkpoints its result was adopted from; 0: the original run).",
        "",
    ]
    return "\n".join(lines)


def _review_lines(rows: list[dict], options: ExportOptions) -> list[str]:
    """The card's lines on human review: how many samples were reviewed, with what decisions,
    by whom, which results come from an adopted fork, and the review filter the export used."""
    reviewed = [r["review"] for r in rows if r.get("review")]
    wanted = {"any": "", "not-rejected": " (export filter: reviewer-rejected samples left out)",
              "accepted": " (export filter: only reviewer-accepted samples)"}[options.reviewed]
    if not reviewed:
        return [f"- Human review: none{wanted}"]
    decisions = Counter(r["decision"] for r in reviewed)
    who = sorted({r["who"] for r in reviewed if r.get("who")})
    lines = [f"- Human review: {len(reviewed):,} of {len(rows):,} samples reviewed "
             f"({', '.join(f'{d} {n:,}' for d, n in decisions.most_common())})"
             + (f" by {', '.join(who)}" if who else "") + wanted]
    adopted = sum(1 for r in rows if r.get("adopted"))
    if adopted:
        lines.append(f"- {adopted:,} samples' results come from a fork a reviewer adopted (the row's `adopted_fork`; "
                     "`provenance.adopted` says who, when and what the fork changed)")
    return lines


def _left_out_lines(left_out: dict[str, int]) -> list[str]:
    if not left_out:
        return ["- Left out: none"]
    return [f"- Left out: {sum(left_out.values()):,} rows of the run",
            *(f"  - {n:,} {left_out_hint(reason)}" for reason, n in left_out.items())]


def _overlap_line(summary: dict) -> str:
    check = summary.get("overlap_check")
    if not check:
        return "not checked against evaluation sets"
    sets = ", ".join(f"{a['name']} ({a['questions']:,} questions, {a['source']})" for a in check["against"])
    methods = check["methods"]
    return (f"checked against {sets} by normalised exact match, word {' and '.join(map(str, methods['ngram_sizes']))}-gram "
            f"overlap (≥ {methods['ngram_match']:.0%} of a record's n-grams) and fuzzy ratio (≥ {methods['fuzzy_match']:g}), "
            f"answers agreeing; {summary.get('counts', {}).get('excluded', 0):,} records excluded before generation")


def _grounding_line(rows: list[dict]) -> str:
    grounding = distribution(r.get("grounding") for r in rows)
    if grounding["mean_score"] is None:
        return "not recorded"
    steps = ", ".join(f"{label} {n:,}" for label, n in grounding["steps"].items())
    return f"mean score {grounding['mean_score']:.2f} over {grounding['samples']:,} samples; steps {steps}"


def run_identities(run_dir: Path, rows: list[dict], summary: dict) -> dict[str, dict]:
    """Each row's identity (KG, mode, model, run id) from the run's fingerprint, or, for a run
    from before fingerprints, from its summary; rows that a merge already labelled keep theirs."""
    recorded = {"run_id": None, **{k: summary.get(k) for k in ("mode", "model", "kg")}}
    fingerprint = {**recorded, **(read_fingerprint(run_dir) or {})}
    made = identity_of_rows(fingerprint, [r["id"] for r in rows])
    return {r["id"]: r.get("run") or made[r["id"]] for r in rows}


def _kind(run: dict) -> str:
    kg = run.get("kg") or {}
    return json.dumps([kg.get("source"), kg.get("sha256"), run.get("mode"), run.get("model")])


def _described(run: dict) -> str:
    kg = run.get("kg") or {}
    sha = (kg.get("sha256") or "?")[:12]
    return f"KG {kg.get('source')} ({kg.get('nodes', '?')} nodes, sha256 {sha}…), mode {run.get('mode')}, model {run.get('model') or 'none'}"


def _sources(rows: list[dict]) -> list[dict]:
    """The distinct (KG, mode, model) of the rows, with how many rows each made."""
    counts = Counter(_kind(r["run"]) for r in rows)
    first = {}
    for r in rows:
        first.setdefault(_kind(r["run"]), r["run"])
    return [{"kg": first[k]["kg"], "mode": first[k]["mode"], "model": first[k]["model"], "rows": n}
            for k, n in counts.items()]


def _refuse_repeated_questions(rows: list[dict]) -> None:
    """Rows under different ids that are the same question (``overlap.repeated_questions``:
    file-based ids of two overlapping input files) would count and train on it twice."""
    from agent.runs.overlap import repeated_questions

    repeated = repeated_questions(rows)
    if repeated:
        shown = "; ".join(repeated[:5]) + (f" (and {len(repeated) - 5} more)" if len(repeated) > 5 else "")
        raise ExportError(
            f"{len(repeated)} row(s) repeat the question of another row under another id: {shown}. Merge runs of "
            "distinct records (run with --id-from content to give the same question the same id), or pass "
            "--allow-duplicates to keep every row."
        )


def merge_runs(run_dirs: list[Path], out: Path, allow_mixed: bool = False, allow_duplicates: bool = False) -> dict:
    """One results.jsonl and a recomputed summary.json in ``out`` from several runs, with
    their reviews (reviews.jsonl: the merged samples' every review, so an export of the merge
    filters and labels by them as it would each run's). Runs made on different graphs, in
    different modes or with different models are refused unless ``allow_mixed``; every merged
    row carries its own run's identity (``run``), and the summary counts the rows of each
    (``sources``) instead of naming one for all. (An adopted fork is in its row already.)"""
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"--out {out} is not empty; choose a new directory")
    rows, owner, duplicates, checks, reviews = [], {}, [], [], []
    wall = 0.0
    kinds: dict[str, list[str]] = {}
    for run_dir in run_dirs:
        run_rows, summary = load_run(run_dir)
        identities = run_identities(run_dir, run_rows, summary)
        wall += summary.get("wall_time_s", 0.0)
        checks.append(summary.get("overlap_check"))
        ids = {row["id"] for row in run_rows}
        try:
            reviews += [review for review in review_history(run_dir) if review["id"] in ids]
        except ReviewError as exc:
            raise ExportError(str(exc)) from exc
        for row in run_rows:
            if row["id"] in owner:
                duplicates.append(f"{row['id']!r} in {owner[row['id']]} and {run_dir}")
            owner.setdefault(row["id"], run_dir)
            row = {**row, "run": identities[row["id"]]}
            kinds.setdefault(_kind(row["run"]), []).append(str(run_dir))
            rows.append(row)
    if duplicates:
        shown = "; ".join(duplicates[:5]) + (f" (and {len(duplicates) - 5} more)" if len(duplicates) > 5 else "")
        raise ExportError(f"{len(duplicates)} duplicate id(s): {shown}")
    sources = Counter(_kind(r["run"]) for r in rows)
    if len(sources) > 1 and not allow_mixed:
        described = {_kind(r["run"]): _described(r["run"]) for r in rows}
        lines = "\n  ".join(f"{', '.join(dict.fromkeys(kinds[k]))}: {described[k]} ({n} rows)" for k, n in sources.items())
        raise ExportError(
            f"the runs were made differently, so one label would be wrong for some rows:\n  {lines}\n"
            "Merge runs of one graph, mode and model, or pass --allow-mixed to merge them anyway: each row then "
            "keeps its own run's graph, mode and model (`run` in results.jsonl, `sources` in the summary)."
        )
    if not allow_duplicates:
        _refuse_repeated_questions(rows)
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / RESULTS, rows)
    if reviews:
        _write_jsonl(out / REVIEWS, reviews)
    first = rows[0]["run"] if rows else {}
    mixed = len(sources) > 1
    summary = summarise(
        rows, "mixed" if mixed else first.get("mode", "unknown"), wall, len(rows),
        model=None if mixed else first.get("model"), kg=None if mixed else first.get("kg"),
        sources=_sources(rows),
        merged_from=[str(d) for d in run_dirs],
        # what every run was checked against (run --exclude-overlap), when they all say the same
        **({"overlap_check": checks[0]} if checks and checks[0] and all(c == checks[0] for c in checks) else {}),
    )
    write_summary(out, summary)
    return summary
