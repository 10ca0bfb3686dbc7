"""What the graph says between two nodes beyond a one-hop fact: the chains that imply a fact.

A claim about two nodes is backed by a fact joining them or by a chain of facts that
*implies* one; a chain that merely connects them (through a gene, through another disease)
implies nothing. The chains that do:

* **the true-path rule** (HPO's annotation rule): a node annotated with a phenotype is
  annotated with all of its ancestors. A disease that presents with "Oculogyric crisis"
  presents with "Dystonia" (oculogyric crisis is-a … dystonia), any number of is-a steps up;
  a drug that can cause a specific phenotype can cause its ancestors, a gene associated with
  one is associated with its ancestors. Never down: a disease annotated with "Dystonia" does
  not present with every kind of dystonia. An absence goes the other way: a disease that
  does not present with "Dystonia" presents with no kind of it;
* **the is-a hierarchy**: a phenotype is a kind of each of its ancestors, any number of steps up;
* two weaker links, which back only a statement that names no relation ("suggests", "points
  to", "links", "consistent with"), never a named one nor a denial:

  - *a kind of a feature*: a finding that is a kind of a disease's annotated phenotype is
    consistent with the disease (the patient's oculogyric crisis is a dystonia, which the
    disease presents with: how Phenomizer scores a disease), though the disease is not
    known to present with that specific finding;
  - *a drug for a cause*: a drug indicated for a disease that presents with a finding
    (directly or by the true-path rule) treats a cause of that finding. It names its disease
    (``through``): a statement that the drug *treats* the finding is backed only where the
    statement itself names that disease ("chloroquine treats the fever of malaria").

Each implied fact carries the facts it is read from, so a reader can check it.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphs.relations import TREATS
from graphs.store import Fact, KnowledgeGraph
from graphs.vocabulary import DISEASE, DRUG, IS_A

# Facts whose phenotype end carries over to every ancestor of the phenotype (true-path rule).
TRUE_PATH_LABELS = frozenset({"phenotype present", "side effect", "associated with"})
ABSENT = "phenotype absent"
PRESENT = "phenotype present"
IS_A_LABEL = "parent-child"
# The labels of the weaker links: they back a statement that names no relation, nothing else.
KIND_OF_A_FEATURE = "consistent with a feature"
DRUG_FOR_A_CAUSE = "treats a disease presenting with"
WEAK_LABELS = frozenset({KIND_OF_A_FEATURE, DRUG_FOR_A_CAUSE})


@dataclass(frozen=True)
class Implied:
    """``head —label→ tail`` as a chain of facts implies it (or one fact says); ``through``: the
    node a weaker link passes (the drug's disease), else None; ``is_a``: an is-a of the
    phenotype hierarchy, whose head is the more specific term (other parent-child facts, such
    as PrimeKG's disease_disease rows, keep whichever of their two rows came first)."""

    head: str
    label: str
    tail: str
    chain: tuple[Fact, ...]
    through: str | None = None
    is_a: bool = False

    @classmethod
    def fact(cls, fact: Fact) -> Implied:
        return cls(fact.head, fact.label, fact.tail, (fact,), is_a=fact.relation == IS_A)


def implied_facts(kg: KnowledgeGraph, u: str, v: str) -> list[Implied]:
    """Every fact between ``u`` and ``v`` (either way round) that a chain of two or more facts
    implies, the most direct first; one-hop facts are ``kg.facts_between``'s."""
    hierarchy = kg.specificity
    found: list[Implied] = []
    if hierarchy.is_phenotype(u) and hierarchy.is_phenotype(v):
        for low, high in ((u, v), (v, u)):
            if high in hierarchy.ancestors(low) and len(hierarchy.chain_up(low, high)) > 2:
                found.append(Implied(low, IS_A_LABEL, high, _is_a_chain(kg, low, high), is_a=True))
        return found
    for holder, term in ((u, v), (v, u)):
        if hierarchy.is_phenotype(term) and not hierarchy.is_phenotype(holder):
            found += _true_path(kg, holder, term)
            found += _kind_of_a_feature(kg, holder, term)
            found += _drug_for_a_cause(kg, holder, term)
    return found


def _is_a_chain(kg: KnowledgeGraph, low: str, high: str) -> tuple[Fact, ...]:
    terms = kg.specificity.chain_up(low, high)
    return tuple(next(f for f in kg.facts_between(a, b) if f.head == a and f.relation == IS_A)
                 for a, b in zip(terms, terms[1:]))


def _true_path(kg: KnowledgeGraph, holder: str, term: str) -> list[Implied]:
    """``holder —L→ term`` read from ``holder —L→`` a descendant of ``term`` (L a true-path
    label), and ``holder —phenotype absent→ term`` from the absence of one of its ancestors;
    through the nearest such phenotype, for each label."""
    hierarchy = kg.specificity
    above_term = hierarchy.ancestors(term)
    best: dict[str, tuple[int, str, Fact]] = {}
    for other in kg.graph._adj[holder]:
        if other == term or not hierarchy.is_phenotype(other):
            continue
        below, above = term in hierarchy.ancestors(other), other in above_term
        if not (below or above):
            continue
        for fact in kg.facts_between(holder, other):  # either way round: a gene's association is the phenotype's
            if fact.label in TRUE_PATH_LABELS and below:
                steps = len(hierarchy.chain_up(other, term))
            elif fact.label == ABSENT and above:
                steps = len(hierarchy.chain_up(term, other))
            else:
                continue
            if fact.label not in best or (steps, other) < best[fact.label][:2]:
                best[fact.label] = (steps, other, fact)
    found = []
    for label, (_, other, fact) in sorted(best.items()):
        low, high = (term, other) if label == ABSENT else (other, term)
        found.append(Implied(holder, label, term, (fact, *_is_a_chain(kg, low, high))))
    return found


def _kind_of_a_feature(kg: KnowledgeGraph, disease: str, finding: str) -> list[Implied]:
    """A finding that is a kind of a phenotype the disease presents with (the nearest one)."""
    if kg.node(disease).type != DISEASE:
        return []
    hierarchy = kg.specificity
    ancestors = hierarchy.ancestors(finding)
    for feature in sorted(ancestors, key=lambda a: (len(hierarchy.chain_up(finding, a)), a)):
        if feature == finding:
            continue
        present = next((f for f in kg.facts_between(disease, feature) if f.head == disease and f.label == PRESENT), None)
        if present:
            return [Implied(disease, KIND_OF_A_FEATURE, finding, (*_is_a_chain(kg, finding, feature), present))]
    return []


def _drug_for_a_cause(kg: KnowledgeGraph, drug: str, finding: str) -> list[Implied]:
    """A drug indicated for a disease that presents with the finding, directly or by the
    true-path rule: one link per such disease."""
    if kg.node(drug).type != DRUG:
        return []
    found = []
    for disease in sorted(kg.graph._adj[drug]):
        if kg.node(disease).type != DISEASE:
            continue
        treats = next((f for f in kg.facts_between(drug, disease) if f.head == drug and f.label in TREATS), None)
        if treats is None:
            continue
        direct = next((f for f in kg.facts_between(disease, finding) if f.head == disease and f.label == PRESENT), None)
        if direct is not None:
            found.append(Implied(drug, DRUG_FOR_A_CAUSE, finding, (treats, direct), disease))
            continue
        implied = next((i for i in _true_path(kg, disease, finding) if i.label == PRESENT), None)
        if implied is not None:
            found.append(Implied(drug, DRUG_FOR_A_CAUSE, finding, (treats, *implied.chain), disease))
    return found

