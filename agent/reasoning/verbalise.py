"""KG-only generation: the pruned paths written out edge by edge in MedReason's format."""

from __future__ import annotations

from functools import cache

import prompts
from agent.reasoning.state import Record
from graphs.paths import PathRecord


@cache
def _hop_sentences() -> dict[str, str]:
    table = {}
    for line in prompts.load("kg_hop_sentences").splitlines():
        if line and not line.startswith("#"):
            relation, sentence = line.split("\t")
            table[relation] = sentence
    return table


def hop_sentence(head: str, relation: str, tail: str) -> str:
    template = _hop_sentences().get(relation, "{head} {relation} {tail}")
    return template.format(head=head, relation=relation, tail=tail)


def path_sentences(path: PathRecord) -> list[str]:
    """One sentence per hop, stating every fact on that edge ("X acts on Y and X is
    metabolised by Y"), each read from its own head."""
    names, sentences = path["names"], []
    for i, facts in enumerate(path["hops"]):
        said = []
        for fact in facts:
            head, tail = (names[i], names[i + 1]) if fact["forward"] else (names[i + 1], names[i])
            said.append(hop_sentence(head, fact["label"], tail))
        sentences.append(" and ".join(dict.fromkeys(said)))
    return sentences


PROMPT_CONTEXT_CHARS = 4000  # a PubMedQA abstract is ~1,500; longer evidence is cut for prompts


def question_text(record: Record, context_chars: int | None = None) -> str:
    """The question as a reader needs it: with the evidence it is about (PubMedQA's context)
    first, cut to ``context_chars`` at a word boundary when given."""
    context = (record.get("extra") or {}).get("context")
    context = context.strip() if isinstance(context, str) else ""  # a source's own "context" field may be anything
    if not context:
        return record["question"]
    if context_chars is not None and len(context) > context_chars:
        context = context[:context_chars].rsplit(maxsplit=1)[0] + " …"
    return f"Context: {context}\n\nQuestion: {record['question']}"


def options_text(record: Record) -> str:
    """The options a line each, ``A. text``; empty for a free-text question."""
    return "\n".join(f"{letter}. {text}" for letter, text in (record.get("options") or {}).items())


def answer_text(record: Record) -> str:
    letter = record["answer_idx"]
    return f"{letter}. {record['answer']}" if letter else record["answer"]


def kg_reasoning(record: Record, paths: list[PathRecord]) -> str:
    listing = "\n".join(f"{i}. {p['text']}" for i, p in enumerate(paths, 1))
    steps = []
    for i, path in enumerate(paths, 1):
        sentences = path_sentences(path)
        steps.append(
            f"{i}. Starting from {path['names'][0]}: "
            + "; ".join(sentences)
            + f". This links {path['names'][0]} to {path['names'][-1]}."
        )
    return prompts.render(
        "kg_reasoning",
        paths=listing,
        steps="\n".join(steps),
        conclusion=f"The answer is {answer_text(record)}.",
    )


def strip_conclusion(reasoning: str) -> str:
    """The reasoning without its conclusion, as a verifier must read it."""
    return reasoning.split("Conclusion:", 1)[0].rstrip()
