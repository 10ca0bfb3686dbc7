"""The same index from any build: two independent builds of a graph's entity index (fresh
embedders, texts encoded in other passes, in another order) give the same lookups, ids and
scores alike, because the nearest names are found exactly and a vector does not depend on
the pass that computed it. And the transformer's vectors, kept on disk by model and text,
are reused by a later process without changing a lookup."""

from pathlib import Path

import numpy as np
import pytest

from graphs.embedding import DEFAULT_MODEL, Embedder, VectorCache, model_key, model_location
from graphs.kg_dir import Source, build_kg
from graphs.name_vectors import NameVectors
from graphs.progress import Silent
from tests.conftest import MEDICAL_KG

QUERIES = ["high temperature", "low red blood cell count", "tuberculosis drug", "a cough with blood",
           "sugar diabetes", "shortness of breath", "malaria medicine", "swollen spleen"]


def lookups(index, queries, type=None):
    return [[(h.node_id, h.label, h.score) for h in hits] for hits in index.search(queries, k=5, type=type)]


def test_two_independent_builds_give_identical_lookups(tmp_path):
    first = build_kg(tmp_path / "a", Source("triples", MEDICAL_KG), Embedder(), Silent()).index
    # the second machine encodes other texts first, and looks the queries up one by one, backwards
    second_embedder = Embedder()
    second_embedder.encode(["an unrelated warm-up text", "fever of unknown origin", "x"])
    second = build_kg(tmp_path / "b", Source("triples", MEDICAL_KG), second_embedder, Silent()).index
    together = lookups(first, QUERIES)
    one_by_one = [lookups(second, [q])[0] for q in reversed(QUERIES)][::-1]
    assert together == one_by_one
    assert lookups(first, QUERIES, "disease") == lookups(second, QUERIES[::-1], "disease")[::-1]
    assert np.array_equal(first.vectors, second.vectors)


def test_nearest_names_are_exact_with_equal_scores_in_entry_order(loaded):
    index = loaded.index
    queries = index.encoder.encode(["fever", "anemia"])
    for query, found in zip(queries, index.nearest(queries, n=8)):
        every = index.vectors.astype(np.float64) @ query.astype(np.float64)
        expected = sorted(range(len(every)), key=lambda e: (-round(every[e], 12), e))[:8]
        assert [e for e, _ in found] == expected
    # a name listed twice (two nodes, or a synonym equal to a name) scores the same: the earlier entry first
    duplicate = NameVectors.of(index.encoder, index.labels + index.labels[:1], np.vstack([index.vectors, index.vectors[:1]]))
    twin = type(index)(index.kg, (index.node_ids + index.node_ids[:1], index.labels + index.labels[:1]),
                       index.encoder, duplicate, index.collection, index.store)
    (found,) = twin.nearest(index.vectors[:1], n=2)
    assert [e for e, _ in found] == [0, len(index.vectors)]


def test_vectors_kept_on_disk_are_reused_by_a_later_process_and_give_the_same_lookups(tmp_path, fixture_kg_dir):
    from agent.config import Settings
    from agent.reasoning import resources

    cache = tmp_path / "vectors"
    first = resources.load_kg(Settings(kg_dir=fixture_kg_dir, vector_cache=cache))
    found = lookups(first.index, QUERIES)
    kept = list(cache.glob("*.sqlite"))
    assert len(kept) == 1 and kept[0].stem == model_key(DEFAULT_MODEL)
    assert len(VectorCache(cache, kept[0].stem, 384)) > len(QUERIES)

    later = Embedder(cache_dir=cache)  # another process: nothing in memory, the disk cache only
    later._forward = lambda texts: pytest.fail(f"encoded again: {texts}")
    from graphs.entity_index import EntityIndex

    reopened = EntityIndex.open(first.kg, later, first.path / "index", first.manifest.index_collection,
                                first.manifest.index_entries)
    assert lookups(reopened, QUERIES) == found


def test_kept_vectors_are_keyed_by_model(tmp_path):
    cache = tmp_path / "vectors"
    Embedder(cache_dir=cache).encode(["fever", "anemia"])
    # the same files under another name are another model's vectors: encoded, not reused
    other_name = tmp_path / "minilm-copy"
    other_name.symlink_to(Path(model_location(DEFAULT_MODEL)), target_is_directory=True)
    other = Embedder(str(other_name), cache_dir=cache)
    encoded = []
    forward = other._forward
    other._forward = lambda texts: encoded.append(list(texts)) or forward(texts)
    other.encode(["fever", "anemia"])
    assert sorted(map(sorted, encoded)) == [["anemia", "fever"]] and len(list(cache.glob("*.sqlite"))) == 2


def test_a_model_with_other_files_has_another_key(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 384}')
    before = model_key(str(model))
    (model / "config.json").write_text('{"hidden_size": 768}')
    assert model_key(str(model)) != before
    assert model_key(str(model)) == model_key(str(model))
