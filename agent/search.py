"""Which graph search an attempt runs, and the search itself over a sample's mappings.

Each retry widens the previous attempt by one step, deterministically:

* attempt 1: shortest paths between the primary node of every mention;
* attempt 2: also the second-best node of each mention, skipping paths already used;
* attempt 3 and later: also paths one hop longer than the shortest, and the answer
  reached through its most specific neighbours.
"""

from __future__ import annotations

import math

from agent.config import Settings
from agent.state import Mapping, SearchSettings
from graphs.neighbours import neighbours
from graphs.paths import find_paths
from graphs.store import KnowledgeGraph

NEIGHBOURS_PER_ANSWER = 20


def settings_for_attempt(settings: Settings, attempt: int) -> SearchSettings:
    return SearchSettings(
        attempt=attempt,
        max_hops=settings.max_hops,
        paths_per_pair=settings.paths_per_pair,
        extra_hops=1 if attempt >= 3 else 0,
        alternative_mappings=attempt >= 2,
        expand_answer=attempt >= 3,
        exclude_used=attempt >= 2,
    )


def nodes_for(
    mappings: list[Mapping], role: str, search: SearchSettings, settings: Settings
) -> list[str]:
    """The nodes standing for a role ("question", "answer", "option:B") in this attempt."""
    chosen: list[str] = []
    for m in mappings:
        if m["role"] != role:
            continue
        chosen.append(m["node_id"])
        if search["alternative_mappings"]:
            chosen.extend(
                alt["node_id"] for alt in m["alternatives"][:1] if alt["score"] >= settings.min_score
            )
    return list(dict.fromkeys(chosen))[: settings.max_question_nodes * 2]


def connect(
    kg: KnowledgeGraph,
    sources: list[str],
    targets: list[str],
    search: SearchSettings,
    settings: Settings,
    cut_short: set[tuple[str, str]] | None = None,
) -> list[tuple[str, ...]]:
    """Paths from every source to every target, the best ``paths_per_pair`` per pair;
    pairs whose search hit its work bound are added to ``cut_short`` when given."""
    found: list[tuple[str, ...]] = []
    for target in targets:
        detour = _specific_neighbours(kg, target) if search["expand_answer"] else []
        for source in sources:
            if source == target:
                continue
            pair = find_paths(
                kg, [source], [target],
                max_hops=search["max_hops"],
                limit=search["paths_per_pair"],
                extra_hops=search["extra_hops"],
                max_work=settings.path_max_work,
            )
            found.extend(pair.paths)
            if detour:
                found.extend(_paths_via(kg, source, target, detour, search, settings))
            if pair.truncated and cut_short is not None:
                cut_short.add((source, target))
    return list(dict.fromkeys(found))


def _specific_neighbours(kg: KnowledgeGraph, node_id: str) -> list[str]:
    return [n.node_id for n in neighbours(kg, node_id, limit=NEIGHBOURS_PER_ANSWER)]


def _paths_via(kg, source, target, via, search, settings) -> list[tuple[str, ...]]:
    """Paths that reach ``target`` through one of its neighbours ``via``."""
    paths = find_paths(
        kg, [source], [v for v in via if v != source],
        max_hops=search["max_hops"],
        limit=search["paths_per_pair"],
        max_work=settings.path_max_work,
    ).paths
    return [p + (target,) for p in paths if target not in p]


def option_evidence(
    kg: KnowledgeGraph, mappings: list[Mapping], letters, search: SearchSettings, settings: Settings
) -> dict[str, float]:
    """Each option's KG evidence from the question's nodes (the KG-only verifier's measure)."""
    sources = nodes_for(mappings, "question", search, settings)
    return {
        letter: evidence(kg, connect(kg, sources, nodes_for(mappings, f"option:{letter}", search, settings), search, settings))
        for letter in letters
    }


def path_weight(kg: KnowledgeGraph, path: tuple[str, ...] | list[str]) -> float:
    """1 for a direct link, less for each node passed through, the less the bigger a hub it is.

    A link through "Intellectual disability" (thousands of neighbours) says far less than
    one through a rare phenotype, so each intermediate node costs log2(1 + degree).
    """
    return 1.0 / (1.0 + sum(math.log2(1 + kg.degree(n)) for n in path[1:-1]))


def evidence(kg: KnowledgeGraph, paths: list[tuple[str, ...]]) -> float:
    """KG support for a target: for each question node its best path, summed.

    Taking the best path per question node (not the count of paths) keeps a hub-rich
    option from winning on sheer numbers of weak paths.
    """
    best: dict[str, float] = {}
    for path in paths:
        best[path[0]] = max(best.get(path[0], 0.0), path_weight(kg, path))
    return round(sum(best.values()), 4)
