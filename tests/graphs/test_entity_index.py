def test_exact_names_come_first(loaded):
    (hits,) = loaded.index.search(["tuberculosis"], k=3)
    assert hits[0].node_id == "disease:tuberculosis" and hits[0].score > 0.99


def test_lookup_by_meaning_and_type_filter(loaded):
    hits, typed = loaded.index.search(["high temperature"], k=3) + loaded.index.search(["fever"], k=3, type="disease")
    assert "effect/phenotype:fever" in [h.node_id for h in hits]
    assert typed and all(h.type == "disease" for h in typed)


def test_one_result_per_node_best_first(loaded):
    (hits,) = loaded.index.search(["anemia"], k=5)
    ids = [h.node_id for h in hits]
    assert len(ids) == len(set(ids)) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
