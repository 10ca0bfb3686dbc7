"""Nodes by a name as a user half-remembers or misspells it (``kg search chloroquin``): the
graph's names and synonyms, in the fold every name is matched in (``graphs.names``), scored
against the query by rapidfuzz's weighted ratio, which also credits a query that is part of a
longer name ("marfan" in "Marfan syndrome"). The exact lookups elsewhere (``kg path``, ``kg
neighbours``, ``--set``) take the ids and names this finds.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz, process

from graphs.names import normalize
from graphs.store import KnowledgeGraph

MIN_SCORE = 80.0  # of 100: below it a "match" shares little more than a few letters ("ins" in "chloroquin")


@dataclass(frozen=True)
class NameMatch:
    node_id: str
    name: str
    type: str
    synonym: str | None  # the synonym that matched (folded), None when the name did
    score: float  # 0-100
    degree: int


def search_names(kg: KnowledgeGraph, query: str, limit: int = 10, type: str | None = None) -> list[NameMatch]:
    """The ``limit`` nodes whose name or a synonym is closest to ``query``, best first (a tie
    goes to the better connected node, as ``KnowledgeGraph.resolve`` prefers it)."""
    folded = normalize(query)
    if not folded:
        return []
    labels = kg.name_index
    best: dict[str, NameMatch] = {}
    # Enough label hits to fill ``limit`` nodes after labels of one node and other types collapse.
    for label, score, _ in process.extract(folded, labels.keys(), scorer=fuzz.WRatio, score_cutoff=MIN_SCORE,
                                           limit=max(50, 10 * limit)):
        for node_id in labels[label]:
            node = kg.node(node_id)
            if type and node.type != type or node_id in best and best[node_id].score >= score:
                continue
            synonym = None if label == normalize(node.name) else label
            best[node_id] = NameMatch(node_id, node.name, node.type, synonym, round(score, 1), kg.degree(node_id))
    return sorted(best.values(), key=lambda m: (-m.score, -m.degree, m.name))[:limit]
