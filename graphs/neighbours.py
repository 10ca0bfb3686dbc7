"""Neighbour expansion: the nodes one hop away, filtered and ranked specific-first.

A hub ("Autosomal recessive inheritance", a ubiquitous protein) is adjacent to thousands of
nodes and explains nothing, so neighbours are ranked by ascending degree: the rarer a
neighbour's connections, the more it says about the node being expanded.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphs.paths import HopFact, arrow, hop_facts
from graphs.store import KnowledgeGraph


class UnknownFilter(ValueError):
    """A relation or node type the graph does not have; the message lists those it has."""


@dataclass(frozen=True)
class Neighbour:
    node_id: str
    name: str
    type: str
    facts: list[HopFact]  # every fact joining the expanded node to this one (forward: it is the head)
    degree: int

    @property
    def arrow(self) -> str:
        return arrow(self.facts)


def neighbours(
    kg: KnowledgeGraph,
    node_id: str,
    relation: str | None = None,
    type: str | None = None,
    limit: int = 20,
    max_degree: int | None = None,
) -> list[Neighbour]:
    """Neighbours of ``node_id``, optionally only by ``relation`` (name or display label:
    then only the matching facts are kept), of ``type``, and of degree at most
    ``max_degree``; the ``limit`` most specific first. A relation or type the graph does not
    have raises UnknownFilter (an empty answer would read as "no such neighbour")."""
    if relation:
        known = sorted({word for r in kg.relations for word in r})
        if relation not in known:
            raise UnknownFilter(f"no relation {relation!r} in this graph; its relations (name or label): {', '.join(known)}")
    if type:
        types = sorted(kg.type_counts())
        if type not in types:
            raise UnknownFilter(f"no node type {type!r} in this graph; its types: {', '.join(types)}")
    found = []
    for other in kg.graph.adj[node_id]:
        attrs = kg.graph.nodes[other]
        if type and attrs["type"] != type:
            continue
        degree = kg.graph.degree(other)
        if max_degree is not None and degree > max_degree:
            continue
        facts = hop_facts(kg, node_id, other)
        if relation:
            facts = [f for f in facts if relation in (f["relation"], f["label"])]
            if not facts:
                continue
        found.append(Neighbour(other, attrs["name"], attrs["type"], facts, degree))
    found.sort(key=lambda n: (n.degree, n.name))
    return found[:limit]
