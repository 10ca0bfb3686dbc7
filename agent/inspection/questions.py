"""A question typed into the chat, and its answer chosen by KG evidence when none is given.

Without a known answer the agent still needs one to reason towards, so the chat first ranks
candidate answers by KG evidence (the same measure the KG-only verifier uses,
``agent.reasoning.search.evidence``):

* with options: every option's evidence from the question's nodes;
* without: the most specific nodes within two hops of the question's nodes (of the type the
  question asks for — "which drug", "diagnosis", … — when it names one).

The probe maps the question with the KG-only extract and map behaviours whatever the LLM
setting: ranking candidates must not cost LLM calls, and the turn that follows runs the whole
graph (with the LLM where configured) on the chosen answer.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from agent.reasoning import kg_nodes
from agent.reasoning.context import AgentContext
from agent.reasoning.search import connect, evidence, nodes_for, option_evidence, settings_for_attempt
from agent.reasoning.state import Mapping, Record
from graphs.neighbours import neighbours

CANDIDATES = 15  # nodes scored by KG evidence when the question has no options
NEIGHBOURS = 20

_ANSWER_LINE = re.compile(r"^\s*(?:known\s+)?answer\s*[:=]\s*(.+?)\s*$", re.I | re.M)
_OPTION = re.compile(r"(?:^|(?<=\s))\(?([A-H])[).]\s+")
_WANTED_TYPE = [
    (re.compile(r"\b(drug|medication|medicine|treat\w*|therap\w*|prescri\w*)\b", re.I), "drug"),
    (re.compile(r"\b(diagnos\w*|disease|condition|disorder|syndrome)\b", re.I), "disease"),
    (re.compile(r"\b(genes?|protein|mutation|mutated)\b", re.I), "gene/protein"),
    (re.compile(r"\b(symptoms?|signs?|findings?|phenotypes?|features?)\b", re.I), "effect/phenotype"),
]


# -- reading a question ----------------------------------------------------------------------
@dataclass
class Question:
    question: str
    options: dict[str, str] = field(default_factory=dict)
    answer: str | None = None  # the answer text, when known
    answer_idx: str | None = None  # its letter, when known and an option


def parse_question(text: str) -> Question:
    """Split typed text into question, options (``A) …`` / ``A. …``) and a known answer."""
    answer = None
    lines = _ANSWER_LINE.findall(text)
    if lines:
        answer = lines[-1]
        text = _ANSWER_LINE.sub("", text)
    question, options = _options(text)
    parsed = Question(" ".join(question.split()), options)
    if answer:
        letter = re.fullmatch(r"\(?([A-H])\)?(?:[.)]?\s*(.*))?", answer)
        if letter and letter.group(1) in options:
            parsed.answer_idx, parsed.answer = letter.group(1), options[letter.group(1)]
        else:
            parsed.answer = answer
            parsed.answer_idx = next((k for k, v in options.items() if v.lower() == answer.lower()), None)
    return parsed


def _options(text: str) -> tuple[str, dict[str, str]]:
    marks = list(_OPTION.finditer(text))
    start = next((i for i, m in enumerate(marks) if m.group(1) == "A"), None)
    if start is None:
        return text, {}
    marks = marks[start:]
    letters = [m.group(1) for m in marks]
    # Options run A, B, C, … in order; anything else is part of the text.
    expected = [chr(ord("A") + i) for i in range(len(letters))]
    count = next((i for i, (a, b) in enumerate(zip(letters, expected)) if a != b), len(letters))
    marks = marks[:count]
    if len(marks) < 2:
        return text, {}
    options = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        options[mark.group(1)] = " ".join(text[mark.end():end].split()).strip(" ,;")
    return text[: marks[0].start()], {k: v for k, v in options.items() if v}


# -- choosing an answer by KG evidence -----------------------------------------------------------
@dataclass
class Probe:
    mappings: list[Mapping]
    scores: dict[str, float]  # option letter, or candidate node id -> KG evidence
    names: dict[str, str]  # candidate key -> its text


def probe(ctx: AgentContext, question: Question) -> Probe:
    """Map the question (KG-only, whatever the LLM setting) and score candidate answers."""
    record = Record(id="probe", question=question.question, options=question.options, answer="", answer_idx=None)
    state: dict = {"record": record}
    state["entities"] = [m for m in kg_nodes.extract(state, ctx)["entities"] if m["text"].strip()]
    mappings = kg_nodes.map_entities(state, ctx)["mappings"] if state["entities"] else []
    for attempt in (1, 3):  # the first attempt's search, then the widest one
        search = settings_for_attempt(ctx.settings, attempt)
        sources = nodes_for(mappings, "question", search, ctx.settings)
        if question.options:
            names = dict(question.options)
            scores = option_evidence(ctx.kg, mappings, question.options, search, ctx.settings)
        else:
            candidates = _nearby(ctx, sources, question.question)
            names = {c: ctx.kg.name(c) for c in candidates}
            scores = {c: evidence(ctx.kg, connect(ctx.kg, sources, [c], search, ctx.settings)) for c in candidates}
        if any(scores.values()):
            break
    ranked = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    return Probe(mappings, ranked, names)


def _nearby(ctx: AgentContext, sources: list[str], question: str) -> list[str]:
    """Specific nodes one or two hops from the question's nodes, those reached from the most
    question nodes (and most directly) first; of the asked-for type when the question names one."""
    wanted = next((t for pattern, t in _WANTED_TYPE if pattern.search(question)), None)
    reach: Counter[str] = Counter()
    for source in sources:
        seen: dict[str, float] = {}
        for n in neighbours(ctx.kg, source, limit=NEIGHBOURS):
            seen[n.node_id] = 1.0
            for m in neighbours(ctx.kg, n.node_id, limit=NEIGHBOURS):
                seen.setdefault(m.node_id, 0.5)
        reach.update(seen)
    pool = [n for n in reach if n not in sources]
    typed = [n for n in pool if ctx.kg.node(n).type == wanted]
    pool = typed or pool
    pool.sort(key=lambda n: (-reach[n], ctx.kg.degree(n)))
    return pool[:CANDIDATES]
