"""The six nodes of the agent: state in, partial state out.

Each node reads what it needs from the runtime context (graph, index, embedder, settings)
and returns only the fields it changes. These are the KG-only behaviours of DESIGN.md's
node table; they need no LLM.
"""

from __future__ import annotations

from collections import defaultdict

from langgraph.runtime import Runtime

from agent.context import AgentContext
from agent.mentions import find_mentions
from agent.search import connect, evidence, nodes_for, settings_for_attempt
from agent.state import Candidate, Mapping, Mention, SampleState, Verification
from agent.verbalise import kg_reasoning
from graphs.paths import PathRecord, describe, path_key


def extract(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Mentions of graph nodes in the question, the answer and every option."""
    kg, record = runtime.context.kg, state["record"]
    mentions = [Mention(text=t, role="question", type=None) for t in find_mentions(kg, record["question"])]
    for role, text in [("answer", record["answer"])] + [
        (f"option:{letter}", text) for letter, text in record["options"].items()
    ]:
        # An answer that names no node is looked up whole, by meaning, in the map node.
        found = find_mentions(kg, text) or [text]
        mentions.extend(Mention(text=t, role=role, type=None) for t in found)
    return {"entities": mentions, "status": "running"}


def map_entities(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Each mention to a node: exact name or synonym first, else the nearest by embedding."""
    ctx = runtime.context
    mentions = state["entities"]
    ranked = ctx.index.search([m["text"] for m in mentions], k=ctx.settings.candidates)
    mappings: list[Mapping] = []
    questions = 0
    for mention, candidates in zip(mentions, ranked):
        if mention["role"] == "question":
            if questions >= ctx.settings.max_question_nodes:
                continue
        mapping = _map_one(ctx, mention, candidates)
        if mapping:
            mappings.append(mapping)
            questions += mention["role"] == "question"
    return {"mappings": mappings}


def _map_one(ctx: AgentContext, mention: Mention, candidates) -> Mapping | None:
    kg = ctx.kg
    exact = sorted(kg.nodes_named(mention["text"]), key=lambda n: -kg.degree(n))
    ranked = [Candidate(node_id=n, name=kg.name(n), type=kg.node(n).type, score=1.0) for n in exact]
    ranked += [
        Candidate(node_id=c.node_id, name=c.name, type=c.type, score=round(c.score, 4))
        for c in candidates
        if c.node_id not in exact
    ]
    if not ranked or (not exact and ranked[0]["score"] < ctx.settings.min_score):
        return None
    best = ranked[0]
    return Mapping(
        mention=mention["text"], role=mention["role"], node_id=best["node_id"],
        name=best["name"], type=best["type"], score=best["score"],
        method="exact" if exact else "embedding",
        alternatives=[c for c in ranked[1:] if c["score"] >= ctx.settings.min_score],
    )


def find_paths(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Paths from question nodes to answer nodes, searched as widely as this attempt allows."""
    ctx = runtime.context
    attempt = state["search"]["attempt"] + 1 if "search" in state else 1
    search = settings_for_attempt(ctx.settings, attempt)
    mappings = state.get("mappings", [])
    found = connect(
        ctx.kg,
        nodes_for(mappings, "question", search, ctx.settings),
        nodes_for(mappings, "answer", search, ctx.settings),
        search,
        ctx.settings,
    )
    paths = [describe(ctx.kg, p) for p in found]
    if search["exclude_used"]:
        used = set(state.get("used_paths", []))
        paths = [p for p in paths if path_key(p) not in used]
    return {"search": search, "paths": paths}


def prune(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """The paths closest in meaning to the question: top K per (source, target) pair."""
    ctx = runtime.context
    paths = state.get("paths", [])
    if not paths:
        return {"pruned": []}
    vectors = ctx.embedder.encode([state["record"]["question"]] + [p["text"] for p in paths])
    scores = vectors[1:] @ vectors[0]
    groups: dict[tuple[str, str], list[tuple[float, PathRecord]]] = defaultdict(list)
    for score, path in zip(scores.tolist(), paths):
        groups[(path["nodes"][0], path["nodes"][-1])].append((score, path))
    kept = []
    for group in groups.values():
        group.sort(key=lambda sp: (-sp[0], len(sp[1]["nodes"])))
        kept.extend(group[: ctx.settings.prune_per_group])
    kept.sort(key=lambda sp: -sp[0])
    pruned = [p for _, p in kept[: ctx.settings.max_pruned_paths]]
    return {"pruned": pruned, "used_paths": [path_key(p) for p in pruned]}


def generate(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Reasoning written from the pruned paths, ending in the answer."""
    pruned = state.get("pruned", [])
    return {"reasoning": kg_reasoning(state["record"], pruned) if pruned else ""}


def verify(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Does the graph support the gold answer? Decides accept, retry or reject."""
    ctx = runtime.context
    verification = _kg_verification(state, ctx)
    search = state["search"]
    if verification["correct"]:
        status = "accepted"
    elif search["attempt"] < ctx.settings.max_attempts:
        status = "retry"
    else:
        status = "rejected"
    log = {
        "attempt": search["attempt"], "settings": search, "paths": len(state.get("pruned", [])),
        "correct": verification["correct"],
        "reason": " — ".join(filter(None, (verification["reason"], verification["detail"]))),
    }
    return {"verification": verification, "status": status, "attempts": [log]}


def _kg_verification(state: SampleState, ctx: AgentContext) -> Verification:
    record, mappings, search = state["record"], state.get("mappings", []), state["search"]
    roles = {m["role"] for m in mappings}
    if "question" not in roles:
        return _failed("no question entity mapped", "no mention in the question matched a node")
    if "answer" not in roles:
        return _failed("no answer entity mapped", f"nothing in {record['answer']!r} matched a node")
    if not state.get("pruned"):
        return _failed("no path", f"no path of at most {search['max_hops']} hops from question to answer")
    gold = record["answer_idx"]
    if not record["options"] or not gold:
        return Verification(
            predicted=record["answer"], correct=True, reason="paths reach the answer", detail="", scores={}
        )
    sources = nodes_for(mappings, "question", search, ctx.settings)
    scores = {
        letter: evidence(
            ctx.kg,
            connect(ctx.kg, sources, nodes_for(mappings, f"option:{letter}", search, ctx.settings), search, ctx.settings)
        )
        for letter in record["options"]
    }
    best = max(scores.values())
    leaders = sorted(letter for letter, s in scores.items() if s == best)
    if best == 0:
        return _failed("no KG evidence for any option", "", scores)
    if leaders == [gold]:
        return Verification(predicted=gold, correct=True, reason="KG evidence favours the answer",
                            detail=f"{gold}: {best:g}", scores=scores)
    if gold in leaders:
        return _failed("tie", f"options {', '.join(leaders)} have equal evidence {best:g}", scores)
    detail = f"picked {leaders[0]} ({best:g}) over {gold} ({scores[gold]:g})"
    return _failed("verifier disagreed", detail, scores, predicted=leaders[0])


def _failed(reason: str, detail: str, scores: dict[str, float] | None = None, predicted: str | None = None) -> Verification:
    return Verification(predicted=predicted, correct=False, reason=reason, detail=detail, scores=scores or {})


def route_after_verify(state: SampleState) -> str:
    return "retry" if state["status"] == "retry" else "done"
