"""The six nodes of the agent: state in, partial state out.

Each node reads what it needs from the runtime context (graph, index, embedder, settings,
and the LLM when one is configured) and returns only the fields it changes. With an LLM a
node uses its behaviour in ``agent.llm_nodes``; without one, the KG-only behaviour here.
"""

from __future__ import annotations

from collections import defaultdict

from langgraph.runtime import Runtime

from agent import llm_nodes
from agent.context import AgentContext
from agent.mentions import exact_or_nearest, find_mentions
from agent.search import connect, nodes_for, option_evidence, rank_paths, settings_for_attempt
from agent.state import Candidate, Mapping, Mention, SampleState, Verification
from agent.verbalise import kg_reasoning
from graphs.paths import PathRecord, describe, path_key


def extract(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Mentions of graph nodes in the question and the answer (and, KG-only, every option)."""
    ctx = runtime.context
    if ctx.llm:
        return llm_nodes.extract(state, ctx)
    record = state["record"]
    mentions = [Mention(text=t, role="question", type=None) for t in find_mentions(ctx.kg, record["question"])]
    for role, text in [("answer", record["answer"])] + [
        (f"option:{letter}", text) for letter, text in record["options"].items()
    ]:
        # An answer that names no node is looked up whole, by meaning, in the map node.
        found = find_mentions(ctx.kg, text) or [text]
        mentions.extend(Mention(text=t, role=role, type=None) for t in found)
    return {"entities": mentions, "status": "running"}


def map_entities(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Each mention to a node: exact name or synonym, else the nearest by embedding if it is
    close enough; with an LLM, one call settles the mentions in between."""
    ctx = runtime.context
    mentions = state["entities"]
    ranked = exact_or_nearest(ctx.kg, ctx.index, [m["text"] for m in mentions], ctx.settings.candidates)
    accept = ctx.settings.accept_score if ctx.llm else ctx.settings.min_score
    mappings: list[Mapping] = []
    ambiguous: list[tuple[Mention, list[Candidate]]] = []
    for mention, hits in zip(mentions, ranked):
        candidates = _candidates(ctx, mention["text"], hits)
        if candidates and (candidates[0]["score"] >= accept or _is_exact(ctx, mention, candidates[0])):
            mappings.append(_mapping(mention, candidates, ctx, "exact" if _is_exact(ctx, mention, candidates[0]) else "embedding"))
        elif ctx.llm and candidates:
            ambiguous.append((mention, candidates))
    if not ambiguous:
        return {"mappings": mappings}
    chosen, usage = llm_nodes.choose_candidates(state, ctx, ambiguous)
    return {"mappings": mappings + chosen, "usage": usage}


def _candidates(ctx: AgentContext, text: str, hits) -> list[Candidate]:
    """Exact-name nodes first (most connected first), then embedding hits above the floor."""
    kg = ctx.kg
    exact = sorted(kg.nodes_named(text), key=lambda n: -kg.degree(n))
    ranked = [Candidate(node_id=n, name=kg.name(n), type=kg.node(n).type, score=1.0) for n in exact]
    ranked += [
        Candidate(node_id=h.node_id, name=h.name, type=h.type, score=round(h.score, 4))
        for h in hits
        if h.node_id not in exact and h.score >= ctx.settings.min_score
    ]
    return ranked


def _is_exact(ctx: AgentContext, mention: Mention, candidate: Candidate) -> bool:
    return candidate["node_id"] in ctx.kg.nodes_named(mention["text"])


def _mapping(mention: Mention, candidates: list[Candidate], ctx: AgentContext, method: str) -> Mapping:
    best = candidates[0]
    return Mapping(
        mention=mention["text"], role=mention["role"], node_id=best["node_id"], name=best["name"],
        type=best["type"], score=best["score"], method=method, alternatives=candidates[1:],
    )


def find_paths(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Paths from question nodes to answer nodes, searched as widely as this attempt allows;
    on a retry with an LLM, also the paths the model finds with the KG tools."""
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
    update: SampleState = {"search": search}
    if ctx.llm and attempt > 1:
        explored, update["usage"] = llm_nodes.explore(state, ctx)
        found = list(dict.fromkeys(explored + found))
    paths = [describe(ctx.kg, p) for p in found if len(p) > 1]
    if search["exclude_used"]:
        used = set(state.get("used_paths", []))
        paths = [p for p in paths if path_key(p) not in used]
    return {**update, "paths": paths}


def prune(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """At most K paths per (source, target) pair: chosen by the LLM in one call, or else the
    most specific, clinically direct paths first (``agent.search.rank_paths``)."""
    ctx = runtime.context
    paths = state.get("paths", [])
    if not paths:
        return {"pruned": []}
    groups: dict[tuple[str, str], list[PathRecord]] = defaultdict(list)
    for path in paths:
        groups[(path["nodes"][0], path["nodes"][-1])].append(path)
    update: SampleState = {}
    pruned = None
    if ctx.llm and any(len(g) > ctx.settings.prune_per_group for g in groups.values()):
        pruned, update["usage"] = llm_nodes.select_paths(state, ctx, list(groups.values()))
        if pruned is None:
            update["errors"] = ["prune: the model chose none of the numbered paths; ranked by specificity instead"]
    if pruned is None:
        pruned = rank_paths(ctx.kg, paths, ctx.settings.prune_per_group, ctx.settings.max_pruned_paths)
    pruned = pruned[: ctx.settings.max_pruned_paths]
    return {**update, "pruned": pruned, "used_paths": [path_key(p) for p in pruned]}


def generate(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Reasoning guided by the pruned paths, in MedReason's format, ending in the answer."""
    ctx = runtime.context
    pruned = state.get("pruned", [])
    if not pruned:
        return {"reasoning": ""}
    if ctx.llm:
        return llm_nodes.generate(state, ctx)
    return {"reasoning": kg_reasoning(state["record"], pruned)}


def verify(state: SampleState, runtime: Runtime[AgentContext]) -> SampleState:
    """Does the reasoning reach the gold answer? Decides accept, retry or reject."""
    ctx = runtime.context
    update: SampleState = {}
    verification = _precheck(state)
    if verification is None and ctx.llm:
        verification, update["usage"] = llm_nodes.verify(state, ctx)
    elif verification is None:
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
    return {**update, "verification": verification, "status": status, "attempts": [log]}


def _precheck(state: SampleState) -> Verification | None:
    """Failures that need no verifier: nothing mapped, or nothing to reason over."""
    record, search = state["record"], state["search"]
    roles = {m["role"] for m in state.get("mappings", [])}
    if "question" not in roles:
        return _failed("no question entity mapped", "no mention in the question matched a node")
    if "answer" not in roles:
        return _failed("no answer entity mapped", f"nothing in {record['answer']!r} matched a node")
    if not state.get("pruned"):
        return _failed("no path", f"no path of at most {search['max_hops']} hops from question to answer")
    return None


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
        return _failed("no KG evidence for any option", "", scores)
    if leaders == [gold]:
        return Verification(predicted=gold, correct=True, reason="KG evidence favours the answer",
                            detail=f"{gold}: {best:g}", scores=scores)
    if gold in leaders:
        return _failed("tie", f"options {', '.join(leaders)} have equal evidence {best:g}", scores)
    return _failed("verifier disagreed", f"picked {leaders[0]} ({best:g}) over {gold} ({scores[gold]:g})",
                   scores, predicted=leaders[0])


def _failed(reason: str, detail: str, scores: dict[str, float] | None = None, predicted: str | None = None) -> Verification:
    return Verification(predicted=predicted, correct=False, reason=reason, detail=detail, scores=scores or {})


def route_after_verify(state: SampleState) -> str:
    return "retry" if state["status"] == "retry" else "done"
