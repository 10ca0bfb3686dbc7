"""Where a KG-only sample's CPU goes on HPO: each node's and each lookup stage's CPU time.

One command, about 2 minutes. ``--records`` MedQA records (after 2 that open the graph and
load the model) run KG-only, one at a time, with an empty vector cache (a first run), in this
process. Each function listed in ``MEASURED`` is wrapped to add up the CPU time of the thread
that runs it (``time.thread_time``, so samples on other threads do not count); the process's
CPU time (every thread) is the total, and what no KG-only node (agent.reasoning.kg_nodes)
spent is the grounding of agent.reasoning.nodes.verify, the runner's, LangGraph's steps and
checkpoints'. Nested entries (the transformer inside ``index.search``
inside ``map_entities``) are parts of their parents, not additions. Last line: one JSON object,
milliseconds per sample.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from shared_data import agent_module, run_context  # noqa: E402
from throughput import load_records, write_records  # noqa: E402

NODES = ("extract", "map_entities", "find_paths", "prune", "generate", "verify")
# (module, owner, function, label): the lookup's stages, inside map_entities
MEASURED = (
    ("graphs.entity_index", "EntityIndex", "search", "map_entities > index.search"),
    ("graphs.embedding", "Embedder", "_forward", "map_entities > index.search > transformer passes"),
    ("graphs.embedding", "Embedder", "token_vectors", "map_entities > index.search > distilling unseen tokens"),
    ("graphs.entity_index", "EntityIndex", "nearest", "map_entities > index.search > exact static search"),
    ("graphs.embedding", "StaticEncoder", "_pool", "map_entities > index.search > static pooling"),
)


def timed(owner, name: str, label: str, spent: collections.Counter) -> None:
    function = getattr(owner, name)

    @functools.wraps(function)
    def measured(*args, **kwargs):
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - started

    setattr(owner, name, measured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=40)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import importlib

    from agent.config import Settings, default_kg_dir

    spent: collections.Counter = collections.Counter()
    kg_nodes = agent_module("kg_nodes")
    for node in NODES:
        timed(kg_nodes, node, node, spent)
    for module, owner, name, label in MEASURED:
        timed(getattr(importlib.import_module(module), owner), name, label, spent)
    records, source = load_records(args.offset + args.records + 2)
    records = records[args.offset :]
    runner = agent_module("runner")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["MEDREASON_VECTOR_CACHE"] = str(tmp / "vectors")
        settings = run_context(Settings(kg_dir=default_kg_dir(), offline=True))
        asyncio.run(runner.run_dataset(write_records(tmp / "warm.jsonl", records[:2]), tmp / "warm", settings,
                                       runner.RunOptions()))
        spent.clear()
        load, cpu = os.getloadavg()[0], time.process_time()
        asyncio.run(runner.run_dataset(write_records(tmp / "run.jsonl", records[2:]), tmp / "run", settings,
                                       runner.RunOptions()))
        cpu = time.process_time() - cpu
    per_sample = {label: round(1000 * seconds / args.records, 1) for label, seconds in sorted(spent.items())}
    outside = 1000 * cpu / args.records - sum(per_sample.get(node, 0) for node in NODES)
    print(json.dumps({"records": source, "cpu_ms_per_sample": round(1000 * cpu / args.records, 1), **per_sample,
                      "outside the KG-only nodes (grounding, runner, LangGraph, checkpoints)": round(outside, 1),
                      "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)]}))


if __name__ == "__main__":
    main()
