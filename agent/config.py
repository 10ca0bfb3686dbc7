"""All settings of a run in one typed object, read from flags and ``MEDREASON_*`` variables.

The LLM endpoint follows the OpenAI conventions (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``) so
that any OpenAI-compatible server works unchanged. The key is a ``SecretStr``: it never
appears in a repr, a log line, a result or a checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from graphs.embedding import DEFAULT_MODEL
from graphs.path_search import DEFAULT_MAX_WORK


def default_kg_dir() -> Path:
    return platformdirs.user_cache_path("medreason-agent") / "kg" / "hpo"


def default_primekg_dir() -> Path:
    """Where ``kg download primekg`` puts PrimeKG by default: next to the HPO graph."""
    return platformdirs.user_cache_path("medreason-agent") / "kg" / "primekg"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDREASON_", extra="ignore", populate_by_name=True)

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

    llm_timeout: float = 60.0  # seconds per request
    llm_max_retries: int = 3  # the client retries 429, 5xx and timeouts only, with backoff
    requests_per_second: float | None = None
    structured_output: Literal["tools", "text"] = "tools"  # "text" for servers without tool calling
    strict_schemas: bool = False  # OpenAI's strict function schemas, for servers that support them
    max_tool_calls: int = 8  # per retry's exploration

    # entity mapping
    candidates: int = 5
    accept_score: float = 0.85  # top-1 cosine accepted without asking the LLM
    min_score: float = 0.70  # below this a candidate is never used

    # path search and retries
    max_attempts: int = 3
    max_hops: int = 3
    paths_per_pair: int = 10
    max_question_nodes: int = 12
    path_max_work: int = DEFAULT_MAX_WORK  # per node pair: a count, so results never depend on machine load
    prune_per_group: int = 3
    max_pruned_paths: int = 12

    @property
    def llm_configured(self) -> bool:
        """An LLM is used only when a model is named, so a stray OPENAI_API_KEY in the
        environment never turns a KG-only run into a paid one."""
        return not self.offline and bool(self.model)

    @property
    def mode(self) -> Literal["llm", "kg-only"]:
        return "llm" if self.llm_configured else "kg-only"
