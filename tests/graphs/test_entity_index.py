import pytest


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


def test_a_text_naming_no_node_gets_its_static_nearest_labels_ranked_and_scored_by_the_transformer(loaded):
    """Only the RERANK static-nearest labels are candidates, each scored by the transformer's
    cosine with the text (never a static score among them: the two scales differ), best first."""
    import numpy as np

    from graphs.embedding import Embedder
    from graphs.entity_index import RERANK

    index = loaded.index
    for text in ["high temperature", "a cough with blood and night sweats", "sugar diabetes"]:
        (hits,) = index.search([text], k=5)
        (nearest,) = index.nearest(index.encoder.encode([text]), RERANK)
        assert hits and {h.label for h in hits} <= {index.labels[e] for e, _ in nearest}
        fresh = Embedder().encode([text] + [h.label for h in hits]).astype(np.float64)
        assert [h.score for h in hits] == pytest.approx((fresh[1:] @ fresh[0]).tolist(), abs=1e-6)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_text_looked_up_again_gets_its_candidates_without_another_query(loaded, monkeypatch):
    index = loaded.index
    first = index.search(["a cough with blood and night sweats", "tuberculosis"], k=5)
    queries = []
    nearest = index.nearest
    monkeypatch.setattr(index, "nearest", lambda *args: queries.append(args) or nearest(*args))
    again = index.search(["tuberculosis", "a cough with blood and night sweats"], k=5)
    assert again == first[::-1] and queries == []
    again[0].clear()  # the caller's list: what is kept stays whole
    assert index.search(["tuberculosis"], k=5) == [first[1]]
    index.search(["a cough with blood and night sweats"], k=5, type="disease")  # another question: asked
    assert len(queries) == 1


# -- the store: embedded, or a Chroma server, through the same code ------------------------
QUERIES = ["tuberculosis", "high temperature", "a cough with blood", "anaemia", "sugar diabetes", "chloroquine",
           "shortness of breath", "fever"]


@pytest.fixture
def chroma_url(tmp_path):
    from tests.services import chroma_server

    with chroma_server(tmp_path / "chroma") as url:
        yield url


def mappings(index, type=None):
    return [[(h.node_id, round(h.score, 4)) for h in hits] for hits in index.search(QUERIES, k=5, type=type)]


def test_lookups_through_a_chroma_server_map_as_the_embedded_store_does(chroma_url, loaded, fixture_kg_dir, embedder):
    from graphs.kg_dir import open_kg
    from graphs.progress import Silent
    from tests.graphs.test_cache import _snapshot

    before = _snapshot(fixture_kg_dir)
    progress = Silent()
    served = open_kg(fixture_kg_dir, embedder, progress, chroma_url=chroma_url)
    assert served.index.store.url == chroma_url and loaded.index.store.url is None
    assert mappings(served.index) == mappings(loaded.index)
    assert mappings(served.index, "disease") == mappings(loaded.index, "disease")
    assert all(h.type == "disease" for hits in served.index.search(QUERIES, k=5, type="disease") for h in hits)
    assert _snapshot(fixture_kg_dir) == before  # the server was given the vectors; the KG was not written
    again = open_kg(fixture_kg_dir, embedder, Silent(), chroma_url=chroma_url)  # now it holds them
    assert mappings(again.index) == mappings(loaded.index)


def test_a_chroma_server_that_is_down_is_an_error_never_a_local_fallback(tmp_path, fixture_kg_dir):
    import subprocess
    import sys
    from pathlib import Path

    from tests.services import free_port

    root = Path(__file__).resolve().parents[2]
    down = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "in.jsonl").write_text('{"id": "q1", "question": "Which drug treats tuberculosis?", "answer": "rifampin"}\n')
    done = subprocess.run([sys.executable, str(root / "run_agent.py"), "run", str(tmp_path / "in.jsonl"), "--out",
                           str(tmp_path / "run"), "--kg-dir", str(fixture_kg_dir), "--chroma-url", down],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert f"cannot reach the Chroma server at {down}" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr and not (tmp_path / "run" / "results.jsonl").exists()


def test_a_collection_that_does_not_fit_the_graph_is_refused_with_what_to_do(chroma_url, fixture_kg_dir, embedder):
    import chromadb

    from graphs.cache import CacheError
    from graphs.kg_dir import open_kg
    from graphs.progress import Silent

    served = open_kg(fixture_kg_dir, embedder, Silent(), chroma_url=chroma_url)
    name = served.manifest.index_collection
    client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_url.rsplit(":", 1)[1]))
    client.get_collection(name).modify(metadata={"embedding_model": "another-model", "entries": len(served.index)})
    with pytest.raises(CacheError, match=rf"collection {name} in the Chroma server .* 'another-model'.*delete that collection"):
        open_kg(fixture_kg_dir, embedder, Silent(), chroma_url=chroma_url)
