"""KG-only samples per minute on the HPO graph, first 200 MedQA questions, and where the time goes.

One command, 2-7 minutes once the HPO graph is in the cache (the first run builds it,
about 30 s more). Runs the agent as `run_agent.py run` does (checkpoints, results file) at
concurrency 1 over ../shared/data/medqa/medqa_test.jsonl (skips with a message when absent),
and reports samples per minute (target ≥ 1,000; the issue measured 97 with
the code before this bench existed) and where the time goes: milliseconds per sample in
each node, and outside them (checkpoints, results file, event loop).

Today's method is not re-run here: it needs today's HPO index, whose build takes 4-7 minutes;
pass --baseline-root MAIN_CHECKOUT to build it in a temporary cache and measure it beside this
checkout (then expect 8-12 minutes). Timings on a shared machine are inflated. Last line: one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if "--code-root" in sys.argv:
    ROOT = Path(sys.argv[sys.argv.index("--code-root") + 1]).resolve()
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from shared_data import agent_module, run_context, shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")
NODES = ("extract", "map_entities", "find_paths", "prune", "generate", "verify")


def timed_nodes() -> dict[str, float]:
    """Wrap the agent's node functions so that each one's wall time is summed by name.

    Nodes run in worker threads (cProfile sees only the event loop's thread), and at
    concurrency 1 one node runs at a time, so wall time per node is its cost.
    """
    import functools
    import threading
    import time

    nodes = agent_module("nodes")

    spent: dict[str, float] = {}
    lock = threading.Lock()
    for name in NODES:
        original = getattr(nodes, name)

        @functools.wraps(original)
        def timed(*args, _original=original, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                with lock:
                    spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - started

        setattr(nodes, name, timed)
    return spent


def measure(records: int) -> dict:
    import asyncio
    import time
    from itertools import islice

    from agent.config import Settings
    RunOptions, run_dataset = agent_module("runner").RunOptions, agent_module("runner").run_dataset

    ctx = run_context(Settings())
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "medqa.jsonl"
        with open(MEDQA) as f:
            subset.write_text("".join(islice(f, records)))
        # a warm-up sample of its own, so model loading is not counted per sample
        warm = Path(tmp) / "warm.jsonl"
        warm.write_text(subset.read_text().splitlines(keepends=True)[0])
        asyncio.run(run_dataset(warm, Path(tmp) / "warm", ctx, RunOptions()))
        spent = timed_nodes()
        started = time.perf_counter()
        summary = asyncio.run(run_dataset(subset, Path(tmp) / "run", ctx, RunOptions()))
        elapsed = time.perf_counter() - started
    in_nodes = sum(spent.values())
    return {
        "records": summary["records"], "counts": summary["counts"], "elapsed_s": round(elapsed, 1),
        "samples_per_minute": round(60 * summary["records"] / elapsed, 1),
        "ms_per_sample_by_node": {n: round(1000 * t / summary["records"], 1) for n, t in sorted(spent.items(), key=lambda i: -i[1])},
        "ms_per_sample_outside_nodes": round(1000 * (elapsed - in_nodes) / summary["records"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--baseline-root", type=Path, default=None, help="also measure this checkout's code (today's)")
    parser.add_argument("--code-root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not MEDQA.exists():
        print(json.dumps({"skipped": f"{MEDQA} not found (needs ../shared/data/medqa)"}))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.measure:
        print(json.dumps(measure(args.records)))
        return
    now = measure(args.records)
    print(f"this checkout: {now}", file=sys.stderr)
    result = {"kg": "hpo", "now": now, "target_samples_per_minute": 1000}
    if args.baseline_root:
        with tempfile.TemporaryDirectory() as cache:
            done = subprocess.run([sys.executable, __file__, "--measure", "--code-root", str(args.baseline_root),
                                   "--records", str(args.records)], capture_output=True, text=True,
                                  env={**os.environ, "XDG_CACHE_HOME": cache})
            result["today"] = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {
                "failed": done.stderr[-1500:]}
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
