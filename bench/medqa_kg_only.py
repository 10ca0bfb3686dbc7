"""KG-only outcomes on real MedQA questions: accepted / rejected / with-path shares.

Runs the agent, exactly as `run_agent.py run` does, over the first N records of
../shared/data/medqa/medqa_test.jsonl on the HPO graph (built into the default cache
directory if needed). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared_data import shared_file  # noqa: E402
MEDQA = shared_file("medqa", "medqa_test.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--input", type=Path, default=MEDQA)
    parser.add_argument("--kg-dir", type=Path, default=None)
    args = parser.parse_args()
    if not args.input.exists():
        print(json.dumps({"skipped": f"{args.input} not found (needs ../shared/data/medqa)"}))
        return

    from agent.config import Settings
    from agent.context import AgentContext
    from agent.runner import RunOptions, run_dataset
    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, open_kg
    from graphs.progress import Silent

    settings = Settings(**({"kg_dir": args.kg_dir} if args.kg_dir else {}))
    loaded = open_kg(settings.kg_dir, Embedder(), Silent(), default_source=Source("hpo"))
    ctx = AgentContext(loaded.kg, loaded.index, loaded.index.embedder, settings)
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "medqa.jsonl"
        with open(args.input) as f:
            subset.write_text("".join(islice(f, args.records)))
        started = time.perf_counter()
        summary = asyncio.run(run_dataset(subset, Path(tmp) / "run", ctx, RunOptions()))
        elapsed = time.perf_counter() - started
        rows = [json.loads(line) for line in open(Path(tmp) / "run" / "results.jsonl")]
    first = Counter(r["attempts"][0]["correct"] for r in rows if r["attempts"])
    print(json.dumps({
        "kg": loaded.manifest.source.kind,
        "records": summary["records"],
        "accepted_share": summary["accepted_share"],
        "rejected_share": round(summary["counts"]["rejected"] / summary["records"], 4),
        "error_share": round(summary["counts"]["error"] / summary["records"], 4),
        "with_path_share": summary["with_path_share"],
        "accepted_on_first_attempt": first.get(True, 0),
        "mean_attempts": summary["mean_attempts"],
        "rejection_reasons": summary["rejection_reasons"],
        "mean_mapped_entities": round(sum(len(r["mappings"]) for r in rows) / len(rows), 2),
        "seconds_per_record": round(elapsed / len(rows), 3),
    }))


if __name__ == "__main__":
    main()
