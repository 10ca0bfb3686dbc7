"""Which graph search an attempt runs, and the search itself over a sample's mappings.

Each retry widens the previous attempt by one step, deterministically:

* attempt 1: shortest paths between the primary node of every mention;
* attempt 2: also the second-best node of each mention, skipping paths already used (with
  an LLM, so that it reasons over new paths; KG-only, the best paths stay: the verdict
  does not depend on them and a reader should see them);
* attempt 3 and later: also paths one hop longer than the shortest, and the answer
  reached through its most specific neighbours.
"""

from __future__ import annotations

import math
from collections import Counter

from agent.config import Settings
from agent.reasoning.grounding import UNGROUNDED
from agent.reasoning.relevance import QuestionFrame, factor, mediated
from agent.reasoning.state import Mapping, SearchSettings
from graphs.neighbours import neighbours
from graphs.paths import ranked_paths
from graphs.store import KnowledgeGraph
from graphs.vocabulary import DISEASE, IS_A

NEIGHBOURS_PER_ANSWER = 20


def settings_for_attempt(settings: Settings, attempt: int, previous_reason: str | None = None) -> SearchSettings:
    """``previous_reason``: why the last attempt failed. After reasoning the graph did not back
    ("ungrounded reasoning") the paths were not at fault, so an LLM may reason over them again.

    Only an LLM is given a mention's second-best node on a retry: KG-only, the gate accepts on
    the paths themselves, and a second-best node is another concept than the one it vetted
    ("Mesothelioma" → Malignant peritoneal mesothelioma, for a pleural tumour). A KG-only retry
    widens the search at once instead (a hop more, the answer's neighbours)."""
    widened = attempt >= (3 if settings.llm_configured else 2)
    return SearchSettings(
        attempt=attempt,
        max_hops=settings.max_hops,
        paths_per_pair=settings.paths_per_pair,
        extra_hops=1 if widened else 0,
        alternative_mappings=attempt >= 2 and settings.llm_configured,
        expand_answer=widened,
        exclude_used=attempt >= 2 and settings.llm_configured and previous_reason != UNGROUNDED,
    )


def searches_anew(settings: Settings, search: SearchSettings, reason: str | None) -> bool:
    """Whether the attempt after ``search`` would search otherwise than it did: a retry that
    would find the same paths and reach the same verdict is not made (KG-only, the third)."""
    following = settings_for_attempt(settings, search["attempt"] + 1, reason)
    return {**following, "attempt": search["attempt"]} != search


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
    """Paths from every source to every target: the best ``paths_per_pair`` per pair, and the
    is-a and co-occurrence paths to the target's annotations; pairs whose search hit its
    work bound are added to ``cut_short`` when given. A qualifier ("Left", "Acute") never
    starts a path: it says how a finding presents, not what the patient has."""
    sources = [s for s in sources if s not in kg.qualifiers]
    found: list[tuple[str, ...]] = []
    for target in targets:
        detour = _specific_neighbours(kg, target) if search["expand_answer"] else []
        for source in sources:
            if source == target:
                continue
            pair = ranked_paths(
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
            found.extend(subsumption_paths(kg, source, target))
            found.extend(cooccurrence_paths(kg, source, target))
    return list(dict.fromkeys(found))


def cooccurrence_paths(kg: KnowledgeGraph, finding: str, target: str) -> list[tuple[str, ...]]:
    """The path through the target's annotation that best predicts the finding, by way of
    the most specific disease annotated with both ("Heart murmur ←phenotype present—
    Mitral valve prolapse —phenotype present→ Abnormal mitral valve morphology
    ←phenotype present— Rheumatic fever"). Findings too rare to share a disease give none.
    """
    specificity = kg.specificity
    if not specificity.is_phenotype(finding) or finding not in specificity.annotated_by:
        return []
    annotated = [target] if specificity.is_phenotype(target) else [
        n for n in kg.graph.adj[target] if specificity.is_phenotype(n)
    ]
    carriers = specificity.annotated_by[finding]
    scored = [
        (specificity.conditional(finding, term), term)
        for term in annotated
        if term != finding and carriers & specificity.annotated_by.get(term, set())
    ]
    if not scored:
        return []
    _, term = max(scored, key=lambda st: (st[0], specificity.information(st[1]), st[1]))
    mediator = min(carriers & specificity.annotated_by[term], key=lambda d: (kg.degree(d), d))
    if target in (mediator, term):
        return [(finding, mediator, term)] if target == term else []
    return [(finding, mediator, term, target)]


def subsumption_paths(kg: KnowledgeGraph, finding: str, target: str) -> list[tuple[str, ...]]:
    """Is-a chains that link a finding to a target term, or to a term the target is annotated with.

    Up from the finding to the target's most specific annotated ancestor of it ("Migratory
    polyarthritis —parent-child→ Arthritis ←phenotype present— Rheumatic fever"), and down
    to the target's annotation closest below it. The shortest-path search misses these
    when a detour through a sibling is as short.
    """
    specificity = kg.specificity
    if not specificity.is_phenotype(finding):
        return []
    up = specificity.ancestors(finding)
    annotated = [target] + [n for n in kg.graph.adj[target] if specificity.is_phenotype(n)]
    paths = []
    above = [t for t in annotated if t in up and t != finding]
    if above:
        term = max(above, key=lambda t: (specificity.information(t), -len(up)))
        paths.append(specificity.chain_up(finding, term) + (() if term == target else (target,)))
    below = [t for t in annotated if t != finding and finding in specificity.ancestors(t)]
    if below:
        term = min(below, key=lambda t: (len(specificity.chain_up(t, finding)), t))
        paths.append(specificity.chain_up(term, finding)[::-1] + (() if term == target else (target,)))
    return [p for p in paths if len(p) > 1]


def _specific_neighbours(kg: KnowledgeGraph, node_id: str) -> list[str]:
    return [n.node_id for n in neighbours(kg, node_id, limit=NEIGHBOURS_PER_ANSWER)]


def _paths_via(kg, source, target, via, search, settings) -> list[tuple[str, ...]]:
    """Paths that reach ``target`` through one of its neighbours ``via``."""
    paths = ranked_paths(
        kg, [source], [v for v in via if v != source],
        max_hops=search["max_hops"],
        limit=search["paths_per_pair"],
        max_work=settings.path_max_work,
    ).paths
    return [p + (target,) for p in paths if target not in p]


def option_evidence(
    kg: KnowledgeGraph, mappings: list[Mapping], letters, search: SearchSettings, settings: Settings,
    frame: QuestionFrame | None = None,
) -> dict[str, float]:
    """Each option's KG evidence from the question's findings (the KG-only verifier's
    measure), each path weighed by its relevance to the question when ``frame`` is given."""
    support = option_support(kg, mappings, letters, search, settings, frame)
    return {letter: round(sum(found.values()), 4) for letter, found in support.items()}


def option_support(
    kg: KnowledgeGraph, mappings: list[Mapping], letters, search: SearchSettings, settings: Settings,
    frame: QuestionFrame | None = None, direct: bool = False,
) -> dict[str, dict[str, float]]:
    """Per option, what each question finding contributes to its evidence (``finding_support``)."""
    sources = nodes_for(mappings, "question", search, settings)
    return {
        letter: finding_support(kg, connect(kg, sources, nodes_for(mappings, f"option:{letter}", search, settings), search, settings), frame, direct)
        for letter in letters
    }


# How much one hop of each relation says about the next node given the previous one.
# Annotations and is-a steps carry a finding over whole; a gene shared by two findings
# says little about one given the other; a disease annotated NOT to have a finding is
# evidence against it, never for it. Relations not listed (other sources) count half.
RELATION_WEIGHT = {
    "phenotype_phenotype": 1.0, "disease_phenotype_positive": 1.0, "disease_disease": 1.0,
    "indication": 1.0, "drug_effect": 0.5, "contraindication": 0.5, "off-label use": 0.5,
    "exposure_disease": 0.5, "disease_protein": 0.3, "phenotype_protein": 0.3,
    "drug_protein": 0.3, "protein_protein": 0.1, "disease_phenotype_negative": 0.0,
}  # fmt: skip
DEFAULT_RELATION_WEIGHT = 0.5
GENERIC = 0.5  # information content below which a term is too general to carry many paths


def path_weight(kg: KnowledgeGraph, path: tuple[str, ...] | list[str]) -> float:
    """What a path says about its last node given its first, in [0, 1].

    The information content of the most general phenotype on it (a finding matched
    through "Pain" is worth what "Pain" is worth), times each hop's relation weight.
    A step between two findings through a disease, ``a ← D → b``, is worth at most the
    information ``b`` carries about ``a`` over all the graph's diseases (``IC(a) + log2
    P(a | b)``, whichever disease the path names); any other disease or gene passed
    through divides by ``log2(1 + degree)`` (a mediator with many links says little about
    any one). A path that climbs the is-a hierarchy and then descends (to a sibling or
    cousin term) is worth nothing: sharing a generic ancestor is not having the finding.
    """
    specificity = kg.specificity
    weight, climbed = 1.0, False
    for u, v in zip(path, path[1:]):
        facts = kg.facts_between(u, v)
        if not facts:
            return 0.0
        fact = max(facts, key=lambda f: RELATION_WEIGHT.get(f.relation, DEFAULT_RELATION_WEIGHT))
        if fact.relation == IS_A:
            up = fact.head == u
            if climbed and not up:
                return 0.0
            climbed = climbed or up
        else:
            climbed = False
        weight *= RELATION_WEIGHT.get(fact.relation, DEFAULT_RELATION_WEIGHT)
    information = specificity.most_general(path)
    for before, node, after in zip(path, path[1:], path[2:]):
        if specificity.is_phenotype(node):
            continue
        if kg.node(node).type == DISEASE and specificity.is_phenotype(before) and specificity.is_phenotype(after):
            information = min(information, specificity.information_about(before, after))
        else:
            weight /= math.log2(1 + kg.degree(node))
    return round(weight * information, 4)


def evidence(kg: KnowledgeGraph, paths: list[tuple[str, ...]], frame: QuestionFrame | None = None) -> float:
    """KG support for a target: for each question finding its best path weight, summed.

    Phenomizer's query-to-disease similarity: every finding of the patient counts once,
    by the most informative way the target explains it; the count of weak paths is
    irrelevant, so a hub-rich option cannot win on numbers. With the question's ``frame``
    each path counts by its relevance (``agent.reasoning.relevance``): background history
    less, denied findings, unsupported mediators and genes outside genetics not at all.
    """
    return round(sum(finding_support(kg, paths, frame).values()), 4)


def finding_support(
    kg: KnowledgeGraph, paths: list[tuple[str, ...]], frame: QuestionFrame | None = None, direct: bool = False
) -> dict[str, float]:
    """For each path's first node (a question finding), the weight of its best path, weighed
    by its relevance when ``frame`` is given; with ``direct``, of its best path that passes
    through no other disease and no gene (the target explains the finding itself)."""
    best: dict[str, float] = {}
    for path in paths:
        if direct and mediated(kg, path):
            continue
        weight = path_weight(kg, path)
        if frame is not None and weight > 0:
            weight *= factor(kg, path, frame)[0]
        best[path[0]] = max(best.get(path[0], 0.0), weight)
    return best


def rank_paths(
    kg: KnowledgeGraph, paths: list, per_group: int, limit: int, hub_repeats: int = 2, weights: dict | None = None
) -> list:
    """The paths a reader should see, most telling first (path records or node tuples).

    The clinically direct first (fewest diseases or genes passed through: an annotation or
    an is-a chain before a chain through another disease or a gene), then by weight and
    length; at most ``per_group`` per (source, target) pair, and
    none that a chosen path for the pair already says more directly (shorter) or far more
    strongly (twice the weight): it would only restate it.
    A generic term (information content under ``GENERIC``, such as "Pain") may carry at
    most ``hub_repeats`` of the chosen paths, so chains that only repeat a hub are dropped.
    Worthless paths are kept only when nothing else is. ``weights`` (``id(path)`` →
    ``path_weight``) spares a caller that has weighed the paths already.
    """
    def nodes(p) -> tuple[str, ...]:
        return tuple(p["nodes"] if isinstance(p, dict) else p)

    specificity = kg.specificity
    weights = weights or {id(p): path_weight(kg, nodes(p)) for p in paths}
    def mediators(route: tuple[str, ...]) -> int:
        return sum(1 for n in route[1:-1] if not specificity.is_phenotype(n))

    ordered = sorted(paths, key=lambda p: (mediators(nodes(p)), -weights[id(p)], len(nodes(p)), nodes(p)))
    if any(weights.values()):
        ordered = [p for p in ordered if weights[id(p)] > 0]
    kept, per_pair, per_hub, pair_best = [], Counter(), Counter(), {}
    for path in ordered:
        route = nodes(path)
        pair = (route[0], route[-1])
        best_weight, shortest = pair_best.setdefault(pair, (weights[id(path)], len(route)))
        if len(route) > shortest or weights[id(path)] < best_weight / 2:
            continue
        hubs = [n for n in route[1:-1] if specificity.is_phenotype(n) and specificity.information(n) < GENERIC]
        if per_pair[pair] >= per_group or any(per_hub[n] >= hub_repeats for n in hubs):
            continue
        kept.append(path)
        per_pair[pair] += 1
        per_hub.update(hubs)
        if len(kept) == limit:
            break
    return kept
