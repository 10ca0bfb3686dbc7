"""All shortest paths between two node sets of an undirected networkx graph, best first.

Why not ``nx.all_shortest_paths``: it runs a full breadth-first search from the source on
every call, seconds per pair on a PrimeKG-sized graph. Here both ends grow towards each
other one whole BFS layer at a time, always on the side whose frontier touches fewer edges,
and the search stops at the first layer where the two sides meet. A PrimeKG graph has a
small diameter, so most pairs meet after two or three cheap layers.

Why set operations: every neighbourhood test is a C-level ``dict_keys & set`` or
``isdisjoint`` that walks the smaller operand, so a hub with 20,000 neighbours costs as
much as the frontier it is compared with, not 20,000 Python steps.

Which paths come first: the shortest paths form a layered DAG; each path has a cost, the
sum of its inner nodes' costs (by default log2(1 + degree): a hub explains less than a
rare node) and of its hops' costs (none by default; the KG adds one for generic relations,
``graphs.paths``). A backward pass gives every DAG node its cheapest cost to a target,
and a best-first walk with that exact estimate then yields the paths in order of
(cost, node ids), so the first ``limit`` paths are the ``limit`` best of the *full* set,
found without enumerating the rest. Costs are integers, so ties and sums are exact.

Why a work count, not a clock: the search is bounded by ``max_work``, a count of adjacency
entries and DAG steps, charged and checked only between whole steps (a BFS layer, a layer of
the backward pass, a popped path, a step of the ordered depth-first walk). Set iteration
order (which varies with Python's hash seed) can therefore never change what is found: the
same input gives the same paths, and the same ``truncated`` flag, on any machine under any
load.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx

DEFAULT_MAX_WORK = 2_000_000  # adjacency entries and DAG steps per search
COST_UNIT = 1000  # costs are integer thousandths of a bit

NodeCost = Callable[[str], int]
HopCost = Callable[[str, str], int]


@dataclass(frozen=True)
class PathSearch:
    paths: list[tuple[str, ...]]
    truncated: bool  # the work bound stopped the search: more (or any) paths may exist


class _OutOfWork(Exception):
    """Raised between whole steps of the search once the work bound is spent."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self, max_work: int | None) -> None:
        self.left = math.inf if max_work is None else max_work

    def spend(self, work: int) -> None:
        """Charge ``work`` done (or about to be done) as one whole step; stop when spent."""
        self.left -= work
        if self.left < 0:
            raise _OutOfWork


def degree_cost(graph: nx.Graph) -> NodeCost:
    """log2(1 + degree) in COST_UNITs: passing through a hub costs more than a rare node."""
    adj = graph._adj
    return lambda node: _cost_of_degree(len(adj[node]))


@lru_cache(maxsize=1 << 14)
def _cost_of_degree(degree: int) -> int:
    """Remembered: a search prices every node of its paths, and few degrees recur."""
    return round(COST_UNIT * math.log2(1 + degree))


def no_hop_cost(u: str, v: str) -> int:
    return 0


def shortest_paths(graph: nx.Graph, sources: Iterable[str], targets: Iterable[str], **options) -> list[tuple[str, ...]]:
    """The paths of ``search_paths`` (same arguments), without the truncation flag."""
    return search_paths(graph, sources, targets, **options).paths


def search_paths(
    graph: nx.Graph,
    sources: Iterable[str],
    targets: Iterable[str],
    *,
    max_hops: int = 3,
    limit: int | None = 10,
    extra_hops: int = 0,
    max_work: int | None = DEFAULT_MAX_WORK,
    node_cost: NodeCost | None = None,
    hop_cost: HopCost = no_hop_cost,
) -> PathSearch:
    """Every shortest path from a node of ``sources`` to a node of ``targets``, best first.

    The distance is the minimum over the two sets; every path of that length from some
    source to some target is a candidate (a node in both sets gives the one-node path).
    Nodes absent from the graph are ignored; a bare string counts as one node.

    Order and ``limit``: shorter paths first; among paths of one length, lower cost first
    (inner nodes' ``node_cost``, default ``degree_cost``, plus every hop's ``hop_cost``),
    then node ids. With a limit the result is the first ``limit`` paths of that order over
    the full set.

    ``max_hops`` bounds every path returned ([] when the targets are farther away).
    ``extra_hops`` > 0 appends simple paths up to that many hops longer than the shortest
    (still within ``max_hops``), ranked the same way; their inner nodes are neither sources
    nor targets, since such a path only restates a shorter one with a detour. ``max_work``
    bounds the search (None: unbounded); when it runs out the result holds the paths found
    so far, still a prefix of the full order for the shortest ones, and ``truncated`` is set.
    """
    adj = graph._adj
    src, dst = _present(adj, sources), _present(adj, targets)
    if not src or not dst or (limit is not None and limit <= 0):
        return PathSearch([], False)
    cost = node_cost or degree_cost(graph)
    found: list[tuple[str, ...]] = []
    try:
        for path in _all_paths(adj, src, dst, max_hops, extra_hops, cost, hop_cost, _Budget(max_work)):
            found.append(path)
            if len(found) == limit:
                break
    except _OutOfWork:
        return PathSearch(found, True)
    return PathSearch(found, False)


def _present(adj: dict, nodes: Iterable[str]) -> set[str]:
    """The given nodes that are in the graph (a bare string is one node, not its letters)."""
    if isinstance(nodes, str):
        nodes = (nodes,)
    return {n for n in nodes if n in adj}


def _all_paths(
    adj: dict, src: set, dst: set, max_hops: int, extra_hops: int,
    node_cost: NodeCost, hop_cost: HopCost, budget: _Budget,
) -> Iterator[tuple[str, ...]]:
    """Shortest paths best first, then the longer ones ``extra_hops`` allows, best first."""
    positions = _shortest_dag(adj, src, dst, max_hops, budget)
    if positions is None:
        return
    yield from _ranked_walk(adj, positions, node_cost, hop_cost, budget)
    shortest = len(positions) - 1
    longest = min(shortest + extra_hops, max_hops)
    if longest > shortest:
        longer = list(_longer_paths(adj, src, dst, shortest + 1, longest, budget))
        longer.sort(key=lambda p: (len(p), _cost(p, node_cost, hop_cost), p))
        yield from longer


def _cost(path: tuple[str, ...], node_cost: NodeCost, hop_cost: HopCost) -> int:
    return sum(map(node_cost, path[1:-1])) + sum(hop_cost(u, v) for u, v in zip(path, path[1:]))


# -- bidirectional search ------------------------------------------------------------


def _shortest_dag(adj: dict, src: set, dst: set, max_hops: int, budget: _Budget) -> list[set] | None:
    """``positions[i]``: the nodes i hops from ``src`` on some shortest path to ``dst``.

    None when no path has at most ``max_hops`` hops. Each side keeps its BFS layers
    (``layers[k]`` = nodes at distance k from its end). Before growing a side we test
    whether its frontier touches the other frontier: if it does, the distance is the sum
    of both depths plus one and no further layer is needed. The side grown is the one
    whose frontier has the smaller total degree, i.e. the cheaper one to expand.
    """
    if max_hops < 0:
        return None
    if common := src & dst:
        return [common]
    fwd, bwd = [src], [dst]
    fwd_degree, bwd_degree = _degree(adj, src), _degree(adj, dst)
    while len(fwd) + len(bwd) - 1 <= max_hops:  # the next meeting would have this many hops
        grow_fwd = fwd_degree <= bwd_degree
        layers, other = (fwd, bwd) if grow_fwd else (bwd, fwd)
        budget.spend(min(len(layers[-1]), len(other[-1])))
        near, far = _touching(adj, layers[-1], other[-1])
        if near:
            chain = _prune(adj, layers, near, budget) + _prune(adj, other, far, budget)[::-1]
            return chain if grow_fwd else chain[::-1]
        budget.spend(fwd_degree if grow_fwd else bwd_degree)
        layer = _expand(adj, layers)
        if not layer:
            return None
        layers.append(layer)
        if grow_fwd:
            fwd_degree = _degree(adj, layer)
        else:
            bwd_degree = _degree(adj, layer)
    return None


def _degree(adj: dict, nodes: set) -> int:
    """Total degree of ``nodes``: the number of adjacency entries expanding them reads."""
    return sum(map(len, map(adj.__getitem__, nodes)))


def _touching(adj: dict, xs: set, ys: set) -> tuple[set, set]:
    """``(nodes of xs with a neighbour in ys, nodes of ys with a neighbour in xs)``.

    Loops in Python over the smaller set only; each test is a C-level ``isdisjoint``.
    """
    swap = len(ys) < len(xs)
    if swap:
        xs, ys = ys, xs
    near: set = set()
    far: set = set()
    for x in xs:
        neighbours = adj[x].keys()
        if not neighbours.isdisjoint(ys):
            near.add(x)
            far.update(neighbours & ys)
    return (far, near) if swap else (near, far)


def _expand(adj: dict, layers: list[set]) -> set:
    """The next BFS layer: neighbours of the last layer that are in neither it nor the
    one before (in an undirected graph no neighbour can be older than that)."""
    frontier = layers[-1]
    layer: set = set()
    for node in frontier:
        layer.update(adj[node])
    layer -= frontier
    if len(layers) > 1:
        layer -= layers[-2]
    return layer


def _prune(adj: dict, layers: list[set], top: set, budget: _Budget) -> list[set]:
    """The BFS layers cut down to the nodes on shortest paths ending in ``top``.

    ``top`` is part of the last layer; going down, keep the nodes of each layer that
    neighbour a kept node of the layer above. Returns the kept sets by distance from this
    side's end (the end's own nodes first, ``top`` last).
    """
    chain = [top]
    for layer in reversed(layers[:-1]):
        budget.spend(len(chain[-1]))
        below: set = set()
        for node in chain[-1]:
            below.update(adj[node].keys() & layer)
        chain.append(below)
    chain.reverse()
    return chain


def _ranked_walk(
    adj: dict, positions: list[set], node_cost: NodeCost, hop_cost: HopCost, budget: _Budget
) -> Iterator[tuple[str, ...]]:
    """Every source-to-target path through ``positions``, by (cost, node ids).

    A backward pass gives each DAG node its successors and its cheapest cost to a target;
    a best-first walk keyed by cost so far plus that exact remainder then pops complete
    paths in order. Children never sort before their parent (cost and tuple only grow), so
    the pops, and hence the paths, come out sorted by (cost, ids).
    """
    last = len(positions) - 1
    if last == 0:
        yield from ((n,) for n in sorted(positions[0]))
        return
    to_go: dict[str, int] = dict.fromkeys(positions[last], 0)
    steps: dict[str, list[tuple[str, int]]] = {}
    for i in range(last - 1, -1, -1):
        budget.spend(len(positions[i]))
        following = positions[i + 1]
        inner = i + 1 < last
        for v in positions[i]:
            out = [(w, hop_cost(v, w) + (node_cost(w) if inner else 0)) for w in adj[v].keys() & following]
            steps[v] = out
            to_go[v] = min(c + to_go[w] for w, c in out)
    heap = [(to_go[s], (s,), 0) for s in positions[0]]
    heapq.heapify(heap)
    while heap:
        budget.spend(1)
        _, path, so_far = heapq.heappop(heap)
        if len(path) == last + 1:
            yield path
            continue
        for w, c in steps[path[-1]]:
            heapq.heappush(heap, (so_far + c + to_go[w], (*path, w), so_far + c))


# -- longer simple paths (extra_hops) ------------------------------------------------


def _longer_paths(
    adj: dict, src: set, dst: set, first: int, last: int, budget: _Budget
) -> Iterator[tuple[str, ...]]:
    """Simple paths of ``first``..``last`` hops (each length in lexicographic order).

    A depth-first search from the sources that steps only onto nodes whose BFS distance
    to the targets still fits in the hops left: a path is abandoned as soon as it cannot
    end in time, so the work stays near the number of paths produced.
    """
    layers = [dst]
    while len(layers) < last:  # inner nodes are at most last - 1 hops from a target
        budget.spend(_degree(adj, layers[-1]))
        layer = _expand(adj, layers)
        if not layer:
            break
        layers.append(layer)
    to_dst = {node: hops for hops, layer in enumerate(layers) for node in layer}
    for hops in range(first, last + 1):
        yield from _simple_paths(adj, src, dst, to_dst, hops, budget)


def _simple_paths(
    adj: dict, src: set, dst: set, to_dst: dict, hops: int, budget: _Budget
) -> Iterator[tuple[str, ...]]:
    """Simple paths of exactly ``hops`` hops, source first, lexicographic order."""
    ends = src | dst
    options: dict[str, list[str]] = {}  # node -> sorted neighbours within reach of dst
    # (node, left) -> those of its options that reach dst in ``left`` hops: a hub's options
    # are filtered by distance once, not on every visit (the paths' order is the same)
    in_reach: dict[tuple[str, int], list[str]] = {}

    def steps_from(node: str, on_path: set, left: int) -> Iterator[str]:
        """Neighbours that can be hop ``hops - left`` and still reach ``dst`` in ``left``."""
        near = in_reach.get((node, left))
        if near is None:
            every = options.get(node)
            if every is None:
                budget.spend(len(adj[node]))
                every = options[node] = sorted(v for v in adj[node] if v in to_dst)
            near = in_reach[node, left] = [v for v in every if to_dst[v] <= left]
        return (v for v in near if v not in on_path and (left == 0 or v not in ends))

    end = object()
    for source in sorted(src):
        path, on_path = [source], {source}
        stack = [steps_from(source, on_path, hops - 1)]
        while stack:
            node = next(stack[-1], end)
            budget.spend(1)
            if node is end:
                stack.pop()
                on_path.discard(path.pop())
            elif len(path) == hops:
                yield (*path, node)
            else:
                path.append(node)
                on_path.add(node)
                stack.append(steps_from(node, on_path, hops - len(path)))
