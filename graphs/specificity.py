"""How much a phenotype says: information content over the graph's disease annotations.

A disease annotated with a phenotype is annotated with all of its ancestors too (a patient
with "Arthralgia of the knee" has "Arthralgia"), so a term's frequency is the share of
annotated diseases that carry it or a descendant, and its information content is
``-log2`` of that share (Resnik; the measure Phenomizer ranks diseases by). It is scaled
to [0, 1] by the largest possible value, so a term no disease carries scores 1 and the
root 0.

How much one finding says about another: ``P(a | b)``, among the diseases annotated with
``b`` the share also annotated with ``a`` (one pseudo-count, so that a single shared disease
is not certainty), and the information ``b`` carries about ``a``: ``IC(a) + log2 P(a | b)``
(pointwise mutual information), which is ``IC(a)`` when ``b`` is ``a`` or a kind of it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

# IS_A: head is the child term, tail its parent (HPO and PrimeKG alike)
from graphs.vocabulary import DISEASE_PHENOTYPE_POSITIVE as ANNOTATION
from graphs.vocabulary import HPO_ROOT, IS_A, PHENOTYPE, PHENOTYPIC_ABNORMALITY

if TYPE_CHECKING:  # the store opens a Specificity of itself; only its type is needed here
    from graphs.store import KnowledgeGraph



class Specificity:
    """The is-a hierarchy of a graph's phenotypes and each term's information content."""

    def __init__(self, kg: KnowledgeGraph) -> None:
        self.parents: dict[str, set[str]] = defaultdict(set)
        self.children: dict[str, set[str]] = defaultdict(set)
        annotations: dict[str, set[str]] = defaultdict(set)  # disease -> its annotated terms
        self.annotated_by: dict[str, set[str]] = defaultdict(set)  # term -> diseases carrying it
        for fact in kg.facts():
            if fact.relation == IS_A and fact.head != fact.tail:
                self.parents[fact.head].add(fact.tail)
                self.children[fact.tail].add(fact.head)
            elif fact.relation == ANNOTATION:
                annotations[fact.head].add(fact.tail)
                self.annotated_by[fact.tail].add(fact.head)
        self._ancestors: dict[str, dict[str, str | None]] = {}
        counts: dict[str, int] = defaultdict(int)
        for terms in annotations.values():
            for term in set().union(*(self.ancestors(t) for t in terms)):
                counts[term] += 1
        self.annotated = len(annotations)
        self._scale = math.log2(self.annotated) if self.annotated > 1 else 1.0
        self._ic = {
            term: min(1.0, math.log2(self.annotated / n) / self._scale) for term, n in counts.items()
        }
        self._phenotypes = {n for n, t in kg.graph.nodes(data="type") if t == PHENOTYPE}
        self._annotations = annotations
        self._explained: dict[str, frozenset[str]] = {}

    def ancestors(self, term: str) -> dict[str, str | None]:
        """The term and every ancestor, each mapped to the node one step nearer ``term``."""
        found = self._ancestors.get(term)
        if found is None:
            found = {term: None}
            frontier = [term]
            while frontier:
                nxt = []
                for node in frontier:
                    for parent in sorted(self.parents.get(node, ())):
                        if parent not in found:
                            found[parent] = node
                            nxt.append(parent)
                frontier = nxt
            self._ancestors[term] = found
        return found

    def explained_by(self, disease: str) -> frozenset[str]:
        """Every term a disease explains: its annotations and all their ancestors (a disease
        with "Arthralgia of the knee" explains "Arthralgia"), remembered per disease."""
        found = self._explained.get(disease)
        if found is None:
            terms = self._annotations.get(disease, ())
            found = frozenset().union(*(self.ancestors(t) for t in terms)) if terms else frozenset()
            self._explained[disease] = found
        return found

    def chain_up(self, term: str, ancestor: str) -> tuple[str, ...]:
        """The is-a chain from ``term`` up to one of its ``ancestors``, both included."""
        steps, back = self.ancestors(term), []
        node: str | None = ancestor
        while node is not None:
            back.append(node)
            node = steps[node]
        return tuple(reversed(back))

    def is_phenotype(self, node_id: str) -> bool:
        return node_id in self._phenotypes

    def information(self, term: str) -> float:
        """Information content scaled to [0, 1]; 1 for a term no annotated disease carries."""
        return self._ic.get(term, 1.0)

    def conditional(self, a: str, b: str) -> float:
        """``P(a | b)`` over directly annotated diseases: 1 when ``b`` is ``a`` or a kind of it."""
        if a in self.ancestors(b):
            return 1.0
        carriers = self.annotated_by.get(b, set())
        return len(self.annotated_by.get(a, set()) & carriers) / (len(carriers) + 1)

    def information_about(self, a: str, b: str) -> float:
        """The information (scaled like ``information``) that ``b`` carries about ``a``."""
        p = self.conditional(a, b)
        return max(0.0, self.information(a) + math.log2(p) / self._scale) if p > 0 else 0.0

    def most_general(self, nodes: Iterable[str]) -> float:
        """The information of the least informative phenotype among ``nodes`` (1 if none)."""
        return min((self.information(n) for n in nodes if n in self._phenotypes), default=1.0)


def non_phenotypic(
    children: dict[str, list[str]], root: str = HPO_ROOT, abnormality: str = PHENOTYPIC_ABNORMALITY
) -> set[str]:
    """The root and every term under its children other than Phenotypic abnormality."""
    heads = [c for c in children.get(root, ()) if c != abnormality]
    seen, stack = {root, *heads}, list(heads)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def qualifier_terms(kg: KnowledgeGraph) -> frozenset[str]:
    """The terms that may qualify a finding but never stand for one.

    HPO's root has Phenotypic abnormality beside the subontologies of clinical modifiers
    (severity, laterality), clinical course (onset, pace), frequency, mode of inheritance
    and past medical history: "Left" or "Recurrent" says how a finding presents, not what
    the patient has. Found by HPO id, or by name where a graph carries HPO under its own
    ids (PrimeKG); a graph without HPO's hierarchy has none.
    """
    abnormality = PHENOTYPIC_ABNORMALITY
    if abnormality not in kg:
        named = [n for n in kg.nodes_named("Phenotypic abnormality") if kg.node(n).type == PHENOTYPE]
        if not named:
            return frozenset()
        abnormality = named[0]
    hierarchy = kg.specificity
    children = {parent: sorted(kids) for parent, kids in hierarchy.children.items()}
    found: set[str] = set()
    for root in hierarchy.parents.get(abnormality, ()):
        found |= non_phenotypic(children, root, abnormality)
    return frozenset(found)
