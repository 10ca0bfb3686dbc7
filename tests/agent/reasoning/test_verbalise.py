"""KG-only reasoning states every fact of every hop, each from its own head."""

from agent.reasoning.verbalise import kg_reasoning, path_sentences
from graphs.paths import describe
from graphs.primekg import read_primekg
from tests.conftest import FIXTURES, record


def test_a_hop_with_target_and_enzyme_facts_says_both_and_never_calls_an_enzyme_a_target():
    kg = read_primekg(FIXTURES / "primekg_slice.csv")
    id_of = {kg.name(n): n for n in kg.graph}
    path = describe(kg, (id_of["hypertension"], id_of["Levamlodipine"], id_of["NOS3"]))
    assert path_sentences(path) == [
        "Levamlodipine is indicated for hypertension",
        "Levamlodipine acts on NOS3 and Levamlodipine is metabolised by the enzyme NOS3",
    ]
    via_cyp = describe(kg, (id_of["CYP3A4"], id_of["Levamlodipine"]))
    assert path_sentences(via_cyp) == ["Levamlodipine is metabolised by the enzyme CYP3A4"]

    reasoning = kg_reasoning(record("Which protein does levamlodipine act on?", "NOS3"), [path])
    assert "hypertension ←indication— Levamlodipine —target, enzyme→ NOS3" in reasoning
    assert "Levamlodipine acts on NOS3 and Levamlodipine is metabolised by the enzyme NOS3" in reasoning


def test_indicated_and_contraindicated_on_one_edge_are_both_said():
    kg = read_primekg(FIXTURES / "primekg_slice.csv")
    id_of = {kg.name(n): n for n in kg.graph}
    path = describe(kg, (id_of["seborrheic dermatitis"], id_of["Clobetasol propionate"]))
    assert path_sentences(path) == [
        "Clobetasol propionate is contraindicated in seborrheic dermatitis and "
        "Clobetasol propionate is indicated for seborrheic dermatitis"
    ]
