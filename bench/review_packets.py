"""Blind review of accepted samples: packets a reviewer reads without our scores, and the tally.

Issue 24 judges `accepted` the way users do: a reviewer acting as physician reads the
question, its options, the gold answer and the reasoning, never the tool's scores, statuses
or which code made it, and labels each SOUND / PARTLY / UNSOUND. So ``make`` pools the
accepted rows of several runs (e.g. the same questions before and after a change), keeps one
packet per distinct (question, reasoning), shuffles them under opaque ids, and writes the
key apart; ``tally`` reads the reviewer's verdicts back through the key, run by run.

    python bench/review_packets.py make RUN_DIR [RUN_DIR ...] --out DIR [--seed 0]
        DIR/packets.md   what the reviewer reads (nothing else)
        DIR/key.json     packet id -> the (run, sample id) rows it stands for; and each run's totals
    python bench/review_packets.py tally DIR VERDICTS.jsonl
        VERDICTS.jsonl: one {"packet": "P007", "verdict": "SOUND" | "PARTLY" | "UNSOUND", "why": "..."} a line

The rubric (issue 24): SOUND — the steps link the question's key findings to the answer
through medically valid and relevant relations; a clinician would accept it as a (possibly
terse) rationale. PARTLY — at least one valid, relevant link; other steps route through
irrelevant mediators or wrong senses. UNSOUND — no valid, relevant rationale, or something
medically false.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

VERDICTS = ("SOUND", "PARTLY", "UNSOUND")

RUBRIC = """\
Label each packet SOUND, PARTLY or UNSOUND, judging the reasoning as a physician would:
- SOUND: the steps link the question's key findings to the answer through medically valid and
  relevant relations; a clinician would accept it as a (possibly terse) rationale.
- PARTLY: at least one valid, relevant link; other steps route through irrelevant mediators or
  wrong senses.
- UNSOUND: no valid, relevant rationale, or something medically false.
"""


def _rows(run_dir: Path) -> list[dict]:
    rows = []
    with open(run_dir / "results.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def make(run_dirs: list[Path], out: Path, seed: int) -> dict:
    packets: dict[tuple[str, str], list[list[str]]] = {}
    shown: dict[tuple[str, str], dict] = {}
    totals = {}
    for run_dir in run_dirs:
        rows = _rows(run_dir)
        accepted = [r for r in rows if r.get("status") == "accepted"]
        totals[str(run_dir)] = {"rows": len(rows), "accepted": len(accepted)}
        for row in accepted:
            key = (row["question"], row["reasoning"])
            packets.setdefault(key, []).append([str(run_dir), row["id"]])
            shown[key] = row
    order = sorted(packets)
    random.Random(seed).shuffle(order)
    out.mkdir(parents=True, exist_ok=True)
    key_file = {"runs": totals, "packets": {}}
    lines = ["# Blind review packets", "", RUBRIC]
    for number, key in enumerate(order, 1):
        packet = f"P{number:03d}"
        key_file["packets"][packet] = packets[key]
        row = shown[key]
        options = "\n".join(f"  {letter}. {text}" for letter, text in sorted(row.get("options", {}).items()))
        lines += [
            f"## {packet}", "", "**Question.** " + row["question"], "", "**Options.**", options, "",
            f"**Gold answer.** {row.get('answer_idx') or ''} {row['answer']}".replace("  ", " "), "",
            "**Reasoning.**", "", "```", row["reasoning"].strip(), "```", "",
        ]
    (out / "packets.md").write_text("\n".join(lines), encoding="utf-8")
    (out / "key.json").write_text(json.dumps(key_file, indent=1), encoding="utf-8")
    return {"packets": len(order), "runs": totals}


def tally(out: Path, verdicts_file: Path) -> dict:
    key = json.loads((out / "key.json").read_text(encoding="utf-8"))
    verdicts = {}
    with open(verdicts_file, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                v = json.loads(line)
                label = v["verdict"].strip().upper()
                if label not in VERDICTS:
                    raise SystemExit(f"{verdicts_file}: packet {v.get('packet')}: verdict {v['verdict']!r} is not one of {VERDICTS}")
                verdicts[v["packet"]] = label
    missing = sorted(set(key["packets"]) - set(verdicts))
    per_run = {run: Counter() for run in key["runs"]}
    for packet, rows in key["packets"].items():
        for run, _ in rows:
            per_run[run][verdicts.get(packet, "MISSING")] += 1
    result = {"missing_verdicts": missing, "runs": {}}
    for run, counts in per_run.items():
        totals = key["runs"][run]
        accepted = totals["accepted"]
        result["runs"][run] = {
            **totals,
            "accepted_share": round(accepted / totals["rows"], 4) if totals["rows"] else None,
            **{v.lower(): counts[v] for v in VERDICTS},
            "sound_share": round(counts["SOUND"] / accepted, 3) if accepted else None,
            "unsound_share": round(counts["UNSOUND"] / accepted, 3) if accepted else None,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("run_dirs", nargs="+", type=Path)
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("tally")
    t.add_argument("out", type=Path)
    t.add_argument("verdicts", type=Path)
    args = parser.parse_args()
    result = make(args.run_dirs, args.out, args.seed) if args.command == "make" else tally(args.out, args.verdicts)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
