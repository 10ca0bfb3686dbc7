"""The shapes of the LLM's structured answers; every one is validated before use."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Entity(BaseModel):
    name: str = Field(description="Canonical medical name.")
    type: str | None = Field(None, description="PrimeKG node type, e.g. disease, drug, effect/phenotype.")


class ExtractedEntities(BaseModel):
    """Medical entities of a question and of its answer."""

    question_entities: list[Entity]
    answer_entities: list[Entity]


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

    answer: str = Field(description="The option letter for multiple choice, else a short answer.")


class Judgement(BaseModel):
    """Whether the candidate answer is correct."""

    correct: bool
    reason: str = Field(description="One sentence.")
