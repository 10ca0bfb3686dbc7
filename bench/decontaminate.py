"""Decontamination on real MedQA questions: recall of planted copies, false positives, scale.

MedQA's 1,273 test questions (../shared/data/medqa/medqa_test.jsonl) are split: the first
half is the evaluation set, the second half the "real questions from another exam" of a
training file. Into that file go copies of evaluation questions of three kinds:

- ``verbatim``: the record as it is, without its id;
- ``reformatted``: case changed, spacing doubled, punctuation changed, the options shuffled
  and relettered (a-e in a new order, answer_idx following);
- ``edited``: a sentence dropped (not the last, which asks the question), the patient's age
  changed and one word swapped for another — all three at once where the question allows.

Reported: recall per kind (the record has a match against the evaluation set), the real
questions flagged (false positives: each listed with what matched; MedQA holds a few genuine
near-duplicates across its halves — same vignette, same answer — which are shown as such),
and pairs listed for review. Side by side in the same run, the ad-hoc methods in use today
(there is no decontamination step in the tool before this; open-r1 and open-thoughts keep
scripts): any shared 13-gram of the question (GPT-3 / open-r1), and a rapidfuzz ratio ≥ 95
of the question alone (open-thoughts / m1), with exact equality of the raw question as the
floor.

Scale: 30,000 training records against 20,000 evaluation questions, synthesised from the
real questions of each half (sentences of three questions combined, numbers perturbed,
another question's options), written as JSONL and checked with the same call the command
makes (reading included, duplicates of the training file included): wall and CPU time, with
the load average (the machine is shared). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from shared_data import shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")
SWAPS = {"patient": "individual", "man": "male", "woman": "female", "physician": "doctor", "shows": "reveals",
         "history": "past history", "pain": "discomfort", "because": "as", "following": "below", "most": "more"}


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip())


def reformatted(record: dict, rng: random.Random) -> dict:
    q = record["question"]
    q = q.upper() if rng.random() < 0.3 else q.lower() if rng.random() < 0.5 else q.title()
    q = q.replace(" ", "  ").replace(",", " ;").replace(".", " . ").replace("-", " ")
    texts = list(record["options"].values())
    rng.shuffle(texts)
    options = {f"({letter})": t.lower() for letter, t in zip("abcdefghij", texts)}
    answer_idx = "abcdefghij"[texts.index(record["options"][record["answer_idx"]])]
    return {"question": "  " + q + " ", "options": options, "answer_idx": answer_idx}


def edited(record: dict, rng: random.Random) -> dict:
    parts = sentences(record["question"])
    if len(parts) >= 3:
        del parts[rng.randrange(len(parts) - 1)]
    q = " ".join(parts)
    q = re.sub(r"\b(\d+)(-year-old)", lambda m: f"{int(m.group(1)) + rng.choice([-3, -2, 2, 3])}{m.group(2)}", q, count=1)
    words = [w for w in SWAPS if re.search(rf"\b{w}\b", q)]
    if words:
        w = rng.choice(words)
        q = re.sub(rf"\b{w}\b", SWAPS[w], q, count=1)
    return {"question": q, "options": record["options"], "answer": record["answer"], "answer_idx": record["answer_idx"]}


def baselines(train: list[dict], evals: list[dict]) -> dict[str, list[bool]]:
    """Today's ad-hoc methods: raw equality, any shared 13-gram, fuzzy ratio ≥ 95 of the question."""
    from rapidfuzz import fuzz, process

    from agent.runs.records import normalised

    def grams(text: str, n: int = 13) -> set:
        w = normalised(text).split()
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}

    raw = {e["question"] for e in evals}
    index: set = set().union(*(grams(e["question"]) for e in evals))
    choices = [e["question"].lower() for e in evals]
    return {
        "exact_raw": [t["question"] in raw for t in train],
        "any_13gram": [bool(grams(t["question"]) & index) for t in train],
        "fuzzy95_question": [process.extractOne(t["question"].lower(), choices, scorer=fuzz.ratio, score_cutoff=95) is not None
                             for t in train],
    }


def quality(rows: list[dict], planted_per: int, seed: int) -> dict:
    from agent.runs.overlap import check, read_sets

    rng = random.Random(seed)
    half = len(rows) // 2
    evals, real = rows[:half], rows[half:]
    chosen = rng.sample(range(half), 3 * planted_per)
    train, kinds = [], []
    for r in real:
        train.append({k: v for k, v in r.items() if k != "id"})
        kinds.append("real")
    for kind, block in zip(("verbatim", "reformatted", "edited"), (chosen[:planted_per], chosen[planted_per:2 * planted_per], chosen[2 * planted_per:])):
        for i in block:
            copy = dict(evals[i]) if kind == "verbatim" else reformatted(evals[i], rng) if kind == "reformatted" else edited(evals[i], rng)
            train.append({**copy, "meta_info": "planted"})
            kinds.append(kind)
    with tempfile.TemporaryDirectory() as tmp:
        eval_path, train_path = Path(tmp) / "medqa_eval.jsonl", Path(tmp) / "train.jsonl"
        eval_path.write_text("".join(json.dumps(e) + "\n" for e in evals))
        train_path.write_text("".join(json.dumps(t) + "\n" for t in train))
        result = check(read_sets([str(train_path)]), read_sets([str(eval_path)]))
    rows_out = list(result.rows())
    flagged = [bool(r["matches"]) for r in rows_out]
    report: dict = {"evaluation_questions": len(evals), "real_questions": len(real), "planted_per_kind": planted_per}
    for kind in ("verbatim", "reformatted", "edited"):
        hits = [f for f, k in zip(flagged, kinds) if k == kind]
        report[f"recall_{kind}"] = round(sum(hits) / len(hits), 4)
    real_rows = [(r, train[i]) for i, (r, k) in enumerate(zip(rows_out, kinds)) if k == "real"]
    false = [(r, t) for r, t in real_rows if r["matches"]]
    report["real_flagged"] = len(false)
    report["real_flagged_rate"] = round(len(false) / len(real_rows), 5)
    evals_by_id = {f"medqa_eval-{n}": e for n, e in enumerate(evals, start=1)}
    report["real_flagged_detail"] = [
        {"id": r["id"], "matches": [(m["eval_id"], m["method"], m["score"]) for m in r["matches"]],
         "answer": t["answer"], "eval_answer": evals_by_id[r["matches"][0]["eval_id"]]["answer"]} for r, t in false]
    report["real_for_review"] = sum(1 for r, _ in real_rows if r["review"] and not r["matches"])
    report["planted_methods"] = {}
    for kind in ("verbatim", "reformatted", "edited"):
        counts: dict[str, int] = {}
        for r, k in zip(rows_out, kinds):
            if k == kind:
                for m in dict.fromkeys(m["method"] for m in r["matches"]):
                    counts[m] = counts.get(m, 0) + 1
        report["planted_methods"][kind] = counts
    report["today"] = {}
    for name, hits in baselines(train, evals).items():
        side = {f"recall_{kind}": round(sum(h for h, k in zip(hits, kinds) if k == kind) / planted_per, 4)
                for kind in ("verbatim", "reformatted", "edited")}
        side["real_flagged"] = sum(h for h, k in zip(hits, kinds) if k == "real")
        report["today"][name] = side
    return report


def synthetic(rows: list[dict], count: int, rng: random.Random, prefix: str) -> list[dict]:
    """Questions made of three real ones' sentences, numbers perturbed, a fourth one's options."""
    pool = [sentences(r["question"]) for r in rows]
    made = []
    for n in range(count):
        a, b, c, d = (rng.randrange(len(rows)) for _ in range(4))
        parts = pool[a][: max(1, len(pool[a]) // 2)] + pool[b][len(pool[b]) // 3: 2 * len(pool[b]) // 3] + pool[c][-1:]
        text = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randrange(-9, 10)), " ".join(parts))
        made.append({"id": f"{prefix}{n}", "question": text, "options": rows[d]["options"],
                     "answer_idx": rows[d]["answer_idx"]})
    return made


def scale(rows: list[dict], train_count: int, eval_count: int, seed: int) -> dict:
    from agent.runs.overlap import check, read_sets

    rng = random.Random(seed)
    half = len(rows) // 2
    evals = synthetic(rows[:half], eval_count, rng, "e")
    train = synthetic(rows[half:], train_count, rng, "t")
    planted = rng.sample(range(eval_count), 300)
    for n, i in enumerate(planted):  # reformatted copies, to be found at scale too
        train[n] = {**reformatted({**evals[i], "answer": None}, rng), "id": f"copy{n}"}
    with tempfile.TemporaryDirectory() as tmp:
        eval_path, train_path = Path(tmp) / "eval.jsonl", Path(tmp) / "train.jsonl"
        eval_path.write_text("".join(json.dumps(e) + "\n" for e in evals))
        train_path.write_text("".join(json.dumps(t) + "\n" for t in train))
        load_before = os.getloadavg()
        wall, cpu = time.perf_counter(), time.process_time()
        result = check(read_sets([str(train_path)]), read_sets([str(eval_path)]))
        rows_out = list(result.rows())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    found = sum(1 for r in rows_out if r["id"].startswith("copy") and r["matches"])
    flagged_other = sum(1 for r in rows_out if not r["id"].startswith("copy") and r["matches"])
    return {"train_records": train_count, "eval_questions": eval_count, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "planted_found": f"{found}/300", "other_flagged": flagged_other,
            "duplicate_records": sum(1 for r in rows_out if r["duplicates"]),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--planted", type=int, default=150, help="copies planted per kind")
    parser.add_argument("--train", type=int, default=30_000)
    parser.add_argument("--eval", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    if not MEDQA.exists():
        print(json.dumps({"skipped": f"{MEDQA} is absent (the shared data directory beside the checkout)"}))
        return
    rows = [json.loads(line) for line in MEDQA.read_text().splitlines() if line.strip()]
    report = {"quality": quality(rows, args.planted, args.seed)}
    print(json.dumps(report["quality"], indent=1), file=sys.stderr)
    if not args.skip_scale:
        report["scale"] = scale(rows, args.train, args.eval, args.seed)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
