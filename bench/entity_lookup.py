"""Entity lookup at PrimeKG scale, with today's index beside it, same names, same queries.

One command, about 10 minutes on a loaded 2-core machine. Uses the 129k real PrimeKG node
names (../shared/data/primekg_sample/entity_names.txt; skips with a message when absent).
Each index is built and queried in its own process, from its own code:

- ``this``: this checkout (graphs.entity_index: static token vectors distilled from MiniLM,
  written to an embedded Chroma collection and searched exactly in the process, the
  transformer ranking the 8 nearest);
- ``today``: the code at ``--baseline`` (default 4ae5cf7: the same, searched by Chroma's HNSW
  index), extracted with shared_data.code_at.

For each: build time, single-mention lookups with k=1 on 1,000 exact names (targets: p50 ≤ 5
ms, recall@1 ≥ 0.95) and k=5 on the first 300, 200 altered names (lower-cased, a word
dropped, a letter dropped; k=5), the next 300 names looked up 16 at a time (names not looked
up before: the index remembers its lookups), and 200 type-filtered lookups of altered names,
each with its wall latency and the process's CPU time per lookup (every thread: the figure to
compare on a shared machine). A hit is a top-1 node whose name is the name the query came from (names
repeat across node types, so any node of that name counts). Timings on a shared machine are
inflated; compare the two measured in the same run. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from shared_data import code_at, shared_file  # noqa: E402

NAMES = shared_file("primekg_sample", "entity_names.txt")
BASELINE_INDEX = "4ae5cf7"  # the last commit that searched the names with Chroma's HNSW index

MEASURE = r"""
import inspect, json, os, statistics, sys, time
sys.path.insert(0, {root!r})
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from pathlib import Path
from graphs.embedding import Embedder
from graphs.entity_index import EntityIndex
from graphs.store import KnowledgeGraph

job = json.loads(Path({job!r}).read_text())
names, types = job["names"], job["types"]
kg = KnowledgeGraph()
for i, (name, type) in enumerate(zip(names, types)):
    kg.add_node(str(i), name, type)
embedder = Embedder()
embedder.dimension  # load the model before timing: both need it
started = time.perf_counter()
if "name" in inspect.signature(EntityIndex.build).parameters:  # the Chroma store: a collection name
    index = EntityIndex.build(kg, embedder, Path({directory!r}), "kg-bench-entities")
else:
    index = EntityIndex.build(kg, embedder, Path({directory!r}))
build_s = time.perf_counter() - started

def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

def timed(queries, truth, k, type=None):
    latencies, hits = [], 0
    cpu = time.process_time()
    for query, name in zip(queries, truth):
        started = time.perf_counter()
        (found,) = index.search([query], k=k, type=type)
        latencies.append((time.perf_counter() - started) * 1000)
        hits += bool(found) and found[0].name == name
    cpu = time.process_time() - cpu
    return {{"p50_ms": round(statistics.median(latencies), 2), "p99_ms": round(percentile(latencies, 0.99), 2),
            "cpu_ms_per_lookup": round(1000 * cpu / len(queries), 2), "recall_at_1": round(hits / len(queries), 4)}}

exact, ranked = job["exact"], job["exact"][: job["ranked"]]
out = {{"build_s": round(build_s, 1), "k1": timed(exact, exact, 1), "k5": timed(ranked, ranked, 5),
       "altered_k5": timed(job["altered"], job["altered_from"], 5),
       "typed_altered_k5": timed(job["altered"], job["altered_from"], 5, type=job["altered_type"])}}
batched, unseen = [], exact[job["ranked"] : 2 * job["ranked"]]  # not looked up yet: the index remembers lookups
for i in range(0, len(unseen), 16):
    started = time.perf_counter()
    index.search(unseen[i : i + 16], k=5)
    batched.append((time.perf_counter() - started) * 1000 / 16)
out["batched16_k5_p50_ms_per_mention"] = round(statistics.median(batched), 2)
print(json.dumps(out))
"""


def altered(name: str, rng: random.Random) -> str:
    words = name.split()
    if len(words) > 2 and rng.random() < 0.5:
        words.pop(rng.randrange(len(words)))
        return " ".join(words).lower()
    if len(name) > 6:
        i = rng.randrange(1, len(name) - 1)
        return (name[:i] + name[i + 1 :]).lower()
    return name.lower() + "s"


def measure(root: Path, job: Path, directory: Path) -> dict:
    code = MEASURE.format(root=str(root), job=str(job), directory=str(directory))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    if done.returncode:
        raise SystemExit(f"{root}: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ranked-queries", type=int, default=300, help="of those, looked up with k=5")
    parser.add_argument("--altered", type=int, default=200)
    parser.add_argument("--baseline", default=BASELINE_INDEX, help="git ref of the index to compare with")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not NAMES.exists():
        print(json.dumps({"skipped": f"{NAMES} not found (needs ../shared/data/primekg_sample)"}))
        return
    rng = random.Random(args.seed)
    names = [n for n in NAMES.read_text(encoding="utf-8").splitlines() if n.strip()]
    # four node types, as a typed lookup sees them; the altered names' type is the one asked for
    types = [("disease", "drug", "gene/protein", "effect/phenotype")[i % 4] for i in range(len(names))]
    exact = rng.sample(names, args.queries)
    positions = [i for i in rng.sample(range(len(names)), 4 * args.altered) if types[i] == "disease"][: args.altered]
    job = {"names": names, "types": types, "exact": exact, "ranked": args.ranked_queries,
           "altered_from": [names[i] for i in positions], "altered": [altered(names[i], rng) for i in positions],
           "altered_type": "disease"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "job.json").write_text(json.dumps(job))
        results = {}
        for label, root in (("this", ROOT), ("today", code_at(args.baseline, tmp / "baseline"))):
            results[label] = measure(root, tmp / "job.json", tmp / f"index-{label}")
            print(f"{label}: {results[label]}", file=sys.stderr)
    this = results["this"]
    print(json.dumps({
        "names": len(names), "baseline": args.baseline, **results,
        "targets": {"p50_ms": 5, "recall_at_1": 0.95},
        "meets_targets": this["k1"]["p50_ms"] <= 5 and this["k1"]["recall_at_1"] >= 0.95,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
