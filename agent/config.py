"""All settings of a run in one typed object, read from flags and ``MEDREASON_*`` variables.

The LLM endpoint follows the OpenAI conventions (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``) so
that any OpenAI-compatible server works unchanged. The key is a ``SecretStr``: it never
appears in a repr, a log line, a result or a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from graphs.embedding import DEFAULT_MODEL


def default_kg_dir() -> Path:
    return platformdirs.user_cache_path("medreason-agent") / "kg" / "hpo"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDREASON_", extra="ignore")

    kg_dir: Path = Field(default_factory=default_kg_dir)
    embedding_model: str = DEFAULT_MODEL
    chroma_url: str | None = None

    # LLM endpoint; none configured means KG-only
    offline: bool = False
    model: str | None = Field(None, validation_alias=AliasChoices("MEDREASON_MODEL", "OPENAI_MODEL"))
    base_url: str | None = Field(
        None, validation_alias=AliasChoices("MEDREASON_BASE_URL", "OPENAI_BASE_URL")
    )
    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("MEDREASON_API_KEY", "OPENAI_API_KEY")
    )

    # entity mapping
    candidates: int = 5
    accept_score: float = 0.85  # top-1 cosine accepted without asking the LLM
    min_score: float = 0.70  # below this a candidate is never used

    # path search and retries
    max_attempts: int = 3
    max_hops: int = 3
    paths_per_pair: int = 10
    max_question_nodes: int = 12
    path_time_budget: float = 0.5  # seconds per node pair
    prune_per_group: int = 3
    max_pruned_paths: int = 12

    @property
    def llm_configured(self) -> bool:
        return not self.offline and bool(self.model or self.base_url or self.api_key)
