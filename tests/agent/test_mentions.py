from agent.mentions import find_mentions
from graphs.store import KnowledgeGraph


def kg_with(*nodes):
    kg = KnowledgeGraph()
    for node_id, name, type_ in nodes:
        kg.add_node(node_id, name, type_)
    return kg


def test_longest_names_win_without_overlap():
    kg = kg_with(("D1", "iron deficiency anemia", "disease"), ("P1", "anemia", "effect/phenotype"), ("P2", "fatigue", "effect/phenotype"))
    assert find_mentions(kg, "Fatigue and iron deficiency anemia; anemia again.") == ["Fatigue", "iron deficiency anemia", "anemia"]


def test_function_words_and_tiny_names_are_not_entities():
    kg = kg_with(("P1", "All", "effect/phenotype"), ("P2", "PA", "effect/phenotype"), ("P3", "fever", "effect/phenotype"))
    assert find_mentions(kg, "All patients had PA and fever") == ["fever"]


def test_gene_symbols_match_only_in_their_own_case():
    kg = kg_with(("G1", "CAT", "gene/protein"))
    assert find_mentions(kg, "The cat scratched him") == []
    assert find_mentions(kg, "A CAT variant") == ["CAT"]


def test_punctuation_inside_names_is_tolerated():
    kg = kg_with(("D1", "Type 2 diabetes mellitus", "disease"))
    assert find_mentions(kg, "known type-2 diabetes mellitus.") == ["type-2 diabetes mellitus"]
