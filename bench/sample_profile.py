"""Where a sample's CPU goes, function by function, this checkout beside a baseline on one index.

One command, about 5 minutes on a loaded 2-core machine. For each code (this checkout, and
the tree of ``--baseline``, default main before this round's per-sample work) and each mode
(KG-only, and an instant fake LLM in its own process, both as ``bench/sample_cpu.py`` runs
them), one process runs the records to fill a vector cache (so the transformer's re-ranking,
the entity lookup's own cost, is out of the figures: what remains is the rest of the
per-sample cost), then a fresh process runs them again with that cache, py-spy attached to
it for the measured run only (not the opening and warm-up records): every thread of the
process is sampled (LangGraph runs the nodes in worker threads, aiosqlite writes checkpoints
in its own), idle threads left out.

Per function: its inclusive active time per sample (samples in which it is on a thread's
stack, divided by the sampling rate and the number of records), so nested functions overlap;
beside it the process's CPU time per sample (user + system, every thread) and the load
average. A thread waiting for the GIL counts as active, so on a loaded machine the per-function
times add up to more than the CPU time: compare the two codes' columns, measured in the same
run, and the CPU time. Both codes' KG-only rows must be identical (every field
``bench/sample_cpu.py`` compares). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--code-root" in sys.argv:  # measure another checkout's code
    ROOT = Path(sys.argv[sys.argv.index("--code-root") + 1]).resolve()
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from shared_data import code_at  # noqa: E402

PER_SAMPLE_BASELINE = "ce75718"  # main before this round's per-sample work (the same index files)
RATE = 250  # samples a second, per thread
# The functions a sample's cost is read by (bench output: these first, then the heaviest others).
WATCHED = (
    "Pregel.astream", "_delegated.<locals>.node", "extract", "scan_mentions", "_is_specific", "nodes_named",
    "KnowledgeGraph.nodes_named", "normalize", "KnowledgeGraph.nodes_reworded", "map_entities", "exact_or_nearest",
    "find_paths", "connect", "ranked_paths", "described", "relevance", "prune", "generate", "verify",
    "option_support", "ground_reasoning", "AsyncSqliteSaver.aput", "AsyncSqliteSaver.aput_writes",
    "JsonPlusSerializer.dumps_typed", "_connection_worker_thread", "EntityIndex.search", "StaticEncoder.encode",
    "ChatEndpoint.invoke", "write_result",
)


def profiled(run, out: Path):
    """``run()`` with py-spy attached to this process, sampling every thread into ``out``."""
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(os.getpid()), "--rate", str(RATE), "--format", "raw",
                            "--nonblocking", "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches
    try:
        return run()
    finally:
        spy.send_signal(signal.SIGINT)
        _, err = spy.communicate(timeout=120)
        if not out.exists():
            raise SystemExit(f"py-spy wrote no profile: {err.decode()[-500:]}")


def per_function(raw: Path, samples: int) -> dict[str, float]:
    """Inclusive active milliseconds per sample of each function (file and line dropped)."""
    inclusive: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        names = {re.sub(r" \(.*\)$", "", frame) for frame in stack.split(";")}
        for name in names:
            inclusive[name] += int(count)
    return {name: round(1000 * n / RATE / samples, 2) for name, n in inclusive.most_common()}


def measure(args) -> dict:
    """One mode in this process (its vector cache filled by a ``fill`` process over the same
    records, so the transformer's passes are out of the figures)."""
    from sample_cpu import instant_llm, kg_only
    from throughput import load_records

    warm = 2 if args.measure.startswith("kg_only") else 3
    records, _ = load_records(args.offset + warm + args.records)
    records = records[args.offset :]
    with tempfile.TemporaryDirectory() as tmp:
        if args.measure.startswith("fill"):
            (kg_only if args.measure == "fill_kg_only" else instant_llm)(args.kg_dir, records, Path(tmp))
            return {}
        load = os.getloadavg()[0]
        phase = kg_only if args.measure == "kg_only" else instant_llm
        result = phase(args.kg_dir, records, Path(tmp), around=lambda run: profiled(run, Path(tmp) / "profile.txt"))
        functions = per_function(Path(tmp) / "profile.txt", args.records)
        if args.keep_profiles:
            args.keep_profiles.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(tmp) / "profile.txt", args.keep_profiles / f"{args.label}-{args.measure}.txt")
    return {"cpu_ms_per_sample": result["cpu_ms_per_sample"],
            "rows": result.get("rows", {}),
            "functions": functions, "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60, help="records per mode")
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--kg-dir", type=Path, default=None, help="an HPO graph directory (default: the cache's)")
    parser.add_argument("--baseline", default=PER_SAMPLE_BASELINE, help="git ref of the code to compare with ('' for none)")
    parser.add_argument("--baseline-root", type=Path, default=None, help="a checkout of the code to compare with")
    parser.add_argument("--top", type=int, default=25, help="other functions shown, heaviest first")
    parser.add_argument("--keep-profiles", type=Path, default=None,
                        help="a directory to keep py-spy's raw profiles in (CODE-MODE.txt, for flamegraph.pl)")
    parser.add_argument("--only", choices=("kg_only", "instant_llm"), default=None, help="measure one mode")
    parser.add_argument("--code-root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--label", default="now", help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=("kg_only", "instant_llm", "fill_kg_only", "fill_instant_llm"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if shutil.which("py-spy") is None:
        raise SystemExit("bench/sample_profile.py needs py-spy (pip install py-spy)")
    if args.measure:
        print(json.dumps(measure(args)))
        return

    from agent.config import default_kg_dir
    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, open_kg
    from graphs.progress import Silent

    kg_dir = args.kg_dir or default_kg_dir()
    open_kg(kg_dir, Embedder(), Silent(), default_source=None if args.kg_dir else Source("hpo"))  # built if needed

    def run_mode(name: str, root: Path, mode: str, vectors: Path) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDREASON_"))}
        env.update(PYTHONHASHSEED="0", MEDREASON_VECTOR_CACHE=str(vectors))
        keep = ["--keep-profiles", str(args.keep_profiles.resolve()), "--label", name] if args.keep_profiles else []
        done = subprocess.run([sys.executable, __file__, "--measure", mode, "--code-root", str(root), *keep,
                               "--kg-dir", str(kg_dir), "--records", str(args.records), "--offset", str(args.offset)],
                              capture_output=True, text=True, env=env)
        if done.returncode:
            raise SystemExit(f"measuring {root} ({mode}) failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    work = Path(tempfile.mkdtemp(prefix="sample-profile-"))
    codes = {"now": ROOT}
    if args.baseline_root or args.baseline:
        codes["baseline"] = args.baseline_root or code_at(args.baseline, work / "baseline-code")
    result: dict = {"kg_dir": str(kg_dir), "baseline": str(args.baseline_root or args.baseline) or None,
                    "records": args.records}
    for mode in (args.only,) if args.only else ("kg_only", "instant_llm"):
        for name, root in codes.items():
            run_mode(name, root, f"fill_{mode}", work / name / mode)
        measured = {name: run_mode(name, root, mode, work / name / mode) for name, root in codes.items()}
        rows = {name: m.pop("rows") for name, m in measured.items()}
        functions = {name: m.pop("functions") for name, m in measured.items()}
        shown = [f for f in WATCHED if any(f in fs for fs in functions.values())]
        shown += [f for f in functions["now"] if f not in shown and not f.startswith(("<module>", "_"))][: args.top]
        print(f"\n{mode}: " + "  ".join(f"{n} {m['cpu_ms_per_sample']} ms CPU/sample (load {m['load_average_1min']})"
                                         for n, m in measured.items()), file=sys.stderr)
        print(f"{'function':48} " + " ".join(f"{n:>9}" for n in codes), file=sys.stderr)
        for f in shown:
            print(f"{f[:48]:48} " + " ".join(f"{functions[n].get(f, 0.0):9.2f}" for n in codes), file=sys.stderr)
        result[mode] = {**measured, "functions_ms_per_sample": {f: {n: functions[n].get(f, 0.0) for n in codes}
                                                                for f in shown}}
        if mode == "kg_only" and "baseline" in rows:
            differing = sorted(i for i in rows["now"].keys() | rows["baseline"].keys()
                               if rows["now"].get(i) != rows["baseline"].get(i))
            result["kg_only_rows_identical"], result["kg_only_rows_differing"] = not differing, differing[:20]
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
