"""KG-only outcomes on real MedQA questions, this tree's scoring beside a baseline's.

Runs ``run_agent.py run --offline`` exactly as a user would, over records
``--offset`` .. ``--offset + --records`` of ../shared/data/medqa/medqa_test.jsonl on the
HPO graph (built into the cache directory if needed), twice in the same invocation: with
this tree's code and with the code of ``--baseline`` (a git ref, default the commit issue
12 measured), extracted with ``git archive``. The baseline reads its own graph directory
(``--baseline-kg-dir``, default ``kg/hpo-<ref>`` beside the default graph, built by its own
code when missing: the cache format has changed since, and sharing one directory would
have each side rebuild it for the other).

Per side: accepted share, with-path share (a sample kept some path), scorable share (the
verifier found KG evidence for some option), the gold option's win rate among scorable
questions (the gold option alone scored highest), the failure reasons, the mean relevance of
the accepted samples' paths (docs/quality.md) and the time per record. ``--show N`` prints N accepted samples' reasoning from this tree first.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from itertools import islice
from pathlib import Path

import platformdirs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared_data import BASELINE, code_at, shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")


def run_tree(tree: Path, records: Path, out: Path, kg_dir: Path | None) -> tuple[list[dict], float]:
    """Run the CLI of ``tree`` over ``records``; its result rows and seconds per record."""
    command = [sys.executable, "run_agent.py", "run", str(records), "--out", str(out), "--offline"]
    if kg_dir:
        command += ["--kg-dir", str(kg_dir)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    results = out / "results.jsonl"
    if not results.exists():
        raise SystemExit(f"{tree}: run failed ({done.returncode}): {done.stderr[-2000:]}")
    rows = [json.loads(line) for line in results.open()]
    return rows, elapsed / max(1, len(rows))


def outcomes(rows: list[dict], seconds: float) -> dict:
    n = len(rows)
    verdicts = [r.get("verification") or {} for r in rows]
    scorable = [v for v in verdicts if any((v.get("scores") or {}).values())]
    wins = sum(1 for v in scorable if v.get("correct"))
    reasons = Counter((r.get("verification") or {}).get("reason") or r["status"] for r in rows if r["status"] != "accepted")
    accepted = [r.get("relevance") for r in rows if r["status"] == "accepted"]
    scored = [x for x in accepted if x is not None]
    return {
        "accepted_share": round(sum(r["status"] == "accepted" for r in rows) / n, 4),
        "with_path_share": round(sum(1 for r in rows if r["paths"]) / n, 4),
        "scorable_share": round(len(scorable) / n, 4),
        "win_rate": round(wins / len(scorable), 4) if scorable else 0.0,
        "failure_reasons": dict(reasons.most_common()),
        # the mean relevance of the accepted samples' paths (None where the code records none)
        "accepted_relevance_mean": round(sum(scored) / len(scored), 4) if scored else None,
        "mean_attempts": round(sum(len(r["attempts"]) for r in rows) / n, 3),
        "seconds_per_record": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--input", type=Path, default=MEDQA)
    parser.add_argument("--kg-dir", type=Path, default=None)
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the scoring to compare with ('' for none)")
    parser.add_argument("--baseline-kg-dir", type=Path, default=None,
                        help="the baseline's graph directory (default: kg/hpo-<ref> in the cache)")
    parser.add_argument("--show", type=int, default=0, help="print this many accepted samples' reasoning")
    parser.add_argument("--keep", type=Path, default=None, help="write this tree's result rows here")
    args = parser.parse_args()
    if not args.input.exists():
        print(json.dumps({"skipped": f"{args.input} not found (needs ../shared/data/medqa)"}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "medqa.jsonl"
        with args.input.open() as f:
            subset.write_text("".join(islice(f, args.offset, args.offset + args.records)))
        rows, seconds = run_tree(ROOT, subset, Path(tmp) / "new", args.kg_dir)
        if args.baseline:
            base_kg = args.baseline_kg_dir or platformdirs.user_cache_path("medreason-agent") / "kg" / f"hpo-{args.baseline}"
            base = code_at(args.baseline, Path(tmp) / "baseline")
            base_rows, base_seconds = run_tree(base, subset, Path(tmp) / "old", base_kg)
    for r in [r for r in rows if r["status"] == "accepted"][: args.show]:
        print(f"--- {r['id']} (gold {r['answer_idx']}. {r['answer']}; scores {r['verification']['scores']})")
        print(r["reasoning"])
    if args.keep:
        args.keep.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(json.dumps({
        "records": f"{args.offset + 1}-{args.offset + len(rows)}",
        "new": outcomes(rows, seconds),
        **({f"baseline {args.baseline}": outcomes(base_rows, base_seconds)} if args.baseline else {}),
    }))


if __name__ == "__main__":
    main()
