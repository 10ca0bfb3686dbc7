"""LLM calls and tokens per sample against the fake OpenAI-compatible server, beside the
reference MedReason pipeline's call pattern.

Runs N MedQA records (../shared/data/medqa) on the HPO graph twice: with one attempt (the
first attempt's cost) and with the default retries. The reference pipeline makes one call
to extract, one per ambiguous entity, one to reformat, one per path group to prune, one to
generate, one to answer and one to judge; its count is estimated per sample from the same
run's ambiguous mentions and path groups. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared_data import shared_file  # noqa: E402
MEDQA = shared_file("medqa", "medqa_test.jsonl")


def run(records: Path, out: Path, loaded, server_url: str, **settings) -> list[dict]:
    from agent.config import Settings
    from agent.context import AgentContext
    from agent.llm import make_llm
    from agent.runner import RunOptions, run_dataset

    config = Settings(kg_dir=loaded.path, model="fake", base_url=server_url, api_key="k", **settings)
    ctx = AgentContext(loaded.kg, loaded.index, loaded.index.embedder, config, make_llm(config))
    asyncio.run(run_dataset(records, out, ctx, RunOptions(concurrency=4)))
    return [json.loads(line) for line in open(out / "results.jsonl")]


def per_sample(rows: list[dict], key: str) -> float:
    return round(statistics.mean(r["usage"][key] for r in rows), 2) if rows else 0.0


def reference_calls(row: dict) -> int:
    ambiguous = sum(1 for m in row["mappings"] if m["method"] == "llm")
    groups = len({(p["nodes"][0], p["nodes"][-1]) for p in row["paths"]})
    return 1 + ambiguous + 1 + groups + 1 + 1 + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--kg-dir", type=Path, default=None)
    args = parser.parse_args()
    if not MEDQA.exists():
        print(json.dumps({"skipped": f"{MEDQA} not found (needs ../shared/data/medqa)"}))
        return
    from agent.config import Settings
    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, open_kg
    from graphs.progress import Silent
    from tests.fake_llm import FakeBrain, FakeOpenAIServer

    kg_dir = args.kg_dir or Settings().kg_dir
    loaded = open_kg(kg_dir, Embedder(), Silent(), default_source=Source("hpo"))
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(FakeBrain()) as server:
        records = Path(tmp) / "medqa.jsonl"
        with open(MEDQA) as f:
            records.write_text("".join(islice(f, args.records)))
        first = run(records, Path(tmp) / "first", loaded, server.url, max_attempts=1)
        full = run(records, Path(tmp) / "full", loaded, server.url)
    accepted_first = [r for r in first if r["status"] == "accepted"]
    accepted = [r for r in full if r["status"] == "accepted"]
    print(json.dumps({
        "records": len(first),
        "kg": loaded.manifest.source.kind,
        "first_attempt": {
            "accepted": len(accepted_first),
            "calls_per_sample": per_sample(first, "llm_calls"),
            "calls_per_accepted_sample": per_sample(accepted_first, "llm_calls"),
            "max_calls_accepted_sample": max((r["usage"]["llm_calls"] for r in accepted_first), default=0),
            "input_tokens_per_sample": per_sample(first, "input_tokens"),
            "output_tokens_per_sample": per_sample(first, "output_tokens"),
        },
        "with_retries": {
            "accepted": len(accepted),
            "calls_per_sample": per_sample(full, "llm_calls"),
            "calls_per_accepted_sample": per_sample(accepted, "llm_calls"),
            "mean_attempts": round(statistics.mean(len(r["attempts"]) or 1 for r in full), 2),
            "input_tokens_per_sample": per_sample(full, "input_tokens"),
            "output_tokens_per_sample": per_sample(full, "output_tokens"),
        },
        "reference_calls_per_accepted_sample_estimate": round(
            statistics.mean(reference_calls(r) for r in accepted_first), 2) if accepted_first else None,
        "target_calls_per_accepted_sample_first_attempt": 5,
    }))


if __name__ == "__main__":
    main()
