"""The shapes of the LLM's structured answers; every one is validated before use.

Schemas are made hard to get wrong: the verifier's answer is an enum of the record's option
letters, and the letter is read leniently first ("The answer is B.", "**b**", "(B)", the
option's text), so only an answer that names no option needs a repair.

Schemas are also bounded, since under constrained decoding (``response_format`` json_schema,
a forced tool) the schema is all that stops a small model: llama.cpp compiles it into a
grammar, and SmolLM2-135M, given an unbounded array or string, fills it until ``max_tokens``
cuts the JSON off. So every array has ``maxItems``, every free string ``maxLength``, and a
value from a fixed set is an enum (node types, option letters) or a range (the mention,
candidate and path numbers that one request offers: mapping and pruning get a schema per
request, ``choice_schema`` and ``selection_schema``). The pydantic models carry the same bounds,
so what is sent and what is validated are one schema. An answer over a length bound from an
unconstrained model (a forced tool that the server does not constrain, or JSON in text) is
read as the grammar would have ended it, cut at the bound, not refused: the lists' tails are
the least informative (the prompts ask for the most informative first, and the nodes kept only
that many anyway), and a long entity name cut to its first 64 characters is still found by
meaning, where refusing would cost a repair request and then the whole answer. A value outside
an enum or a range is refused and repaired with the values allowed: a number that none of the
offered items has names nothing, and no cut mends it.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, create_model, field_validator

from agent.reasoning.llm import strip_thinking
from agent.reasoning.state import OPTION_LABEL

# PrimeKG's ten node types (HPO graphs use three of them), as the extract prompt lists them.
NODE_TYPES: tuple[str, ...] = ("disease", "drug", "effect/phenotype", "gene/protein", "anatomy", "biological_process",
              "molecular_function", "cellular_component", "pathway", "exposure")


# Bounds of the answers (see the module doc). The extract prompt asks for at most 12
# question entities, "usually one or two" answer entities.
MAX_QUESTION_ENTITIES = 12
MAX_ANSWER_ENTITIES = 4
MAX_NAME_CHARS = 64  # an entity as the question names it; 97% of HPO's 36,853 node names fit
MAX_ANSWER_CHARS = 200  # a short free-text answer
MAX_REASON_CHARS = 300  # the judge's one sentence


def trimmed(limit: int) -> BeforeValidator:
    """A list or string cut to ``limit`` items or characters before it is validated: what a
    grammar with that ``maxItems`` or ``maxLength`` would have let through."""
    return BeforeValidator(lambda value: value[:limit] if isinstance(value, (list, str)) else value)


NodeType = Literal[NODE_TYPES]


class Entity(BaseModel):
    # No description: SmolLM2-135M wrote the description ("Canonical medical name.") as the
    # name of every entity on 3 of the first 4 MedQA records, and terms of the question
    # without one (6 of 6); the extract prompt says what the name is.
    name: Annotated[str, Field(max_length=MAX_NAME_CHARS), trimmed(MAX_NAME_CHARS)]
    type: NodeType | None = Field(None, description="PrimeKG node type.")

    @field_validator("type", mode="before")
    @classmethod
    def _node_type(cls, value: object) -> str | None:
        """The type in the graph's spelling ("Drug", "gene protein"), or None for one it lacks
        ("symptom"): a type only steers mapping, so an unknown one must not fail the answer."""
        known = {normalised(t): t for t in NODE_TYPES}
        return known.get(normalised(value)) if isinstance(value, str) else None


class ExtractedEntities(BaseModel):
    """Medical entities of a question and of its answer."""

    question_entities: Annotated[list[Entity], Field(max_length=MAX_QUESTION_ENTITIES), trimmed(MAX_QUESTION_ENTITIES)]
    # Optional: with none, the answer is looked up whole, so omitting it needs no repair.
    answer_entities: Annotated[list[Entity], Field(max_length=MAX_ANSWER_ENTITIES), trimmed(MAX_ANSWER_ENTITIES)] = \
        Field(default_factory=list)


def numbered(count: int) -> Any:
    """One of the numbers 1..``count`` (at least 1, so the schema stays valid): a range, which
    grammars compile as tightly as an enum, and which, unlike a ``Literal``, still reads "2"."""
    return Annotated[int, Field(ge=1, le=max(count, 1))]


def choice_schema(mentions: int, candidates: int) -> type[BaseModel]:
    """``EntityChoices`` for ``mentions`` numbered mentions of at most ``candidates`` candidates
    each: one choice per mention, the numbers those offered."""
    choice = create_model(
        "EntityChoice",
        mention=(numbered(mentions), Field(description="The mention's number.")),
        candidate=(numbered(candidates) | None, Field(description="The chosen candidate's number, or null if none fits.")),
    )
    return create_model(
        "EntityChoices",
        __doc__="One choice per numbered mention.",
        choices=(Annotated[list[choice], Field(max_length=mentions), trimmed(mentions)], ...),
    )


def selection_schema(paths: int, at_most: int) -> type[BaseModel]:
    """``PathSelection`` of at most ``at_most`` of ``paths`` numbered paths."""
    return create_model(
        "PathSelection",
        __doc__="Numbers of the chosen paths.",
        selected=(Annotated[list[numbered(paths)], Field(max_length=at_most), trimmed(at_most)], ...),
    )


class ReasonedAnswer(BaseModel):
    """The answer the reasoning supports."""

    answer: Annotated[str, Field(max_length=MAX_ANSWER_CHARS, description="A short answer."), trimmed(MAX_ANSWER_CHARS)]


class Judgement(BaseModel):
    """Whether the candidate answer is correct."""

    correct: bool
    reason: Annotated[str, Field(max_length=MAX_REASON_CHARS, description="One sentence."), trimmed(MAX_REASON_CHARS)]


def answer_schema(options: dict[str, str]) -> type[BaseModel]:
    """``ReasonedAnswer`` for a multiple-choice record: the answer is one of its letters."""
    letters = tuple(options)

    def to_letter(value: object) -> object:
        letter = option_letter(value, options) if isinstance(value, str) else None
        if letter is None:
            raise ValueError(f"the answer must be one option letter: {', '.join(letters)}")
        return letter

    return create_model(
        "ReasonedAnswer",
        __doc__="The option the reasoning supports.",
        answer=(Literal[letters], Field(description="The letter of the option.")),
        __validators__={"letter": field_validator("answer", mode="before")(to_letter)},
    )


_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})
_NAMED_LETTER = re.compile(rf"\b(?:answer|option|choice)\s*(?:is|:|would be)?\s*(?:option\s*)?\(?({OPTION_LABEL})\)?(?![\w-])",
                           re.IGNORECASE)
_LEADING_LETTER = re.compile(rf"^(?:\(({OPTION_LABEL})\)|({OPTION_LABEL})(?:[.):]|$)|([A-Z]{{1,2}}|\d{{1,3}})\s)")


def normalised(text: str) -> str:
    """Case, punctuation and spacing folded, for comparing an answer with an option."""
    return " ".join(text.casefold().translate(_PUNCTUATION).split())


def match_option(text: str, options: dict[str, str]) -> str | None:
    """The letter of the option whose text is ``text`` once normalised, if exactly one is."""
    matches = [letter for letter, option in options.items() if normalised(option) == normalised(text)]
    return matches[0] if len(matches) == 1 else None


def option_letter(reply: str, options: dict[str, str]) -> str | None:
    """The option a reply names: "B", "b", "B.", "(B)", "**B**", "Option B", "The answer is
    B.", "B. Ketotifen eye drops", or the option's text alone; None when it names none."""
    text = strip_thinking(reply).replace("*", "").replace("`", "").strip()
    by_text = match_option(text, options)
    if by_text:
        return by_text
    for match in (_NAMED_LETTER.search(text), _LEADING_LETTER.match(text)):
        letter = next((g for g in match.groups() if g), "").upper() if match else ""
        if letter in options:
            return letter
    # The option's text within a sentence ("It is ketotifen eye drops."), if only one fits.
    within = [letter for letter, option in options.items() if f" {normalised(option)} " in f" {normalised(text)} "]
    return within[0] if len(within) == 1 else None
