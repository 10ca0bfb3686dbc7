"""The agent's wiring, as in DESIGN.md's diagram:

    record → extract → map → path → prune → generate → verify → accepted / rejected
                              ▲                          │
                              └──── retry (widened) ◄────┘

Its runtime context is the plain ``Settings``: the LangGraph server builds it from a run's
JSON ``context`` (and the ``MEDREASON_*`` environment), and each node opens the graph, index
and model from it through ``agent.reasoning.resources``. ``graph`` is what ``langgraph.json`` serves;
everything else compiles through ``compile_graph`` with its own checkpointer.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer

from agent.config import Settings
from agent.reasoning import nodes
from agent.reasoning.state import SampleState

# A sample runs at most 6 nodes per attempt; this bounds a misconfigured retry loop.
RECURSION_LIMIT = 100


def build_graph() -> StateGraph:
    graph = StateGraph(SampleState, context_schema=Settings)
    graph.add_node("extract", nodes.extract)
    graph.add_node("map", nodes.map_entities)
    graph.add_node("path", nodes.find_paths)
    graph.add_node("prune", nodes.prune)
    graph.add_node("generate", nodes.generate)
    graph.add_node("verify", nodes.verify)
    graph.add_edge(START, "extract")
    graph.add_edge("extract", "map")
    graph.add_edge("map", "path")
    graph.add_edge("path", "prune")
    graph.add_edge("prune", "generate")
    graph.add_edge("generate", "verify")
    graph.add_conditional_edges("verify", nodes.route_after_verify, {"retry": "path", "done": END})
    return graph


def compile_graph(checkpointer: Checkpointer = None):
    """The runnable agent over ``checkpointer`` (None: the caller's, as under the LangGraph server)."""
    return build_graph().compile(checkpointer=checkpointer, name="medreason")


graph = compile_graph()
