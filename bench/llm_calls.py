"""LLM calls, repairs and failures per sample against a strict fake OpenAI server that answers
like real models do, for this code and, side by side in the same run, for another git ref
(default ``main``: today's behaviour).

The server (tests/fake_llm.py) refuses every request that breaks OpenAI's chat-completions
rules with HTTP 400, and answers with the issue's mix (``MISBEHAVING``): 5% malformed tool
arguments, 10% schema misses, about half the answers from a "reasoning model" (a think
block in the content, or ``reasoning_content`` beside it), fenced JSON and prose around it
in text mode, verbose letters, parallel tool calls while exploring, and a model wrong a
fifth of the time. N MedQA records (../shared/data/medqa) run on the HPO graph in both
structured-output modes (``tools`` and ``text``), once with one attempt (the first
attempt's cost) and once with the default retries. Each code runs in its own process, on
the same records against the same server; figures are counted on the server side too
(requests, 400s, repair requests), so they hold whatever the code reports of itself.
Timing is not measured. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared_data import BASELINE, code_at, shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")

# Runs one code tree's agent over the records: argv = records, out root, server url, runs as JSON.
DRIVER = """
import asyncio, json, sys
from pathlib import Path
from agent.config import Settings
from shared_data import agent_module, run_context
RunOptions, run_dataset = agent_module("runner").RunOptions, agent_module("runner").run_dataset

records, out, url, runs = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
for name, settings in runs.items():
    input()  # the bench notes the server's counters before each run
    config = Settings(model="fake", base_url=url, api_key="k", llm_max_retries=0, **settings)
    asyncio.run(run_dataset(records, out / name, run_context(config), RunOptions(concurrency=4)))
    print(f"@finished {name}", flush=True)
"""

RUNS = {
    f"{mode}_{attempts}": {"structured_output": mode, **({"max_attempts": 1} if attempts == "first_attempt" else {})}
    for mode in ("tools", "text") for attempts in ("first_attempt", "with_retries")
}


def run_code(code: Path, records: Path, out: Path, brain, url: str) -> dict[str, dict]:
    """Every run of ``RUNS`` with the agent in ``code``; what the server saw in each."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(code), str(ROOT / "bench"))), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(records), str(out), url, json.dumps(RUNS)],
                            cwd=code, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = {}
    for name in RUNS:
        before = len(brain.requests), len(brain.violations)
        proc.stdin.write("\n")
        proc.stdin.flush()
        while (line := proc.stdout.readline()) and line.strip() != f"@finished {name}":
            pass
        if not line:
            raise SystemExit(f"the agent in {code} stopped during {name} (exit {proc.wait()})")
        seen[name] = {"requests": brain.requests[before[0]:], "violations": brain.violations[before[1]:]}
    proc.stdin.close()
    proc.wait(timeout=60)
    return seen


def is_repair(body: dict) -> bool:
    """A structured or text request that asks again after an unusable answer (exploration
    rounds, which also carry tool messages, are not repairs)."""
    tools = [t["function"]["name"] for t in body.get("tools", [])]
    return "lookup_entity" not in tools and len(body["messages"]) > 1


def figures(rows: list[dict], server: dict) -> dict:
    n = len(rows)
    accepted = [r for r in rows if r["status"] == "accepted"]
    errors = [r for r in rows if r["status"] == "error"]
    requests = server["requests"]
    return {
        "records": n,
        "accepted": len(accepted),
        "rejected": sum(1 for r in rows if r["status"] == "rejected"),
        "error_rows": len(errors),
        "error_rate": round(len(errors) / n, 3) if n else 0.0,
        "protocol_violations": len(server["violations"]),
        "requests": len(requests),
        "requests_per_sample": round(len(requests) / n, 2) if n else 0.0,
        "calls_reported": sum(r["usage"]["llm_calls"] for r in rows),
        "repairs_per_sample": round(sum(map(is_repair, requests)) / n, 2) if n else 0.0,
        "calls_per_accepted_sample": round(statistics.mean(r["usage"]["llm_calls"] for r in accepted), 2) if accepted else None,
        "calls_per_accepted_sample_without_repairs": round(statistics.mean(
            r["usage"]["llm_calls"] - r["usage"].get("repairs", 0) for r in accepted), 2) if accepted else None,
        "mean_attempts": round(statistics.mean(len(r["attempts"]) or 1 for r in rows), 2) if rows else 0.0,
        "rejected_for": dict(Counter((r["verification"] or {}).get("reason") for r in rows if r["status"] == "rejected")),
        "error_kinds": sorted({(r["error"] or "")[:90] for r in errors})[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--medqa", type=Path, default=MEDQA, help="MedQA records (JSONL)")
    parser.add_argument("--baseline", default=BASELINE, help="git ref whose code is measured side by side ('' for none)")
    args = parser.parse_args()
    if not args.medqa.exists():
        print(json.dumps({"skipped": f"{args.medqa} not found (needs ../shared/data/medqa, or --medqa)"}))
        return
    from dataclasses import replace

    from agent.config import Settings
    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, open_kg
    from graphs.progress import Silent
    from tests.fake_llm import MISBEHAVING, FakeBrain, FakeOpenAIServer

    # The fake model knows the graph's names (and types), as a model knows medical terms.
    kg = open_kg(Settings().kg_dir, Embedder(), Silent(), default_source=Source("hpo")).kg
    quirks = replace(MISBEHAVING, seed=7)
    brain = FakeBrain({kg.name(n): kg.node(n).type for n in kg.graph}, quirks)
    del kg
    codes = {"this": ROOT}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(brain) as server:
        tmp = Path(tmp)
        if args.baseline:
            codes[f"baseline ({args.baseline})"] = code_at(args.baseline, tmp / "baseline")
        records = tmp / "medqa.jsonl"
        with open(args.medqa) as f:
            records.write_text("".join(islice(f, args.records)))
        report = {}
        for label, code in codes.items():
            seen = run_code(code, records, tmp / "out" / label.split()[0], brain, server.url)
            report[label] = {
                name: figures([json.loads(line) for line in open(tmp / "out" / label.split()[0] / name / "results.jsonl")],
                              seen[name])
                for name in RUNS
            }
    this = report["this"]
    print(json.dumps({
        "kg": "hpo",
        "quirks": {k: v for k, v in vars(quirks).items() if v},
        **report,
        "targets": {
            "protocol_violations": 0, "error_rate_max": 0.02, "calls_per_accepted_sample_first_attempt_max": 5,
            "met": all(this[name]["protocol_violations"] == 0 and this[name]["error_rate"] <= 0.02 for name in RUNS)
            and all((this[f"{mode}_first_attempt"]["calls_per_accepted_sample"] or 0) <= 5 for mode in ("tools", "text")),
        },
    }))


if __name__ == "__main__":
    main()
