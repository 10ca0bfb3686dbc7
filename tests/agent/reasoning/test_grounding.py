"""Each reasoning step checked against the graph: labels, evidence, score and path adherence,
on the fixture graph (tests/fixtures/medical_kg.tsv), the PrimeKG slice and a small graph shaped
as HPO is (one test per rule of what a claim needs to be grounded)."""

import pytest

from agent.reasoning.grounding import distribution, ground_reasoning, listed_paths, path_evidence, reasoning_steps
from agent.reasoning.verbalise import kg_reasoning
from graphs.paths import describe
from graphs.primekg import read_primekg
from graphs.store import KnowledgeGraph
from graphs.triples import read_triples
from graphs.vocabulary import (
    DISEASE,
    DISEASE_PHENOTYPE_NEGATIVE,
    DISEASE_PHENOTYPE_POSITIVE,
    DISEASE_PROTEIN,
    GENE,
    IS_A,
    PHENOTYPE,
    PHENOTYPE_PROTEIN,
)
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


def test_a_pruned_path_through_a_third_node_does_not_back_a_claim_between_its_ends(kg):
    path = describe(kg, [kg.resolve("polyuria"), kg.resolve("type 2 diabetes mellitus"), kg.resolve("metformin"), kg.resolve("lactic acidosis")])
    text = "Polyuria is explained by lactic acidosis."  # the path joins them through a disease and its drug
    for paths in ([], path_evidence([path])):
        step = one_step(kg, text, paths)
        assert step["label"] == "unsupported" and "no fact, nor chain implying one" in step["evidence"], step


# -- the rules, on a small graph shaped as HPO is: a disease presents with a phenotype, a child
# -- term is-a its parent, a gene is associated with a phenotype and a disease.


@pytest.fixture(scope="module")
def hpo_like():
    """Abnormal movement ← Dystonia ← Oculogyric crisis (and ← Limb dystonia); pyruvate
    dehydrogenase deficiency presents with Dystonia and lactic acidosis is a phenotype only of
    its gene; AADC deficiency presents with Oculogyric crisis and Hypotonia; Huntington disease
    is annotated NOT Dystonia."""
    kg = KnowledgeGraph()
    terms = {"HP:1": "Abnormal movement", "HP:2": "Dystonia", "HP:3": "Oculogyric crisis", "HP:4": "Limb dystonia",
             "HP:5": "Hypotonia", "HP:6": "Lactic acidosis"}
    for term, name in terms.items():
        kg.add_node(term, name, PHENOTYPE)
    for child, parent in [("HP:2", "HP:1"), ("HP:3", "HP:2"), ("HP:4", "HP:2")]:
        kg.add_fact(child, IS_A, parent)
    for disease, name in [("D:1", "Pyruvate dehydrogenase deficiency"), ("D:2", "AADC deficiency"), ("D:3", "Huntington disease")]:
        kg.add_node(disease, name, DISEASE)
    kg.add_node("G:1", "PDHA1", GENE)
    kg.add_facts([("D:1", DISEASE_PHENOTYPE_POSITIVE, "HP:2"), ("D:2", DISEASE_PHENOTYPE_POSITIVE, "HP:3"),
                  ("D:2", DISEASE_PHENOTYPE_POSITIVE, "HP:5"), ("D:3", DISEASE_PHENOTYPE_NEGATIVE, "HP:2"),
                  ("D:1", DISEASE_PROTEIN, "G:1"), ("G:1", PHENOTYPE_PROTEIN, "HP:6"), ("G:1", PHENOTYPE_PROTEIN, "HP:2")])
    return kg


def test_a_direct_fact_whose_relation_the_wording_names_grounds_the_claim(hpo_like):
    step = one_step(hpo_like, "Pyruvate dehydrogenase deficiency presents with dystonia.")
    assert step["label"] == "grounded" and step["evidence"] == "Pyruvate dehydrogenase deficiency —phenotype present→ Dystonia"
    assert one_step(hpo_like, "Pyruvate dehydrogenase deficiency is caused by mutations in PDHA1.")["label"] == "grounded"
    assert one_step(hpo_like, "Oculogyric crisis is a more specific form of dystonia.")["label"] == "grounded"


def test_a_phenotype_more_general_than_an_annotated_one_is_grounded_any_number_of_steps_up(hpo_like):
    one_up = one_step(hpo_like, "AADC deficiency presents with dystonia.")
    assert one_up["label"] == "grounded"
    assert one_up["evidence"] == "AADC deficiency —phenotype present→ Oculogyric crisis; Oculogyric crisis —parent-child→ Dystonia"
    assert one_step(hpo_like, "Abnormal movement is a feature of AADC deficiency.")["label"] == "grounded"  # two steps
    assert one_step(hpo_like, "Oculogyric crisis is a kind of abnormal movement.")["label"] == "grounded"
    assert one_step(hpo_like, "PDHA1 is associated with abnormal movement.")["label"] == "grounded"  # a gene's too


def test_a_phenotype_more_specific_than_the_annotated_one_is_not_grounded(hpo_like):
    step = one_step(hpo_like, "Pyruvate dehydrogenase deficiency presents with oculogyric crisis.")
    assert step["label"] == "unsupported"
    assert "Oculogyric crisis —parent-child→ Dystonia" in step["evidence"]  # what the graph does say
    assert one_step(hpo_like, "Limb dystonia is characteristic of pyruvate dehydrogenase deficiency.")["label"] == "unsupported"
    assert one_step(hpo_like, "Abnormal movement is a kind of oculogyric crisis.")["label"] == "unsupported"  # upside down


def test_a_disease_hierarchy_whose_direction_the_source_does_not_keep_backs_either_reading(kg):
    kg = read_triples(MEDICAL_KG)  # a copy: this test adds a fact, as PrimeKG keeps one of its two rows
    kg.add_node("D:9", "Cerebral malaria", DISEASE)
    kg.add_fact(kg.resolve("malaria"), "disease_disease", "D:9")
    assert one_step(kg, "Cerebral malaria is a kind of malaria.")["label"] == "grounded"
    assert one_step(kg, "Malaria is a kind of cerebral malaria.")["label"] == "grounded"


def test_a_finding_that_is_a_kind_of_a_disease_feature_is_consistent_with_the_disease_but_not_its_feature(hpo_like):
    assert one_step(hpo_like, "Oculogyric crisis suggests pyruvate dehydrogenase deficiency.")["label"] == "grounded"
    assert one_step(hpo_like, "Oculogyric crisis is a feature of pyruvate dehydrogenase deficiency.")["label"] == "unsupported"


def test_a_link_only_through_a_gene_is_not_grounded(hpo_like):
    for text in ("Pyruvate dehydrogenase deficiency presents with lactic acidosis.",
                 "Lactic acidosis suggests pyruvate dehydrogenase deficiency."):
        step = one_step(hpo_like, text)
        assert step["label"] == "unsupported", step


def test_a_link_only_through_another_disease_is_not_grounded(hpo_like, kg):
    assert one_step(hpo_like, "Oculogyric crisis points to hypotonia.")["label"] == "unsupported"  # both of AADC deficiency
    assert one_step(kg, "Malaria suggests tuberculosis.")["label"] == "unsupported"  # both present with fever
    assert one_step(kg, "Fever is associated with cough.")["label"] == "unsupported"  # both of tuberculosis, influenza


def test_an_absence_reaches_every_kind_of_the_absent_phenotype(hpo_like):
    assert one_step(hpo_like, "Huntington disease does not present with oculogyric crisis.")["label"] == "grounded"
    assert one_step(hpo_like, "Huntington disease presents with limb dystonia.")["label"] == "contradicted"
    assert one_step(hpo_like, "AADC deficiency does not present with dystonia.")["label"] == "contradicted"  # true path
    assert one_step(hpo_like, "Huntington disease does not present with abnormal movement.")["label"] == "unsupported"


def test_a_drug_for_a_disease_is_linked_to_its_findings_but_treats_them_only_with_the_disease_named(kg):
    assert one_step(kg, "This links splenomegaly to chloroquine.")["label"] == "grounded"
    assert one_step(kg, "Chloroquine treats splenomegaly.")["label"] == "unsupported"
    assert one_step(kg, "Chloroquine treats the splenomegaly of malaria.")["label"] == "grounded"
    assert one_step(kg, "Chloroquine treats the cough of tuberculosis.")["label"] == "unsupported"  # not malaria's


def test_kg_only_reasoning_is_backed_hop_by_hop_but_its_links_are_judged_on_the_graph(hpo_like):
    direct = describe(hpo_like, ["HP:3", "D:2"])
    is_a = describe(hpo_like, ["HP:3", "HP:2", "D:1"])
    other_disease = describe(hpo_like, ["HP:5", "D:2", "HP:3"])
    record = {"question": "?", "options": {}, "answer": "x", "answer_idx": None}
    reasoning = kg_reasoning(record, [direct, is_a, other_disease])
    grounding = ground_reasoning(hpo_like, reasoning, path_evidence([direct, is_a, other_disease]))
    assert [s["label"] for s in grounding["steps"]] == ["grounded", "grounded", "unsupported"], grounding
    assert grounding["steps"][2]["evidence"] == "no fact, nor chain implying one, joins Hypotonia and Oculogyric crisis"
    assert grounding["score"] == round(2 / 3, 4) and grounding["adherence"] == 1.0


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
