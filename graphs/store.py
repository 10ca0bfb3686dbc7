"""The knowledge graph store: a networkx graph keyed by stable node ids.

Nodes are keyed by the id their source gives them (``HP:0001945``, ``OMIM:222100``,
PrimeKG's index), never by a lower-cased name: different nodes can share a name.
Traversal is undirected (a path may walk an edge against its direction), but every edge
remembers every directed fact it carries, so a path can report each hop's true direction
and all of its facts.

A relation is keyed by its name *and* its display label: PrimeKG's coarse ``drug_protein``
is ``target``, ``enzyme``, ``carrier`` or ``transporter`` row by row, and these are four
different facts (a drug metabolised by CYP3A4 does not target it).
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import networkx as nx

from graphs.names import normalize, reworded_key  # the forms names are matched in
from graphs.recent import Recent
from graphs.relations import display
from graphs.specificity import Specificity, qualifier_terms


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic containers.

    Each of its collections rescans every live container: with a graph of millions of edge
    dicts growing, that turns a bulk load of seconds into minutes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    type: str
    source: str = ""


# Cached views computed from the facts (the name index depends on the nodes alone).
FACT_VIEWS = ("specificity", "qualifiers", "searched")
NAME_VIEWS = ("name_index", "name_openings", "name_words", "name_word_pairs", "reworded_index", "names_by_word")
# Path searches a graph remembers (graphs.paths.ranked_paths): a sample searches the same pairs
# again in its verifier and on each retry, and other samples search them too.
SEARCHES_KEPT = 20_000


class Relation(NamedTuple):
    """A relation as its source names it (``drug_protein``) and as a fact reads (``enzyme``)."""

    name: str
    label: str


@dataclass(frozen=True)
class Fact:
    """One directed, labelled edge: ``head —label→ tail`` (``relation`` is the source's name)."""

    head: str
    relation: str
    tail: str
    label: str


class KnowledgeGraph:
    """Nodes with name/type/source/synonyms and relation-labelled directed facts.

    The networkx graph is undirected so that path search can walk it both ways; each
    edge's ``facts`` attribute holds ``(relation index, head id)`` pairs, one per fact on
    the edge, relations being interned in ``relations`` by (name, label).
    """

    def __init__(self) -> None:
        self.graph = nx.Graph()
        self.relations: list[Relation] = []
        self._relation_index: dict[Relation, int] = {}
        self.synonyms: dict[str, tuple[str, ...]] = {}

    # -- building -------------------------------------------------------------------
    def add_node(
        self, node_id: str, name: str, type: str, source: str = "", synonyms: Iterable[str] = ()
    ) -> None:
        self.graph.add_node(node_id, name=name, type=type, source=source)
        extra = tuple(dict.fromkeys(s for s in synonyms if s and s != name))
        if extra:
            self.synonyms[node_id] = extra
        self._forget_derived()

    def add_fact(self, head: str, relation: str, tail: str, label: str | None = None) -> None:
        """Record ``head —relation→ tail``, read as ``label`` (default: the relation's usual
        display label); both nodes must exist already."""
        for node_id in (head, tail):
            if node_id not in self.graph:
                raise KeyError(f"unknown node {node_id!r} in fact ({head}, {relation}, {tail})")
        rel = self._intern(Relation(relation, label or display(relation)))
        self._forget_derived(FACT_VIEWS)
        data = self.graph.get_edge_data(head, tail)
        if data is None:
            self.graph.add_edge(head, tail, facts=((rel, head),))
        elif (rel, head) not in data["facts"]:
            data["facts"] = data["facts"] + ((rel, head),)

    def add_facts(self, facts: Iterable[tuple[str, str, str]]) -> None:
        """``add_fact`` for many ``(head, relation, tail)`` facts, each read as its relation's
        usual label: the same graph as adding them one by one, with each relation interned
        once and networkx's adjacency written directly (a graph reader's half a million facts
        took half its time in ``add_fact``)."""
        adj = self.graph._adj
        interned: dict[str, int] = {}
        with gc_paused():
            for head, relation, tail in facts:
                if head not in adj or tail not in adj:
                    missing = head if head not in adj else tail
                    raise KeyError(f"unknown node {missing!r} in fact ({head}, {relation}, {tail})")
                rel = interned.get(relation)
                if rel is None:
                    rel = interned[relation] = self._intern(Relation(relation, display(relation)))
                data = adj[head].get(tail)
                if data is None:
                    data = {"facts": ((rel, head),)}
                    adj[head][tail] = data
                    adj[tail][head] = data
                elif (rel, head) not in data["facts"]:
                    data["facts"] = data["facts"] + ((rel, head),)
        nx._clear_cache(self.graph)
        self._forget_derived(FACT_VIEWS)

    def add_fact_columns(
        self, node_ids: list[str], heads: list[int], tails: list[int], relations: list[Relation], rels: list[int]
    ) -> None:
        """Bulk-load facts given as parallel columns of indices (the cache's format).

        Writes networkx's adjacency directly (one shared edge dict per pair, as networkx
        does): at PrimeKG scale this is several times faster than ``add_fact``.
        """
        local = [self._intern(Relation(*r)) for r in relations]
        adj = self.graph._adj
        with gc_paused():
            for h, t, r in zip(heads, tails, rels):
                u, v = node_ids[h], node_ids[t]
                data = adj[u].get(v)
                if data is None:
                    data = {"facts": ((local[r], u),)}
                    adj[u][v] = data
                    adj[v][u] = data
                elif (local[r], u) not in data["facts"]:
                    data["facts"] = data["facts"] + ((local[r], u),)
        self._forget_derived(FACT_VIEWS)

    def _forget_derived(self, derived_from: tuple[str, ...] = (*NAME_VIEWS, "node_types", *FACT_VIEWS)) -> None:
        """Drop cached views of the graph that a change invalidates (names: nodes; the
        others: facts)."""
        for derived in derived_from:
            self.__dict__.pop(derived, None)

    def _intern(self, relation: Relation) -> int:
        index = self._relation_index.get(relation)
        if index is None:
            index = self._relation_index[relation] = len(self.relations)
            self.relations.append(relation)
        return index

    # -- reading --------------------------------------------------------------------
    def __contains__(self, node_id: object) -> bool:
        return node_id in self.graph

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    @property
    def edge_count(self) -> int:
        """Number of directed facts (an edge carrying two relations counts twice)."""
        return sum(len(d["facts"]) for _, _, d in self.graph.edges(data=True))

    def node(self, node_id: str) -> Node:
        attrs = self.graph.nodes[node_id]
        return Node(node_id, attrs["name"], attrs["type"], attrs.get("source", ""))

    def name(self, node_id: str) -> str:
        return self.graph.nodes[node_id]["name"]

    def nodes(self) -> Iterator[Node]:
        for node_id in self.graph:
            yield self.node(node_id)

    def facts_between(self, u: str, v: str) -> list[Fact]:
        """Every directed fact on the edge joining ``u`` and ``v`` (either direction)."""
        data = self.graph.get_edge_data(u, v)
        if data is None:
            return []
        return [self._fact(rel, head, v if head == u else u) for rel, head in data["facts"]]

    def facts(self) -> Iterator[Fact]:
        for u, v, data in self.graph.edges(data=True):
            for rel, head in data["facts"]:
                yield self._fact(rel, head, v if head == u else u)

    def _fact(self, rel: int, head: str, tail: str) -> Fact:
        relation = self.relations[rel]
        return Fact(head, relation.name, tail, relation.label)

    def degree(self, node_id: str) -> int:
        return self.graph.degree(node_id)

    def type_counts(self) -> Counter[str]:
        return Counter(t for _, t in self.graph.nodes(data="type"))

    @cached_property
    def node_types(self) -> frozenset[str]:
        """The node types the graph holds: whether it can hold a drug answer at all."""
        return frozenset(t for _, t in self.graph.nodes(data="type"))

    def relation_counts(self) -> Counter[Relation]:
        """Facts per (relation, display label)."""
        return Counter(Relation(f.relation, f.label) for f in self.facts())

    @cached_property
    def name_index(self) -> dict[str, tuple[str, ...]]:
        """Normalized name or synonym → ids of every node called that."""
        index: dict[str, list[str]] = {}
        for node_id, name in self.graph.nodes(data="name"):
            for label in (name, *self.synonyms.get(node_id, ())):
                key = normalize(label)
                if key:
                    ids = index.setdefault(key, [])
                    if node_id not in ids:
                        ids.append(node_id)
        return {key: tuple(ids) for key, ids in index.items()}

    @cached_property
    def name_openings(self) -> frozenset[str]:
        """The first word of every normalized name or synonym. Extraction looks up every run of
        up to eight words of a text; a run whose normalized form opens with none of these names
        no node, which one set lookup per starting word tells (``agent.reasoning.mentions``)."""
        return frozenset(key.partition(" ")[0] for key in self.name_index)

    @cached_property
    def name_words(self) -> frozenset[str]:
        """Every word of every normalized name or synonym: a run holding another word (one
        ``normalize`` does not join to its neighbour) names no node."""
        return frozenset(word for key in self.name_index for word in key.split())

    @cached_property
    def name_word_pairs(self) -> frozenset[tuple[str, str]]:
        """Every two words that follow each other in a normalized name or synonym: a run in
        which two words (neither one ``normalize`` joins) follow each other otherwise names no
        node."""
        pairs: set[tuple[str, str]] = set()
        with gc_paused():  # tens of thousands of tuples: no cycles for the collector to find
            for words in map(str.split, self.name_index):
                pairs.update(zip(words, words[1:]))
        return frozenset(pairs)

    @cached_property
    def reworded_index(self) -> dict[frozenset[str], tuple[str, ...]]:
        """Each name or synonym's words (``names.reworded_key``), with and without its
        numbers → ids of the nodes called so."""
        index: dict[frozenset[str], list[str]] = {}
        for node_id, name in self.graph.nodes(data="name"):
            for label in (name, *self.synonyms.get(node_id, ())):
                for key in {reworded_key(label), reworded_key(label, numbered=False)}:
                    ids = index.setdefault(key, [])
                    if node_id not in ids:
                        ids.append(node_id)
        return {key: tuple(ids) for key, ids in index.items()}

    @cached_property
    def names_by_word(self) -> dict[str, frozenset[str]]:
        """Each word of a normalized name or synonym → the normalized names of the nodes
        that have a name or synonym holding it (``names_holding``)."""
        index: dict[str, set[str]] = {}
        for node_id, name in self.graph.nodes(data="name"):
            key = normalize(name)
            for label in (name, *self.synonyms.get(node_id, ())):
                for word in normalize(label).split():
                    index.setdefault(word, set()).add(key)
        return {word: frozenset(names) for word, names in index.items()}

    def names_holding(self, words: Iterable[str]) -> frozenset[str]:
        """The normalized names of the concepts (nodes of one name count once: HPO's disease
        and phenotype "Systemic capillary leak syndrome") with a name or synonym holding every
        one of ``words``."""
        found = [self.names_by_word.get(w, frozenset()) for w in set(words)]
        return frozenset.intersection(*found) if found else frozenset()

    @cached_property
    def searched(self) -> Recent:
        """Path searches run on this graph as it is, by their question (``graphs.paths``)."""
        return Recent(SEARCHES_KEPT)

    @cached_property
    def specificity(self) -> Specificity:
        """The phenotype hierarchy and each term's information content (graphs.specificity)."""
        return Specificity(self)

    @cached_property
    def qualifiers(self) -> frozenset[str]:
        """Nodes that may qualify a finding but never stand for one, so never start a path
        ("Left", "Acute", "Autosomal dominant inheritance"): HPO's terms outside Phenotypic
        abnormality, in any graph that carries HPO (graphs.specificity.qualifier_terms)."""
        return qualifier_terms(self)

    def nodes_named(self, text: str) -> tuple[str, ...]:
        """Ids of the nodes whose name or synonym equals ``text`` once normalized."""
        return self.name_index.get(normalize(text), ())

    def nodes_reworded(self, text: str) -> tuple[str, ...]:
        """Ids of the nodes whose name or synonym has the same words as ``text`` in another
        order, filler aside, numbered forms included when ``text`` has no number ("Hereditary
        angioedema": "Angioedema, hereditary, 1"). Two words at least: one word's numbered
        forms ("Deafness 1") are too many to be one concept."""
        key = reworded_key(text)
        return self.reworded_index.get(key, ()) if len(key) >= 2 else ()

    def resolve(self, ref: str) -> str:
        """A node id from an id or an exact name; raises KeyError naming the reference."""
        if ref in self.graph:
            return ref
        ids = self.nodes_named(ref)
        if not ids:
            raise KeyError(f"no node with id or name {ref!r}")
        return min(ids, key=lambda i: -self.degree(i))

    def labels(self, node_id: str) -> tuple[str, ...]:
        """The node's name followed by its synonyms."""
        return (self.name(node_id), *self.synonyms.get(node_id, ()))
