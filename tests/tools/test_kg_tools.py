import json

import pytest

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
