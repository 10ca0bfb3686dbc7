"""The shapes of the LLM's structured answers; every one is validated before use.

Schemas are made hard to get wrong: the verifier's answer is an enum of the record's option
letters, and the letter is read leniently first ("The answer is B.", "**b**", "(B)", the
option's text), so only an answer that names no option needs a repair.
"""

from __future__ import annotations

import re
import string
from typing import Literal

from pydantic import BaseModel, Field, create_model, field_validator

from agent.reasoning.llm import strip_thinking
from agent.reasoning.state import OPTION_LABEL

# PrimeKG's ten node types (HPO graphs use three of them), as the extract prompt lists them.
NODE_TYPES = ("disease", "drug", "effect/phenotype", "gene/protein", "anatomy", "biological_process",
              "molecular_function", "cellular_component", "pathway", "exposure")


class Entity(BaseModel):
    name: str = Field(description="Canonical medical name.")
    type: str | None = Field(None, description="PrimeKG node type, e.g. disease, drug, effect/phenotype.")

    @field_validator("type", mode="before")
    @classmethod
    def _node_type(cls, value: object) -> str | None:
        """The type in the graph's spelling ("Drug", "gene protein"), or None for one it lacks
        ("symptom"): a type only steers mapping, so an unknown one must not fail the answer."""
        known = {normalised(t): t for t in NODE_TYPES}
        return known.get(normalised(value)) if isinstance(value, str) else None


class ExtractedEntities(BaseModel):
    """Medical entities of a question and of its answer."""

    question_entities: list[Entity]
    # Optional: with none, the answer is looked up whole, so omitting it needs no repair.
    answer_entities: list[Entity] = Field(default_factory=list)


class EntityChoice(BaseModel):
    mention: int = Field(description="The mention's number.")
    candidate: int | None = Field(description="The chosen candidate's number, or null if none fits.")


class EntityChoices(BaseModel):
    """One choice per numbered mention."""

    choices: list[EntityChoice]


class PathSelection(BaseModel):
    """Numbers of the chosen paths."""

    selected: list[int]


class ReasonedAnswer(BaseModel):
    """The answer the reasoning supports."""

    answer: str = Field(description="A short answer.")


class Judgement(BaseModel):
    """Whether the candidate answer is correct."""

    correct: bool
    reason: str = Field(description="One sentence.")


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
