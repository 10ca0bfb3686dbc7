"""How many static-nearest labels the transformer should rank (graphs.entity_index.RERANK):
recall@1 on PrimeKG's names and, on HPO, CPU per KG-only sample and the mappings that change.

One command, about 15 minutes on a loaded 2-core machine. For each ``--rerank`` value R (0:
the static vectors alone, nothing ranked by the transformer):

1. PrimeKG (../shared/data/primekg_sample/entity_names.txt; skipped when absent): the altered
   and type-filtered altered queries of bench/entity_lookup.py (same seed, same names), the
   static index built once and each query's top-1 taken among its R nearest as the
   transformer ranks them (the exact-name and k=5 figures do not depend on R: an exact
   name needs no ranking);
2. HPO (the cache's graph and index): ``--records`` MedQA records run KG-only, each R in a
   fresh process with an empty vector cache, its CPU time per sample, and every mapping
   whose node differs from the first R's (the one the others are compared with).

The first R listed is the reference (default 12, the value before issue 26). CPU time is the
figure to compare; run the values one after another, at one load. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from entity_lookup import NAMES, altered  # noqa: E402
from shared_data import agent_module, run_context  # noqa: E402
from throughput import load_records, write_records  # noqa: E402


def primekg_recall(values: list[int], seed: int = 7, count: int = 200) -> dict:
    import numpy as np

    from graphs.embedding import Embedder, StaticEncoder
    from graphs.entity_index import EntityIndex, labels_of
    from graphs.name_vectors import NameVectors
    from graphs.store import KnowledgeGraph

    rng = random.Random(seed)  # the draws of bench/entity_lookup.py, in its order
    names = [n for n in NAMES.read_text(encoding="utf-8").splitlines() if n.strip()]
    types = [("disease", "drug", "gene/protein", "effect/phenotype")[i % 4] for i in range(len(names))]
    rng.sample(names, 1000)  # entity_lookup's exact queries
    positions = [i for i in rng.sample(range(len(names)), 4 * count) if types[i] == "disease"][:count]
    queries, truth = [altered(names[i], rng) for i in positions], [names[i] for i in positions]
    kg = KnowledgeGraph()
    for i, (name, type) in enumerate(zip(names, types)):
        kg.add_node(str(i), name, type)
    embedder = Embedder()
    labels = labels_of(kg)
    encoder, vectors = StaticEncoder.distill(embedder, labels[1])
    index = EntityIndex(kg, labels, encoder, NameVectors.of(encoder, labels[1], vectors), None, None)
    out = {}
    for label, type in (("altered", None), ("typed_altered", "disease")):
        nearest = index.nearest(encoder.encode(queries), max(values), type)
        texts = list(dict.fromkeys(queries + [index.labels[e] for found in nearest for e, _ in found]))
        vector = dict(zip(texts, embedder.encode(texts).astype(np.float64)))
        recall = {}
        for r in values:
            hits = 0
            for query, found, name in zip(queries, nearest, truth):
                exact = index._exact(query, type)
                if exact:
                    top = exact[0].name
                else:
                    entries = [e for e, _ in found[: max(r, 1)]]
                    scores = [vector[index.labels[e]] @ vector[query] for e in entries] if r else [-j for j in range(len(entries))]
                    top = kg.node(index.node_ids[entries[int(np.argsort(-np.array(scores), kind="stable")[0])]]).name
                hits += top == name
            recall[str(r)] = round(hits / len(queries), 4)
        out[label] = recall
    return out


def kg_only(rerank: int, records: int, offset: int) -> dict:
    """One R's KG-only run in this process: CPU per sample and each row's mappings."""
    import graphs.entity_index
    from agent.config import Settings, default_kg_dir

    graphs.entity_index.RERANK = rerank
    rows_of, _ = load_records(offset + records + 2)
    rows_of = rows_of[offset:]
    runner = agent_module("runner")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["MEDREASON_VECTOR_CACHE"] = str(tmp / "vectors")  # empty: a first run
        settings = run_context(Settings(kg_dir=default_kg_dir(), offline=True))
        asyncio.run(runner.run_dataset(write_records(tmp / "warm.jsonl", rows_of[:2]), tmp / "warm", settings,
                                       runner.RunOptions()))
        cpu = time.process_time()
        asyncio.run(runner.run_dataset(write_records(tmp / "run.jsonl", rows_of[2:]), tmp / "run", settings,
                                       runner.RunOptions()))
        cpu = time.process_time() - cpu
        rows = [json.loads(line) for line in open(tmp / "run" / "results.jsonl")]
    return {"cpu_ms_per_sample": round(1000 * cpu / len(rows), 1), "load_average_1min": round(os.getloadavg()[0], 2),
            "accepted": sum(r["status"] == "accepted" for r in rows),
            "mappings": {r["id"]: [[m["mention"], m["role"], m["name"], round(m["score"], 3)] for m in r.get("mappings") or []]
                         for r in rows}}


def changed(reference: dict, other: dict) -> list[str]:
    """Mentions whose top node differs: 'mention: before -> after' (None: left unmapped)."""
    out = []
    for row, mappings in reference.items():
        before = {(m, role): (name, score) for m, role, name, score in mappings}
        after = {(m, role): (name, score) for m, role, name, score in other.get(row, [])}
        for key in sorted(before.keys() | after.keys()):
            if before.get(key, (None,))[0] != after.get(key, (None,))[0]:
                out.append(f"{key[0]}: {before.get(key)} -> {after.get(key)}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rerank", type=int, nargs="+", default=[12, 8, 6, 4, 0], help="values of RERANK, the reference first")
    parser.add_argument("--records", type=int, default=60, help="MedQA records run KG-only per value")
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--kg-only", type=int, default=None, help=argparse.SUPPRESS)  # one value, in a child process
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.kg_only is not None:
        print(json.dumps(kg_only(args.kg_only, args.records, args.offset)))
        return
    result: dict = {"rerank": args.rerank, "load_average_1min": [round(os.getloadavg()[0], 2)]}
    runs = {}
    for r in args.rerank:
        done = subprocess.run([sys.executable, __file__, "--kg-only", str(r), "--records", str(args.records),
                               "--offset", str(args.offset)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        if done.returncode:
            raise SystemExit(f"RERANK={r} failed:\n{done.stderr[-3000:]}")
        runs[r] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"RERANK={r}: {runs[r]['cpu_ms_per_sample']} ms CPU per sample", file=sys.stderr)
    reference = runs[args.rerank[0]]["mappings"]
    result["hpo_kg_only"] = {str(r): {**{k: v for k, v in run.items() if k != "mappings"},
                                      "mappings_changed": changed(reference, run["mappings"])} for r, run in runs.items()}
    if NAMES.exists():
        result["primekg_recall_at_1"] = primekg_recall(args.rerank)
    else:
        result["primekg_recall_at_1"] = {"skipped": f"{NAMES} not found (needs ../shared/data/primekg_sample)"}
    result["load_average_1min"].append(round(os.getloadavg()[0], 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
