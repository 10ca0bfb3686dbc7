"""The KG-only behaviour of each node: ``(state, ctx) -> partial state``, no LLM.

These are what a user without an API key gets (DESIGN.md's node table, right column);
``agent.reasoning.nodes`` chooses between them and the LLM behaviours in ``agent.reasoning.llm_nodes``, which
have the same names and shapes and reuse the pieces here that both modes share.
"""

from __future__ import annotations

from collections import defaultdict

from agent.reasoning.context import AgentContext
from agent.reasoning.mentions import exact_or_nearest, find_mentions
from agent.reasoning.search import connect, nodes_for, option_evidence, path_weight, rank_paths, settings_for_attempt
from agent.reasoning.state import Mapping, Mention, NodeChoice, SampleState, SearchSettings, Verification
from agent.reasoning.verbalise import kg_reasoning
from graphs.paths import PathRecord, describe, keep_each_group, path_key


def extract(state: SampleState, ctx: AgentContext) -> SampleState:
    """Mentions of graph nodes in the question and the answer (and every option)."""
    record = state["record"]
    mentions = [Mention(text=t, role="question", type=None) for t in find_mentions(ctx.kg, record["question"])]
    for role, text in [("answer", record["answer"])] + [
        (f"option:{letter}", text) for letter, text in record["options"].items()
    ]:
        # An answer that names no node is looked up whole, by meaning, in the map node.
        found = find_mentions(ctx.kg, text) or [text]
        mentions.extend(Mention(text=t, role=role, type=None) for t in found)
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
        candidates = _of_type(ctx, mention, _candidates(ctx, mention["text"], hits))
        if candidates and (candidates[0]["score"] >= accept or _is_exact(ctx, mention, candidates[0])):
            mappings.append(_mapping(mention, candidates, ctx, "exact" if _is_exact(ctx, mention, candidates[0]) else "embedding"))
        elif candidates:
            ambiguous.append((mention, candidates))
    return mappings, ambiguous


def _candidates(ctx: AgentContext, text: str, hits) -> list[NodeChoice]:
    """Exact-name nodes first (most connected first), then embedding hits above the floor."""
    kg = ctx.kg
    exact = sorted(kg.nodes_named(text), key=lambda n: -kg.degree(n))
    ranked = [NodeChoice(node_id=n, name=kg.name(n), type=kg.node(n).type, score=1.0) for n in exact]
    ranked += [
        NodeChoice(node_id=h.node_id, name=h.name, type=h.type, score=round(h.score, 4))
        for h in hits
        if h.node_id not in exact and h.score >= ctx.settings.min_score
    ]
    return ranked


def _of_type(ctx: AgentContext, mention: Mention, candidates: list[NodeChoice]) -> list[NodeChoice]:
    """With the mention's type known (an LLM extracted it), candidates of that type first,
    and exact names of another type only when no candidate of that type exists: "cold" the
    disease, not the exposure."""
    wanted = mention["type"]
    if not wanted or not any(c["type"] == wanted for c in candidates):
        return candidates
    return [c for c in candidates if c["type"] == wanted] + [
        c for c in candidates if c["type"] != wanted and not _is_exact(ctx, mention, c)
    ]


def _is_exact(ctx: AgentContext, mention: Mention, candidate: NodeChoice) -> bool:
    return candidate["node_id"] in ctx.kg.nodes_named(mention["text"])


def _mapping(mention: Mention, candidates: list[NodeChoice], ctx: AgentContext, method: str) -> Mapping:
    best = candidates[0]
    return Mapping(
        mention=mention["text"], role=mention["role"], node_id=best["node_id"], name=best["name"],
        type=best["type"], score=best["score"], method=method, alternatives=candidates[1:],
    )


def find_paths(state: SampleState, ctx: AgentContext) -> SampleState:
    """Paths from question nodes to answer nodes, searched as widely as this attempt allows."""
    attempt = state["search"]["attempt"] + 1 if "search" in state else 1
    search = settings_for_attempt(ctx.settings, attempt, (state.get("verification") or {}).get("reason"))
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


def described(
    ctx: AgentContext, state: SampleState, search: SearchSettings, found: dict[tuple[str, ...], bool]
) -> list[PathRecord]:
    """Found node sequences (each with whether the search that found it was cut short) as
    path records, minus those an earlier attempt used if asked."""
    paths = [describe(ctx.kg, p, truncated) for p, truncated in found.items() if len(p) > 1]
    if search["exclude_used"]:
        used = set(state.get("used_paths", []))
        paths = [p for p in paths if path_key(p) not in used]
    return paths


def prune(state: SampleState, ctx: AgentContext) -> SampleState:
    """The most specific, clinically direct paths first, at most K per (source, target) pair
    (``agent.reasoning.search.rank_paths``)."""
    paths = state.get("paths", [])
    if not paths:
        return {"pruned": []}
    weights = {id(p): path_weight(ctx.kg, p["nodes"]) for p in paths}
    ranked = rank_paths(ctx.kg, paths, ctx.settings.prune_per_group, ctx.settings.max_pruned_paths, weights=weights)
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
    """Score every option by KG evidence from the question nodes; pass if gold is the best."""
    record, mappings, search = state["record"], state["mappings"], state["search"]
    gold = record["answer_idx"]
    if not record["options"] or not gold:
        return Verification(predicted=record["answer"], correct=True, reason="paths reach the answer", detail="", scores={})
    scores = option_evidence(ctx.kg, mappings, record["options"], search, ctx.settings)
    best = max(scores.values())
    leaders = sorted(letter for letter, s in scores.items() if s == best)
    if best == 0:
        return failed("no KG evidence for any option", "", scores)
    if leaders == [gold]:
        return Verification(predicted=gold, correct=True, reason="KG evidence favours the answer",
                            detail=f"{gold}: {best:g}", scores=scores)
    if gold in leaders:
        return failed("tie", f"options {', '.join(leaders)} have equal evidence {best:g}", scores)
    return failed("verifier disagreed", f"picked {leaders[0]} ({best:g}) over {gold} ({scores[gold]:g})",
                  scores, predicted=leaders[0])


def failed(reason: str, detail: str, scores: dict[str, float] | None = None, predicted: str | None = None) -> Verification:
    return Verification(predicted=predicted, correct=False, reason=reason, detail=detail, scores=scores or {})
