"""Shared fixtures: a small KG of real medical facts, built once per session with the real
offline embedding model, and helpers to run the agent's nodes against it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from agent.config import Settings  # noqa: E402
from agent.context import AgentContext  # noqa: E402
from graphs.embedding import Embedder  # noqa: E402
from graphs.kg_dir import LoadedKG, Source, build_kg  # noqa: E402
from graphs.progress import Silent  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
MEDICAL_KG = FIXTURES / "medical_kg.tsv"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def fixture_kg_dir(tmp_path_factory, embedder) -> Path:
    kg_dir = tmp_path_factory.mktemp("kg")
    build_kg(kg_dir, Source("triples", MEDICAL_KG), embedder, Silent())
    return kg_dir


@pytest.fixture(scope="session")
def loaded(fixture_kg_dir, embedder) -> LoadedKG:
    from graphs.kg_dir import open_kg

    return open_kg(fixture_kg_dir, embedder, Silent())


@pytest.fixture
def brain(loaded):
    """The fake model, knowing the fixture graph's names as a model knows medical terms."""
    from tests.fake_llm import FakeBrain

    return FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph])


@pytest.fixture
def make_context(loaded):
    def make(**settings) -> AgentContext:
        return AgentContext(loaded.kg, loaded.index, loaded.index.embedder, Settings(kg_dir=loaded.path, **settings))

    return make


def record(question: str, answer: str, options: dict[str, str] | None = None, answer_idx: str | None = None, id: str = "s1"):
    return {"id": id, "question": question, "options": options or {}, "answer": answer, "answer_idx": answer_idx}


MALARIA = record(
    "A traveller returns with fever, splenomegaly and anemia. Which drug treats the most likely disease?",
    "chloroquine",
    {"A": "chloroquine", "B": "metformin", "C": "albuterol", "D": "levothyroxine"},
    "A",
)
