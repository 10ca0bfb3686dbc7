"""The transformer's passes at query time: a lookup sends every text it needs at once, and
the texts are encoded in passes of similar length, each text getting what it gets alone, bit
for bit (the model runs in float64), so which texts shared a pass never changes a result."""

import numpy as np

from graphs.cache import INDEX_DIR
from graphs.embedding import Embedder, _length_groups
from graphs.entity_index import EntityIndex

SHORT = ["fever", "anemia", "cough"]
LONG = ["progressive weakness of the proximal muscles of both legs over several months",
        "recurrent episodes of painless bleeding from the upper gastrointestinal tract in an adult"]


def test_texts_are_encoded_in_passes_of_similar_length_each_as_it_is_alone(loaded, monkeypatch):
    embedder = loaded.index.embedder
    alone = {t: embedder._forward([t])[0] for t in SHORT + LONG}
    passes = []
    forward = embedder._forward
    monkeypatch.setattr(embedder, "_forward", lambda texts: passes.append(sorted(texts)) or forward(texts))
    texts = [LONG[0], SHORT[0], SHORT[1], LONG[1], SHORT[2]]
    vectors = embedder._encode(texts)
    assert sorted(passes) == sorted([sorted(SHORT), sorted(LONG)])
    for text, vector in zip(texts, vectors):
        assert np.array_equal(vector, alone[text])


def test_length_groups_cut_where_padding_would_cost_more_than_a_pass():
    # equal lengths: one pass; a long text among short ones: a pass of its own
    assert _length_groups([5, 5, 5, 5], pass_cost=32, most=256) == [[0, 1, 2, 3]]
    assert _length_groups([4, 60, 4, 5, 4], pass_cost=32, most=256) == [[1], [3, 0, 2, 4]]
    # a little padding is cheaper than a pass
    assert _length_groups([6, 5, 4], pass_cost=32, most=256) == [[0, 1, 2]]
    # never more than ``most`` texts a pass, every text in exactly one
    groups = _length_groups(list(range(1, 11)) * 3, pass_cost=32, most=4)
    assert max(map(len, groups)) <= 4 and sorted(i for g in groups for i in g) == list(range(30))


def opened_afresh(loaded) -> EntityIndex:
    """The fixture's index opened again with a new embedder: nothing looked up or encoded yet."""
    manifest = loaded.manifest
    return EntityIndex.open(loaded.kg, Embedder(), loaded.path / INDEX_DIR, manifest.index_collection, manifest.index_entries)


def test_one_lookup_of_several_texts_finds_what_each_finds_alone(loaded):
    texts = ["high temperature", "low red blood cell count", "tuberculosis drug"]
    together = opened_afresh(loaded).search(texts, k=5)
    one_by_one = opened_afresh(loaded)
    for text, found in zip(texts, together):
        (alone,) = one_by_one.search([text], k=5)
        assert [(c.node_id, c.score) for c in found] == [(c.node_id, c.score) for c in alone]


def test_a_pass_gives_sentence_transformers_vectors_bit_for_bit(loaded):
    """The pass calls the model's modules on our own tokenization; it must give what the
    library's encode gives, including a text cut at the model's maximum length."""
    embedder = loaded.index.embedder
    texts = SHORT + LONG + ["a finding " * 300]
    library = embedder._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
    assert np.array_equal(embedder._forward(texts), library)
    assert np.array_equal(embedder._forward(texts[-1:]), library[-1:])
