"""KG-only samples per minute on the HPO graph, first 200 MedQA questions, and where the time goes.

One command, about 1-3 minutes once the HPO graph is in the cache (the first run builds it,
about 30 s more). Runs the agent as `run_agent.py run` does (checkpoints, results file) at
concurrency 1 over ../shared/data/medqa/medqa_test.jsonl (skips with a message when absent),
under cProfile, and reports samples per minute (target ≥ 1,000; the issue measured 97 with
the code before this bench existed) and the share of the run's time spent in each node and
in the heaviest functions.

Today's method is not re-run here: it needs today's HPO index, whose build takes 4-7 minutes;
pass --baseline-root MAIN_CHECKOUT to build it in a temporary cache and measure it beside this
checkout (then expect 8-12 minutes). Profiling slows both sides alike; --no-profile gives the
plain rate. Timings on a shared machine are inflated. Last line: one JSON object.
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
from shared_data import shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")
NODES = ("extract", "map_entities", "find_paths", "prune", "generate", "verify")


def measure(records: int, profile: bool) -> dict:
    import asyncio
    import cProfile
    import pstats
    import time
    from itertools import islice

    from agent.config import Settings
    from agent.context import AgentContext
    from agent.runner import RunOptions, run_dataset
    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, open_kg
    from graphs.progress import Silent

    settings = Settings()
    loaded = open_kg(settings.kg_dir, Embedder(), Silent(), default_source=Source("hpo"))
    ctx = AgentContext(loaded.kg, loaded.index, loaded.index.embedder, settings)
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "medqa.jsonl"
        with open(MEDQA) as f:
            subset.write_text("".join(islice(f, records)))
        # a warm-up sample of its own, so model loading is not counted per sample
        warm = Path(tmp) / "warm.jsonl"
        warm.write_text(subset.read_text().splitlines(keepends=True)[0])
        asyncio.run(run_dataset(warm, Path(tmp) / "warm", ctx, RunOptions()))
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        summary = asyncio.run(run_dataset(subset, Path(tmp) / "run", ctx, RunOptions()))
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
    result = {"records": summary["records"], "counts": summary["counts"], "elapsed_s": round(elapsed, 1),
              "samples_per_minute": round(60 * summary["records"] / elapsed, 1)}
    if profiler:
        stats = pstats.Stats(profiler).stats
        total = sum(tt for _, _, tt, _, _ in stats.values())
        nodes = {}
        for (file, _, name), (_, _, _, cumulative, _) in stats.items():
            if name in NODES and f"{os.sep}agent{os.sep}" in file:
                nodes[name] = max(nodes.get(name, 0.0), cumulative)
        heaviest = sorted(stats.items(), key=lambda item: -item[1][2])[:12]
        result["share_of_cpu_by_node"] = {n: round(t / total, 3) for n, t in sorted(nodes.items(), key=lambda i: -i[1])}
        result["heaviest_functions_own_time"] = [
            {"function": f"{Path(file).name}:{name}", "share": round(tt / total, 3)} for (file, _, name), (_, _, tt, _, _) in heaviest
        ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--baseline-root", type=Path, default=None, help="also measure this checkout's code (today's)")
    parser.add_argument("--code-root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not MEDQA.exists():
        print(json.dumps({"skipped": f"{MEDQA} not found (needs ../shared/data/medqa)"}))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.measure:
        print(json.dumps(measure(args.records, not args.no_profile)))
        return
    now = measure(args.records, not args.no_profile)
    print(f"this checkout: {now}", file=sys.stderr)
    result = {"kg": "hpo", "now": now, "target_samples_per_minute": 1000}
    if args.baseline_root:
        with tempfile.TemporaryDirectory() as cache:
            flags = ["--no-profile"] if args.no_profile else []
            done = subprocess.run([sys.executable, __file__, "--measure", "--code-root", str(args.baseline_root),
                                   "--records", str(args.records), *flags], capture_output=True, text=True,
                                  env={**os.environ, "XDG_CACHE_HOME": cache})
            result["today"] = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {
                "failed": done.stderr[-1500:]}
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
