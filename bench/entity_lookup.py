"""Entity lookup on the 129k real PrimeKG node names: latency per mention and recall@1.

Indexes ../shared/data/primekg_sample/entity_names.txt into a fresh Chroma entity index
(the same EntityIndex the agent uses), then looks up a seeded sample of exact names, one
mention per query and in batches of 16 as the map node does. A hit is a top-1 node whose
name equals the query (names repeat across node types, so any node of that name counts).
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NAMES = ROOT.parent / "shared" / "data" / "primekg_sample" / "entity_names.txt"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=None, help="index only the first N names")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not NAMES.exists():
        print(json.dumps({"skipped": f"{NAMES} not found (needs ../shared/data/primekg_sample)"}))
        return
    from graphs.embedding import Embedder
    from graphs.entity_index import EntityIndex
    from graphs.store import KnowledgeGraph

    names = [n for n in NAMES.read_text(encoding="utf-8").splitlines() if n.strip()][: args.limit]
    kg = KnowledgeGraph()
    for i, name in enumerate(names):
        kg.add_node(str(i), name, "entity")
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        index = EntityIndex(embedder, path=Path(tmp))
        started = time.perf_counter()
        index.build(kg, lambda done, total: print(f"\rindexed {done}/{total}", end="", file=sys.stderr))
        build_s = time.perf_counter() - started
        print(file=sys.stderr)
        queries = random.Random(args.seed).sample(names, min(args.queries, len(names)))
        single, hits = [], 0
        for q in queries:
            t = time.perf_counter()
            (found,) = index.search([q], k=5)
            single.append((time.perf_counter() - t) * 1000)
            hits += bool(found) and found[0].name == q
        batched = []
        for i in range(0, len(queries), 16):
            batch = queries[i : i + 16]
            t = time.perf_counter()
            index.search(batch, k=5)
            batched.append((time.perf_counter() - t) * 1000 / len(batch))
    print(json.dumps({
        "names": len(names),
        "index_build_s": round(build_s, 1),
        "queries": len(queries),
        "p50_ms": round(statistics.median(single), 2),
        "p99_ms": round(percentile(single, 0.99), 2),
        "batched16_p50_ms_per_mention": round(statistics.median(batched), 2),
        "recall_at_1": round(hits / len(queries), 4),
    }))


if __name__ == "__main__":
    main()
