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


@pytest.fixture
def chroma_server(tmp_path):
    """A real Chroma server (chromadb's own `chroma run`) on a free local port."""
    import shutil
    import socket
    import subprocess
    import time

    import httpx

    if shutil.which("chroma") is None:
        pytest.skip("the chroma command of chromadb is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["chroma", "run", "--path", str(tmp_path / "chroma"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/api/v2/heartbeat", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_with_a_chroma_url_the_index_is_published_to_that_server(chroma_server, tmp_path, embedder):
    import chromadb

    from graphs.kg_dir import Source, build_kg
    from graphs.progress import Silent
    from tests.conftest import MEDICAL_KG

    loaded = build_kg(tmp_path / "kg", Source("triples", MEDICAL_KG), embedder, Silent(), chroma_url=chroma_server)
    client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_server.rsplit(":", 1)[1]))
    collection = client.get_collection(f"kg-{loaded.manifest.files['nodes.jsonl'][:16]}")
    assert collection.count() == len(loaded.index)
    found = collection.query(query_embeddings=loaded.index.encoder.encode(["tuberculosis"]), n_results=1)
    assert found["metadatas"][0][0]["node_id"] == "disease:tuberculosis"
