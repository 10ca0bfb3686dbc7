"""What the nodes need besides the state: the graph, the entity index and the settings.

It reaches nodes as LangGraph's runtime context, never through the checkpointed state, so
heavy objects and secrets stay out of checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.config import Settings
from graphs.embedding import Embedder
from graphs.entity_index import EntityIndex
from graphs.store import KnowledgeGraph


@dataclass
class AgentContext:
    kg: KnowledgeGraph
    index: EntityIndex
    embedder: Embedder
    settings: Settings
    llm: Any = None  # a chat model when one is configured; None runs KG-only
