"""Paths as the agent stores and shows them: node ids, names, types and every hop's relation.

A path is found as a tuple of node ids (``graphs.path_search``); ``describe`` turns it into a
JSON-ready record that keeps each hop's relation label and true direction, so
``fever ←phenotype present— malaria`` is never flattened into ``fever - malaria``.
"""

from __future__ import annotations

from typing import TypedDict

from graphs.store import KnowledgeGraph


class PathRecord(TypedDict):
    nodes: list[str]
    names: list[str]
    types: list[str]
    relations: list[str]
    forward: list[bool]  # hop i reads nodes[i] —relation→ nodes[i+1] when True
    text: str


def describe(kg: KnowledgeGraph, nodes: tuple[str, ...] | list[str]) -> PathRecord:
    relations: list[str] = []
    forward: list[bool] = []
    for u, v in zip(nodes, nodes[1:]):
        facts = kg.facts_between(u, v)
        if not facts:
            raise ValueError(f"no edge between {u!r} and {v!r}")
        fact = facts[0]
        relations.append(kg.relation_label(fact.relation))
        forward.append(fact.head == u)
    names = [kg.name(n) for n in nodes]
    return PathRecord(
        nodes=list(nodes),
        names=names,
        types=[kg.graph.nodes[n]["type"] for n in nodes],
        relations=relations,
        forward=forward,
        text=path_text(names, relations, forward),
    )


def path_text(names: list[str], relations: list[str], forward: list[bool]) -> str:
    """``a —rel→ b ←rel— c``: the arrow points from each fact's head to its tail."""
    parts = [names[0]]
    for name, relation, fwd in zip(names[1:], relations, forward):
        parts.append(f"—{relation}→ {name}" if fwd else f"←{relation}— {name}")
    return " ".join(parts)


def path_key(path: PathRecord) -> str:
    """Identity of a path for de-duplication and for excluding paths already used."""
    return ">".join(path["nodes"])
