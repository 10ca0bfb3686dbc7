"""All shortest paths between two node sets of an undirected networkx graph.

Why not ``nx.all_shortest_paths``: it runs a full breadth-first search from the source on
every call, seconds per pair on a PrimeKG-sized graph. Here both ends grow towards each
other one whole BFS layer at a time, always on the side whose frontier touches fewer edges,
and the search stops at the first layer where the two sides meet. A PrimeKG graph has a
small diameter, so most pairs meet after two or three cheap layers.

Why set operations: every neighbourhood test is a C-level ``dict_keys & set`` or
``isdisjoint`` that walks the smaller operand, so a hub with 20,000 neighbours costs as
much as the frontier it is compared with, not 20,000 Python steps.

Why a DAG walk: the paths are read off the "shortest-path DAG" (for each hop count, the
nodes that sit at that position on some shortest path). Every DAG node continues to a
target, so a depth-first walk over it never backtracks from a dead end, and stopping after
``limit`` paths costs O(limit x hops), whatever the total number of paths.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import networkx as nx

_CLOCK_EVERY = 64  # read the clock once per this many loop steps (it costs ~60 ns a read)


class _OutOfTime(Exception):
    """Raised from deep inside the search when the budget is spent; ``shortest_paths``
    catches it and returns the paths collected so far."""


class _Clock:
    """A deadline; ``check`` raises ``_OutOfTime`` once it has passed (never without one)."""

    __slots__ = ("_deadline",)

    def __init__(self, budget: float | None) -> None:
        self._deadline = None if budget is None else time.perf_counter() + budget

    def check(self) -> None:
        if self._deadline is not None and time.perf_counter() >= self._deadline:
            raise _OutOfTime


def shortest_paths(
    graph: nx.Graph,
    sources: Iterable[str],
    targets: Iterable[str],
    *,
    max_hops: int = 3,
    limit: int | None = 10,
    extra_hops: int = 0,
    time_budget: float | None = None,
) -> list[tuple[str, ...]]:
    """Every shortest path from a node of ``sources`` to a node of ``targets``.

    The distance is the minimum over the two sets; every path of that length from some
    source to some target is returned (a node in both sets gives the one-node path).
    Nodes absent from the graph are ignored; a bare string counts as one node.

    Order and ``limit``: paths are sorted by length, then lexicographically by node ids.
    The walk produces them in exactly that order, so with a limit the result is the first
    ``limit`` paths of the full sorted list, found without enumerating the rest.

    ``max_hops`` bounds every path returned ([] when the targets are farther away).
    ``extra_hops`` > 0 appends simple paths up to that many hops longer than the shortest
    (still within ``max_hops``); their inner nodes are neither sources nor targets, since
    such a path only restates a shorter one with a detour. ``time_budget`` (seconds) stops
    the search early, returning whatever was found by then, possibly [].
    """
    adj = graph._adj
    src, dst = _present(adj, sources), _present(adj, targets)
    if not src or not dst or (limit is not None and limit <= 0):
        return []
    found: list[tuple[str, ...]] = []
    try:
        for path in _all_paths(adj, src, dst, max_hops, extra_hops, _Clock(time_budget)):
            found.append(path)
            if len(found) == limit:
                break
    except _OutOfTime:
        pass
    return found


def _present(adj: dict, nodes: Iterable[str]) -> set[str]:
    """The given nodes that are in the graph (a bare string is one node, not its letters)."""
    if isinstance(nodes, str):
        nodes = (nodes,)
    return {n for n in nodes if n in adj}


def _all_paths(
    adj: dict, src: set, dst: set, max_hops: int, extra_hops: int, clock: _Clock
) -> Iterator[tuple[str, ...]]:
    """Shortest paths in lexicographic order, then the longer ones ``extra_hops`` allows."""
    clock.check()
    positions = _shortest_dag(adj, src, dst, max_hops, clock)
    if positions is None:
        return
    yield from _walk_dag(adj, positions, clock)
    shortest = len(positions) - 1
    longest = min(shortest + extra_hops, max_hops)
    if longest > shortest:
        yield from _longer_paths(adj, src, dst, shortest + 1, longest, clock)


# -- bidirectional search ------------------------------------------------------------


def _shortest_dag(
    adj: dict, src: set, dst: set, max_hops: int, clock: _Clock
) -> list[set] | None:
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
        near, far = _touching(adj, layers[-1], other[-1], clock)
        if near:
            chain = _prune(adj, layers, near, clock) + _prune(adj, other, far, clock)[::-1]
            return chain if grow_fwd else chain[::-1]
        layer = _expand(adj, layers, clock)
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


def _touching(adj: dict, xs: set, ys: set, clock: _Clock) -> tuple[set, set]:
    """``(nodes of xs with a neighbour in ys, nodes of ys with a neighbour in xs)``.

    Loops in Python over the smaller set only; each test is a C-level ``isdisjoint``.
    """
    swap = len(ys) < len(xs)
    if swap:
        xs, ys = ys, xs
    near: set = set()
    far: set = set()
    for i, x in enumerate(xs):
        neighbours = adj[x].keys()
        if not neighbours.isdisjoint(ys):
            near.add(x)
            far.update(neighbours & ys)
        if not i & (_CLOCK_EVERY - 1):
            clock.check()
    return (far, near) if swap else (near, far)


def _expand(adj: dict, layers: list[set], clock: _Clock) -> set:
    """The next BFS layer: neighbours of the last layer that are in neither it nor the
    one before (in an undirected graph no neighbour can be older than that)."""
    frontier = layers[-1]
    layer: set = set()
    for i, node in enumerate(frontier):
        layer.update(adj[node])
        if not i & (_CLOCK_EVERY - 1):
            clock.check()
    layer -= frontier
    if len(layers) > 1:
        layer -= layers[-2]
    return layer


def _prune(adj: dict, layers: list[set], top: set, clock: _Clock) -> list[set]:
    """The BFS layers cut down to the nodes on shortest paths ending in ``top``.

    ``top`` is part of the last layer; going down, keep the nodes of each layer that
    neighbour a kept node of the layer above. Returns the kept sets by distance from this
    side's end (the end's own nodes first, ``top`` last).
    """
    chain = [top]
    for layer in reversed(layers[:-1]):
        below: set = set()
        for i, node in enumerate(chain[-1]):
            below.update(adj[node].keys() & layer)
            if not i & (_CLOCK_EVERY - 1):
                clock.check()
        chain.append(below)
    chain.reverse()
    return chain


def _walk_dag(adj: dict, positions: list[set], clock: _Clock) -> Iterator[tuple[str, ...]]:
    """Every source-to-target path through ``positions``, in lexicographic order.

    Depth-first with sorted successor lists, computed once per node (a node has a single
    position: its distance from the sources).
    """
    last = len(positions) - 1
    successors: dict[str, list[str]] = {}
    end = object()
    path: list[str] = []
    stack = [iter(sorted(positions[0]))]
    steps = 0
    while stack:
        node = next(stack[-1], end)
        steps += 1
        if not steps & (_CLOCK_EVERY - 1):
            clock.check()
        if node is end:
            stack.pop()
            if path:
                path.pop()
        elif len(path) == last:
            yield (*path, node)
        else:
            path.append(node)
            following = successors.get(node)
            if following is None:
                following = successors[node] = sorted(adj[node].keys() & positions[len(path)])
            stack.append(iter(following))


# -- longer simple paths (extra_hops) ------------------------------------------------


def _longer_paths(
    adj: dict, src: set, dst: set, first: int, last: int, clock: _Clock
) -> Iterator[tuple[str, ...]]:
    """Simple paths of ``first``..``last`` hops, shorter first, each length sorted.

    A depth-first search from the sources that steps only onto nodes whose BFS distance
    to the targets still fits in the hops left: a path is abandoned as soon as it cannot
    end in time, so the work stays near the number of paths produced.
    """
    layers = [dst]
    while len(layers) < last:  # inner nodes are at most last - 1 hops from a target
        layer = _expand(adj, layers, clock)
        if not layer:
            break
        layers.append(layer)
    to_dst = {node: hops for hops, layer in enumerate(layers) for node in layer}
    for hops in range(first, last + 1):
        yield from _simple_paths(adj, src, dst, to_dst, hops, clock)


def _simple_paths(
    adj: dict, src: set, dst: set, to_dst: dict, hops: int, clock: _Clock
) -> Iterator[tuple[str, ...]]:
    """Simple paths of exactly ``hops`` hops, source first, lexicographic order."""
    ends = src | dst
    options: dict[str, list[str]] = {}  # node -> sorted neighbours within reach of dst
    steps = 0

    def steps_from(node: str, on_path: set, left: int) -> Iterator[str]:
        """Neighbours that can be hop ``hops - left`` and still reach ``dst`` in ``left``."""
        near = options.get(node)
        if near is None:
            near = options[node] = sorted(v for v in adj[node] if v in to_dst)
        return (
            v for v in near
            if to_dst[v] <= left and v not in on_path and (left == 0 or v not in ends)
        )

    end = object()
    for source in sorted(src):
        path, on_path = [source], {source}
        stack = [steps_from(source, on_path, hops - 1)]
        while stack:
            node = next(stack[-1], end)
            steps += 1
            if not steps & (_CLOCK_EVERY - 1):
                clock.check()
            if node is end:
                stack.pop()
                on_path.discard(path.pop())
            elif len(path) == hops:
                yield (*path, node)
            else:
                path.append(node)
                on_path.add(node)
                stack.append(steps_from(node, on_path, hops - len(path)))
