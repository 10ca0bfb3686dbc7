"""shortest_paths against networkx as the oracle, on many random small graphs."""

from __future__ import annotations

import itertools
import time

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphs.path_search import shortest_paths
from graphs.store import KnowledgeGraph

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def graphs(draw, max_nodes: int = 40, density: int = 4) -> nx.Graph:
    """A gnm random graph with string node ids "n0".."n39" (sorting differs from ints)."""
    n = draw(st.integers(2, max_nodes))
    m = draw(st.integers(0, min(n * (n - 1) // 2, density * n)))
    graph = nx.gnm_random_graph(n, m, seed=draw(st.integers(0, 2**32 - 1)))
    return nx.relabel_nodes(graph, {i: f"n{i}" for i in graph})


@st.composite
def graph_and_pair(draw, **kwargs) -> tuple[nx.Graph, str, str]:
    graph = draw(graphs(**kwargs))
    nodes = sorted(graph)
    return graph, draw(st.sampled_from(nodes)), draw(st.sampled_from(nodes))


def oracle(graph: nx.Graph, s: str, t: str) -> list[tuple[str, ...]]:
    """All shortest s-t paths by networkx, sorted; [] when t is unreachable."""
    try:
        return sorted(map(tuple, nx.all_shortest_paths(graph, s, t)))
    except nx.NetworkXNoPath:
        return []


def set_oracle(graph: nx.Graph, sources: set, targets: set) -> list[tuple[str, ...]]:
    """Brute force over every (source, target) pair: the paths of the minimum length."""
    per_pair = [oracle(graph, s, t) for s in sources for t in targets]
    found = [p for paths in per_pair for p in paths]
    if not found:
        return []
    shortest = min(map(len, found))
    return sorted({p for p in found if len(p) == shortest})


@FAST
@given(graph_and_pair())
def test_single_pair_equals_networkx(case):
    graph, s, t = case
    got = shortest_paths(graph, [s], [t], max_hops=len(graph), limit=None)
    assert got == oracle(graph, s, t)  # same set, sorted, no duplicates


@FAST
@given(graph_and_pair(), st.integers(0, 5))
def test_max_hops_bounds_the_distance(case, max_hops):
    graph, s, t = case
    expected = oracle(graph, s, t)
    got = shortest_paths(graph, [s], [t], max_hops=max_hops, limit=None)
    assert got == (expected if expected and len(expected[0]) - 1 <= max_hops else [])


@FAST
@given(graph_and_pair(), st.integers(1, 6))
def test_limit_returns_the_first_paths_in_sorted_order(case, limit):
    graph, s, t = case
    got = shortest_paths(graph, [s], [t], max_hops=len(graph), limit=limit)
    assert got == oracle(graph, s, t)[:limit]


@FAST
@given(graphs(), st.data())
def test_node_sets_take_the_minimum_over_pairs(graph, data):
    nodes = sorted(graph)
    sources = data.draw(st.sets(st.sampled_from(nodes), min_size=1, max_size=4))
    targets = data.draw(st.sets(st.sampled_from(nodes), min_size=1, max_size=4))
    got = shortest_paths(graph, sources, targets, max_hops=len(graph), limit=None)
    assert got == set_oracle(graph, sources, targets)
    if sources & targets:
        assert got == [(n,) for n in sorted(sources & targets)]


def longer_oracle(graph, sources, targets, shortest: int, longest: int) -> list[tuple[str, ...]]:
    """Simple paths of shortest+1..longest hops whose inner nodes are not endpoints."""
    ends = sources | targets
    found = {
        tuple(p)
        for s, t in itertools.product(sources, targets) if s != t
        for p in nx.all_simple_paths(graph, s, t, cutoff=longest)
        if len(p) - 1 > shortest and not ends.intersection(p[1:-1])
    }
    return sorted(found, key=lambda p: (len(p), p))


@FAST
@given(graphs(max_nodes=25, density=2), st.data())
def test_extra_hops_add_longer_simple_paths_shortest_first(graph, data):
    nodes = sorted(graph)
    sources = data.draw(st.sets(st.sampled_from(nodes), min_size=1, max_size=2))
    targets = data.draw(st.sets(st.sampled_from(nodes), min_size=1, max_size=2))
    extra, max_hops = data.draw(st.integers(1, 2)), data.draw(st.integers(0, 5))
    limit = data.draw(st.none() | st.integers(1, 8))
    got = shortest_paths(graph, sources, targets, max_hops=max_hops, limit=limit,
                         extra_hops=extra)
    shortest = set_oracle(graph, sources, targets)
    if not shortest or len(shortest[0]) - 1 > max_hops:
        assert got == []
        return
    d = len(shortest[0]) - 1
    expected = shortest + longer_oracle(graph, sources, targets, d, min(d + extra, max_hops))
    assert got == expected[:limit]


@settings(max_examples=20, deadline=None)
@given(graph_and_pair())
def test_generous_time_budget_changes_nothing(case):
    graph, s, t = case
    got = shortest_paths(graph, [s], [t], max_hops=len(graph), limit=None, time_budget=60.0)
    assert got == oracle(graph, s, t)


def test_zero_time_budget_returns_a_list_quickly():
    graph = nx.relabel_nodes(nx.gnm_random_graph(3000, 30000, seed=1), str)
    start = time.perf_counter()
    got = shortest_paths(graph, ["0"], ["1"], max_hops=10, limit=None, extra_hops=3,
                         time_budget=0)
    assert isinstance(got, list)
    assert time.perf_counter() - start < 0.1


def test_unknown_nodes_are_ignored_and_a_bare_string_is_one_node():
    graph = nx.path_graph(["a", "b", "c"])
    assert shortest_paths(graph, ["a", "zzz"], ["c"]) == [("a", "b", "c")]
    assert shortest_paths(graph, "a", "c") == [("a", "b", "c")]
    assert shortest_paths(graph, ["zzz"], ["c"]) == []
    assert shortest_paths(graph, ["a"], ["c"], limit=0) == []


def medical_kg() -> KnowledgeGraph:
    kg = KnowledgeGraph()
    for node_id, name, kind in [
        ("HP:0001945", "Fever", "phenotype"),
        ("HP:0012378", "Fatigue", "phenotype"),
        ("MONDO:0005136", "malaria", "disease"),
        ("MONDO:0005812", "influenza", "disease"),
        ("DB:00608", "chloroquine", "drug"),
        ("DB:00198", "oseltamivir", "drug"),
        ("GENE:HBB", "HBB", "gene"),
        ("HP:0001903", "Anemia", "phenotype"),
    ]:
        kg.add_node(node_id, name, kind)
    for head, relation, tail in [
        ("MONDO:0005136", "phenotype present", "HP:0001945"),
        ("MONDO:0005812", "phenotype present", "HP:0001945"),
        ("MONDO:0005812", "phenotype present", "HP:0012378"),
        ("DB:00608", "indication", "MONDO:0005136"),
        ("DB:00198", "indication", "MONDO:0005812"),
        ("GENE:HBB", "associated with", "MONDO:0005136"),
        ("MONDO:0005136", "phenotype present", "HP:0001903"),
        ("GENE:HBB", "associated with", "HP:0001903"),
    ]:
        kg.add_fact(head, relation, tail)
    return kg


def test_medical_graph_fever_to_drugs():
    graph = medical_kg().graph
    # Fever reaches each drug through the disease it treats; both paths have 2 hops.
    assert shortest_paths(graph, ["HP:0001945"], ["DB:00608", "DB:00198"]) == [
        ("HP:0001945", "MONDO:0005136", "DB:00608"),
        ("HP:0001945", "MONDO:0005812", "DB:00198"),
    ]
    # Fatigue only reaches chloroquine via influenza, fever and malaria: 4 hops.
    assert shortest_paths(graph, ["HP:0012378"], ["DB:00608"], max_hops=3) == []
    assert shortest_paths(graph, ["HP:0012378"], ["DB:00608"], max_hops=4) == [
        ("HP:0012378", "MONDO:0005812", "HP:0001945", "MONDO:0005136", "DB:00608"),
    ]
    # Fever reaches HBB in 2 hops via malaria; one extra hop adds the detour via anemia.
    assert shortest_paths(graph, ["HP:0001945"], ["GENE:HBB"], extra_hops=1) == [
        ("HP:0001945", "MONDO:0005136", "GENE:HBB"),
        ("HP:0001945", "MONDO:0005136", "HP:0001903", "GENE:HBB"),
    ]
