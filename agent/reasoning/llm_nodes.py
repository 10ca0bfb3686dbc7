"""The LLM behaviour of each node: ``(state, ctx) -> partial state``, as in ``agent.reasoning.kg_nodes``
(DESIGN.md's node table, left column). Where the LLM only settles what the graph leaves open
(map, prune), the KG-only pieces do the rest. Where the model's answer stays unusable after
its repair (``UnusableAnswer``), the node does what its KG-only behaviour does and the
sample records it in ``degraded`` (``falls_back_to``); only the endpoint failing ends a sample.

Calls per sample on a first attempt: extract 1, map 0–1 (one batched choice for all
ambiguous mentions), prune 0–1 (one call for all path groups, none when no group exceeds
K), generate 1, verify 1 (2 for free-text answers, with the judge).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

import prompts
from agent.reasoning import kg_nodes
from agent.reasoning.context import AgentContext
from agent.reasoning.grounding import UNGROUNDED, unbacked
from agent.reasoning.llm import NO_USAGE, Answer, LLMError, UnusableAnswer, content_of, json_problem
from agent.reasoning.schemas import (
    ExtractedEntities,
    Judgement,
    ReasonedAnswer,
    answer_schema,
    choice_schema,
    match_option,
    selection_schema,
)
from agent.reasoning.state import Mapping, Mention, NodeChoice, SampleState, Thought, Usage, Verification
from agent.reasoning.state import add_usage as add
from agent.reasoning.verbalise import PROMPT_CONTEXT_CHARS, answer_text, options_text, question_text, strip_conclusion
from graphs.paths import PathRecord, path_key
from tools.kg_tools import KGToolbox

FORMAT_HEADERS = ("Finding reasoning paths:", "Reasoning Process:", "Conclusion:")


Behaviour = Callable[[SampleState, AgentContext], SampleState]


def falls_back_to(kg_behaviour: Behaviour) -> Callable[[Behaviour], Behaviour]:
    """The LLM behaviour, or, when the model's answer stays unusable after its repair, the
    KG-only one, with the requests spent and why recorded (``degraded: ["node: why"]``)."""
    def wrap(llm_behaviour: Behaviour) -> Behaviour:
        @functools.wraps(llm_behaviour)
        def node(state: SampleState, ctx: AgentContext) -> SampleState:
            try:
                return llm_behaviour(state, ctx)
            except UnusableAnswer as exc:
                return {**kg_behaviour(state, ctx), "usage": exc.usage, "degraded": [str(exc)]}
        return node
    return wrap


def spent(node: str, answer: Answer) -> SampleState:
    """What an answer adds to the state besides its value: its usage, and its thinking."""
    thinking = [Thought(node=node, text=answer.thinking)] if answer.thinking else []
    return {"usage": answer.usage, "thinking": thinking}


@falls_back_to(kg_nodes.extract)
def extract(state: SampleState, ctx: AgentContext) -> SampleState:
    record = state["record"]
    answer = ctx.llm.structured("extract", ExtractedEntities, prompts.render(
        "extract", question=record["question"], options=options_text(record), answer=answer_text(record),
    ))
    found = answer.value
    mentions = [Mention(text=e.name, role="question", type=e.type) for e in found.question_entities if e.name.strip()]
    answers = [Mention(text=e.name, role="answer", type=e.type) for e in found.answer_entities if e.name.strip()]
    # An answer the model found no entity in is still looked up whole, by meaning.
    answers = answers or [Mention(text=record["answer"], role="answer", type=None)]
    return {"entities": mentions[: ctx.settings.max_question_nodes] + answers, "status": "running",
            **spent("extract", answer)}


@falls_back_to(kg_nodes.map_entities)
def map_entities(state: SampleState, ctx: AgentContext) -> SampleState:
    """Exact names and confident embeddings as KG-only; one call settles the mentions in between."""
    mappings, ambiguous = kg_nodes.settle_mentions(ctx, state["entities"], ctx.settings.accept_score)
    if not ambiguous:
        return {"mappings": mappings}
    chosen, answer = _choose_candidates(state, ctx, ambiguous)
    return {"mappings": mappings + chosen, **spent("map", answer)}


def _choose_candidates(
    state: SampleState, ctx: AgentContext, ambiguous: list[tuple[Mention, list[NodeChoice]]]
) -> tuple[list[Mapping], Answer]:
    """ONE call chooses among the candidates of every ambiguous mention."""
    listing = []
    for i, (mention, candidates) in enumerate(ambiguous, 1):
        options = "\n".join(f"  {j}. {c['name']} ({c['type']})" for j, c in enumerate(candidates, 1))
        listing.append(f"Mention {i}: {mention['text']}\n{options}")
    schema = choice_schema(len(ambiguous), max(len(candidates) for _, candidates in ambiguous))
    answer = ctx.llm.structured("map", schema, prompts.render(
        "select_entity", question=state["record"]["question"], mentions="\n\n".join(listing),
    ))
    mappings = []
    for choice in answer.value.choices:
        if choice.candidate is None:
            continue
        mention, candidates = ambiguous[choice.mention - 1]
        if 1 <= choice.candidate <= len(candidates):
            best = candidates[choice.candidate - 1]
            mappings.append(Mapping(
                mention=mention["text"], role=mention["role"], node_id=best["node_id"], name=best["name"],
                type=best["type"], score=best["score"], method="llm",
                alternatives=[c for c in candidates if c is not best],
            ))
    return mappings, answer


def find_paths(state: SampleState, ctx: AgentContext) -> SampleState:
    """The KG-only search (for any answer: the model may reason to one the graph cannot
    hold); on a retry, also the paths the model finds with the KG tools, when the endpoint
    makes tool calls (else the widened KG-only search is all, and ``explanation`` says why)."""
    update = kg_nodes.searched_paths(state, ctx)
    search = update["search"]
    if search["attempt"] == 1:
        return update
    if not ctx.llm.makes_tool_calls("path"):
        probed = next((p for p in reversed(ctx.llm.probes) if p.startswith("tools:")), "tools: not honoured")
        return {**update, "explanation": f"not explored with the KG tools: the endpoint makes no tool calls "
                                         f"({probed}); the search was widened KG-only"}
    explored, explanation, usage = _explore(state, ctx)
    merged: dict[str, PathRecord] = {}
    for path in kg_nodes.described(ctx, state, search, explored) + update["paths"]:
        merged.setdefault(path_key(path), path)
    return {**update, "paths": list(merged.values()), "explanation": explanation, "usage": usage}


def _explore(state: SampleState, ctx: AgentContext) -> tuple[dict[tuple[str, ...], bool], str, Usage]:
    """A tool-calling loop that looks for paths, told why the last attempt failed. The cap
    counts tool calls, not rounds; every call gets its tool message (a tool the graph could
    not answer, its error: the loop goes on), calls over the cap an error, and the loop ends
    when the model answers without calling a tool.
    Returns the paths found (each with whether every search that found it was cut short: its
    ``truncated``), the model's closing message, and the usage."""
    record, box = state["record"], KGToolbox(ctx.kg, ctx.index, ctx.settings.path_max_work)
    tools = {t.name: t for t in box.tools()}
    cap = ctx.settings.max_tool_calls
    names = lambda role: ", ".join(  # noqa: E731
        f"{m['name']} ({m['node_id']})" for m in state["mappings"] if m["role"] == role
    )
    messages: list[BaseMessage] = [HumanMessage(prompts.render(
        "explore", feedback=state["attempts"][-1]["reason"], max_calls=cap, question=record["question"],
        options=options_text(record), answer=answer_text(record),
        question_nodes=names("question"), answer_nodes=names("answer"),
    ))]
    usage, calls = NO_USAGE, 0
    while True:
        # Once the budget is spent, one last request lets no tool run and asks for the
        # closing message, so every tool reply (budget errors too) reaches the model.
        ai, usage = ctx.llm.tool_round("path", messages, list(tools.values()), usage, allow_calls=calls < cap)
        messages.append(ai)
        if calls >= cap or not (ai.tool_calls or ai.invalid_tool_calls):
            break
        for call in ai.tool_calls:
            calls += 1
            messages.append(_run_tool(tools, call) if calls <= cap else _tool_error(
                call["id"], f"the budget of {cap} tool calls is used up; this call was not run"))
        for bad in ai.invalid_tool_calls:
            calls += 1
            messages.append(_tool_error(bad["id"], f"arguments are not valid JSON: {json_problem(bad.get('args'))}"))
    return dict(box.found), content_of(ai), usage


def _run_tool(tools: dict, call) -> ToolMessage:
    tool = tools.get(call["name"])
    if tool is None:
        return _tool_error(call["id"], f"unknown tool {call['name']!r}; use one of {', '.join(tools)}")
    # The tools answer bad arguments, unknown nodes and a graph that cannot answer with an error message.
    return tool.invoke(call)


def _tool_error(call_id: str, message: str) -> ToolMessage:
    return ToolMessage(json.dumps({"error": message}), tool_call_id=call_id, status="error")


@falls_back_to(kg_nodes.prune)
def prune(state: SampleState, ctx: AgentContext) -> SampleState:
    """One call picks at most K paths per group where a group has more; else as KG-only.
    Paths that explain nothing (relevance 0: from a denied finding, through a disease the
    patient shows no sign of or a gene outside genetics) are never offered."""
    paths = kg_nodes.relevant(state.get("paths", []))
    groups = kg_nodes.path_groups(paths)
    if not any(len(g) > ctx.settings.prune_per_group for g in groups.values()):
        return kg_nodes.prune(state, ctx)
    chosen, answer = _select_paths(state, ctx, list(groups.values()))
    if chosen is None:
        return {**kg_nodes.prune(state, ctx), **spent("prune", answer),
                "degraded": ["prune: the model chose none of the numbered paths; ranked by specificity instead"]}
    return {**kg_nodes.kept(ctx, chosen, paths), **spent("prune", answer)}


def _select_paths(
    state: SampleState, ctx: AgentContext, groups: list[list[PathRecord]]
) -> tuple[list[PathRecord] | None, Answer]:
    """ONE call picks at most K paths per group; None when it picked nothing usable."""
    k, numbered, listing = ctx.settings.prune_per_group, [], []
    for g, group in enumerate(groups, 1):
        lines = []
        for path in group:
            numbered.append((g, path))
            lines.append(f"  [{len(numbered)}] {path['text']}{_relevance_note(path)}")
        listing.append(f"Group {g}: {group[0]['names'][0]} → {group[0]['names'][-1]}\n" + "\n".join(lines))
    schema = selection_schema(len(numbered), k * len(groups))
    answer = ctx.llm.structured("prune", schema, prompts.render(
        "prune", k=k, question=state["record"]["question"], answer=answer_text(state["record"]),
        groups="\n\n".join(listing),
    ))
    per_group: dict[int, int] = {}
    chosen = []
    for n in dict.fromkeys(answer.value.selected):  # the schema allows only the numbers listed
        g, path = numbered[n - 1]
        if per_group.get(g, 0) < k:
            per_group[g] = per_group.get(g, 0) + 1
            chosen.append(path)
    return (chosen or None), answer


def _relevance_note(path: PathRecord) -> str:
    """How a path's relevance reads to the pruner: `` (relevance 0.42: reason; reason)``."""
    if "relevance" not in path:
        return ""
    return f" (relevance {path['relevance']['score']:.2f}: {'; '.join(path['relevance']['reasons'])})"


@falls_back_to(kg_nodes.generate)
def generate(state: SampleState, ctx: AgentContext) -> SampleState:
    record = state["record"]
    paths = "\n".join(f"{i}. {p['text']}" for i, p in enumerate(state.get("pruned", []), 1))
    answer = ctx.llm.text("generate", prompts.render(
        "generate", paths=paths or "(none)", question=question_text(record, PROMPT_CONTEXT_CHARS),
        options=options_text(record), answer=answer_text(record), feedback=_grounding_feedback(state),
    ), check=_format_problem)
    return {"reasoning": answer.value.strip(), **spent("generate", answer)}


def _grounding_feedback(state: SampleState) -> str:
    """After reasoning the graph did not back, the steps that were not backed, and why."""
    if (state.get("verification") or {}).get("reason") != UNGROUNDED:
        return ""
    steps = "\n".join(f"- {s['text']} ({s['label']}: {s['evidence']})" for s in unbacked(state["grounding"]))
    return prompts.render("grounding_feedback", steps=steps or "- (no step related two of the facts' entities)")


def _format_problem(text: str) -> str | None:
    missing = [h for h in FORMAT_HEADERS if h not in text]
    return f"the reply lacks the section(s) {', '.join(missing)}" if missing else None


def unanswerable(state: SampleState, ctx: AgentContext) -> Verification | None:
    """With a model, none: it may reason to an answer the graph holds no node of (a drug on
    HPO) from paths that explain the question's findings; the paths' relevance is recorded."""
    return None


def verify_by_kg(state: SampleState, ctx: AgentContext) -> SampleState:
    """The KG-only verifier, with the options mapped as KG-only mode maps them: it weighs each
    option's evidence, and the model's extraction names no option."""
    options = [m for m in kg_nodes.extract(state, ctx)["entities"] if m["role"].startswith("option:")]
    mapped, _ = kg_nodes.settle_mentions(ctx, options, ctx.settings.min_score)
    return kg_nodes.verify({**state, "mappings": state.get("mappings", []) + mapped}, ctx)


@falls_back_to(verify_by_kg)
def verify(state: SampleState, ctx: AgentContext) -> SampleState:
    """The model answers from the reasoning alone; letters are compared in code."""
    verification, usage, thinking = _verification(state, ctx)
    return {"verification": verification, "usage": usage, "thinking": thinking}


def _verification(state: SampleState, ctx: AgentContext) -> tuple[Verification, Usage, list[Thought]]:
    record, options = state["record"], state["record"]["options"]
    # A gold answer given as text (no letter) still names an option once normalised.
    gold = record["answer_idx"] or (match_option(record["answer"], options) if options else None)
    schema = answer_schema(options) if options else ReasonedAnswer
    instruction = "Reply with the letter of the correct option." if options else "Reply with a short answer."
    replied = ctx.llm.structured("verify", schema, prompts.render(
        "answer_from_reasoning", instruction=instruction, question=question_text(record, PROMPT_CONTEXT_CHARS),
        options=options_text(record), reasoning=strip_conclusion(state["reasoning"]),
    ))
    answer, usage, thinking = replied.value, replied.usage, spent("verify", replied)["thinking"]
    if gold:
        correct = answer.answer == gold
        return Verification(
            predicted=answer.answer, correct=correct,
            reason="the reasoning leads to the answer" if correct else "verifier disagreed",
            detail=f"answered {answer.answer} from the reasoning, gold {gold}", scores={},
        ), usage, thinking
    candidate = f"{answer.answer}. {options[answer.answer]}" if options else answer.answer
    try:
        judged = ctx.llm.structured("verify", Judgement, prompts.render(
            "judge", question=record["question"], options=options_text(record),
            reference=record["answer"], candidate=candidate,
        ))
    except LLMError as exc:
        exc.usage = add(usage, exc.usage)  # the answer's request counts too
        raise
    judgement, usage = judged.value, add(usage, judged.usage)
    thinking += spent("verify", judged)["thinking"]
    return Verification(
        predicted=answer.answer, correct=judgement.correct,
        reason="the reasoning leads to the answer" if judgement.correct else "verifier disagreed",
        detail=judgement.reason, scores={},
    ), usage, thinking
