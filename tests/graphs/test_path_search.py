"""shortest_paths against networkx as the oracle, on many random small graphs, and the
ranking, work bound and determinism of the search."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphs.path_search import search_paths, shortest_paths
from graphs.paths import ranked_paths
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


def rank(graph: nx.Graph, paths) -> list[tuple[str, ...]]:
    """The stated order, computed independently: hops, then the inner nodes' summed
    log2(1 + degree) in thousandths, then node ids."""
    cost = lambda p: sum(round(1000 * math.log2(1 + graph.degree(n))) for n in p[1:-1])  # noqa: E731
    return sorted(paths, key=lambda p: (len(p), cost(p), p))


@FAST
@given(graph_and_pair())
def test_single_pair_equals_networkx(case):
    graph, s, t = case
    got = shortest_paths(graph, [s], [t], max_hops=len(graph), limit=None)
    assert got == rank(graph, oracle(graph, s, t))  # the same set, ranked, no duplicates


@FAST
@given(graph_and_pair(), st.integers(0, 5))
def test_max_hops_bounds_the_distance(case, max_hops):
    graph, s, t = case
    expected = rank(graph, oracle(graph, s, t))
    got = shortest_paths(graph, [s], [t], max_hops=max_hops, limit=None)
    assert got == (expected if expected and len(expected[0]) - 1 <= max_hops else [])


@FAST
@given(graph_and_pair(), st.integers(1, 6))
def test_limit_keeps_the_best_of_the_full_set(case, limit):
    graph, s, t = case
    got = shortest_paths(graph, [s], [t], max_hops=len(graph), limit=limit)
    assert got == rank(graph, oracle(graph, s, t))[:limit]


@FAST
@given(graphs(), st.data())
def test_node_sets_take_the_minimum_over_pairs(graph, data):
    nodes = sorted(graph)
    sources = data.draw(st.sets(st.sampled_from(nodes), min_size=1, max_size=4))
    targets = data.draw(st.sets(st.sampled_from(nodes), min_size=1, max_size=4))
    got = shortest_paths(graph, sources, targets, max_hops=len(graph), limit=None)
    assert got == rank(graph, set_oracle(graph, sources, targets))
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
    return rank(graph, found)


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
    shortest = rank(graph, set_oracle(graph, sources, targets))
    if not shortest or len(shortest[0]) - 1 > max_hops:
        assert got == []
        return
    d = len(shortest[0]) - 1
    expected = shortest + longer_oracle(graph, sources, targets, d, min(d + extra, max_hops))
    assert got == expected[:limit]


@FAST
@given(graph_and_pair(), st.randoms(use_true_random=False), st.integers(1, 4))
def test_which_paths_are_kept_does_not_depend_on_node_ids(case, rng, limit):
    """Renaming the nodes keeps the chosen paths' costs: ids only break exact ties."""
    graph, s, t = case
    names = sorted(graph)
    shuffled = names[:]
    rng.shuffle(shuffled)
    rename = dict(zip(names, shuffled))
    renamed = nx.relabel_nodes(graph, rename)
    cost = lambda g, p: sum(round(1000 * math.log2(1 + g.degree(n))) for n in p[1:-1])  # noqa: E731
    got = shortest_paths(graph, [s], [t], max_hops=6, limit=limit)
    again = shortest_paths(renamed, [rename[s]], [rename[t]], max_hops=6, limit=limit)
    assert [cost(graph, p) for p in got] == [cost(renamed, p) for p in again]


def test_a_specific_node_is_preferred_to_a_hub_whatever_the_ids():
    # "a" and "b" are joined through "hub" (many other neighbours) and through "zz" (none);
    # by ids "hub" < "zz", by the stated preference the specific "zz" comes first.
    graph = nx.Graph([("a", "hub"), ("hub", "b"), ("a", "zz"), ("zz", "b")])
    graph.add_edges_from(("hub", f"leaf{i}") for i in range(50))
    assert shortest_paths(graph, ["a"], ["b"], limit=1) == [("a", "zz", "b")]
    assert shortest_paths(graph, ["a"], ["b"]) == [("a", "zz", "b"), ("a", "hub", "b")]


def test_a_clinical_hop_is_preferred_to_a_generic_one():
    # Anemia reaches HBB in two hops through malaria (phenotype present, associated with)
    # or through HBA1 (associated with, ppi). Both middle nodes have degree 2; the ppi hop
    # is generic, so the malaria path comes first though HBA1's id sorts first.
    kg = KnowledgeGraph()
    for node_id, name, kind in [("p", "anemia", "effect/phenotype"), ("d", "malaria", "disease"),
                                ("x", "HBB", "gene/protein"), ("a1", "HBA1", "gene/protein")]:
        kg.add_node(node_id, name, kind)
    kg.add_fact("d", "disease_phenotype_positive", "p")
    kg.add_fact("d", "disease_protein", "x")
    kg.add_fact("a1", "phenotype_protein", "p")
    kg.add_fact("a1", "protein_protein", "x")
    assert ranked_paths(kg, ["p"], ["x"], limit=None).paths == [("p", "d", "x"), ("p", "a1", "x")]
    assert ranked_paths(kg, ["p"], ["x"], limit=1).paths == [("p", "d", "x")]


def test_a_graph_answers_a_search_again_from_memory_until_a_fact_is_added(monkeypatch):
    kg = KnowledgeGraph()
    for node_id in "pdxe":
        kg.add_node(node_id, node_id, "t")
    kg.add_fact("d", "disease_phenotype_positive", "p")
    kg.add_fact("d", "disease_protein", "x")
    searches = []
    import graphs.paths

    search = graphs.paths.search_paths
    monkeypatch.setattr(graphs.paths, "search_paths", lambda *a, **kw: searches.append(a) or search(*a, **kw))
    first = ranked_paths(kg, ["p"], ["x"], limit=5)
    first.paths.clear()  # the caller's copy
    assert ranked_paths(kg, {"p"}, ("x",), limit=5).paths == [("p", "d", "x")] and len(searches) == 1
    assert ranked_paths(kg, ["p"], ["x"], limit=1).paths == [("p", "d", "x")] and len(searches) == 2  # another question
    kg.add_fact("p", "disease_phenotype_positive", "e")
    kg.add_fact("e", "disease_protein", "x")
    assert ranked_paths(kg, ["p"], ["x"], limit=5).paths == [("p", "d", "x"), ("p", "e", "x")] and len(searches) == 3


def test_a_tiny_work_bound_cuts_the_search_short_and_says_so():
    graph = nx.relabel_nodes(nx.gnm_random_graph(3000, 30000, seed=1), str)
    cut = search_paths(graph, ["0"], ["1"], max_hops=10, limit=None, extra_hops=3, max_work=100)
    assert cut.truncated
    full = search_paths(graph, ["0"], ["1"], max_hops=10, limit=None)
    assert not full.truncated and full.paths
    # A bound that stops the ranked walk part-way still returns the best paths, in order.
    partial = search_paths(graph, ["0"], ["1"], max_hops=10, limit=None, max_work=_work_to_meet(graph) + 3)
    assert partial.truncated and partial.paths == full.paths[: len(partial.paths)]


def _work_to_meet(graph) -> int:
    """The smallest bound under which the pair's search gets as far as its first path."""
    low, high = 0, 10**7
    while low < high:
        mid = (low + high) // 2
        if search_paths(graph, ["0"], ["1"], max_hops=10, limit=1, max_work=mid).paths:
            high = mid
        else:
            low = mid + 1
    return low


SEARCH_SCRIPT = """
import json, sys
import networkx as nx
sys.path.insert(0, {root!r})
from graphs.path_search import search_paths
graph = nx.relabel_nodes(nx.gnm_random_graph(2000, 12000, seed=7), str)
out = []
for s, t in [("0", "1"), ("5", "99"), ("17", "1234")]:
    for work in (200, 2000, 20000, None):
        r = search_paths(graph, [s], [t], max_hops=6, limit=10, extra_hops=1, max_work=work)
        out.append([r.truncated, r.paths])
print(json.dumps(out))
"""


def test_same_input_gives_the_same_paths_under_any_hash_seed_and_any_load():
    """Set iteration order changes with the hash seed; CPU load changes timing. Neither may
    change which paths a bounded search returns or whether it was cut short."""
    root = str(Path(__file__).resolve().parents[2])
    script = SEARCH_SCRIPT.format(root=root)

    def run(seed: str) -> list:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    quiet = run("1")
    assert any(truncated for truncated, _ in quiet) and any(not truncated for truncated, _ in quiet)
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(i * i for i in range(10_000))

    burners = [threading.Thread(target=burn) for _ in range(2)]
    for b in burners:
        b.start()
    try:
        loaded = run("2")
    finally:
        stop.set()
        for b in burners:
            b.join()
    assert loaded == quiet


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
    # Fever reaches each drug through the disease it treats; both paths have 2 hops, and
    # influenza (3 neighbours) is more specific than malaria (4).
    assert shortest_paths(graph, ["HP:0001945"], ["DB:00608", "DB:00198"]) == [
        ("HP:0001945", "MONDO:0005812", "DB:00198"),
        ("HP:0001945", "MONDO:0005136", "DB:00608"),
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
