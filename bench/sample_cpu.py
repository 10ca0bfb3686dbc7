"""A sample's CPU cost on the HPO graph, this checkout beside a baseline, on the same index.

One command, about 5 minutes on a loaded 2-core machine. Each code runs in its own process,
against the same HPO graph and entity index (the default cache, built if needed; the
baseline reads a copy, so it cannot touch this checkout's):

1. KG-only: ``--records`` MedQA records (after 2 that open the graph and load the model),
   one at a time: the agent process's CPU time per sample (user + system, every thread, so
   the transformer's passes count), the median wall time between results, and every result
   row, which must be the same for both codes (status, reasoning, paths, entities, mappings
   with their scores, verification, grounding, attempts);
2. an instant fake LLM (latency 0, in its own process, knowing the graph's names), as in
   ``bench/throughput.py``'s overhead phase: CPU time per sample and the median gap
   (target ≤ 25 ms on HPO). Each phase runs in a fresh process: neither starts with the
   vectors and lookups the other left in memory.

This checkout keeps the transformer's vectors of looked-up texts on disk across runs
(graphs.embedding.VectorCache), so it is measured three ways, each phase in a fresh process
with its own vector cache directory: ``cold`` (an empty cache: a first run), ``warm_other``
(a cache that a run over the next ``--records`` MedQA records filled: the names and common
terms seen, this run's own mentions mostly not) and ``warm_same`` (the same records run again).
Every way must give the same rows: a kept vector is the vector a new pass gives.

CPU time is the figure to compare on a shared machine: wall time waits for other work. The
baseline is a checkout (``--baseline-root``) or the tree of a git ref (``--baseline``,
default the commit before the per-sample speed work), extracted with shared_data.code_at.
Its index must be this checkout's format for the rows to be comparable: when the baseline
rebuilt its copy, the output says so. ``PYTHONHASHSEED`` is fixed for both, so the fake
LLM's replies (seeded by the request) do not vary between runs. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--code-root" in sys.argv:  # measure another checkout's code
    ROOT = Path(sys.argv[sys.argv.index("--code-root") + 1]).resolve()
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from shared_data import agent_module, code_at, run_context  # noqa: E402
from throughput import ServerProcess, load_records, timed_run, write_records  # noqa: E402

SPEED_BASELINE = "4ae5cf7"  # main before the exact search and the vector cache (the same index files)
COMPARED = ("status", "reasoning", "paths", "entities", "mappings", "verification", "grounding", "attempts", "error")


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def kg_only(kg_dir: Path, records: list[dict], tmp: Path, around=lambda run: run()) -> dict:
    """``around``: what the measured run is called in (bench/sample_profile.py profiles it)."""
    from agent.config import Settings

    runner = agent_module("runner")
    settings = run_context(Settings(kg_dir=kg_dir, offline=True))
    asyncio.run(runner.run_dataset(write_records(tmp / "warm.jsonl", records[:2]), tmp / "warm", settings,
                                   runner.RunOptions()))
    finished: list[float] = []
    options = runner.RunOptions(on_result=lambda row: finished.append(time.perf_counter()))
    started, cpu = time.perf_counter(), cpu_seconds()
    path = write_records(tmp / "kg-only.jsonl", records[2:])
    around(lambda: asyncio.run(runner.run_dataset(path, tmp / "kg-only", settings, options)))
    cpu = cpu_seconds() - cpu
    gaps = [b - a for a, b in zip([started] + finished, finished)]
    rows = [json.loads(line) for line in open(tmp / "kg-only" / "results.jsonl")]
    return {"cpu_ms_per_sample": round(1000 * cpu / len(rows), 1), "median_gap_ms": round(1000 * statistics.median(gaps), 1),
            "rows": {r["id"]: {k: r.get(k) for k in COMPARED} for r in rows}}


def instant_llm(kg_dir: Path, records: list[dict], tmp: Path, around=lambda run: run()) -> dict:
    from graphs.embedding import Embedder
    from graphs.kg_dir import open_kg
    from graphs.progress import Silent

    loaded = open_kg(kg_dir, Embedder(), Silent())
    vocabulary = tmp / "names.txt"
    vocabulary.write_text("\n".join(n for n in (loaded.kg.name(i) for i in loaded.kg.graph) if len(n) > 3))
    with ServerProcess(0.0, vocabulary) as server:
        timed_run(loaded, server.url, records[:3], tmp, "warm-llm", 1)
        cpu = cpu_seconds()
        run = around(lambda: timed_run(loaded, server.url, records[3:], tmp, "instant", 1))
        cpu = cpu_seconds() - cpu
    n = len(records) - 3
    return {"cpu_ms_per_sample": round(1000 * cpu / n, 1), "median_gap_ms": round(1000 * run["per_sample"], 1),
            "llm_calls_per_sample": round(run["summary"]["usage"]["llm_calls"] / n, 2)}


def measure(args) -> dict:
    """One phase in this process, so that neither starts with what the other encoded."""
    records, source = load_records(args.offset + 3 + max(args.records, args.llm_records) + (args.records if args.measure == "fill" else 0))
    records = records[args.offset:]
    if args.measure == "fill":  # a run over other records, filling the vector cache (not timed)
        with tempfile.TemporaryDirectory() as tmp:
            kg_only(args.kg_dir, records[2 + args.records :] or records, Path(tmp))
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        if args.measure == "kg_only":
            result = kg_only(args.kg_dir, records[: 2 + args.records], Path(tmp))
        else:
            result = instant_llm(args.kg_dir, records[: 3 + args.llm_records], Path(tmp))
    return {"records": source, **result, "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)]}


def manifest(kg_dir: Path) -> dict:
    data = json.loads((kg_dir / "manifest.json").read_text())
    return {k: data.get(k) for k in ("index_collection", "index_entries", "embedding_model", "created")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60, help="KG-only records measured")
    parser.add_argument("--llm-records", type=int, default=20, help="instant-LLM records measured")
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--kg-dir", type=Path, default=None, help="an HPO graph directory (default: the cache's)")
    parser.add_argument("--baseline-root", type=Path, default=None, help="a checkout of the code to compare with")
    parser.add_argument("--baseline", default=SPEED_BASELINE, help="git ref of the code to compare with ('' for none)")
    parser.add_argument("--code-root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=("kg_only", "instant_llm", "fill"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.measure:
        print(json.dumps(measure(args)))
        return

    from agent.config import default_kg_dir
    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, open_kg
    from graphs.progress import Silent

    kg_dir = args.kg_dir or default_kg_dir()
    open_kg(kg_dir, Embedder(), Silent(), default_source=None if args.kg_dir else Source("hpo"))  # built if needed

    def run_phase(root: Path, graph: Path, phase: str, vectors: Path, offset: int = args.offset) -> dict:
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        env = {k: v for k, v in env.items() if not k.startswith(("OPENAI_", "MEDREASON_"))}
        env["MEDREASON_VECTOR_CACHE"] = str(vectors)  # read by this checkout's Settings; older code ignores it
        done = subprocess.run([sys.executable, __file__, "--measure", phase, "--code-root", str(root),
                               "--kg-dir", str(graph), "--records", str(args.records),
                               "--llm-records", str(args.llm_records), "--offset", str(offset)],
                              capture_output=True, text=True, env=env)
        if done.returncode:
            raise SystemExit(f"measuring {root} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def child(root: Path, graph: Path, vectors: Path) -> dict:
        return {phase: run_phase(root, graph, phase, vectors / phase) for phase in ("kg_only", "instant_llm")}

    work = Path(tempfile.mkdtemp(prefix="sample-cpu-"))
    now = child(ROOT, kg_dir, work / "now")
    now["kg_only_warm_same"] = run_phase(ROOT, kg_dir, "kg_only", work / "now" / "kg_only")
    run_phase(ROOT, kg_dir, "fill", work / "other")
    now["kg_only_warm_other"] = run_phase(ROOT, kg_dir, "kg_only", work / "other")
    now["instant_llm_warm_same"] = run_phase(ROOT, kg_dir, "instant_llm", work / "now" / "instant_llm")
    cold_rows = now["kg_only"]["rows"]
    now["rows_identical_cold_and_warm"] = all(now[w].pop("rows") == cold_rows for w in ("kg_only_warm_same", "kg_only_warm_other"))
    print(f"this checkout: {json.dumps({k: v for k, v in now['kg_only'].items() if k != 'rows'})} {now['instant_llm']}",
          file=sys.stderr)
    result = {"kg_dir": str(kg_dir), "now": now}
    with tempfile.TemporaryDirectory() as tmp:
        base_root = args.baseline_root or (code_at(args.baseline, Path(tmp) / "baseline") if args.baseline else None)
        if base_root:
            copy = Path(tmp) / "kg"
            shutil.copytree(kg_dir, copy, symlinks=True)
            today = child(base_root, copy, work / "baseline")
            rows_now, rows_then = now["kg_only"].pop("rows"), today["kg_only"].pop("rows")
            differing = sorted(i for i in rows_now.keys() | rows_then.keys() if rows_now.get(i) != rows_then.get(i))
            result.update({
                "baseline": str(args.baseline_root or args.baseline), "today": today,
                "same_index": manifest(copy) == manifest(kg_dir),
                "kg_only_rows_identical": not differing, "kg_only_rows_differing": differing[:20],
                "cpu_ratio_kg_only": round(now["kg_only"]["cpu_ms_per_sample"] / today["kg_only"]["cpu_ms_per_sample"], 2),
                "cpu_ratio_instant_llm": round(now["instant_llm"]["cpu_ms_per_sample"]
                                               / today["instant_llm"]["cpu_ms_per_sample"], 2),
            })
            print(f"baseline: {today['kg_only']} {today['instant_llm']}", file=sys.stderr)
        else:
            now["kg_only"].pop("rows")
    shutil.rmtree(work, ignore_errors=True)
    result["targets"] = {"kg_only_cpu_ms_per_sample_hpo": 45, "instant_llm_overhead_ms_hpo": 25}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
