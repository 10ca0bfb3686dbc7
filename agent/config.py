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


def default_vector_cache() -> Path:
    """Where the transformer's vectors of looked-up texts are kept across runs (graphs.embedding.VectorCache)."""
    return platformdirs.user_cache_path("medreason-agent") / "vectors"


def default_primekg_dir() -> Path:
    """Where ``kg download primekg`` puts PrimeKG by default: next to the HPO graph."""
    return platformdirs.user_cache_path("medreason-agent") / "kg" / "primekg"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDREASON_", extra="ignore", populate_by_name=True)

    kg_dir: Path = Field(default_factory=default_kg_dir)
    embedding_model: str = DEFAULT_MODEL
    chroma_url: str | None = None
    # the transformer's vectors of looked-up texts, kept across runs (one file per model); None: this process only
    vector_cache: Path | None = Field(default_factory=default_vector_cache)

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
    # How structured answers are asked for: constrained JSON (response_format json_schema), a
    # forced tool call, or JSON in plain text; "auto" asks the endpoint once which it honours.
    structured_output: Literal["auto", "json_schema", "tools", "text"] = "auto"
    strict_schemas: bool = False  # OpenAI's strict function schemas, for servers that support them
    max_tool_calls: int = 8  # per retry's exploration
    # Tokens a reply may take, per node: a reply cut off there gets one repair asking for less,
    # then the node's KG-only behaviour. Reasoning models think inside this budget: raise them.
    max_tokens_extract: int = Field(512, ge=1)
    max_tokens_map: int = Field(256, ge=1)
    max_tokens_path: int = Field(512, ge=1)  # each round of exploring the KG with tools
    max_tokens_prune: int = Field(256, ge=1)
    max_tokens_generate: int = Field(1536, ge=1)
    max_tokens_verify: int = Field(256, ge=1)

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
    prune_per_group: int = 3  # the LLM pruner's K; KG-only shows the one path each finding counts by
    max_pruned_paths: int = 12

    # a right answer whose reasoning scores below this (agent.reasoning.grounding) fails as "ungrounded reasoning"
    min_grounding: float | None = Field(None, ge=0.0, le=1.0)

    @property
    def llm_configured(self) -> bool:
        """An LLM is used only when a model is named, so a stray OPENAI_API_KEY in the
        environment never turns a KG-only run into a paid one."""
        return not self.offline and bool(self.model)

    @property
    def max_tokens(self) -> dict[str, int]:
        """``max_tokens`` per node, by the node's name."""
        return {node: getattr(self, f"max_tokens_{node}") for node in ("extract", "map", "path", "prune", "generate", "verify")}

    @property
    def mode(self) -> Literal["llm", "kg-only"]:
        return "llm" if self.llm_configured else "kg-only"
