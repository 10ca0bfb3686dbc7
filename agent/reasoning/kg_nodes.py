"""The KG-only behaviour of each node: ``(state, ctx) -> partial state``, no LLM.

These are what a user without an API key gets (DESIGN.md's node table, right column);
``agent.reasoning.nodes`` chooses between them and the LLM behaviours in ``agent.reasoning.llm_nodes``, which
have the same names and shapes and reuse the pieces here that both modes share.
"""

from __future__ import annotations

from collections import defaultdict

from agent.reasoning.context import AgentContext
from agent.reasoning.mentions import coordinated_nodes, exact_or_nearest, find_findings, find_mentions, named_or_measured
from agent.reasoning.relevance import (
    FORM_WORDS, QuestionFrame, asked_for, asks_for_exception, frame_question, mediated, relevance, wanted_types,
)
from agent.reasoning.search import connect, nodes_for, option_support, path_weight, rank_paths, settings_for_attempt
from agent.reasoning.state import Mapping, Mention, NodeChoice, SampleState, SearchSettings, Verification
from agent.reasoning.verbalise import kg_reasoning
from graphs.names import normalize
from graphs.paths import PathRecord, describe, keep_each_group, path_key
from graphs.store import KnowledgeGraph
from graphs.vocabulary import DISEASE

# Why the KG-only gate rejects a sample whose gold option the evidence may even favour
# (docs/quality.md lists them): a retry keeps the mappings, so the first two are final.
OUTSIDE = "answer outside the graph"
LOOSE = "answer mapped loosely"
WEAK = "weak evidence"
NOT_AHEAD = "evidence not clearly ahead"
NO_RELEVANT_PATH = "no relevant path"
EXCEPTION = "question asks for an exception"
UNCOMPARED = "options outside the graph"
# The gold option's evidence must reach MIN_EVIDENCE, with at least SPECIFIC_FINDINGS of
# the question's findings each explained by it directly (an annotation or is-a chain, no
# other disease or gene between) with SPECIFIC_SUPPORT or more: the answer explains several
# findings itself, not through a detour. And LEAD times the best other option's. A condition
# the question names (a disease node among its findings) is the deciding clue by itself: one
# such finding linked directly with MIN_EVIDENCE ("Which drug treats tuberculosis?": rifampin
# is indicated for it) is enough, where one shared phenotype never is.
MIN_EVIDENCE = 0.5
SPECIFIC_FINDINGS = 2
SPECIFIC_SUPPORT = 0.15
LEAD = 1.25
# Paths explaining less than this are not shown when others of the sample explain more.
SHOWN_RELEVANCE = 0.15
# The evidence counts each finding once, by its best path (``search.finding_support``); the
# reasoning shows that one too. More routes from one finding to the answer count for nothing
# and read as claims: three paths from a patient's "pain" through Abdominal pain, Myalgia and
# Constitutional symptom (a tuning question) say the patient has each.
PATHS_PER_FINDING = 1
# An embedding match names the answer's own concept when it is close, holds every word of
# the answer and adds only words that say which form of it (``relevance.FORM_WORDS``: "Zika
# virus" ~ "Zika virus disease", "Hereditary angioedema" ~ "Angioedema, hereditary, 1").
FORM_SCORE = 0.8
# An embedding match of another type than the question asks for must be this close.
CROSS_TYPE_SCORE = 0.92


def extract(state: SampleState, ctx: AgentContext) -> SampleState:
    """Mentions of graph nodes in the question and the answer (and every option)."""
    record = state["record"]
    mentions = [Mention(text=t, role="question", type=None) for t in find_findings(ctx.kg, record["question"])]
    # The answer and options stand for what the question asks for: a diagnosis is a disease.
    wanted = (wanted_types(asked_for(record["question"])) or (None,))[0]
    for role, text in [("answer", record["answer"])] + [
        (f"option:{letter}", text) for letter, text in record["options"].items()
    ]:
        # An answer named whole in other words ("Hereditary angioedema") is that node, not
        # its parts; one that names no node is looked up whole, by meaning, in the map node.
        found = [text] if ctx.kg.nodes_reworded(text) else find_mentions(ctx.kg, text) or [text]
        mentions.extend(Mention(text=t, role=role, type=wanted) for t in found)
    return {"entities": mentions, "status": "running"}


def map_entities(state: SampleState, ctx: AgentContext) -> SampleState:
    """Each mention to a node: exact name or synonym, else the nearest by embedding if it is
    close enough."""
    mappings, _ = settle_mentions(ctx, state["entities"], ctx.settings.min_score)
    return {"mappings": mappings}


def settle_mentions(
    ctx: AgentContext, mentions: list[Mention], accept: float
) -> tuple[list[Mapping], list[tuple[Mention, list[NodeChoice]]]]:
    """Mappings for the mentions whose best candidate is exact or scores at least ``accept``,
    and the other mentions that have candidates (for an LLM to choose among)."""
    ranked = exact_or_nearest(ctx.kg, ctx.index, [m["text"] for m in mentions], ctx.settings.candidates)
    mappings: list[Mapping] = []
    ambiguous: list[tuple[Mention, list[NodeChoice]]] = []
    for mention, hits in zip(mentions, ranked):
        candidates = _of_type(ctx, mention, _candidates(ctx, mention, hits))
        if candidates and (candidates[0]["score"] >= accept or _is_exact(ctx, mention, candidates[0])):
            mappings.append(_mapping(mention, candidates, ctx, "exact" if _is_exact(ctx, mention, candidates[0]) else "embedding"))
        elif candidates:
            ambiguous.append((mention, candidates))
    return mappings, ambiguous


def _candidates(ctx: AgentContext, mention: Mention, hits) -> list[NodeChoice]:
    """Exact-name nodes first (most connected first), then embedding hits above the floor:
    of another type than the mention's only when far closer (``CROSS_TYPE_SCORE``: "CN X"
    is not the gene CNP), and never of the opposite polarity ("Normal DLCO" is not
    "Decreased DLCO")."""
    kg, text, wanted = ctx.kg, mention["text"], mention["type"]
    exact = sorted(_named_exactly(ctx, mention), key=lambda n: -kg.degree(n))
    ranked = [NodeChoice(node_id=n, name=kg.name(n), type=kg.node(n).type, score=1.0) for n in exact]
    ranked += [
        NodeChoice(node_id=h.node_id, name=h.name, type=h.type, score=round(h.score, 4))
        for h in hits
        if h.node_id not in exact and h.score >= ctx.settings.min_score
        and (not wanted or h.type == wanted or h.score >= CROSS_TYPE_SCORE)
        and not opposite(polarity(text), polarity(h.name))
    ]
    return ranked


_POLARITY = {
    "normal": "normal", "decreased": "low", "reduced": "low", "low": "low", "diminished": "low", "absent": "low",
    "increased": "high", "elevated": "high", "high": "high", "raised": "high", "abnormal": "abnormal",
}  # fmt: skip


def opposite(mention: str | None, node: str | None) -> bool:
    """Whether a node's polarity contradicts the mention's: both say and differ, or the
    mention says normal ("high temperature" may be Fever; "Normal DLCO" is not "Decreased DLCO")."""
    return mention != node and (mention == "normal" or (mention is not None and node is not None))


def polarity(text: str) -> str | None:
    """Which way a name says a measure deviates ("Decreased DLCO": low), if it says."""
    return next((_POLARITY[w] for w in normalize(text).split() if w in _POLARITY), None)


def _of_type(ctx: AgentContext, mention: Mention, candidates: list[NodeChoice]) -> list[NodeChoice]:
    """With the mention's type known (an LLM extracted it, or the question asks for it),
    candidates of that type first, and exact names of another type only when no candidate of
    that type is named exactly: "cold" the disease, not the exposure; but "Papillary
    carcinoma of the thyroid" the phenotype of that name, not the nearest disease by meaning
    ("Familial papillary or follicular thyroid carcinoma")."""
    wanted = mention["type"]
    if not wanted or not any(c["type"] == wanted for c in candidates):
        return candidates
    exact_of_type = any(c["type"] == wanted and _is_exact(ctx, mention, c) for c in candidates)
    if not exact_of_type and _is_exact(ctx, mention, candidates[0]):
        return candidates  # exact names first (``_candidates``' order): the answer itself
    return [c for c in candidates if c["type"] == wanted] + [
        c for c in candidates if c["type"] != wanted and not _is_exact(ctx, mention, c)
    ]


def _is_exact(ctx: AgentContext, mention: Mention, candidate: NodeChoice) -> bool:
    return candidate["node_id"] in _named_exactly(ctx, mention)


def _named_exactly(ctx: AgentContext, mention: Mention) -> tuple[str, ...]:
    """The nodes a mention names: by name or synonym (a finding's adjective by its noun);
    an answer or option also in other words ("Hereditary angioedema": "Angioedema,
    hereditary, 1"), since it is named whole; a question's finding also as the first of two
    coordinated sites ("back and neck pain": Back pain, ``coordinated_nodes``)."""
    named = named_or_measured(ctx.kg, mention["text"])
    if named or mention["role"] == "question":
        return named or coordinated_nodes(ctx.kg, mention["text"])
    return ctx.kg.nodes_reworded(mention["text"])


def _mapping(mention: Mention, candidates: list[NodeChoice], ctx: AgentContext, method: str) -> Mapping:
    best = candidates[0]
    return Mapping(
        mention=mention["text"], role=mention["role"], node_id=best["node_id"], name=best["name"],
        type=best["type"], score=best["score"], method=method, alternatives=candidates[1:],
    )


def find_paths(state: SampleState, ctx: AgentContext) -> SampleState:
    """KG-only, the paths of ``searched_paths``; none for an answer the graph cannot judge
    (``unanswerable``: verify rejects it for that, whatever paths there are, so searching
    would only cost)."""
    if unanswerable(state, ctx):
        return {"search": _attempt_settings(state, ctx), "paths": []}
    return searched_paths(state, ctx)


def searched_paths(state: SampleState, ctx: AgentContext) -> SampleState:
    """Paths from question nodes to answer nodes, searched as widely as this attempt allows."""
    search = _attempt_settings(state, ctx)
    mappings = state.get("mappings", [])
    cut_short: set[tuple[str, str]] = set()
    found = connect(
        ctx.kg,
        nodes_for(mappings, "question", search, ctx.settings),
        nodes_for(mappings, "answer", search, ctx.settings),
        search,
        ctx.settings,
        cut_short,
    )
    return {"search": search, "paths": described(ctx, state, search, {p: (p[0], p[-1]) in cut_short for p in found})}


def _attempt_settings(state: SampleState, ctx: AgentContext) -> SearchSettings:
    attempt = state["search"]["attempt"] + 1 if "search" in state else 1
    return settings_for_attempt(ctx.settings, attempt, (state.get("verification") or {}).get("reason"))


def described(
    ctx: AgentContext, state: SampleState, search: SearchSettings, found: dict[tuple[str, ...], bool]
) -> list[PathRecord]:
    """Found node sequences (each with whether the search that found it was cut short) as
    path records, each with its relevance to the question, minus those an earlier attempt
    used if asked."""
    frame = question_frame(ctx, state)
    paths = [describe(ctx.kg, p, truncated) for p, truncated in found.items() if len(p) > 1]
    if search["exclude_used"]:
        used = set(state.get("used_paths", []))
        paths = [p for p in paths if path_key(p) not in used]
    for path in paths:
        path["relevance"] = relevance(ctx.kg, path["nodes"], path_weight(ctx.kg, path["nodes"]), frame)
    return paths


def question_frame(ctx: AgentContext, state: SampleState) -> QuestionFrame:
    """What the sample's question asks and where its mapped findings sit in it."""
    return frame_question(state["record"]["question"], state.get("mappings", []))


def relevant(paths: list[PathRecord]) -> list[PathRecord]:
    """The paths that explain something (relevance above 0); paths found before relevance
    was recorded (an old checkpoint) all count."""
    return [p for p in paths if "relevance" not in p or p["relevance"]["score"] > 0]


def prune(state: SampleState, ctx: AgentContext) -> SampleState:
    """The most relevant, clinically direct paths first, one per (finding, answer node) pair
    (``agent.reasoning.search.rank_paths``); paths that explain nothing (relevance 0) never."""
    paths = relevant(state.get("paths", []))
    if not paths:
        return {"pruned": []}
    if any(p.get("relevance", {}).get("score", 1.0) >= SHOWN_RELEVANCE for p in paths):
        paths = [p for p in paths if p.get("relevance", {}).get("score", 1.0) >= SHOWN_RELEVANCE]
    direct = [p for p in paths if not mediated(ctx.kg, p["nodes"])]
    if len({p["nodes"][0] for p in direct}) >= SPECIFIC_FINDINGS:
        paths = direct  # the answer explains enough findings itself: detours would only distract
    weights = {id(p): p["relevance"]["score"] if "relevance" in p else path_weight(ctx.kg, p["nodes"]) for p in paths}
    ranked = rank_paths(ctx.kg, paths, PATHS_PER_FINDING, ctx.settings.max_pruned_paths, weights=weights)
    heaviest_first = sorted(paths, key=lambda p: -weights[id(p)])
    return kept(ctx, ranked, heaviest_first)


def path_groups(paths: list[PathRecord]) -> dict[tuple[str, str], list[PathRecord]]:
    groups: dict[tuple[str, str], list[PathRecord]] = defaultdict(list)
    for path in paths:
        groups[(path["nodes"][0], path["nodes"][-1])].append(path)
    return groups


def kept(ctx: AgentContext, pruned: list[PathRecord], candidates: list[PathRecord]) -> SampleState:
    """The pruned paths, cut to the overall cap but never leaving a group of ``candidates``
    without a path, and marked used for later attempts."""
    pruned = keep_each_group(pruned, candidates, ctx.settings.max_pruned_paths)
    return {"pruned": pruned, "used_paths": [path_key(p) for p in pruned]}


def generate(state: SampleState, ctx: AgentContext) -> SampleState:
    """Reasoning in MedReason's format, verbalised from the pruned paths."""
    return {"reasoning": kg_reasoning(state["record"], state["pruned"])}


def verify(state: SampleState, ctx: AgentContext) -> SampleState:
    return {"verification": _kg_verification(state, ctx)}


def _kg_verification(state: SampleState, ctx: AgentContext) -> Verification:
    """The KG-only gate, precision first, once ``unanswerable`` has passed the answer and the
    options: the gold option's evidence from the question's findings (each path weighed by
    its relevance) must be specific (``MIN_EVIDENCE``) and clearly ahead of every other
    option's (``LEAD`` times)."""
    record, mappings, search = state["record"], state["mappings"], state["search"]
    frame = question_frame(ctx, state)
    gold = record["answer_idx"]
    if not record["options"] or not gold:
        support = sum(_best_per_finding(state.get("pruned", [])).values())
        if support < MIN_EVIDENCE:
            return failed(WEAK, f"the paths' relevance sums to {support:g} < {MIN_EVIDENCE:g}")
        return Verification(predicted=record["answer"], correct=True, reason="paths reach the answer",
                            detail=f"relevance {support:g}", scores={})
    support = option_support(ctx.kg, mappings, record["options"], search, ctx.settings, frame)
    scores = {letter: round(sum(found.values()), 4) for letter, found in support.items()}
    best = max(scores.values())
    leaders = sorted(letter for letter, s in scores.items() if s == best)
    if best == 0:
        return failed("no KG evidence for any option", "", scores)
    if gold in leaders and len(leaders) > 1:
        return failed("tie", f"options {', '.join(leaders)} have equal evidence {best:g}", scores)
    if gold not in leaders:
        return failed("verifier disagreed", f"picked {leaders[0]} ({best:g}) over {gold} ({scores[gold]:g})",
                      scores, predicted=leaders[0])
    runner_up = max((s for letter, s in scores.items() if letter != gold), default=0.0)
    direct = option_support(ctx.kg, mappings, [gold], search, ctx.settings, frame, direct=True)[gold]
    specific = sum(1 for value in direct.values() if value >= SPECIFIC_SUPPORT)
    named_condition = any(ctx.kg.node(finding).type == DISEASE and value >= MIN_EVIDENCE for finding, value in direct.items())
    if best < MIN_EVIDENCE or (specific < SPECIFIC_FINDINGS and not named_condition):
        return failed(WEAK, f"{gold}: {best:g} (≥ {MIN_EVIDENCE:g} needed), {specific} findings it explains "
                            f"directly and specifically (≥ {SPECIFIC_FINDINGS} needed)", scores, predicted=gold)
    if best < LEAD * runner_up:
        return failed(NOT_AHEAD, f"{gold}: {best:g} < {LEAD:g} × {runner_up:g}", scores, predicted=gold)
    return Verification(predicted=gold, correct=True, reason="KG evidence favours the answer",
                        detail=f"{gold}: {best:g}, next {runner_up:g}", scores=scores)


def _best_per_finding(paths: list[PathRecord]) -> dict[str, float]:
    best: dict[str, float] = {}
    for path in paths:
        score = path.get("relevance", {}).get("score", 0.0)
        best[path["nodes"][0]] = max(best.get(path["nodes"][0], 0.0), score)
    return best


def unanswerable(state: SampleState, ctx: AgentContext) -> Verification | None:
    """KG-only, an answer of a kind the graph holds no node of (a drug on HPO, a lab test)
    cannot be judged, whatever word-alike it maps to: rejected as such, before anything else;
    nor can the answer to a question that wants the option that does NOT fit, an answer
    mapped only loosely or to another kind of node, or one most of whose rival options the
    graph does not hold. Whatever paths were found, these are the reasons (no retry mends
    them), not that the paths explain nothing."""
    record, mappings = state["record"], state.get("mappings", [])
    question = record["question"]
    if asks_for_exception(question):
        return failed(EXCEPTION, "the question wants the option that does NOT fit: the best-supported option is not it")
    asks = asked_for(question)
    wanted = wanted_types(asks)
    if wanted is not None and not set(wanted) & ctx.kg.node_types:
        return failed(OUTSIDE, f"the question asks for a {asks} answer; the graph holds no {' or '.join(wanted) or 'such node'}")
    if not any(m["role"] == "answer" for m in mappings):
        return None  # the precheck says nothing in the answer named a node
    frame = question_frame(ctx, state)
    return (answer_problem(ctx.kg, record, mappings, frame)
            or options_problem(mappings, record["options"], record["answer_idx"], frame))


def answer_problem(kg: KnowledgeGraph, record, mappings: list[Mapping], frame: QuestionFrame) -> Verification | None:
    """Why the answer cannot be judged on this graph, if it cannot: it maps only to a node of
    another kind than the question asks for, or only loosely (by embedding, or part of its
    words)."""
    wanted = frame.wanted
    answers = [m for m in mappings if m["role"] == "answer"]
    if wanted and not any(m["type"] in wanted for m in answers):
        found = ", ".join(f"{m['name']} ({m['type']})" for m in answers)
        return failed(OUTSIDE, f"the question asks for a {frame.asks} answer ({' or '.join(wanted)}); "
                               f"the answer maps only to {found}")
    loose = next((m for m in answers if m["method"] != "exact" and not _names_form_of(m, record["answer"])
                  and not _sole_completion(kg, m, record["answer"])), None)
    if loose:
        return failed(LOOSE, f"{loose['mention']!r} ~ {loose['name']} ({loose['method']}, {loose['score']:g})")
    named = set().union(*(_words(m["mention"]) if m["method"] == "exact" else _label_words(kg, m["node_id"])
                          for m in answers))
    missing = _words(record["answer"]) - named
    if missing:
        return failed(LOOSE, f"{', '.join(sorted(missing))} of {record['answer']!r} named by no node")
    return None


def options_problem(mappings: list[Mapping], options: dict[str, str], gold: str | None,
                    frame: QuestionFrame) -> Verification | None:
    """Why the gold option cannot be judged ahead of the others, if it cannot: the graph holds
    fewer than half of them (as a node of the kind asked). An option with no node scores 0,
    so leading it says nothing: a diagnosis would lead, on cough alone, two options the graph
    has no node for, though cough fits them as well."""
    others = [letter for letter in options if letter != gold]
    held = {m["role"].removeprefix("option:") for m in mappings
            if m["role"].startswith("option:") and (not frame.wanted or m["type"] in frame.wanted)}
    judged = [letter for letter in others if letter in held]
    if not gold or 2 * len(judged) >= len(others):
        return None
    missing = ", ".join(f"{letter}. {options[letter]}" for letter in others if letter not in held)
    return failed(UNCOMPARED, f"{len(judged)} of the {len(others)} other options are in the graph; not: {missing}")


_FILLER = frozenset("a an the of and or in with to for by on from due its".split())


def _names_form_of(mapping: Mapping, answer: str) -> bool:
    """Whether an embedding match is a form of the answer itself (``FORM_WORDS``)."""
    words, node = _words(answer), {w for w in _words(mapping["name"]) if not w.isdigit()}
    return mapping["score"] >= FORM_SCORE and bool(words) and words <= node and node - words <= FORM_WORDS


def _sole_completion(kg: KnowledgeGraph, mapping: Mapping, answer: str) -> bool:
    """Whether an embedding match is the only concept the graph names with every word of the
    answer: the graph's own vocabulary knows no other it could mean ("Decreased iron-binding
    capacity" is "Decreased total iron binding capacity"; "Adenosine deaminase deficiency"
    could be AMP deaminase deficiency or the severe combined immunodeficiency, so it stays
    loose). Two words at least (one word's completions are many concepts: "Cocaine" is not
    "Addictive cocaine use"), and as close by meaning as a form (``FORM_SCORE``)."""
    words = _words(answer)
    return (mapping["score"] >= FORM_SCORE and len(words) >= 2
            and kg.names_holding(words) == {normalize(kg.name(mapping["node_id"]))})


def _label_words(kg: KnowledgeGraph, node_id: str) -> set[str]:
    return set().union(*map(_words, kg.labels(node_id)))


def _words(text: str) -> set[str]:
    return {w for w in normalize(text).split() if w not in _FILLER}


def failed(reason: str, detail: str, scores: dict[str, float] | None = None, predicted: str | None = None) -> Verification:
    return Verification(predicted=predicted, correct=False, reason=reason, detail=detail, scores=scores or {})
