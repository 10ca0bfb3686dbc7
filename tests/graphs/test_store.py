import pytest

from graphs.paths import describe
from graphs.store import KnowledgeGraph, normalize


@pytest.fixture
def kg():
    kg = KnowledgeGraph()
    kg.add_node("D1", "Malaria", "disease", synonyms=["paludism"])
    kg.add_node("P1", "Fever", "effect/phenotype", synonyms=["Pyrexia", "Fever"])
    kg.add_node("X1", "Cold", "disease")
    kg.add_node("X2", "Cold", "effect/phenotype")
    kg.add_node("R1", "chloroquine", "drug")
    kg.add_fact("D1", "disease_phenotype_positive", "P1")
    kg.add_fact("R1", "indication", "D1")
    kg.add_fact("X2", "phenotype_phenotype", "P1")
    return kg


def test_nodes_keep_ids_names_types_and_synonyms(kg):
    assert kg.node("D1").name == "Malaria" and kg.node("D1").type == "disease"
    assert kg.labels("P1") == ("Fever", "Pyrexia")  # the name is not repeated as a synonym


def test_shared_names_stay_distinct_nodes(kg):
    assert set(kg.nodes_named("cold")) == {"X1", "X2"}
    assert kg.nodes_named("PYREXIA") == ("P1",)


def test_facts_keep_direction_though_traversal_is_undirected(kg):
    assert kg.graph.has_edge("P1", "D1")
    (fact,) = kg.facts_between("P1", "D1")
    assert (fact.head, fact.relation, fact.tail, fact.label) == ("D1", "disease_phenotype_positive", "P1", "phenotype present")


def test_two_relations_on_one_pair_are_both_kept(kg):
    kg.add_fact("R1", "contraindication", "D1")
    kg.add_fact("R1", "indication", "D1")  # a repeat is not stored twice
    assert {f.relation for f in kg.facts_between("D1", "R1")} == {"indication", "contraindication"}
    assert kg.edge_count == 4
    assert describe(kg, ("D1", "R1"))["text"] == "Malaria ←indication, contraindication— chloroquine"


def test_one_relation_name_with_two_display_labels_is_two_facts(kg):
    kg.add_node("G1", "CYP3A4", "gene/protein")
    kg.add_fact("R1", "drug_protein", "G1", "target")
    kg.add_fact("R1", "drug_protein", "G1", "enzyme")
    kg.add_fact("G1", "drug_protein", "R1", "enzyme")  # the other way round is another fact
    assert [(f.head, f.label) for f in kg.facts_between("G1", "R1")] == [("R1", "target"), ("R1", "enzyme"), ("G1", "enzyme")]
    assert describe(kg, ("R1", "G1"))["text"] == "chloroquine —target, enzyme→ ←enzyme— CYP3A4"


def test_a_relation_without_a_label_reads_as_its_display_name(kg):
    kg.add_node("G1", "CYP3A4", "gene/protein")
    kg.add_fact("R1", "ASSOCIATED_WITH", "G1")
    kg.add_fact("R1", "OFF_LABEL_USE", "G1")  # PrimeKG's display labels, as a triples file may spell them
    kg.add_fact("R1", "drug_protein", "G1")  # no single label: it reads as itself
    kg.add_fact("R1", "TREATS_WELL", "G1")
    assert [f.label for f in kg.facts_between("R1", "G1")] == ["associated with", "off-label use", "drug protein", "treats well"]


def test_a_fact_about_an_unknown_node_is_refused(kg):
    with pytest.raises(KeyError, match="unknown node 'nope'"):
        kg.add_fact("D1", "x", "nope")


def test_facts_added_at_once_make_the_graph_adding_them_one_by_one_makes():
    facts = [("D1", "disease_phenotype_positive", "P1"), ("R1", "indication", "D1"), ("P1", "phenotype_phenotype", "X2"),
             ("D1", "disease_phenotype_negative", "P1"), ("R1", "indication", "D1"), ("D1", "disease_protein", "D1")]
    one_by_one, at_once = KnowledgeGraph(), KnowledgeGraph()
    for graph in (one_by_one, at_once):
        for node_id in ("D1", "P1", "R1", "X2"):
            graph.add_node(node_id, node_id, "t")
        graph.specificity  # a view the new facts must drop
    for fact in facts:
        one_by_one.add_fact(*fact)
    at_once.add_facts(facts)
    assert at_once.relations == one_by_one.relations
    assert [(u, list(nb.items())) for u, nb in at_once.graph.adj.items()] == \
        [(u, list(nb.items())) for u, nb in one_by_one.graph.adj.items()]
    assert "specificity" not in at_once.__dict__
    with pytest.raises(KeyError, match="unknown node 'nope'"):
        at_once.add_facts([("D1", "x", "nope")])


def test_resolve_takes_ids_or_names(kg):
    assert kg.resolve("D1") == "D1"
    assert kg.resolve("paludism") == "D1"
    with pytest.raises(KeyError, match="no node"):
        kg.resolve("unknown thing")


def test_path_description_reports_each_hops_true_direction(kg):
    path = describe(kg, ("P1", "D1", "R1"))
    assert path["hops"] == [
        [{"relation": "disease_phenotype_positive", "label": "phenotype present", "forward": False}],
        [{"relation": "indication", "label": "indication", "forward": False}],
    ]
    assert path["text"] == "Fever ←phenotype present— Malaria ←indication— chloroquine"
    assert describe(kg, ("R1", "D1"))["text"] == "chloroquine —indication→ Malaria"


def test_normalize_folds_case_and_punctuation():
    assert normalize("Type-2  Diabetes, Mellitus") == normalize("type II diabetes mellitus") == "type2 diabete mellitus"


def test_name_views_follow_a_node_added_after_they_were_read(kg):
    assert kg.nodes_reworded("Fever malaria") == () and "quartan" not in kg.name_words
    assert ("malaria", "fever") not in kg.name_word_pairs
    kg.add_node("D2", "Quartan malaria fever", "disease")
    assert kg.nodes_reworded("Fever quartan malaria") == ("D2",) and "quartan" in kg.name_openings
    assert ("malaria", "fever") in kg.name_word_pairs
