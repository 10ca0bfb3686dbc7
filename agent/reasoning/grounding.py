"""Every reasoning step checked against the knowledge graph.

A **step** is one numbered item of the ``Reasoning Process:`` (a sentence, for free-form
chain of thought). Its entities are found as the KG-only extractor finds them
(``agent.reasoning.mentions``: the longest runs of words naming a node, qualifiers left out), but a
negated entity is kept: the negation turns the statement around instead ("malaria does not
present with X" is backed by ``phenotype absent``). Each clause's entities are split by the
relation phrases between them (``graphs.relations.RELATION_WORDING``) and every pair across a
phrase is a claim, judged on the graph:

* **grounded**: a one-hop fact with a relation the wording names (any fact, when it names
  none), the sample's pruned paths carrying both entities, or a two-hop chain (one of whose
  facts has the named relation);
* **contradicted**: the graph holds the opposite (``contraindication`` where the step says
  it treats, ``phenotype absent`` where it says present, a fact the step denies);
* **unsupported**: the graph joins the pair only by another relation, or not within two hops.

A step is contradicted if any of its claims is, else unsupported if any is, else grounded;
**unlinked** when it names fewer than two nodes. The score is grounded / (grounded +
contradicted + unsupported); path adherence is the share of the pruned paths whose nodes the
steps mention in order: hop by hop, each hop's two nodes in one step, the steps in the path's
order (either way along it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent.reasoning.mentions import mention_nodes, scan_mentions
from agent.reasoning.state import GroundedStep, Grounding, Label, StepEntity
from graphs.paths import PathRecord
from graphs.relations import DENYING_LABELS, RELATION_WORDING
from graphs.store import Fact, KnowledgeGraph

UNGROUNDED = "ungrounded reasoning"  # the verdict's reason when a sample scores below --min-grounding
LABELS: tuple[Label, ...] = ("grounded", "contradicted", "unsupported", "unlinked")
# Steps graded per chain of thought (about 1 ms each): a pathological record of 10,000 steps
# costs a second, not ten; the steps beyond are counted in ``ungraded_steps``, never dropped silently.
MAX_GRADED_STEPS = 1000
# Which claim decides a step: a contradiction outweighs an unbacked claim, which outweighs a backed one.
_WEIGHT = {"contradicted": 0, "unsupported": 1, "grounded": 2}

_CUES = re.compile(
    "|".join(f"(?P<w{i}>\\b(?:{pattern})\\b)" for i, (pattern, _, _) in enumerate(RELATION_WORDING)), re.I
)
_NEGATION = re.compile(
    r"\b(?:no|not|never|without|absent|cannot|neither|nor|against|excludes?|unlikely|rules? out|ruled out|lacks?)\b"
    r"|n['’]t\b",
    re.I,
)
_CLAUSES = re.compile(r"[.;:!?](?:\s+|$)|\n+|,\s+(?:and|but|while|whereas|so|therefore|thus|hence)\s+")
_SECTION = r"^[#*\s]*{}[*\s]*:?[*\s]*$"
_REASONING = re.compile(_SECTION.format("reasoning process"), re.I | re.M)
_PATHS = re.compile(_SECTION.format("finding reasoning paths"), re.I | re.M)
_CONCLUSION = re.compile(_SECTION.format("conclusion"), re.I | re.M)
_ITEM = re.compile(r"^\s*(?:step\s*)?\d+\s*[.):]\s+|^\s*[-*•]\s+", re.I | re.M)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
_THINK = re.compile(r"</?think>", re.I)
# Separators of a path as reasoning lists it: ours (``a ←indication— b —target, enzyme→ c``),
# MedReason's (``a -> b -> c``) and plain arrows.
_PATH_ARROW = re.compile(r"\s*(?:(?:—[^→—\n]*→|←[^—←\n]*—)\s*)+|\s*(?:->|→|=>)\s*")


@dataclass(frozen=True)
class Evidence:
    """A path the reasoning may lean on: its nodes (ids) and how it reads."""

    nodes: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Claim:
    label: Label
    evidence: str
    pair: tuple[str, str]  # the node ids judged


@dataclass(frozen=True)
class _Entity:
    text: str
    start: int
    end: int
    ids: tuple[str, ...]  # the nodes the words name, most connected first


# -- reading the reasoning -------------------------------------------------------------------


def reasoning_steps(reasoning: str) -> list[str]:
    """The steps of a chain of thought: the numbered items of its ``Reasoning Process:``
    section (up to ``Conclusion:``), else its sentences."""
    text = _THINK.sub("\n", reasoning or "")
    start = _REASONING.search(text)
    if start:
        text = text[start.end():]
    elif _PATHS.search(text):
        return []  # paths listed but no argument: nothing is reasoned
    end = _CONCLUSION.search(text)
    if end:
        text = text[: end.start()]
    items = [s.strip() for s in _ITEM.split(text)]
    items = [s for s in items if s]
    if len(items) > 1 or _ITEM.match(text):
        return [" ".join(s.split()) for s in items]
    return [" ".join(s.split()) for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]


def listed_paths(kg: KnowledgeGraph, reasoning: str) -> list[Evidence]:
    """The paths a chain of thought lists under ``Finding reasoning paths:`` that the graph
    holds, hop by hop (a listed path the graph lacks is no evidence)."""
    text = _THINK.sub("\n", reasoning or "")
    start = _PATHS.search(text)
    if not start:
        return []
    section = text[start.end():]
    end = _REASONING.search(section) or _CONCLUSION.search(section)
    section = section[: end.start()] if end else section
    found = []
    for line in section.splitlines():
        line = _ITEM.sub("", line, count=1).strip()
        names = [n.strip() for n in _PATH_ARROW.split(line) if n.strip()]
        nodes = _walk(kg, names) if len(names) > 1 else None
        if nodes:
            found.append(Evidence(nodes, line))
    return found


def _walk(kg: KnowledgeGraph, names: list[str]) -> tuple[str, ...] | None:
    """Node ids for the names such that each consecutive pair is joined by an edge, if any."""
    adj = kg.graph._adj
    routes: dict[str, tuple[str, ...]] = {n: (n,) for n in kg.nodes_named(names[0])}
    for name in names[1:]:
        routes = {v: routes[u] + (v,) for v in kg.nodes_named(name) for u in routes if v in adj[u]}
        if not routes:
            return None
    return next(iter(routes.values()))


def path_evidence(paths: Iterable[PathRecord]) -> list[Evidence]:
    return [Evidence(tuple(p["nodes"]), p["text"]) for p in paths]


# -- finding and judging claims --------------------------------------------------------------


def _entities(kg: KnowledgeGraph, clause: str) -> list[_Entity]:
    entities = []
    for found in scan_mentions(kg, clause):
        ids = mention_nodes(kg, found.surface)
        if ids:
            entities.append(_Entity(found.surface, found.start, found.end, ids))
    return entities


def _claims_of(clause: str, entities: list[_Entity]) -> list[tuple[_Entity, _Entity, int | None, bool]]:
    """(a, b, wording row or None, negated) for every pair the clause relates: entities are
    grouped by the relation phrases between them, and each phrase relates the group before
    it to the group after it (or, with none before, the entities after it to each other)."""
    spans = [(e.start, e.end) for e in entities]
    cues = [m for m in _CUES.finditer(clause) if not any(s < m.end() and m.start() < e for s, e in spans)]
    items = sorted([(e.start, "entity", e) for e in entities] + [(m.start(), "cue", m) for m in cues], key=lambda x: x[0])
    groups: list[list[_Entity]] = [[]]
    gaps: list[list[re.Match]] = []
    pending: list[re.Match] = []
    for _, kind, item in items:
        if kind == "cue":
            pending.append(item)
            continue
        if pending:
            gaps.append(pending)
            groups.append([])
            pending = []
        groups[-1].append(item)
    claims = []
    if not gaps:
        pairs = zip(entities, entities[1:])
        return [(a, b, None, _negated(clause, a.end, b.start)) for a, b in pairs]
    for k, gap in enumerate(gaps):
        row = _row(gap)
        left, right = groups[k], groups[k + 1]
        if left:
            pairs = [(a, b) for a in left for b in right]
            claims += [(a, b, row, _negated(clause, a.end, b.start)) for a, b in pairs]
        else:
            claims += [(a, b, row, _negated(clause, gap[0].start(), b.start)) for a, b in zip(right, right[1:])]
    return claims


def _row(gap: list[re.Match]) -> int:
    """The wording of a run of phrases between two groups: the first that names a relation."""
    rows = [int(m.lastgroup[1:]) for m in gap]
    return next((r for r in rows if RELATION_WORDING[r][1] or RELATION_WORDING[r][2]), rows[0])


def _negated(clause: str, start: int, end: int) -> bool:
    return bool(_NEGATION.search(clause, start, max(start, end)))


def _fact_text(kg: KnowledgeGraph, fact: Fact) -> str:
    return f"{kg.name(fact.head)} —{fact.label}→ {kg.name(fact.tail)}"


def judge(kg: KnowledgeGraph, u: str, v: str, row: int | None, negated: bool, paths: list[Evidence]) -> Claim:
    """Whether the graph backs, denies or leaves unbacked a statement relating ``u`` and ``v``."""
    backs, denies = (RELATION_WORDING[row][1], RELATION_WORDING[row][2]) if row is not None else (frozenset(), frozenset())
    names_relation = bool(backs or denies)
    if negated:
        backs, denies = denies, backs
    facts = kg.facts_between(u, v)
    pair = (u, v)
    if facts:
        if names_relation:
            backing = [f for f in facts if f.label in backs]
            denying = [f for f in facts if f.label in denies]
        else:  # a wording naming no relation: any fact backs it, unless all say the opposite
            denying = [f for f in facts if (f.label in DENYING_LABELS) != negated]
            backing = [f for f in facts if f not in denying]
        if backing:
            return Claim("grounded", _fact_text(kg, backing[0]), pair)
        if denying:
            return Claim("contradicted", "the graph holds the opposite: " + _fact_text(kg, denying[0]), pair)
        said = ", ".join(sorted({f.label for f in facts}))
        return Claim("unsupported", f"the graph relates them only by {said}: " + _fact_text(kg, facts[0]), pair)
    if negated:
        return Claim("unsupported", f"no fact between {kg.name(u)} and {kg.name(v)} says so", pair)
    carrying = next((p for p in paths if u in p.nodes and v in p.nodes), None)
    if carrying:
        return Claim("grounded", "path: " + carrying.text, pair)
    chain = _two_hops(kg, u, v, backs if names_relation else None)
    if chain:
        return Claim("grounded", chain, pair)
    return Claim("unsupported", f"no fact, path or two-hop chain joins {kg.name(u)} and {kg.name(v)}"
                 + (" with that relation" if names_relation else ""), pair)


def _two_hops(kg: KnowledgeGraph, u: str, v: str, wanted: frozenset[str] | None) -> str | None:
    """``u — m — v`` through the most specific shared neighbour (one of whose facts has a
    ``wanted`` label, when given), as text; None when there is none."""
    adj = kg.graph._adj
    near, far = sorted((adj[u], adj[v]), key=len)
    shared = [m for m in near if m in far and m not in (u, v)]
    if wanted is not None:
        shared = [m for m in shared if any(f.label in wanted for f in kg.facts_between(u, m) + kg.facts_between(m, v))]
    if not shared:
        return None
    m = min(shared, key=lambda n: (kg.degree(n), n))
    return f"{_fact_text(kg, kg.facts_between(u, m)[0])}; {_fact_text(kg, kg.facts_between(m, v)[0])}"


def _best(kg: KnowledgeGraph, a: _Entity, b: _Entity, row: int | None, negated: bool, paths: list[Evidence]) -> Claim | None:
    """The verdict for the likeliest reading of two mentions (a name can stand for several nodes)."""
    best = None
    for u in a.ids:
        for v in b.ids:
            if u == v:
                continue
            claim = judge(kg, u, v, row, negated, paths)
            if best is None or _WEIGHT[claim.label] > _WEIGHT[best.label]:
                best = claim
            if best.label == "grounded":
                return best
    return best


# -- a whole chain of thought ----------------------------------------------------------------


def ground_step(kg: KnowledgeGraph, text: str, paths: list[Evidence]) -> tuple[GroundedStep, list[tuple[str, ...]]]:
    """The step's label, entities and evidence; and the nodes it mentions (each mention as
    the ids it may stand for), for path adherence."""
    masked, named = _mask_path_names(kg, text, paths)
    entities: list[_Entity] = []
    claims: list[Claim] = []
    for clause in _clauses(masked):
        found = sorted(_entities(kg, clause) + _named(clause, named), key=lambda e: e.start)
        entities += found
        for a, b, row, negated in _claims_of(clause, found):
            claim = _best(kg, a, b, row, negated, paths)
            if claim is not None:
                claims.append(claim)
    distinct = {e.ids for e in entities}
    chosen = {node for c in claims for node in c.pair}
    shown = {}
    for e in entities:
        node = next((i for i in e.ids if i in chosen), e.ids[0])
        shown.setdefault((e.text.lower(), node), StepEntity(text=e.text, node_id=node, name=kg.name(node)))
    if len(distinct) < 2 or not claims:
        label, evidence = "unlinked", None
    else:
        label = min((c.label for c in claims), key=_WEIGHT.__getitem__)
        evidence = "; ".join(dict.fromkeys(c.evidence for c in claims if c.label == label))
    step = GroundedStep(text=text, label=label, entities=list(shown.values()), evidence=evidence)
    return step, [e.ids for e in entities]


_PLACEHOLDER = re.compile("\x00(\\d+)\x00")


def _mask_path_names(kg: KnowledgeGraph, text: str, paths: list[Evidence]) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    """The text with every name of a path node written in it replaced by a placeholder, and
    the (name, node ids) each placeholder stands for. A node name may hold commas, "and" or
    "without" ("Respiratory infections, recurrent, and failure to thrive with or without
    diarrhea"): taken whole, it is neither split into clauses nor read as a negation."""
    names: dict[str, list[str]] = {}
    for path in paths:
        for node in path.nodes:
            ids = names.setdefault(kg.name(node), [])
            if node not in ids:
                ids.append(node)
    named: list[tuple[str, tuple[str, ...]]] = []
    for name in sorted(names, key=len, reverse=True):
        if len(name) < 3 or name not in text:
            continue
        text, count = re.subn(rf"(?<!\w){re.escape(name)}(?!\w)", f"\x00{len(named)}\x00", text)
        if count:
            named.append((name, tuple(names[name])))
    return text, named


def _named(clause: str, named: list[tuple[str, tuple[str, ...]]]) -> list[_Entity]:
    return [_Entity(*named[int(m.group(1))][:1], m.start(), m.end(), named[int(m.group(1))][1])
            for m in _PLACEHOLDER.finditer(clause)]


def _clauses(text: str) -> list[str]:
    return [c for c in _CLAUSES.split(text) if c and c.strip()]


def ground_reasoning(kg: KnowledgeGraph, reasoning: str, paths: list[Evidence] | None = None) -> Grounding:
    """Every step of ``reasoning`` labelled against ``kg``; ``paths``: the sample's pruned
    paths (None: those the reasoning lists that the graph holds)."""
    paths = listed_paths(kg, reasoning) if paths is None else paths
    steps, mentioned = [], []
    texts = reasoning_steps(reasoning)
    for text in texts[:MAX_GRADED_STEPS]:
        step, nodes = ground_step(kg, text, paths)
        steps.append(step)
        mentioned.append({node for ids in nodes for node in ids})
    counted = [s for s in steps if s["label"] != "unlinked"]
    score = sum(s["label"] == "grounded" for s in counted) / len(counted) if counted else None
    adherence = sum(_follows(p.nodes, mentioned) for p in paths) / len(paths) if paths else None
    grounding = Grounding(
        score=None if score is None else round(score, 4),
        adherence=None if adherence is None else round(adherence, 4),
        steps=steps,
    )
    if len(texts) > MAX_GRADED_STEPS:
        grounding["ungraded_steps"] = len(texts) - MAX_GRADED_STEPS
    return grounding


def _follows(path: tuple[str, ...], mentioned: list[set[str]]) -> bool:
    """Whether the steps walk the path hop by hop, in order one way or the other: each hop's
    two nodes named in one step, no earlier than the step naming the hop before."""
    return _walks(path, mentioned) or _walks(path[::-1], mentioned)


def _walks(path: tuple[str, ...], mentioned: list[set[str]]) -> bool:
    step = 0
    for u, v in zip(path, path[1:]):
        while step < len(mentioned) and not (u in mentioned[step] and v in mentioned[step]):
            step += 1
        if step == len(mentioned):
            return False
    return True


def unbacked(grounding: Grounding) -> list[GroundedStep]:
    """The steps the graph does not back (contradicted or unsupported)."""
    return [s for s in grounding["steps"] if s["label"] in ("contradicted", "unsupported")]


def distribution(groundings: Iterable[Grounding | None]) -> dict:
    """How grounded a set of samples is: scores in bins, mean score and adherence, step labels."""
    scores, adherences, steps = [], [], dict.fromkeys(LABELS, 0)
    bins = {"1.0": 0, "0.75-1": 0, "0.5-0.75": 0, "0-0.5": 0, "no scored step": 0}
    samples = ungraded = 0
    for grounding in groundings:
        if not grounding:
            continue
        samples += 1
        ungraded += grounding.get("ungraded_steps", 0)
        for step in grounding["steps"]:
            steps[step["label"]] += 1
        score = grounding["score"]
        if grounding["adherence"] is not None:
            adherences.append(grounding["adherence"])
        if score is None:
            bins["no scored step"] += 1
            continue
        scores.append(score)
        bins["1.0" if score >= 1 else "0.75-1" if score >= 0.75 else "0.5-0.75" if score >= 0.5 else "0-0.5"] += 1
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    return {"samples": samples, "mean_score": mean(scores), "mean_adherence": mean(adherences),
            "score_bins": bins, "steps": steps, "ungraded_steps": ungraded}


def below(grounding: Grounding, minimum: float | None) -> bool:
    """Whether a sample misses ``minimum`` (a reasoning with no step to score misses any)."""
    return minimum is not None and (grounding["score"] is None or grounding["score"] < minimum)
