"""LangChain tools over the knowledge graph, with pydantic arguments and hard caps.

Every tool returns JSON text. Bad arguments and unknown nodes come back to the model as a
JSON ``{"error": ...}`` it can act on, never as an exception that ends the run; so does a
graph that cannot answer a well-formed call (its entity index's store failing a query: a
Chroma server gone mid-run), as a tool error saying what failed, and the sample goes on with
what the other calls found. A bug is not caught: it stops the run with its traceback. Paths
found through ``shortest_paths`` are also collected on the toolbox, each with whether every search
that found it was cut short by its work bound, so the agent can use exactly the paths the
model explored and mark them ``truncated`` truthfully.
"""

from __future__ import annotations

import json

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field, ValidationError

from graphs.entity_index import EntityIndex, IndexFileError, IndexStoreError
from graphs.neighbours import neighbours
from graphs.path_search import DEFAULT_MAX_WORK
from graphs.paths import describe, ranked_paths
from graphs.store import KnowledgeGraph

MAX_RESULTS = 20
MAX_HOPS = 5
# The graph's failures on a well-formed call: its entity index's store could not answer.
GRAPH_FAILURES = (IndexStoreError, IndexFileError)


class LookupEntityArgs(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="A medical term to find in the graph.")
    type: str | None = Field(None, description="Only nodes of this type, e.g. 'disease', 'drug', 'effect/phenotype'.")
    k: int = Field(5, ge=1, le=MAX_RESULTS, description="How many nodes to return.")


class ShortestPathsArgs(BaseModel):
    source: str = Field(min_length=1, description="Node id or exact name where paths start.")
    target: str = Field(min_length=1, description="Node id or exact name where paths end.")
    max_hops: int = Field(3, ge=1, le=MAX_HOPS)
    limit: int = Field(10, ge=1, le=MAX_RESULTS)


class ExpandNeighboursArgs(BaseModel):
    node: str = Field(min_length=1, description="Node id or exact name to expand.")
    relation: str | None = Field(None, description="Only neighbours joined by this relation.")
    type: str | None = Field(None, description="Only neighbours of this node type.")
    limit: int = Field(20, ge=1, le=MAX_RESULTS)


class KGToolbox:
    """The three tools bound to one graph and index."""

    def __init__(self, kg: KnowledgeGraph, index: EntityIndex, max_work: int | None = DEFAULT_MAX_WORK) -> None:
        self.kg, self.index, self.max_work = kg, index, max_work
        # Each path found, in the order found: True while every search that returned it hit its
        # work bound (a path a complete search also returned is not "cut short").
        self.found: dict[tuple[str, ...], bool] = {}

    @property
    def found_paths(self) -> list[tuple[str, ...]]:
        return list(self.found)

    def lookup_entity(self, name: str, type: str | None = None, k: int = 5) -> str:
        try:
            (hits,) = self.index.search([name], k=k, type=type)
        except GRAPH_FAILURES as exc:
            raise ToolException(f"lookup_entity failed: {exc}; the other tools may still answer") from exc
        return json.dumps({"matches": [
            {"id": h.node_id, "name": h.name, "type": h.type, "score": round(h.score, 3)} for h in hits
        ]})

    def shortest_paths(self, source: str, target: str, max_hops: int = 3, limit: int = 10) -> str:
        try:
            s, t = self.kg.resolve(source), self.kg.resolve(target)
        except KeyError as exc:
            return _error(f"{exc.args[0]}; use lookup_entity to find the node id")
        found = ranked_paths(self.kg, [s], [t], max_hops=max_hops, limit=limit, max_work=self.max_work)
        for path in found.paths:
            self.found[path] = self.found.get(path, True) and found.truncated
        reply: dict = {"paths": [describe(self.kg, p)["text"] for p in found.paths]}
        if found.truncated:
            reply["note"] = "the search hit its work bound: longer or further paths may exist"
        elif not found.paths:
            reply["note"] = f"no path of at most {max_hops} hops"
        return json.dumps(reply, ensure_ascii=False)

    def expand_neighbours(self, node: str, relation: str | None = None, type: str | None = None, limit: int = 20) -> str:
        try:
            node_id = self.kg.resolve(node)
        except KeyError as exc:
            return _error(f"{exc.args[0]}; use lookup_entity to find the node id")
        try:
            found = neighbours(self.kg, node_id, relation=relation, type=type, limit=limit)
        except UnknownFilter as exc:
            return _error(str(exc))
        return json.dumps({"node": self.kg.name(node_id), "neighbours": [
            {"id": n.node_id, "name": n.name, "type": n.type, "degree": n.degree,
             "relations": [{"relation": f["label"], "direction": "out" if f["forward"] else "in"} for f in n.facts]}
            for n in found
        ]}, ensure_ascii=False)

    def tools(self) -> list[BaseTool]:
        specs = [
            (self.lookup_entity, LookupEntityArgs, "Find graph nodes whose name or synonym means the given term."),
            (self.shortest_paths, ShortestPathsArgs, "The shortest paths between two graph nodes, most specific first, each hop with all its relations."),
            (self.expand_neighbours, ExpandNeighboursArgs, "The most specific neighbours of a node, optionally filtered."),
        ]
        return [
            StructuredTool.from_function(
                func, name=func.__name__, description=description, args_schema=schema,
                handle_validation_error=_invalid_arguments, handle_tool_error=_failed,
            )
            for func, schema, description in specs
        ]


def _error(message: str) -> str:
    return json.dumps({"error": message})


def _failed(exc: ToolException) -> str:
    return _error(str(exc))


def _invalid_arguments(exc: ValidationError) -> str:
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return _error(f"invalid arguments: {problems}")
