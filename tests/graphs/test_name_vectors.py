"""The names' vectors on disk and the exact search through the token vectors
(graphs.name_vectors): the fast search answers exactly what scoring every stored vector in
float64 answers, its error stays inside the bound it widens by, and an index whose files are
missing, cut short or do not fit is refused with what is wrong, then rebuilt."""

from itertools import islice

import numpy as np
import pytest

from graphs.embedding import StaticEncoder
from graphs.entity_index import EntityIndex
from graphs.kg_dir import open_kg
from graphs.name_vectors import FACTORS, VECTORS, IndexFileError, NameVectors
from graphs.progress import Silent

QUERIES = ["high temperature", "low red blood cell count", "tuberculosis drug", "a cough with blood", "sugar diabetes",
           "shortness of breath", "malaria medicine", "swollen spleen", "fever", "anaemia"]


@pytest.fixture(scope="module")
def names(loaded, embedder):
    """A few hundred names with near neighbours and exact twins: the fixture graph's labels,
    pairs of them, and a repeat of some (equal vectors, told apart by entry order)."""
    labels = list(dict.fromkeys(loaded.index.labels))
    pairs = [f"{a} {b}" for a, b in islice(((a, b) for a in labels for b in labels if a != b), 400)]
    texts = labels + pairs + labels[:20]
    encoder, vectors = StaticEncoder.distill(embedder, texts)
    return texts, encoder, NameVectors.of(encoder, texts, vectors)


def brute_force(vectors, query, n, entries=None):
    """Every stored vector scored in float64, best n by (score, entry)."""
    entries = np.arange(len(vectors)) if entries is None else entries
    scores = (np.asarray(vectors, np.float64)[entries] * query.astype(np.float64)).sum(axis=1)
    order = np.lexsort((entries, -scores))[:n]
    return [(int(entries[i]), float(scores[i])) for i in order]


def test_the_fast_search_finds_exactly_what_scoring_every_vector_in_float64_finds(names):
    texts, encoder, vectors = names
    queries = np.vstack([encoder.encode(QUERIES), vectors.vectors[:5], vectors.vectors[-3:]])
    some = np.arange(0, len(texts), 3)
    for n in (1, 5, 12, 40):
        found = vectors.nearest(queries, n)
        assert found == [brute_force(vectors.vectors, q, n) for q in queries]
        assert vectors.nearest(queries, n, some) == [brute_force(vectors.vectors, q, n, some) for q in queries]
    (twins,) = vectors.nearest(vectors.vectors[:1], 2)  # a name and its repeat: equal scores, earlier entry first
    assert [e for e, _ in twins] == [0, len(texts) - 20]


def test_the_fast_scores_stay_inside_their_bound(names):
    texts, encoder, vectors = names
    queries = np.vstack([encoder.encode(QUERIES), vectors.vectors[:5]])
    fast = vectors.fast_scores(queries)
    exact = queries.astype(np.float64) @ np.asarray(vectors.vectors, np.float64).T
    error = np.abs(fast - exact)
    bound = np.linalg.norm(queries.astype(np.float64), axis=1)[:, None] * vectors._bounds
    assert (error <= bound).all()
    assert error.max() > 0 and (vectors.deviations > 0).any()  # float32 rounding is there, and measured


def test_names_that_fast_scores_misplace_within_the_bound_are_still_found(names, monkeypatch):
    """The margin, not luck, keeps the answer exact: with fast scores off by up to a (here
    inflated) bound and no extra names re-scored, the answer is the same."""
    texts, encoder, vectors = names
    queries = encoder.encode(QUERIES)
    expected = [brute_force(vectors.vectors, q, 5) for q in queries]
    monkeypatch.setattr("graphs.name_vectors.RESCORED", 0)
    bound = np.full(len(texts), 0.05)
    vectors.__dict__["_bounds"] = bound  # the cached bound, inflated
    true_scores = vectors.fast_scores
    rng = np.random.default_rng(0)
    monkeypatch.setattr(vectors, "fast_scores", lambda q: true_scores(q) + rng.uniform(-0.04, 0.04, (len(q), len(texts))))
    try:
        assert vectors.nearest(queries, 5) == expected
        vectors.__dict__["_bounds"] = np.zeros(len(texts))  # without the margin the noise shows
        assert vectors.nearest(queries, 5) != expected
    finally:
        del vectors.__dict__["_bounds"]


def open_index(kg_dir, embedder):
    from graphs.cache import load_graph

    kg, manifest = load_graph(kg_dir)
    return EntityIndex.open(kg, embedder, kg_dir / "index", manifest.index_collection, manifest.index_entries)


def test_opening_reads_the_vectors_and_encodes_no_name(kg_copy, embedder, loaded, monkeypatch):
    monkeypatch.setattr(StaticEncoder, "encode", lambda self, texts: pytest.fail(f"encoded {len(texts)} texts"))
    index = open_index(kg_copy, embedder)
    assert isinstance(index.vectors, np.memmap)
    assert np.array_equal(index.vectors, loaded.index.vectors)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / VECTORS).unlink(), f"lacks {VECTORS}"),
    (lambda d: (d / FACTORS).unlink(), f"lacks {FACTORS}"),
    (lambda d: (d / VECTORS).write_bytes((d / VECTORS).read_bytes()[:-1000]), "truncated or corrupt"),
    (lambda d: (d / FACTORS).write_bytes((d / FACTORS).read_bytes()[:200]), "truncated or corrupt"),
    (lambda d: np.save(d / VECTORS, np.load(d / VECTORS)[:-1]), f"{VECTORS} holds .* not"),
])
def test_a_missing_short_or_foreign_vectors_file_is_refused_then_rebuilt(kg_copy, embedder, damage, message):
    damage(kg_copy / "index")
    with pytest.raises(IndexFileError, match=message):
        open_index(kg_copy, embedder)
    progress = Silent()
    loaded = open_kg(kg_copy, embedder, progress)
    assert any("rebuilding the entity index" in n for n in progress.notes)
    assert loaded.index.search(["a cough with blood"], k=1)[0]
    open_index(kg_copy, embedder)  # mended
