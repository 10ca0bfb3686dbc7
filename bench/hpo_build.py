"""The first `run` on a fresh machine and the cached reload, HPO graph; today's index beside it.

One command, about 5-10 minutes on a loaded 2-core machine:

1. first run: the README's main job, `run_agent.py run examples/medqa_sample.jsonl` (20
   records), with an empty cache directory (XDG_CACHE_HOME), so it builds the HPO graph and
   its entity index (a Chroma collection), then runs the records: the wall time a new user
   waits (target ≤ 60 s), and its CPU time (the figure to trust on a shared machine);
2. cached reload: `open_kg` on that directory in a fresh process, and a second `run` end to end;
3. recall@1 of the built index on 500 exact names and 500 synonyms (a hit: the top node is
   one that label names);
4. today's code, in the same run: the first run of the code at ``--baseline`` (default
   4ae5cf7, before the exact search), with its own empty cache, extracted with
   shared_data.code_at.

Each phase runs in its own process. Timings on a shared machine are inflated; the two first
runs measured in the same run are what to compare. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from entity_lookup import BASELINE_INDEX  # noqa: E402
from shared_data import code_at  # noqa: E402

RELOAD = """
import resource, sys, time
sys.path.insert(0, {root!r})
started = time.perf_counter()
from pathlib import Path
from graphs.embedding import Embedder
from graphs.kg_dir import open_kg
from graphs.progress import Silent
loaded = open_kg(Path({kg_dir!r}), Embedder(), Silent())
seconds = time.perf_counter() - started
assert loaded.index.search(["Fever"], k=1)[0][0].name == "Fever"
print(seconds, len(loaded.kg), loaded.kg.edge_count, len(loaded.index), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

RECALL = """
import json, random, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from graphs.embedding import Embedder
from graphs.kg_dir import open_kg
from graphs.progress import Silent
loaded = open_kg(Path({kg_dir!r}), Embedder(), Silent())
kg, rng = loaded.kg, random.Random(7)
nodes = list(kg.graph)
names = [kg.name(n) for n in rng.sample(nodes, 500)]
synonyms = [rng.choice(kg.synonyms[n]) for n in rng.sample([n for n in nodes if n in kg.synonyms], 500)]
def recall(texts):
    hits = loaded.index.search(texts, k=1)
    return sum(bool(h) and h[0].node_id in kg.nodes_named(t) for t, h in zip(texts, hits)) / len(texts)
print(json.dumps({{"exact_names": recall(names), "synonyms": recall(synonyms)}}))
"""

def python(code: str, env: dict | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return out.stdout.strip().splitlines()[-1]


def first_run(cache: Path, out: Path, root: Path = ROOT) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (the command and its children) and the load average before it."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env = {k: v for k, v in env.items() if not k.startswith(("OPENAI_", "MEDREASON_"))}
    load, started, cpu = os.getloadavg()[0], time.perf_counter(), children_cpu()
    done = subprocess.run([sys.executable, str(root / "run_agent.py"), "run", str(root / "examples" / "medqa_sample.jsonl"),
                           "--out", str(out)], cwd=root, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return time.perf_counter() - started, children_cpu() - cpu, load


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--baseline", default=BASELINE_INDEX, help="git ref of the code to compare with")
    args = parser.parse_args()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        cache = Path(tmp) / "cache"
        first, first_cpu, first_load = first_run(cache, Path(tmp) / "run1")
        print(f"first run: {first:.1f} s ({first_cpu:.1f} s CPU, load {first_load:.1f})", file=sys.stderr)
        second, second_cpu, _ = first_run(cache, Path(tmp) / "run2")
        kg_dir = cache / "medreason-agent" / "kg" / "hpo"
        seconds, nodes, edges, entries, rss_kb = python(RELOAD.format(root=str(ROOT), kg_dir=str(kg_dir))).split()
        print(f"reload: {float(seconds):.2f} s", file=sys.stderr)
        recall = json.loads(python(RECALL.format(root=str(ROOT), kg_dir=str(kg_dir))))
        print(f"recall@1: {recall}", file=sys.stderr)
        today, today_cpu, today_load = first_run(Path(tmp) / "cache-today", Path(tmp) / "run-today",
                                                 code_at(args.baseline, Path(tmp) / "today"))
        print(f"today's code, first run: {today:.1f} s ({today_cpu:.1f} s CPU)", file=sys.stderr)
    print(json.dumps({
        "nodes": int(nodes), "edges": int(edges), "index_entries": int(entries),
        "first_run_s": round(first, 1), "first_run_cpu_s": round(first_cpu, 1), "first_run_load_average": round(first_load, 2),
        "target_first_run_s": 60, "first_run_met": first <= 60,
        "second_run_s": round(second, 1), "second_run_cpu_s": round(second_cpu, 1),
        "reload_s": round(float(seconds), 2), "reload_rss_mb": round(int(rss_kb) / 1024), "target_reload_s": 3,
        "recall_at_1": recall,
        "baseline": args.baseline, "today_first_run_s": round(today, 1), "today_first_run_cpu_s": round(today_cpu, 1),
        "today_first_run_load_average": round(today_load, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
