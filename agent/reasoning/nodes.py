"""The six nodes of the agent, as LangGraph sees them: state in, partial state out.

Every node has two behaviours with one signature, ``(state, ctx) -> partial state``: the
KG-only one in ``agent.reasoning.kg_nodes`` and the LLM one in ``agent.reasoning.llm_nodes``. ``behaviours``
is the one place that chooses between them; the steps both share (nothing to reason over,
the checks that need no verifier, the accept/retry/reject decision) live here, once.
LangGraph hands each node the run's plain ``Settings``; ``opened`` turns them into the
``AgentContext`` the behaviours use (the ``MEDREASON_*`` environment when a run gives none).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from langgraph.runtime import Runtime

from agent.config import Settings
from agent.reasoning import kg_nodes, llm_nodes, resources
from agent.reasoning.context import AgentContext
from agent.reasoning.grounding import UNGROUNDED, below, ground_reasoning, path_evidence, unbacked
from agent.reasoning.kg_nodes import EXCEPTION, LOOSE, NO_RELEVANT_PATH, OUTSIDE, UNCOMPARED, failed
from agent.reasoning.relevance import mean_relevance
from agent.reasoning.search import searches_anew
from agent.reasoning.state import Grounding, SampleState, Verification

# A retry widens the path search but keeps the mappings, so it cannot mend these: the sample
# is rejected at once with that reason instead of spending attempts (and LLM calls) on it.
UNMAPPED = ("no question entity mapped", "no answer entity mapped")
FINAL = (*UNMAPPED, OUTSIDE, LOOSE, EXCEPTION, UNCOMPARED)


def behaviours(ctx: AgentContext) -> ModuleType:
    """The module holding every node's behaviour for this run: LLM when one is configured."""
    return llm_nodes if ctx.settings.llm_configured else kg_nodes


def opened(runtime: Runtime[Settings]) -> AgentContext:
    """The run's settings opened through the loader. A library caller that brings its own
    opened context (a chat model with its own HTTP client, say) passes it whole instead."""
    context = runtime.context
    return context if isinstance(context, AgentContext) else resources.load(context)


def _delegated(name: str) -> Callable[[SampleState, Runtime[Settings]], SampleState]:
    """The node that runs this run's behaviour of ``name`` and nothing else."""
    def node(state: SampleState, runtime: Runtime[Settings]) -> SampleState:
        ctx = opened(runtime)
        return getattr(behaviours(ctx), name)(state, ctx)

    node.__name__ = node.__qualname__ = name
    return node


extract = _delegated("extract")
map_entities = _delegated("map_entities")
find_paths = _delegated("find_paths")
prune = _delegated("prune")


def generate(state: SampleState, runtime: Runtime[Settings]) -> SampleState:
    if not state.get("pruned"):
        return {"reasoning": ""}  # nothing to reason over; verify's precheck says why
    ctx = opened(runtime)
    return behaviours(ctx).generate(state, ctx)


def verify(state: SampleState, runtime: Runtime[Settings]) -> SampleState:
    """Does the reasoning reach the gold answer, on steps the graph backs? Decides accept,
    retry or reject."""
    ctx = opened(runtime)
    verification = behaviours(ctx).unanswerable(state, ctx) or precheck(state)
    update = {"verification": verification} if verification else behaviours(ctx).verify(state, ctx)
    grounding = ground_reasoning(ctx.kg, state.get("reasoning") or "", path_evidence(state.get("pruned", [])))
    if update["verification"]["correct"] and below(grounding, ctx.settings.min_grounding):
        update["verification"] = ungrounded(grounding, ctx.settings.min_grounding)
    update["grounding"] = grounding
    update["relevance"] = mean_relevance(state.get("pruned", []))
    verification = update["verification"]
    search = state["search"]
    if verification["correct"] and state["record"].get("answer_chosen"):
        # The evidence that would verify the answer is what chose it: reaching it confirms nothing.
        verification = update["verification"] = {
            **verification, "correct": None, "reason": "answer chosen by KG evidence",
            "detail": "no known answer: the best-supported candidate was taken, so it is not verified"}
        status = "unverified"
    elif verification["correct"]:
        status = "accepted"
    elif (search["attempt"] < ctx.settings.max_attempts and verification["reason"] not in FINAL
          and searches_anew(ctx.settings, search, verification["reason"])):
        status = "retry"
    else:
        status = "rejected"
    log = {
        "attempt": search["attempt"], "settings": search, "paths": len(state.get("pruned", [])),
        "correct": verification["correct"],
        "reason": " — ".join(filter(None, (verification["reason"], verification["detail"]))),
    }
    if search["attempt"] > 1 and state.get("explanation"):
        log["exploration"] = state["explanation"]
    return {**update, "status": status, "attempts": [log]}


def precheck(state: SampleState) -> Verification | None:
    """Failures that need no verifier: nothing mapped, or nothing to reason over."""
    record, search = state["record"], state["search"]
    roles = {m["role"] for m in state.get("mappings", [])}
    if "question" not in roles:
        return failed(UNMAPPED[0], "no mention in the question matched a node")
    if "answer" not in roles:
        return failed(UNMAPPED[1], f"nothing in {record['answer']!r} matched a node")
    if not state.get("pruned") and search["exclude_used"] and state.get("used_paths"):
        # A widened search finds at least the earlier paths; reasoning over them again would
        # only repeat the verdict, so the sample ends here rather than paying for it.
        return failed("no new path", f"the widened search found only the {len(state['used_paths'])} paths already reasoned over")
    if not state.get("pruned") and state.get("paths"):
        return failed(NO_RELEVANT_PATH, f"none of the {len(state['paths'])} paths found explains the answer "
                                        "(denied findings, unsupported mediators, genes outside genetics)")
    if not state.get("pruned"):
        return failed("no path", f"no path of at most {search['max_hops']} hops from question to answer")
    return None


def ungrounded(grounding: Grounding, minimum: float) -> Verification:
    """The verdict on a right answer reached through steps the graph does not back enough."""
    score = "no step relates two graph nodes" if grounding["score"] is None else f"score {grounding['score']:g}"
    numbers = [str(i) for i, s in enumerate(grounding["steps"], 1) if s in unbacked(grounding)]
    detail = f"{score} < {minimum:g}" + (f"; steps {', '.join(numbers)} not backed by the graph" if numbers else "")
    return failed(UNGROUNDED, detail)


def route_after_verify(state: SampleState) -> str:
    return "retry" if state["status"] == "retry" else "done"
