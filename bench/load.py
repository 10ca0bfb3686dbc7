"""Benchmark building a PrimeKG-scale graph from ``kg.csv`` and reloading it from the cache.

Generates a seeded PrimeKG-format CSV (129,375 nodes in PrimeKG's 10 node types with
PrimeKG's type sizes, 4,050,249 undirected edges written in both directions as ~8.1M rows,
30 relations chosen by the end types, heavy-tailed degrees from bench/paths.py's Chung-Lu
generator, some names quoted because they hold commas), builds it with
``graphs.primekg.read_primekg`` + ``graphs.cache.save_graph``, then reloads it with
``graphs.cache.load_graph`` in a fresh subprocess, measuring its wall time and peak RSS.

The entity index is NOT built: embedding 129k names takes minutes on CPU and is not what
this measures. The last line of output is one JSON object.

    python bench/load.py                                    # full scale, a few minutes
    python bench/load.py --nodes 5000 --edges 50000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.paths import edge_array  # noqa: E402
from graphs.cache import SourceInfo, save_graph  # noqa: E402
from graphs.primekg import COLUMNS, read_primekg  # noqa: E402

# PrimeKG's node types and their sizes (sum 129,375).
TYPES = {
    "biological_process": (28_642, "GO"), "gene/protein": (27_671, "NCBI"),
    "disease": (17_080, "MONDO"), "effect/phenotype": (15_311, "HPO"),
    "anatomy": (14_035, "UBERON"), "molecular_function": (11_169, "GO"),
    "drug": (7_957, "DrugBank"), "cellular_component": (4_176, "GO"),
    "pathway": (2_516, "REACTOME"), "exposure": (818, "CTD"),
}
RELATIONS = [
    "protein_protein", "drug_protein", "contraindication", "indication", "off-label use",
    "drug_drug", "phenotype_protein", "phenotype_phenotype", "disease_phenotype_negative",
    "disease_phenotype_positive", "disease_protein", "disease_disease", "drug_effect",
    "bioprocess_bioprocess", "molfunc_molfunc", "cellcomp_cellcomp", "molfunc_protein",
    "cellcomp_protein", "bioprocess_protein", "exposure_protein", "exposure_disease",
    "exposure_exposure", "exposure_bioprocess", "exposure_molfunc", "exposure_cellcomp",
    "pathway_pathway", "pathway_protein", "anatomy_anatomy", "anatomy_protein_present",
    "anatomy_protein_absent",
]

RELOAD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
start = time.perf_counter()
from graphs.cache import load_graph
kg, manifest = load_graph(__import__("pathlib").Path(sys.argv[1]))
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec from the (big) parent.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"reload_s": seconds, "nodes": len(kg), "edges": kg.graph.number_of_edges(),
                  "rss_mb": int(hwm.split()[1]) / 1024}))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_csv(path: Path, nodes: int, edges: int, exponent: float, seed: int) -> int:
    """Write the CSV; returns the number of undirected edges."""
    rng = np.random.default_rng(seed)
    sizes = np.array([n for n, _ in TYPES.values()], dtype=np.float64)
    counts = np.floor(sizes / sizes.sum() * nodes).astype(int)
    counts[0] += nodes - counts.sum()
    node_type = rng.permutation(np.repeat(np.arange(len(TYPES)), counts))
    type_names = list(TYPES)
    sources = [s for _, s in TYPES.values()]
    node_str = []
    for i, t in enumerate(node_type.tolist()):
        name = f"{type_names[t].split('/')[0]} {i}"
        if i % 97 == 0:
            name = f'"{name}, variant {i % 7}"'  # quoted, holds a comma
        node_str.append(f"{i},{sources[t]}:{i:07d},{type_names[t]},{name},{sources[t]}")
    rel_str = [f"{r},{r.replace('_', ' ')}," for r in RELATIONS]

    pairs = edge_array(nodes, edges, exponent, rng)
    ta, tb = node_type[pairs[:, 0]], node_type[pairs[:, 1]]
    rel = (np.minimum(ta, tb) * len(TYPES) + np.maximum(ta, tb)) % len(RELATIONS)
    heads, tails, rels = pairs[:, 0].tolist(), pairs[:, 1].tolist(), rel.tolist()
    log(f"writing {2 * len(heads):,} rows to {path}")
    tmp = path.with_name(path.name + ".tmp")
    step = 500_000
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(COLUMNS) + "\n")
        for forward in (True, False):  # each edge in both directions, as in PrimeKG
            a, b = (heads, tails) if forward else (tails, heads)
            for s in range(0, len(a), step):
                out.write("\n".join([
                    rel_str[r] + node_str[x] + "," + node_str[y]
                    for r, x, y in zip(rels[s:s + step], a[s:s + step], b[s:s + step])
                ]))
                out.write("\n")
    tmp.replace(path)
    return len(heads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=129_375)
    parser.add_argument("--edges", type=int, default=4_050_249)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exponent", type=float, default=0.6, help="Zipf weight exponent")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/medreason-bench-load"))
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    csv_path = args.workdir / f"kg-{args.nodes}-{args.edges}-{args.seed}.csv"
    if csv_path.exists():
        log(f"reusing {csv_path}")
    else:
        start = time.perf_counter()
        write_csv(csv_path, args.nodes, args.edges, args.exponent, args.seed)
        log(f"generated in {time.perf_counter() - start:.1f} s ({csv_path.stat().st_size / 1e6:.0f} MB)")

    log("building with read_primekg + save_graph (no entity index: embedding 129k names takes minutes)")
    kg_dir = args.workdir / "kg"
    start = time.perf_counter()
    kg = read_primekg(csv_path)
    read_s = time.perf_counter() - start
    manifest = save_graph(kg, kg_dir, SourceInfo.of("primekg", [csv_path]))
    build_s = time.perf_counter() - start
    build_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"built in {build_s:.1f} s (read {read_s:.1f} s, save {build_s - read_s:.1f} s), "
        f"peak RSS {build_rss:.0f} MB: {manifest.nodes:,} nodes, {manifest.edges:,} facts")
    del kg

    log("reloading with load_graph in a fresh process")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RELOAD, str(kg_dir), str(ROOT)],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"reloaded in {child['reload_s']:.1f} s ({wall:.1f} s with interpreter start), "
        f"peak RSS {child['rss_mb']:.0f} MB")
    print(json.dumps({
        "build_s": round(build_s, 1), "read_s": round(read_s, 1),
        "reload_s": round(child["reload_s"], 2), "reload_wall_s": round(wall, 2),
        "rss_mb": round(child["rss_mb"]), "build_rss_mb": round(build_rss),
        "nodes": child["nodes"], "edges": child["edges"], "facts": manifest.edges,
    }))


if __name__ == "__main__":
    main()
