"""Entity index at PrimeKG scale: build time, lookup latency and recall; today's method beside it.

One command, about 3-5 minutes on a loaded 2-core machine. Uses the 129k real PrimeKG node
names (../shared/data/primekg_sample/entity_names.txt; skips with a message when absent):

1. the index as built now (graphs.entity_index: static token vectors distilled from MiniLM,
   clustered, the transformer ranking the 32 nearest) over all names: build time
   (target ≤ 3 min), single-mention lookup p50/p99 with k=1 and k=5 on 1,000 exact names
   (target p50 ≤ 5 ms, recall@1 ≥ 0.95; k=5 on the first 300), and 200 altered names
   (lower-cased, a word dropped, a letter dropped), batched lookups of 16;
2. today's method (every name through MiniLM, stored in and queried through Chroma), timed on
   a seeded sample of names and extrapolated to all 129k for the build;
3. both methods on that same sample, so recall is compared like for like: recall@1 of the
   altered names.

A hit is a top-1 node whose name is the name the query came from (names repeat across node
types, so any node of that name counts). Timings on a shared machine are inflated; compare
the two methods measured in the same run. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared_data import shared_file  # noqa: E402
NAMES = shared_file("primekg_sample", "entity_names.txt")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def altered(name: str, rng: random.Random) -> str:
    words = name.split()
    if len(words) > 2 and rng.random() < 0.5:
        words.pop(rng.randrange(len(words)))
        return " ".join(words).lower()
    if len(name) > 6:
        i = rng.randrange(1, len(name) - 1)
        return (name[:i] + name[i + 1 :]).lower()
    return name.lower() + "s"


def graph_of(names: list[str]):
    from graphs.store import KnowledgeGraph

    kg = KnowledgeGraph()
    for i, name in enumerate(names):
        kg.add_node(str(i), name, "entity")
    return kg


def timed_lookups(search, queries: list[str], truth: list[str], k: int) -> dict:
    latencies, hits = [], 0
    for query, name in zip(queries, truth):
        started = time.perf_counter()
        (found,) = search([query], k)
        latencies.append((time.perf_counter() - started) * 1000)
        hits += bool(found) and found[0].name == name
    return {"p50_ms": round(statistics.median(latencies), 2), "p99_ms": round(percentile(latencies, 0.99), 2),
            "recall_at_1": round(hits / len(queries), 4)}


class TodayIndex:
    """The previous entity index: MiniLM vectors of every label in a Chroma collection."""

    def __init__(self, embedder, names: list[str], path: Path) -> None:
        import chromadb
        from chromadb.config import Settings

        self.embedder = embedder
        client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        self.collection = client.get_or_create_collection("entities", embedding_function=None,
                                                          configuration={"hnsw": {"space": "cosine"}})
        started = time.perf_counter()
        vectors = embedder.encode(names)
        self.encode_s = time.perf_counter() - started
        started = time.perf_counter()
        for s in range(0, len(names), 4096):
            self.collection.upsert(ids=[str(i) for i in range(s, s + len(names[s : s + 4096]))],
                                   embeddings=vectors[s : s + 4096], documents=names[s : s + 4096],
                                   metadatas=[{"name": n} for n in names[s : s + 4096]])
        self.write_s = time.perf_counter() - started

    def search(self, texts: list[str], k: int):
        from types import SimpleNamespace

        result = self.collection.query(query_embeddings=self.embedder.encode(texts), n_results=3 * k,
                                       include=["metadatas"])
        return [[SimpleNamespace(name=m["name"]) for m in metas[:k]] for metas in result["metadatas"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ranked-queries", type=int, default=300, help="of those, looked up with k=5")
    parser.add_argument("--altered", type=int, default=200)
    parser.add_argument("--baseline-sample", type=int, default=3000, help="names today's method is timed on")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not NAMES.exists():
        print(json.dumps({"skipped": f"{NAMES} not found (needs ../shared/data/primekg_sample)"}))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from graphs.embedding import Embedder
    from graphs.entity_index import EntityIndex

    rng = random.Random(args.seed)
    names = [n for n in NAMES.read_text(encoding="utf-8").splitlines() if n.strip()]
    exact = rng.sample(names, args.queries)
    sample = rng.sample(names, args.baseline_sample)
    changed_from = rng.sample(sample, args.altered)
    changed = [altered(n, rng) for n in changed_from]
    embedder = Embedder()
    embedder.dimension  # load the model before timing, as both methods need it

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        index = EntityIndex.build(graph_of(names), embedder, Path(tmp) / "now")
        build_s = time.perf_counter() - started
        print(f"built the index of {len(names):,} names in {build_s:.1f} s", file=sys.stderr)
        search = lambda texts, k: index.search(texts, k=k)  # noqa: E731
        ranked = exact[: args.ranked_queries]
        now = {"k1": timed_lookups(search, exact, exact, 1), "k5": timed_lookups(search, ranked, ranked, 5),
               "altered_k5": timed_lookups(search, changed, changed_from, 5)}
        batched = []
        for i in range(0, len(ranked), 16):
            started = time.perf_counter()
            index.search(ranked[i : i + 16], k=5)
            batched.append((time.perf_counter() - started) * 1000 / 16)
        now["batched16_k5_p50_ms_per_mention"] = round(statistics.median(batched), 2)
        print(f"now: {now}", file=sys.stderr)

        small_now = EntityIndex.build(graph_of(sample), embedder, Path(tmp) / "now-sample")
        today = TodayIndex(Embedder(), sample, Path(tmp) / "today")  # its own query cache
        sample_exact = sample[: min(args.ranked_queries, len(sample))]
        on_sample = {
            "now_altered": timed_lookups(lambda t, k: small_now.search(t, k=k), changed, changed_from, 5),
            "today_altered": timed_lookups(today.search, changed, changed_from, 5),
            "today_exact_k5": timed_lookups(today.search, sample_exact, sample_exact, 5),
        }
        print(f"on the {len(sample):,}-name sample: {on_sample}", file=sys.stderr)
    scale = len(names) / len(sample)
    today_build = scale * (today.encode_s + today.write_s)
    print(json.dumps({
        "names": len(names),
        "build_s": round(build_s, 1), "target_build_s": 180,
        "today_build_estimate_s": round(today_build, 1),
        "today_build_estimate": f"MiniLM encode {today.encode_s:.1f} s + Chroma write {today.write_s:.1f} s "
                                f"for {len(sample):,} names, × {scale:.1f}",
        "lookup_exact_names": now, "target_p50_ms": 5, "target_recall_at_1": 0.95,
        "sample_names": len(sample), "same_sample": on_sample,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
