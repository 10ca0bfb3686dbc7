"""A small real run for the viewer's tests: three records run by the agent on the fixture KG
(accepted, rejected, and a question holding HTML), one malformed record (an error row), and
the fields other parts of the project add to rows (degraded, thinking, grounding) and to the
run directory (fingerprint.json) written onto it, so their display is tested."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from agent.config import Settings
from agent.runs.runner import RunOptions, run_dataset

HOSTILE_QUESTION = "<script>alert('x')</script> Fever & splenomegaly for < 2 weeks after travel. Which drug treats it?"
RECORDS = [
    {"id": "malaria", "question": "A traveller returns with fever, splenomegaly and anemia. Which drug treats the most likely disease?",
     "options": {"A": "chloroquine", "B": "metformin", "C": "albuterol"}, "answer": "chloroquine", "answer_idx": "A"},
    {"id": "scurvy", "question": "Gingival bleeding in a sailor. Which drug?", "options": {"A": "chloroquine", "B": "ascorbic acid"},
     "answer": "chloroquine", "answer_idx": "A"},
    {"id": "hostile/<b>id</b>", "question": HOSTILE_QUESTION,
     "options": {"A": "chloroquine", "B": "metformin"}, "answer": "chloroquine", "answer_idx": "A"},
    {"id": "broken", "question": "A record without its answer."},
]
OTHER_BRANCH_FIELDS = {  # the row fields of issues 16 and 19, as COMMON.md's contract gives them
    "degraded": ["prune: the model's answer was malformed twice; kept the heaviest paths"],
    "thinking": "The patient travelled; fever with splenomegaly suggests malaria.",
    "grounding": {"score": 0.5, "adherence": 1.0, "steps": [  # as agent.reasoning.grounding writes it
        {"text": "Fever is a phenotype of malaria.", "label": "grounded",
         "entities": [{"text": "Fever", "node_id": "fever", "name": "fever"}, {"text": "malaria", "node_id": "malaria", "name": "malaria"}],
         "evidence": "malaria —disease phenotype positive→ fever"},
        {"text": "Anemia rules out every other option.", "label": "unsupported",
         "entities": [{"text": "Anemia", "node_id": "anemia", "name": "anemia"}, {"text": "option", "node_id": "x<y>", "name": "x <y>"}],
         "evidence": "anemia is joined to x <y> only by phenotype phenotype"},
        {"text": "So the answer is chloroquine.", "label": "unlinked",
         "entities": [{"text": "chloroquine", "node_id": "chloroquine", "name": "chloroquine"}], "evidence": None},
    ]},
}
FINGERPRINT = {"run_id": "3f9a1c2e", "mode": "kg-only", "kg": {"source": "triples", "hash": "ab12cd34"},
               "prompt_set": "e5f6", "tool_version": "0.1.0"}


def make_view_run(root: Path, settings: Settings) -> Path:
    """The run directory, and a copy of its checkpoints alone as a chat store (``root/chat``)."""
    source = root / "in.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    run_dir = root / "run"
    asyncio.run(run_dataset(source, run_dir, settings, RunOptions()))
    results = run_dir / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    for row in rows:
        if row["id"] == "malaria":
            row.update(OTHER_BRANCH_FIELDS)
    results.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (run_dir / "fingerprint.json").write_text(json.dumps(FINGERPRINT))
    chat = root / "chat"
    chat.mkdir()
    shutil.copy(run_dir / "checkpoints.sqlite", chat / "checkpoints.sqlite")
    return run_dir


# scurvy's record in RECORDS holds another question's text (its options and gold are the malaria ones)
FIXED_QUESTION = "A sailor back from the tropics has fever, splenomegaly and anemia. Which drug treats the likely disease?"
FIX = [f"record.question={FIXED_QUESTION}"]


def fork_fixing_scurvy(run_dir: Path, settings: Settings) -> int:
    """Fork the rejected scurvy sample at step 0 with its question corrected, as a reviewer
    fixing it does (``replay --fork 0 --set …``); the fork is accepted. Returns its branch."""
    from agent.inspection import replay

    thread = next(r["thread_id"] for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())
                  if r["id"] == "scurvy")
    with replay.open_run(run_dir) as app:
        _, final, number = replay.fork(app, thread, 0, settings, FIX)
    assert final["status"] == "accepted"
    return number
