"""Time and peak memory of the first HPO build (graph + entity index) and of a cached reload.

Each phase runs in its own process so peak RSS is that phase's alone.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PHASE = """
import resource, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from graphs.embedding import Embedder
from graphs.kg_dir import Source, build_kg, open_kg
from graphs.progress import Silent
kg_dir = Path({kg_dir!r})
started = time.perf_counter()
if {build}:
    loaded = build_kg(kg_dir, Source("hpo"), Embedder(), Silent())
else:
    loaded = open_kg(kg_dir, Embedder(), Silent())
    assert loaded.index.search(["Fever"], k=1)[0][0].name == "Fever"
print(time.perf_counter() - started, len(loaded.kg), loaded.kg.edge_count, len(loaded.index), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def phase(kg_dir: Path, build: bool) -> dict:
    code = PHASE.format(root=str(ROOT), kg_dir=str(kg_dir), build=build)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, nodes, edges, entries, rss_kb = out.stdout.split()
    return {"s": round(float(seconds), 2), "rss_mb": round(int(rss_kb) / 1024), "nodes": int(nodes),
            "edges": int(edges), "index_entries": int(entries)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        kg_dir = Path(tmp) / "hpo"
        wall = time.perf_counter()
        build = phase(kg_dir, build=True)
        print(f"build: {build}", file=sys.stderr)
        reload = phase(kg_dir, build=False)
        print(f"reload: {reload}", file=sys.stderr)
    print(json.dumps({
        "nodes": build["nodes"], "edges": build["edges"], "index_entries": build["index_entries"],
        "build_s": build["s"], "build_rss_mb": build["rss_mb"],
        "reload_s": reload["s"], "reload_rss_mb": reload["rss_mb"],
        "wall_s": round(time.perf_counter() - wall, 1),
    }))


if __name__ == "__main__":
    main()
