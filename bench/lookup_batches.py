"""Does a lookup's answer depend on what else was looked up at once, or before?

In a dataset run, samples look texts up while other samples do (``--concurrency``), so which
texts share the transformer's passes, and which were looked up first, changes from run to run.
This bench looks the answer and option texts of ``--records`` MedQA records up on one HPO
graph and index, three ways, each in a fresh process: one record at a time in order, one
record at a time in reverse order, and all records in one call; then counts the texts whose
candidates (node ids, labels, scores to 4 decimals, as rows and prompts show them) differ
between the ways. This checkout and ``--baseline REF`` (default 4ae5cf7) run on the same
index. Any difference reaches the rows of a run, and in LLM mode the prompts: the strict fake
server of bench/llm_calls.py draws every random choice from the request's text, so one
changed score re-rolls a sample. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--code-root" in sys.argv:
    ROOT = Path(sys.argv[sys.argv.index("--code-root") + 1]).resolve()
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from shared_data import code_at, shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")
WAYS = ("in_order", "reversed", "all_at_once")


def texts_by_record(path: Path, records: int) -> list[list[str]]:
    out = []
    with open(path) as f:
        for line in islice(f, records):
            record = json.loads(line)
            out.append(list(dict.fromkeys([record["answer"], *record.get("options", {}).values()])))
    return out


def look_up(kg_dir: Path, way: str, groups: list[list[str]]) -> dict[str, list]:
    from graphs.embedding import Embedder
    from graphs.kg_dir import open_kg
    from graphs.progress import Silent

    index = open_kg(kg_dir, Embedder(), Silent()).index
    found: dict[str, list] = {}
    order = {"in_order": groups, "reversed": groups[::-1], "all_at_once": [[t for g in groups for t in g]]}[way]
    for group in order:
        unmatched = [t for t in group if not index.kg.nodes_named(t)]
        for text, hits in zip(unmatched, index.search(unmatched, k=5) if unmatched else []):
            found.setdefault(text, [[h.node_id, h.label, round(h.score, 4)] for h in hits])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--kg-dir", type=Path, default=None, help="an HPO graph directory (default: the cache's)")
    parser.add_argument("--baseline", default="4ae5cf7")
    parser.add_argument("--code-root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--way", choices=WAYS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not MEDQA.exists():
        print(json.dumps({"skipped": f"{MEDQA} not found (needs ../shared/data/medqa)"}))
        return
    groups = texts_by_record(MEDQA, args.records)
    if args.way:
        print(json.dumps(look_up(args.kg_dir, args.way, groups)))
        return
    from agent.config import default_kg_dir

    kg_dir = args.kg_dir or default_kg_dir()

    def ways(root: Path, graph: Path) -> dict:
        found = {}
        for way in WAYS:
            env = {k: v for k, v in os.environ.items() if not k.startswith("MEDREASON_")}
            done = subprocess.run([sys.executable, __file__, "--way", way, "--code-root", str(root), "--kg-dir", str(graph),
                                   "--records", str(args.records)], capture_output=True, text=True, env=env)
            if done.returncode:
                raise SystemExit(f"{root} {way} failed:\n{done.stderr[-3000:]}")
            found[way] = json.loads(done.stdout.strip().splitlines()[-1])
        texts = sorted(found["in_order"])
        differing = {other: sorted(t for t in texts if found[other].get(t) != found["in_order"][t])
                     for other in WAYS[1:]}
        return {"texts_looked_up": len(texts), "differing_from_in_order": {w: len(d) for w, d in differing.items()},
                "examples": {w: [{"text": t, "in_order": found["in_order"][t], w: found[w].get(t)} for t in d[:2]]
                             for w, d in differing.items()}}

    result = {"records": args.records, "this": ways(ROOT, kg_dir)}
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "kg"
            shutil.copytree(kg_dir, copy, symlinks=True)
            result[f"baseline ({args.baseline})"] = ways(code_at(args.baseline, Path(tmp) / "code"), copy)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
