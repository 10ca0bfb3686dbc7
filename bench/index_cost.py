"""What opening the entity index and its nearest-name search cost, this checkout beside a
baseline, on the same HPO index, and whether both find the same names.

Each code runs in its own process (the baseline, ``--baseline REF``, default main before the
search through the token vectors, reads a copy of the index): the CPU time of
``EntityIndex.open`` (the graph loaded and the tokenizer read first, as both need them), then
of ``EntityIndex.nearest`` (the static search of a lookup that needs neighbours: the 12
nearest) for the answer and option texts of ``--records`` MedQA records, one at a time, 3 at a
time and 16 at a time, untyped and typed (``disease``): the median CPU per call over the
texts, repeated ``--repeats`` times. The nearest names and their scores must be the same for
both codes (counted in ``differing``). CPU time is the figure to trust on a shared machine;
the load average is reported. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared_data import code_at, shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")

BASELINE = "ce75718"  # main before the search through the token vectors and the vectors on disk
BATCHES = (1, 3, 16)
NEAREST = 12  # what a k=5 lookup asked in ce75718 (max(2k, RERANK 12)); with RERANK 8 it asks 10


def medqa_texts(records: int) -> list[str]:
    """The answer and option texts of the first ``records`` MedQA records, each once."""
    texts = []
    with open(MEDQA) as f:
        for line in islice(f, records):
            record = json.loads(line)
            texts.extend([record["answer"], *record.get("options", {}).values()])
    return list(dict.fromkeys(texts))


def measure(kg_dir: Path, texts: list[str], repeats: int) -> dict:
    from graphs.cache import load_graph
    from graphs.embedding import Embedder
    from graphs.entity_index import EntityIndex

    kg, manifest = load_graph(kg_dir)
    embedder = Embedder()
    embedder.tokenizer  # read by both codes' open; not what is measured
    started = time.process_time()
    index = EntityIndex.open(kg, embedder, kg_dir / "index", manifest.index_collection, manifest.index_entries)
    open_cpu = time.process_time() - started
    queries = index.encoder.encode(texts)  # both codes' static encoder: the same query vectors
    out: dict = {"open_cpu_s": round(open_cpu, 3), "nearest_cpu_ms_per_call": {}}
    found = {}
    for type in (None, "disease"):
        for batch in BATCHES:
            costs = []
            for _ in range(repeats):
                for start in range(0, len(queries) - batch + 1, batch):
                    began = time.process_time()
                    answers = index.nearest(queries[start : start + batch], NEAREST, type)
                    costs.append((time.process_time() - began) * 1000)
                    for text, answer in zip(texts[start : start + batch], answers):
                        found[f"{type}|{text}"] = [[e, s] for e, s in answer]
            out["nearest_cpu_ms_per_call"][f"{type or 'any'} x{batch}"] = round(statistics.median(costs), 3)
    out["found"] = found
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kg-dir", type=Path, default=None, help="an HPO graph directory (default: the cache's)")
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not MEDQA.exists():
        print(json.dumps({"skipped": f"{MEDQA} not found (needs ../shared/data/medqa)"}))
        return
    texts = medqa_texts(args.records)
    if args.measure:
        print(json.dumps(measure(args.kg_dir, texts, args.repeats)))
        return
    from agent.config import default_kg_dir
    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, open_kg
    from graphs.progress import Silent

    kg_dir = args.kg_dir or default_kg_dir()
    open_kg(kg_dir, Embedder(), Silent(), default_source=None if args.kg_dir else Source("hpo"))  # built if needed

    def run(root: Path, graph: Path) -> dict:
        """The measure in a process of its own that imports the code of ``root``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDREASON_")} | {"PYTHONPATH": str(root)}
        done = subprocess.run([sys.executable, __file__, "--measure", "--kg-dir", str(graph), "--records",
                               str(args.records), "--repeats", str(args.repeats)],
                              capture_output=True, text=True, env=env, cwd=root)
        if done.returncode:
            raise SystemExit(f"{root} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    load_before = os.getloadavg()
    result = {"records": args.records, "texts": len(texts), "this": run(ROOT, kg_dir)}
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "kg"
            shutil.copytree(kg_dir, copy, symlinks=True)
            result[args.baseline] = run(code_at(args.baseline, Path(tmp) / "code"), copy)
        this, baseline = result["this"]["found"], result[args.baseline]["found"]
        result["differing"] = sum(this.get(key) != answer for key, answer in baseline.items())
        result[args.baseline].pop("found")
    result["this"].pop("found")
    result["load_average_1min"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
