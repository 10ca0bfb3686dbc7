"""Benchmark ``graphs.path_search.search_paths`` against ``nx.all_shortest_paths``.

Builds a seeded synthetic graph of PrimeKG's size (129,375 nodes, 4,050,249 edges) with
heavy-tailed degrees (Chung-Lu: edge ends drawn with probability proportional to a Zipf
weight), times all shortest paths (ranked specific-first) for random pairs and for pairs of
hubs (top 1% by degree), and times networkx on a subsample of the same pairs in the same
run, checking that the path sets are identical. Searches run under the default work bound
(``DEFAULT_MAX_WORK``); ``truncated`` counts the pairs it cut short, whose path sets are
left out of the comparison. The last line of output is one JSON object.

    python bench/paths.py                                      # full scale, a few minutes
    python bench/paths.py --nodes 5000 --edges 50000 --pairs 100
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphs.path_search import DEFAULT_MAX_WORK, search_paths, shortest_paths  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def edge_array(nodes: int, edges: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``edges`` distinct undirected pairs, shape (edges, 2), every node of degree >= 1.

    Node i gets weight (rank+1)^-exponent at a random rank (so ids do not reveal degree);
    both ends of an edge are drawn proportionally to weight, self-loops and repeats are
    dropped, and batches are drawn until there are enough edges. One edge per node, to a
    weighted partner, comes first so that no node is isolated (as in PrimeKG).
    """
    weight = (rng.permutation(nodes) + 1.0) ** -exponent
    p = weight / weight.sum()
    own = np.arange(nodes)
    partner = rng.choice(nodes, size=nodes, p=p)
    partner = np.where(partner == own, (own + 1) % nodes, partner)
    base = _keys(np.stack([own, partner], axis=1), nodes)
    rest = np.empty(0, dtype=np.int64)
    while base.size + rest.size < edges:
        batch = rng.choice(nodes, size=(int((edges - base.size - rest.size) * 1.2) + 1000, 2), p=p)
        rest = np.union1d(rest, np.setdiff1d(_keys(batch, nodes), base, assume_unique=True))
        log(f"  edges drawn: {base.size + rest.size:,}")
    rest = rng.choice(rest, size=max(edges - base.size, 0), replace=False)
    keys = np.concatenate([base, rest])
    return np.stack([keys // nodes, keys % nodes], axis=1)


def _keys(pairs: np.ndarray, nodes: int) -> np.ndarray:
    """Distinct ``low * nodes + high`` keys of the non-loop pairs (int64)."""
    low = np.minimum(pairs[:, 0], pairs[:, 1]).astype(np.int64)
    high = np.maximum(pairs[:, 0], pairs[:, 1]).astype(np.int64)
    keep = low != high
    return np.unique(low[keep] * nodes + high[keep])


def build_graph(nodes: int, edges: int, exponent: float, seed: int) -> tuple[nx.Graph, list[str]]:
    rng = np.random.default_rng(seed)
    pairs = edge_array(nodes, edges, exponent, rng)
    names = [str(i) for i in range(nodes)]
    graph = nx.Graph()
    graph.add_nodes_from(names)
    graph.add_edges_from(zip(map(names.__getitem__, pairs[:, 0].tolist()),
                             map(names.__getitem__, pairs[:, 1].tolist())))
    return graph, names


def sample_pairs(graph: nx.Graph, names: list[str], count: int, hub_count: int,
                 rng: np.random.Generator) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``count`` uniformly random pairs and ``hub_count`` pairs of top-1%-degree nodes."""
    picks = rng.integers(0, len(names), size=(count, 2))
    random_pairs = [(names[a], names[b]) for a, b in picks.tolist()]
    by_degree = sorted(graph.degree, key=lambda item: -item[1])
    hubs = [node for node, _ in by_degree[: max(2, len(names) // 100)]]
    picks = rng.integers(0, len(hubs), size=(hub_count, 2))
    hub_pairs = [(hubs[a], hubs[b]) for a, b in picks.tolist()]
    return random_pairs, hub_pairs


def time_ours(graph: nx.Graph, pairs, max_hops: int, limit: int | None):
    """Per-pair wall time (ms), paths and truncation flags of ``search_paths``."""
    times, results, cut = [], [], []
    for s, t in pairs:
        start = time.perf_counter()
        found = search_paths(graph, [s], [t], max_hops=max_hops, limit=limit)
        times.append((time.perf_counter() - start) * 1e3)
        results.append(found.paths)
        cut.append(found.truncated)
    return np.array(times), results, cut


def time_networkx(graph: nx.Graph, pairs):
    """Per-pair wall time (ms) and path sets of ``nx.all_shortest_paths``."""
    times, results = [], []
    for i, (s, t) in enumerate(pairs):
        start = time.perf_counter()
        try:
            paths = set(map(tuple, nx.all_shortest_paths(graph, s, t)))
        except nx.NetworkXNoPath:
            paths = set()
        times.append((time.perf_counter() - start) * 1e3)
        results.append(paths)
        log(f"  networkx {i + 1}/{len(pairs)}: {times[-1]:.0f} ms")
    return np.array(times), results


def pct(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)), 4) if values.size else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=129_375)
    parser.add_argument("--edges", type=int, default=4_050_249)
    parser.add_argument("--pairs", type=int, default=1000, help="random pairs")
    parser.add_argument("--hub-pairs", type=int, default=None, help="default: pairs / 10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nx-sample", type=int, default=20, help="pairs also run by networkx")
    parser.add_argument("--exponent", type=float, default=0.6, help="Zipf weight exponent")
    parser.add_argument("--max-hops", type=int, default=10)
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="leave the graph tracked by the cyclic GC during timing")
    args = parser.parse_args()
    hub_count = args.pairs // 10 if args.hub_pairs is None else args.hub_pairs

    log(f"building graph: {args.nodes:,} nodes, {args.edges:,} edges, seed {args.seed}")
    start = time.perf_counter()
    graph, names = build_graph(args.nodes, args.edges, args.exponent, args.seed)
    degrees = np.array([d for _, d in graph.degree])
    log(f"built in {time.perf_counter() - start:.1f} s; degree max {degrees.max()}, "
        f"median {np.median(degrees):.0f}, mean {degrees.mean():.1f}")
    if not args.no_gc_freeze:
        gc.collect()
        gc.freeze()  # a long-lived KG: keep gen-2 collections from rescanning it mid-timing

    rng = np.random.default_rng(args.seed + 1)
    random_pairs, hub_pairs = sample_pairs(graph, names, args.pairs, hub_count, rng)
    pairs = random_pairs + hub_pairs
    shortest_paths(graph, *pairs[0])  # warm-up

    log(f"timing shortest_paths on {len(pairs)} pairs (limit=None, then limit=10)")
    ours, full, cut = time_ours(graph, pairs, args.max_hops, None)
    capped, firsts, _ = time_ours(graph, pairs, args.max_hops, 10)
    capped_ok = all(c == f[:10] for c, f, x in zip(firsts, full, cut) if not x)

    picks = sorted(rng.choice(len(pairs), size=min(args.nx_sample, len(pairs)), replace=False))
    sample = [pairs[i] for i in picks]
    log(f"timing nx.all_shortest_paths on {len(sample)} of the pairs")
    theirs, expected = time_networkx(graph, sample)
    identical = all(set(full[i]) == exp for i, exp in zip(picks, expected) if not cut[i])
    paired = theirs / np.maximum(ours[picks], 1e-6)

    lengths = [len(p[0]) - 1 for p in full if p]
    counts = np.array([len(p) for p in full])
    n_random = len(random_pairs)
    result = {
        "nodes": graph.number_of_nodes(), "edges": graph.number_of_edges(),
        "max_degree": int(degrees.max()), "pairs": len(pairs), "hub_pairs": len(hub_pairs),
        "p50_ms": pct(ours, 50), "p99_ms": pct(ours, 99), "max_ms": pct(ours, 100),
        "random_p50_ms": pct(ours[:n_random], 50), "random_p99_ms": pct(ours[:n_random], 99),
        "hub_p50_ms": pct(ours[n_random:], 50), "hub_p99_ms": pct(ours[n_random:], 99),
        "capped10_p50_ms": pct(capped, 50), "capped10_p99_ms": pct(capped, 99),
        "nx_pairs": len(sample), "nx_p50_ms": pct(theirs, 50),
        "speedup_p50": round(pct(theirs, 50) / max(pct(ours, 50), 1e-6), 1),
        "speedup_paired_p50": round(float(np.median(paired)), 1),
        "hops_histogram": {str(h): lengths.count(h) for h in sorted(set(lengths))},
        "no_path": int((counts == 0).sum()), "paths_p50": float(np.median(counts)),
        "paths_max": int(counts.max()),
        "identical": bool(identical), "capped_is_prefix": bool(capped_ok),
        "max_work": DEFAULT_MAX_WORK, "truncated": int(sum(cut)),
        "gc_frozen": not args.no_gc_freeze,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
