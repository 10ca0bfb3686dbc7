"""What the nodes work with besides the state: the graph, the entity index, the embedder, the
chat model, and the settings they were opened from.

It is not LangGraph's runtime context (that is the plain ``Settings``, see ``agent.reasoning.graph``):
``agent.reasoning.resources.load`` opens it from the settings, once per process, so heavy objects and
secrets stay out of checkpoints and a graph can be driven by JSON settings alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config import Settings
from agent.reasoning.llm import LLM
from graphs.embedding import Embedder
from graphs.entity_index import EntityIndex
from graphs.store import KnowledgeGraph


@dataclass(frozen=True)
class AgentContext:
    kg: KnowledgeGraph
    index: EntityIndex
    embedder: Embedder
    settings: Settings
    llm: LLM | None = None  # present exactly when settings.llm_configured (agent.reasoning.resources.load_llm)

    def __post_init__(self) -> None:
        # One source of truth for "LLM or KG-only": the settings; the model must agree with them.
        if (self.llm is not None) != self.settings.llm_configured:
            raise ValueError(f"a chat model was {'given' if self.llm else 'not given'} but the settings say "
                             f"{self.settings.mode}")
