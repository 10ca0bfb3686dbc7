"""Small graphs written for tests of how a question's words are read, and that reading:
each finding with the names of the nodes it stands for."""

from __future__ import annotations

from collections.abc import Iterable

from agent.reasoning.mentions import find_findings, named_or_measured
from graphs.store import KnowledgeGraph

PHENOTYPE = "effect/phenotype"


def kg_with(*nodes: tuple[str, str, str]) -> KnowledgeGraph:
    """A graph of ``(node id, name, type)`` nodes and no facts."""
    kg = KnowledgeGraph()
    for node_id, name, type_ in nodes:
        kg.add_node(node_id, name, type_)
    return kg


def phenotype_kg(names: dict[str, str], is_a: Iterable[tuple[str, str]] = ()) -> KnowledgeGraph:
    """Phenotypes (id → name) with their ``(child, parent)`` is-a facts."""
    kg = kg_with(*((node_id, name, PHENOTYPE) for node_id, name in names.items()))
    for child, parent in is_a:
        kg.add_fact(child, "phenotype_phenotype", parent)
    return kg


def findings_named(kg: KnowledgeGraph, text: str) -> list[tuple[str, list[str]]]:
    """Each finding of ``text`` (``find_findings``) with the names of the nodes it stands for."""
    return [(found, [kg.name(n) for n in named_or_measured(kg, found)]) for found in find_findings(kg, text)]
