"""Names as exams write them meet names as ontologies write them."""

import pytest

from graphs.names import normalize, symbol_form
from graphs.store import KnowledgeGraph


@pytest.mark.parametrize("exam, ontology", [
    ("IL-4", "IL4"),
    ("type 2 diabetes", "Type II diabetes"),
    ("Type-2  Diabetes, Mellitus", "type II diabetes mellitus"),
    ("ACE inhibitors", "ACE inhibitor"),
    ("β-blockers", "beta blocker"),
    ("HbA1c", "Hemoglobin A1c"),
    ("anaemia", "Anemia"),
    ("kidneys", "Kidney"),
    ("antibodies", "Antibody"),
    ("TNF-α", "TNF alpha"),
    ("Bartter's syndrome", "Bartter syndrome"),
    ("Hashimoto’s thyroiditis", "Hashimoto thyroiditis"),
    ("Graves' disease", "Graves disease"),
])
def test_exam_spellings_meet_ontology_names(exam, ontology):
    assert normalize(exam) == normalize(ontology)


@pytest.mark.parametrize("word", ["arthritis", "virus", "abscess", "diagnosis", "mellitus"])
def test_singular_words_ending_in_s_keep_it(word):
    assert normalize(word) == word


def test_different_things_stay_apart():
    assert normalize("IL-4") != normalize("IL-6")
    assert normalize("type 1 diabetes") != normalize("type 2 diabetes")


def test_gene_symbols_keep_their_case():
    assert symbol_form("IL-4") == "IL4" and symbol_form("il-4") == "il4"


def test_the_name_index_matches_through_the_same_normalisation():
    kg = KnowledgeGraph()
    kg.add_node("HP:0005978", "Type II diabetes mellitus", "effect/phenotype", synonyms=["Type 2 diabetes"])
    kg.add_node("NCBIGene:3565", "IL4", "gene/protein")
    assert kg.nodes_named("type-2 diabetes") == ("HP:0005978",)
    assert kg.nodes_named("Type 2 Diabetes Mellitus") == ("HP:0005978",)
    assert kg.nodes_named("IL-4") == ("NCBIGene:3565",)


def test_an_answer_in_other_words_finds_the_node_and_its_numbered_forms():
    kg = KnowledgeGraph()
    kg.add_node("OMIM:106100", "Angioedema, hereditary, 1", "disease")
    kg.add_node("OMIM:610618", "Angioedema, hereditary, 3", "disease")
    kg.add_node("ORPHA:3303", "Tetralogy of Fallot", "disease")
    kg.add_node("OMIM:125853", "Diabetes mellitus, type 1", "disease")
    assert set(kg.nodes_reworded("Hereditary angioedema")) == {"OMIM:106100", "OMIM:610618"}
    assert kg.nodes_reworded("Fallot tetralogy") == ("ORPHA:3303",)
    # a number the answer states must be the node's; one word is too loose to reword
    assert kg.nodes_reworded("Type 2 diabetes mellitus") == ()
    assert kg.nodes_reworded("Diabetes mellitus type 1") == ("OMIM:125853",)
    assert kg.nodes_reworded("Angioedema") == ()
