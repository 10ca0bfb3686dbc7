import json

import pytest

from graphs.paths import describe
from tools.kg_tools import KGToolbox


@pytest.fixture
def tools(loaded):
    box = KGToolbox(loaded.kg, loaded.index)
    return box, {t.name: t for t in box.tools()}


def call(tool, **args):
    return json.loads(tool.invoke(args))


def test_lookup_entity_returns_ids_names_and_types(tools):
    _, t = tools
    matches = call(t["lookup_entity"], name="TB", k=3)["matches"]
    assert len(matches) == 3 and {"id", "name", "type", "score"} <= matches[0].keys()
    assert call(t["lookup_entity"], name="tuberculosis")["matches"][0]["id"] == "disease:tuberculosis"


def test_shortest_paths_by_name_reports_relations_and_collects_paths(tools):
    box, t = tools
    out = call(t["shortest_paths"], source="hemoptysis", target="rifampin")
    assert out["paths"] == ["hemoptysis ←phenotype present— tuberculosis ←indication— rifampin"]
    assert box.found_paths == [("effect/phenotype:hemoptysis", "disease:tuberculosis", "drug:rifampin")]


def test_expand_neighbours_filters_by_relation_and_type(tools):
    _, t = tools
    out = call(t["expand_neighbours"], node="tuberculosis", relation="indication")
    assert sorted(n["name"] for n in out["neighbours"]) == ["isoniazid", "rifampin"]
    assert all(n["relations"] == [{"relation": "indication", "direction": "in"}] for n in out["neighbours"])
    assert call(t["expand_neighbours"], node="tuberculosis", type="drug")["neighbours"]


def test_unknown_nodes_and_bad_arguments_come_back_as_errors(tools):
    _, t = tools
    assert "no node with id or name 'atlantis'" in call(t["shortest_paths"], source="atlantis", target="rifampin")["error"]
    bad = call(t["shortest_paths"], source="fever", target="malaria", max_hops=50)
    assert bad["error"].startswith("invalid arguments: max_hops")
    assert "invalid arguments" in call(t["lookup_entity"], name="")["error"]


def test_tools_report_every_fact_of_an_edge(loaded):
    from graphs.primekg import read_primekg
    from tests.conftest import FIXTURES

    kg = read_primekg(FIXTURES / "primekg_slice.csv")
    box = KGToolbox(kg, loaded.index)
    t = {tool.name: tool for tool in box.tools()}
    assert call(t["shortest_paths"], source="hypertension", target="NOS3", max_hops=2)["paths"] == [
        "hypertension —associated with→ NOS3",
    ]
    out = call(t["shortest_paths"], source="CYP3A4", target="NOS3")
    assert out["paths"] == ["CYP3A4 ←enzyme— Levamlodipine —target, enzyme→ NOS3"]
    (amph,) = call(t["expand_neighbours"], node="SLC6A3")["neighbours"]
    assert amph["name"] == "Dextroamphetamine"
    assert amph["relations"] == [{"relation": "transporter", "direction": "in"}, {"relation": "target", "direction": "in"}]


def test_a_search_cut_short_says_so(loaded):
    box = KGToolbox(loaded.kg, loaded.index, max_work=0)
    t = {tool.name: tool for tool in box.tools()}
    out = call(t["shortest_paths"], source="hemoptysis", target="rifampin")
    assert out["paths"] == [] and "work bound" in out["note"]


def random_graph_kg():
    """A graph dense enough that a search's work bound can stop it part-way: 200 diseases,
    2000 random facts (seeded)."""
    import networkx as nx

    from graphs.store import KnowledgeGraph

    graph = nx.gnm_random_graph(200, 2000, seed=1)
    kg = KnowledgeGraph()
    for n in graph:
        kg.add_node(f"n{n}", f"node {n}", "disease")
    for a, b in graph.edges:
        kg.add_fact(f"n{a}", "disease_disease", f"n{b}")
    return kg


def test_a_path_is_cut_short_only_while_every_search_that_found_it_was():
    from graphs.paths import ranked_paths

    kg = random_graph_kg()
    # the smallest work bound under which a search for one path completes
    work = next(w for w in range(1, 5000) if not ranked_paths(kg, ["n0"], ["n1"], max_hops=4, limit=1, max_work=w).truncated)
    wide = ranked_paths(kg, ["n0"], ["n1"], max_hops=4, limit=20, max_work=work)
    assert wide.truncated and wide.paths  # the same bound stops a search for 20 part-way
    box = KGToolbox(kg, None, max_work=work)
    t = {tool.name: tool for tool in box.tools()}
    assert "work bound" in call(t["shortest_paths"], source="n0", target="n1", limit=20)["note"]
    assert set(box.found.values()) == {True}
    (first,) = call(t["shortest_paths"], source="n0", target="n1", limit=1)["paths"]
    best = next(p for p, cut in box.found.items() if not cut)
    assert describe(kg, best)["text"] == first  # a complete search found it too: not cut short
    assert [cut for p, cut in box.found.items() if p != best] == [True] * (len(box.found) - 1)


def test_an_index_whose_chroma_store_goes_away_still_answers_lookups(loaded, monkeypatch):
    # The names are searched exactly in the process (graphs.entity_index), from the vectors
    # the store holds: a Chroma server gone mid-run takes no lookup with it.
    import httpx

    box = KGToolbox(loaded.kg, loaded.index)
    t = {tool.name: tool for tool in box.tools()}

    class ServerGone:
        def __getattr__(self, name):
            raise httpx.ConnectError("[Errno 111] Connection refused")

    monkeypatch.setattr(loaded.index, "collection", ServerGone())
    reply = call(t["lookup_entity"], name="coughing up blood")
    assert reply["matches"] and all(m["id"] in loaded.kg.graph for m in reply["matches"])


def test_an_index_that_cannot_answer_is_a_tool_error_and_the_other_tools_still_work(loaded, monkeypatch):
    from graphs.entity_index import IndexStoreError

    box = KGToolbox(loaded.kg, loaded.index)
    t = {tool.name: tool for tool in box.tools()}

    def cannot_answer(*args):
        raise IndexStoreError(f"{loaded.index.store} cannot answer")

    monkeypatch.setattr(loaded.index, "nearest", cannot_answer)
    reply = t["lookup_entity"].invoke({"type": "tool_call", "id": "c1", "name": "lookup_entity",
                                       "args": {"name": "blood in the sputum of a smoker"}})  # not looked up before
    assert reply.status == "error" and reply.tool_call_id == "c1"
    assert json.loads(reply.content)["error"].startswith(
        "lookup_entity failed: the embedded Chroma store in ")
    assert call(t["shortest_paths"], source="hemoptysis", target="rifampin")["paths"]
