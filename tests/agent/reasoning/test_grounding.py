"""Each reasoning step checked against the graph: labels, evidence, score and path adherence,
on the fixture graph (tests/fixtures/medical_kg.tsv) and the PrimeKG slice."""

import pytest

from agent.reasoning.grounding import distribution, ground_reasoning, listed_paths, path_evidence, reasoning_steps
from graphs.paths import describe
from graphs.primekg import read_primekg
from graphs.triples import read_triples
from tests.conftest import FIXTURES, MEDICAL_KG


@pytest.fixture(scope="module")
def kg():
    return read_triples(MEDICAL_KG)


@pytest.fixture(scope="module")
def primekg():
    return read_primekg(FIXTURES / "primekg_slice.csv")


def one_step(kg, text, paths=()):
    [step] = ground_reasoning(kg, text, list(paths))["steps"]
    return step


@pytest.mark.parametrize("text, label", [
    ("Malaria presents with fever, splenomegaly and anemia.", "grounded"),
    ("Fever and splenomegaly are classic features of malaria.", "grounded"),
    ("Chloroquine is the drug of choice for malaria.", "grounded"),
    ("Aspirin is contraindicated in asthma.", "grounded"),
    ("Aspirin is an effective treatment for asthma.", "contradicted"),  # the graph: contraindication
    ("Tuberculosis does not present with hemoptysis.", "contradicted"),
    ("Metformin does not cause lactic acidosis.", "contradicted"),
    ("Metformin is used to treat lactic acidosis.", "unsupported"),  # the graph: side effect, not indication
    ("Isoniazid is indicated for asthma.", "unsupported"),  # joined by no indication within two hops
    ("Polyuria points to scurvy.", "unsupported"),  # not joined within two hops
    ("Anemia is a more specific form of abnormality of blood.", "grounded"),
    ("Chloroquine treats the fever of malaria.", "grounded"),
    ("The patient returned from a trip abroad.", "unlinked"),
    ("This suggests malaria.", "unlinked"),
])
def test_statements_on_the_fixture_graph_get_the_label_the_graph_gives(kg, text, label):
    step = one_step(kg, text)
    assert step["label"] == label, step
    assert (step["evidence"] is None) == (label == "unlinked")


@pytest.mark.parametrize("text, label", [
    ("Levamlodipine acts on NOS3 and is metabolised by the enzyme NOS3.", "grounded"),
    ("Dextroamphetamine is transported by SLC6A3.", "grounded"),
    ("Dextroamphetamine is metabolised by SLC6A3.", "unsupported"),  # target and transporter, not enzyme
    ("Levamlodipine is a first-line therapy for hypertension.", "grounded"),
    ("Levamlodipine is contraindicated in hypertension.", "contradicted"),
])
def test_statements_on_the_primekg_slice_match_its_display_relations(primekg, text, label):
    assert one_step(primekg, text)["label"] == label


def test_evidence_names_the_fact_that_backs_or_denies_a_step(kg):
    assert one_step(kg, "Chloroquine is indicated for malaria.")["evidence"] == "chloroquine —indication→ malaria"
    contradicted = one_step(kg, "Aspirin treats asthma.")
    assert contradicted["evidence"] == "the graph holds the opposite: aspirin —contraindication→ asthma"
    wrong = one_step(kg, "Metformin treats lactic acidosis.")
    assert "side effect" in wrong["evidence"]
    entities = one_step(kg, "Chloroquine is indicated for malaria.")["entities"]
    assert [(e["text"], e["name"]) for e in entities] == [("Chloroquine", "chloroquine"), ("malaria", "malaria")]


def test_a_negated_finding_is_read_as_the_absence_the_graph_records(kg):
    kg = read_triples(MEDICAL_KG)  # a copy: this test adds a fact
    kg.add_fact(kg.resolve("influenza"), "disease_phenotype_negative", kg.resolve("splenomegaly"))
    assert one_step(kg, "Influenza typically does not present with splenomegaly.")["label"] == "grounded"
    assert one_step(kg, "Influenza presents with splenomegaly.")["label"] == "contradicted"


def test_a_pruned_path_backs_a_step_joining_its_ends(kg):
    path = describe(kg, [kg.resolve("polyuria"), kg.resolve("type 2 diabetes mellitus"), kg.resolve("metformin"), kg.resolve("lactic acidosis")])
    text = "Polyuria is explained by lactic acidosis."  # three hops apart: only the path joins them
    assert one_step(kg, text)["label"] == "unsupported"
    step = one_step(kg, text, path_evidence([path]))
    assert step["label"] == "grounded" and step["evidence"].startswith("path: polyuria")


def test_qualifier_terms_are_not_entities(kg):
    kg = read_triples(MEDICAL_KG)
    for term, name, parent in [("HP:0000001", "All", None), ("HP:0000118", "Phenotypic abnormality", "HP:0000001"),
                               ("HP:0012823", "Clinical modifier", "HP:0000001"), ("HP:0012832", "Bilateral", "HP:0012823")]:
        kg.add_node(term, name, "effect/phenotype")
        if parent:
            kg.add_fact(term, "phenotype_phenotype", parent)
    kg.add_fact(kg.resolve("wheezing"), "phenotype_phenotype", "HP:0000118")
    step = one_step(kg, "Bilateral wheezing.")
    assert step["label"] == "unlinked" and [e["name"] for e in step["entities"]] == ["wheezing"]


def test_steps_are_the_numbered_items_of_the_reasoning_process():
    reasoning = ("Finding reasoning paths:\n1. a -> b\n\nReasoning Process:\n1. First point.\n2. Second point,\n"
                 "   continued.\n\nConclusion:\nThe answer is A.")
    assert reasoning_steps(reasoning) == ["First point.", "Second point, continued."]
    markdown = "### Reasoning Process:\n- One.\n- Two.\n### Conclusion:\nA"
    assert reasoning_steps(markdown) == ["One.", "Two."]


def test_free_form_chain_of_thought_is_split_into_sentences():
    cot = "<think>Okay, fever after travel. Malaria fits! Chloroquine treats it.</think>"
    assert reasoning_steps(cot) == ["Okay, fever after travel.", "Malaria fits!", "Chloroquine treats it."]


def test_listed_paths_count_only_where_the_graph_holds_every_hop(kg):
    reasoning = ("Finding reasoning paths:\n1. Fever -> Malaria -> Chloroquine\n2. fever ←phenotype present— influenza\n"
                 "3. Fever -> Asthma -> Albuterol\n\nReasoning Process:\n1. x")
    paths = listed_paths(kg, reasoning)
    assert [[kg.name(n) for n in p.nodes] for p in paths] == [["fever", "malaria", "chloroquine"], ["fever", "influenza"]]


def test_score_counts_grounded_among_the_labelled_steps_and_adherence_follows_paths_in_order(kg):
    paths = path_evidence([describe(kg, [kg.resolve("fever"), kg.resolve("malaria"), kg.resolve("chloroquine")]),
                           describe(kg, [kg.resolve("cough"), kg.resolve("asthma"), kg.resolve("albuterol")])])
    reasoning = ("Reasoning Process:\n1. Chloroquine is used for malaria.\n2. Malaria presents with fever.\n"
                 "3. Aspirin treats asthma.\n4. The patient is well.\n\nConclusion:\nA")
    grounding = ground_reasoning(kg, reasoning, paths)
    assert [s["label"] for s in grounding["steps"]] == ["grounded", "grounded", "contradicted", "unlinked"]
    assert grounding["score"] == round(2 / 3, 4)
    assert grounding["adherence"] == 0.5  # the first path walked backwards, hop by hop; the second never
    assert ground_reasoning(kg, "Reasoning Process:\n1. The patient is well.", paths)["score"] is None


def test_a_node_name_with_commas_and_negations_is_taken_whole_from_the_paths(kg):
    kg = read_triples(MEDICAL_KG)
    kg.add_node("D:1", "Infections, recurrent, and failure to thrive with or without diarrhea", "disease")
    kg.add_fact("D:1", "disease_phenotype_positive", kg.resolve("cough"))
    path = describe(kg, [kg.resolve("cough"), "D:1"])
    step = one_step(kg, "Infections, recurrent, and failure to thrive with or without diarrhea presents with cough.",
                    path_evidence([path]))
    assert step["label"] == "grounded", step


def test_distribution_bins_scores_and_counts_step_labels(kg):
    groundings = [ground_reasoning(kg, text, []) for text in (
        "Malaria presents with fever.", "Aspirin treats asthma. Malaria presents with fever.", "Nothing here.")]
    summary = distribution([*groundings, None])
    assert summary["samples"] == 3 and summary["mean_score"] == 0.75
    assert summary["score_bins"] == {"1.0": 1, "0.75-1": 0, "0.5-0.75": 1, "0-0.5": 0, "no scored step": 1}
    assert summary["steps"] == {"grounded": 2, "contradicted": 1, "unsupported": 0, "unlinked": 1}
