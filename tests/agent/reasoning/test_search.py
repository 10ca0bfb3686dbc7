"""The KG-only evidence measure on a small written HPO-like graph.

Three diseases annotated with real HPO terms (ids and is-a links as in hp.obo, much
trimmed), a gene linked to two unrelated findings, and HPO's modifier branch beside
Phenotypic abnormality. Information content: each disease annotated with a term or a
descendant of it counts once, among the four annotated diseases.
"""

from __future__ import annotations

import math

import pytest

from agent.config import Settings
from agent.reasoning.search import (
    connect,
    evidence,
    nodes_for,
    option_evidence,
    path_weight,
    rank_paths,
    searches_anew,
    settings_for_attempt,
)
from graphs.paths import describe
from graphs.store import KnowledgeGraph

PHENOTYPES = {
    "HP:0000001": ("All", None),
    "HP:0000118": ("Phenotypic abnormality", "HP:0000001"),
    "HP:0012823": ("Clinical modifier", "HP:0000001"),
    "HP:0012835": ("Left", "HP:0012823"),
    "HP:0012531": ("Pain", "HP:0000118"),
    "HP:0002829": ("Arthralgia", "HP:0012531"),
    "HP:0033050": ("Pharyngalgia", "HP:0012531"),
    "HP:0001945": ("Fever", "HP:0000118"),
    "HP:0030148": ("Heart murmur", "HP:0000118"),
    "HP:0002027": ("Abdominal pain", "HP:0012531"),
    "HP:0001369": ("Arthritis", "HP:0000118"),
    "HP:0005681": ("Juvenile rheumatoid arthritis", "HP:0001369"),
}
DISEASES = {
    "ORPHA:3099": ("Rheumatic fever", ["HP:0001945", "HP:0002829", "HP:0030148", "HP:0001369"]),
    "ORPHA:2331": ("Kawasaki disease", ["HP:0001945", "HP:0002027", "HP:0002829"]),
    "ORPHA:91546": ("Lyme disease", ["HP:0001945", "HP:0002829"]),
    "OMIM:604302": ("Juvenile arthritis", ["HP:0005681"]),
}
GENES = {"NCBIGene:1482": ("NKX2-5", ["HP:0030148", "HP:0002027"]), "NCBIGene:7124": ("TNF", ["HP:0001945", "HP:0001369"])}


@pytest.fixture
def kg() -> KnowledgeGraph:
    kg = KnowledgeGraph()
    for term, (name, _) in PHENOTYPES.items():
        kg.add_node(term, name, "effect/phenotype", "HPO")
    for term, (_, parent) in PHENOTYPES.items():
        if parent:
            kg.add_fact(term, "phenotype_phenotype", parent)
    for disease, (name, terms) in DISEASES.items():
        kg.add_node(disease, name, "disease", disease.split(":")[0])
        for term in terms:
            kg.add_fact(disease, "disease_phenotype_positive", term)
    for gene, (name, terms) in GENES.items():
        kg.add_node(gene, name, "gene/protein", "NCBI")
        for term in terms:
            kg.add_fact(gene, "phenotype_protein", term)
    return kg


def information(carriers: int) -> float:
    """Scaled information content of a term carried by ``carriers`` of the 4 diseases."""
    return math.log2(4 / carriers) / math.log2(4)


def mapping(node_id: str, role: str) -> dict:
    return {"mention": node_id, "role": role, "node_id": node_id, "name": node_id, "type": "",
            "score": 1.0, "method": "exact", "alternatives": []}


def test_information_content_counts_each_disease_once_up_the_hierarchy(kg):
    specificity = kg.specificity
    assert specificity.information("HP:0001945") == pytest.approx(information(3))  # Fever: 3 of 4
    # Pain: Rheumatic fever, Kawasaki and Lyme through Arthralgia, Kawasaki twice but counted once
    assert specificity.information("HP:0012531") == pytest.approx(information(3))
    assert specificity.information("HP:0000118") == 0.0  # every disease
    assert specificity.information("HP:0001369") == pytest.approx(information(2))  # Arthritis, via JRA
    assert specificity.information("HP:0030148") == 1.0  # Heart murmur: one disease
    # what one finding says about another: IC(a) + log2 P(a | b), P with one pseudo-count
    assert specificity.information_about("HP:0030148", "HP:0001945") == 0.0  # 1 + log2(1 / 4)
    # rheumatic fever alone is annotated with arthritis itself, and has the murmur: P = 1 / (1 + 1)
    assert specificity.information_about("HP:0030148", "HP:0001369") == pytest.approx(1 + math.log2(1 / 2) / 2)
    assert specificity.information_about("HP:0001369", "HP:0005681") == pytest.approx(information(2))  # a kind of it


def test_a_specific_annotated_disease_beats_a_gene_chain_and_an_ancestor_detour(kg):
    direct = ("HP:0030148", "ORPHA:3099")
    gene_chain = ("HP:0030148", "NCBIGene:1482", "HP:0002027", "ORPHA:2331")
    detour = ("HP:0033050", "HP:0012531", "HP:0002829", "ORPHA:2331")
    assert describe(kg, detour)["text"] == "Pharyngalgia —parent-child→ Pain ←parent-child— Arthralgia ←phenotype present— Kawasaki disease"
    assert path_weight(kg, direct) == 1.0  # the rarest finding, annotated to the disease itself
    assert 0 < path_weight(kg, gene_chain) < 0.1 * path_weight(kg, direct)
    assert path_weight(kg, detour) == 0.0  # sharing "Pain" is not having the finding


def test_climbing_to_an_annotated_ancestor_is_worth_the_ancestor(kg):
    # a patient with juvenile rheumatoid arthritis has arthritis, which Rheumatic fever carries
    up = ("HP:0005681", "HP:0001369", "ORPHA:3099")
    assert path_weight(kg, up) == pytest.approx(information(2), abs=1e-4)


def test_an_annotated_not_finding_is_no_evidence():
    kg = KnowledgeGraph()
    kg.add_node("HP:0001945", "Fever", "effect/phenotype")
    kg.add_node("D", "Afebrile disease", "disease")
    kg.add_fact("D", "disease_phenotype_negative", "HP:0001945")
    assert path_weight(kg, ("HP:0001945", "D")) == 0.0


def test_options_rank_by_how_well_their_annotations_explain_the_findings(kg):
    settings = Settings()
    search = settings_for_attempt(settings, 1)
    findings = ["HP:0001945", "HP:0002829", "HP:0030148", "HP:0033050"]  # fever, joint pain, murmur, sore throat
    options = {"A": "ORPHA:3099", "B": "ORPHA:2331", "C": "HP:0005681", "D": "ORPHA:91546"}
    mappings = [mapping(f, "question") for f in findings] + [mapping(n, f"option:{k}") for k, n in options.items()]
    scores = option_evidence(kg, mappings, options, search, settings)
    assert max(scores, key=scores.get) == "A"
    # fever and arthralgia are annotated to all three diseases; the murmur only to rheumatic
    # fever: Kawasaki disease reaches it only through the gene, Lyme disease only through
    # fever, which here says nothing about a murmur (IC 1 + log2 P(murmur | fever) = 1 + log2 1/4 = 0)
    shared = information(3) + information(3)
    assert scores["A"] == pytest.approx(shared + 1.0, abs=1e-3)
    assert shared < scores["B"] < shared + 0.1
    assert scores["D"] == pytest.approx(shared, abs=1e-3)


def test_only_an_llm_is_given_a_mentions_second_best_node_and_kg_only_widens_at_once(kg):
    # "Mesothelioma" maps to malignant mesothelioma; its second-best node, a peritoneal form, is
    # another concept than the one the KG-only gate vetted
    answer = {**mapping("ORPHA:3099", "answer"), "alternatives": [{"node_id": "ORPHA:2331", "score": 0.9}]}
    kg_only, llm = Settings(), Settings(model="some-model")
    for attempt in (1, 2, 3):
        assert nodes_for([answer], "answer", settings_for_attempt(kg_only, attempt), kg_only) == ["ORPHA:3099"]
    assert nodes_for([answer], "answer", settings_for_attempt(llm, 2), llm) == ["ORPHA:3099", "ORPHA:2331"]
    assert settings_for_attempt(kg_only, 2)["expand_answer"] and not settings_for_attempt(llm, 2)["expand_answer"]
    # KG-only a third attempt would search as the second did: it is not made; an LLM's is
    assert searches_anew(kg_only, settings_for_attempt(kg_only, 1), "no path")
    assert not searches_anew(kg_only, settings_for_attempt(kg_only, 2), "no path")
    assert searches_anew(llm, settings_for_attempt(llm, 2), "no path")


def test_a_modifier_term_never_starts_a_path(kg):
    search = settings_for_attempt(Settings(), 3)  # the widest search
    assert kg.qualifiers == {"HP:0000001", "HP:0012823", "HP:0012835"}
    assert connect(kg, ["HP:0012835"], ["ORPHA:3099"], search, Settings()) == []
    paths = connect(kg, ["HP:0012835", "HP:0030148"], ["ORPHA:3099"], search, Settings())
    assert ("HP:0030148", "ORPHA:3099") in paths and {p[0] for p in paths} == {"HP:0030148"}


def test_evidence_counts_each_finding_once_by_its_best_path(kg):
    murmur_direct = ("HP:0030148", "ORPHA:3099")
    murmur_gene = ("HP:0030148", "NCBIGene:1482", "HP:0002027", "ORPHA:2331")
    fever = ("HP:0001945", "ORPHA:3099")
    assert evidence(kg, [murmur_direct, murmur_direct, murmur_gene]) == 1.0
    assert evidence(kg, [murmur_gene] * 10) == path_weight(kg, murmur_gene)
    assert evidence(kg, [murmur_gene, fever]) == pytest.approx(path_weight(kg, murmur_gene) + information(3), abs=1e-3)


def test_ranked_paths_put_direct_specific_evidence_first_and_drop_worthless_or_restating_ones(kg):
    paths = [
        ("HP:0033050", "HP:0012531", "HP:0002829", "ORPHA:3099"),  # detour: worthless
        ("HP:0030148", "NCBIGene:1482", "HP:0002027", "ORPHA:2331"),
        ("HP:0001945", "ORPHA:3099"),
        ("HP:0030148", "ORPHA:3099"),
        ("HP:0001945", "NCBIGene:7124", "HP:0001369", "ORPHA:3099"),  # restates fever → rheumatic fever
    ]
    assert path_weight(kg, paths[4]) > 0
    ranked = rank_paths(kg, [describe(kg, p) for p in paths], per_group=3, limit=10)
    assert [tuple(p["nodes"]) for p in ranked] == [paths[3], paths[2], paths[1]]


def test_generic_terms_carry_only_a_few_chosen_paths():
    kg = KnowledgeGraph()
    kg.add_node("P", "Pain", "effect/phenotype")
    for i in range(5):
        kg.add_node(f"F{i}", f"Finding {i}", "effect/phenotype")
        kg.add_node(f"D{i}", f"Disease {i}", "disease")
        kg.add_fact(f"F{i}", "phenotype_phenotype", "P")
        kg.add_fact(f"D{i}", "disease_phenotype_positive", "P")
    paths = [(f"F{i}", "P", f"D{i}") for i in range(5)]
    assert kg.specificity.information("P") == 0.0
    assert rank_paths(kg, paths, per_group=3, limit=10, hub_repeats=2) == paths[:2]  # worthless, hub-capped
