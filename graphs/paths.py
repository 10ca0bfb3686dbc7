"""Paths as the agent stores and shows them: node ids, names, types and every fact of every hop.

A path is found as a tuple of node ids (``graphs.path_search``); ``describe`` turns it into a
JSON-ready record that keeps each hop's facts with their labels and true directions, so
``fever ←phenotype present— malaria`` is never flattened into ``fever - malaria``, and a
drug that is both target and enzyme substrate of a protein reads ``—target, enzyme→``.

``ranked_paths`` is the knowledge graph's path search: the ranking it states (specific
nodes over hubs, clinical relations over generic ones) and a work bound, not a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NotRequired, TypedDict

from graphs.path_search import COST_UNIT, PathSearch, degree_cost, search_paths
from graphs.relations import hop_cost
from graphs.store import Fact, KnowledgeGraph


class HopFact(TypedDict):
    relation: str  # the source's relation name (PrimeKG's ``relation`` column)
    label: str  # how it reads (PrimeKG's ``display_relation``)
    forward: bool  # True when the hop's first node is the fact's head


class PathRecord(TypedDict):
    nodes: list[str]
    names: list[str]
    types: list[str]
    hops: list[list[HopFact]]  # hop i joins nodes[i] and nodes[i+1]: every fact on that edge
    text: str
    truncated: bool  # the search that found it hit its work bound (other paths may exist)
    # how well it explains the question's answer: {"score": [0, 1], "reasons": [...]}, set by the agent
    relevance: NotRequired[dict]


def hop_facts(kg: KnowledgeGraph, u: str, v: str) -> list[HopFact]:
    """Every fact on the edge from ``u`` to ``v``, in the order the graph stored them."""
    facts = kg.facts_between(u, v)
    if not facts:
        raise ValueError(f"no edge between {u!r} and {v!r}")
    return [_hop_fact(f, u) for f in facts]


def _hop_fact(fact: Fact, start: str) -> HopFact:
    return HopFact(relation=fact.relation, label=fact.label, forward=fact.head == start)


def describe(kg: KnowledgeGraph, nodes: tuple[str, ...] | list[str], truncated: bool = False) -> PathRecord:
    hops = [hop_facts(kg, u, v) for u, v in zip(nodes, nodes[1:])]
    names = [kg.name(n) for n in nodes]
    return PathRecord(
        nodes=list(nodes),
        names=names,
        types=[kg.graph.nodes[n]["type"] for n in nodes],
        hops=hops,
        text=path_text(names, hops),
        truncated=truncated,
    )


def arrow(facts: list[HopFact]) -> str:
    """One hop's arrow: ``—target, enzyme→`` (or ``←…—`` against the facts' direction);
    facts pointing both ways on one edge read ``—a→ ←b—``."""
    ahead = [f["label"] for f in facts if f["forward"]]
    back = [f["label"] for f in facts if not f["forward"]]
    parts = ([f"—{', '.join(ahead)}→"] if ahead else []) + ([f"←{', '.join(back)}—"] if back else [])
    return " ".join(parts)


def path_text(names: list[str], hops: list[list[HopFact]]) -> str:
    """``a —rel→ b ←rel— c``: the arrow points from each fact's head to its tail."""
    parts = [names[0]]
    for name, facts in zip(names[1:], hops):
        parts.append(f"{arrow(facts)} {name}")
    return " ".join(parts)


def path_key(path: PathRecord) -> str:
    """Identity of a path for de-duplication and for excluding paths already used."""
    return ">".join(path["nodes"])


def ranked_paths(kg: KnowledgeGraph, sources: Iterable[str], targets: Iterable[str], **options) -> PathSearch:
    """``graphs.path_search.search_paths`` (same options: ``max_hops``, ``limit``,
    ``extra_hops``, ``max_work``) ranked by the KG's stated preference before the cap.

    A path costs log2(1 + degree) per inner node (a hub explains less than a rare node)
    plus ``graphs.relations.GENERIC_HOP_COST`` per hop whose facts are all generic
    (parent-child, ppi, interacts with, expression): among equally short paths the most
    specific, most clinical ones come first, whatever the node ids; exact ties go by id.

    The graph remembers the searches it ran (``KnowledgeGraph.searched``, forgotten when a
    fact is added): the answer depends on nothing else, and a sample asks for the same pairs
    in its verifier and on each retry.
    """
    key = (_ends(sources), _ends(targets), tuple(sorted(options.items())))
    found = kg.searched.found([key]).get(key)
    if found is None:
        adj = kg.graph._adj
        per_relation = [round(COST_UNIT * hop_cost([relation.label])) for relation in kg.relations]

        def cost_of_hop(u: str, v: str) -> int:  # hop_cost of the edge's labels: nothing if one is clinical
            facts = adj[u][v]["facts"]
            return per_relation[facts[0][0]] if len(facts) == 1 else min(per_relation[r] for r, _ in facts)

        found = search_paths(kg.graph, sources, targets, node_cost=degree_cost(kg.graph), hop_cost=cost_of_hop, **options)
        kg.searched.keep({key: found})
    return PathSearch(list(found.paths), found.truncated)


def _ends(nodes: Iterable[str]) -> frozenset[str]:
    """A search's sources or targets as the search takes them: a set (a bare string: one node)."""
    return frozenset((nodes,) if isinstance(nodes, str) else nodes)


def keep_each_group(chosen: list[PathRecord], candidates: list[PathRecord], limit: int) -> list[PathRecord]:
    """At most ``limit`` of ``chosen`` (in order), but never a (first node, last node) group
    of ``candidates`` left without a path: a group the choice missed gets its first
    candidate (the search's best), and every group keeps one path even past the limit."""
    group = lambda p: (p["nodes"][0], p["nodes"][-1])  # noqa: E731
    first: dict[tuple[str, str], PathRecord] = {}
    for path in chosen + candidates:
        first.setdefault(group(path), path)
    kept = list(first.values())
    room = limit - len(kept)
    keys = {path_key(p) for p in kept}
    for path in chosen:
        if room <= 0:
            break
        if path_key(path) not in keys:
            kept.append(path)
            keys.add(path_key(path))
            room -= 1
    order = {path_key(p): i for i, p in enumerate(chosen)}
    return sorted(kept, key=lambda p: order.get(path_key(p), len(order)))
