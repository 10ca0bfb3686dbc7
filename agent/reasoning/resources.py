"""The one loader of what the agent's nodes work with: graph, entity index, embedder, chat model.

LangGraph's runtime context is the plain ``Settings`` (strings and numbers, so the LangGraph
server can build it from JSON and a Ray actor can receive it); every node turns it into an
``AgentContext`` here. Opening a KG or an embedding model takes seconds and much memory, so
each is opened once per process and kept, keyed by the settings that decide it: the KG by
``kg_dir``, ``embedding_model``, ``chroma_url`` and ``vector_cache``, the embedder by its model
name and vector cache, the chat
model by its endpoint settings. The CLI, chat, replay forks, benches, tests, Ray actors and
the LangGraph server all come through here, so a fork with ``settings.model=X`` runs with X.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar

from agent.config import Settings, default_kg_dir
from agent.reasoning.context import AgentContext
from agent.reasoning.llm import LLM, make_llm
from graphs.cache import CacheError
from graphs.embedding import Embedder
from graphs.kg_dir import LoadedKG, Source, open_kg
from graphs.progress import Progress, Silent

V = TypeVar("V")


class _Opened(Generic[V]):
    """Objects opened by key, the ``size`` most recently used kept. One opening at a time, so
    samples that start together wait for a single load instead of each loading the KG."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, open_: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = open_()
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return value


# A KG of PrimeKG's size takes gigabytes: keep two (a fork onto another graph, and back).
_KGS: _Opened[LoadedKG] = _Opened(2)
_EMBEDDERS: _Opened[Embedder] = _Opened(2)
_LLMS: _Opened[LLM | None] = _Opened(8)


def embedder(model_name: str, vector_cache: Path | None = None) -> Embedder:
    """The embedder of ``model_name``, keeping its vectors in ``vector_cache`` across runs
    (None: for this process only)."""
    return _EMBEDDERS.get((model_name, vector_cache), lambda: Embedder(model_name, cache_dir=vector_cache))


def load_kg(settings: Settings, progress: Progress | None = None) -> LoadedKG:
    """The KG directory of ``settings``, opened (or built, for the default HPO graph) once per
    process. Raises CacheError saying what to do when it cannot be opened."""
    kg_dir = settings.kg_dir.expanduser().resolve()
    is_default = kg_dir == default_kg_dir().expanduser().resolve()
    if not is_default and not kg_dir.exists():
        raise CacheError(
            f"--kg-dir {settings.kg_dir} does not exist; build a graph there with "
            f"`kg build --source hpo --kg-dir {settings.kg_dir}`"
        )

    def open_() -> LoadedKG:
        return open_kg(kg_dir, embedder(settings.embedding_model, settings.vector_cache), progress or Silent(),
                       chroma_url=settings.chroma_url, default_source=Source("hpo") if is_default else None)

    return _KGS.get((kg_dir, settings.embedding_model, settings.chroma_url, settings.vector_cache), open_)


def load_llm(settings: Settings) -> LLM | None:
    """The chat model of ``settings``; None exactly when ``settings.llm_configured`` is false."""
    if not settings.llm_configured:
        return None
    key = (settings.model, settings.base_url, settings.api_key.get_secret_value() if settings.api_key else None,
           settings.llm_timeout, settings.llm_max_retries, settings.requests_per_second,
           settings.structured_output, settings.strict_schemas, tuple(settings.max_tokens.items()))
    return _LLMS.get(key, lambda: make_llm(settings))


def load(settings: Settings | None = None, progress: Progress | None = None) -> AgentContext:
    """Everything a node needs for ``settings`` (the ``MEDREASON_*`` environment when None)."""
    settings = settings if settings is not None else Settings()
    loaded = load_kg(settings, progress)
    return AgentContext(loaded.kg, loaded.index, loaded.index.embedder, settings, load_llm(settings))
