"""A built knowledge graph on disk: files, a manifest, and the checks that make reuse safe.

Layout of a KG directory::

    manifest.json   written last; without it the directory holds no valid graph
    nodes.jsonl     [id, name, type, source, synonyms] per line
    facts.npz       head, tail (node row numbers) and relation columns
    index/          the entity index: its encoder, the names' vectors and their factors over the
                    token vectors (graphs.name_vectors), the embedded Chroma store (graphs.entity_index)

The manifest records who wrote it, the format version, the source and its fingerprint,
counts, the embedding model and Chroma collection of the index and a SHA-256 of every file, so a stale, foreign
or corrupt cache is detected and rebuilt instead of silently used.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from graphs.atomic import atomic_file, write_text
from graphs.store import KnowledgeGraph, gc_paused

# 2: relations keyed by (name, display label); 3: the entity index became vector files (was Chroma);
# 4: the entity index is a Chroma collection of static vectors, named in the manifest;
# 5: HPO phenotypes keep only the synonyms that name them (graphs.hpo.naming_synonyms)
FORMAT_VERSION = 5
TOOL = "medreason-agent"
MANIFEST = "manifest.json"
NODES = "nodes.jsonl"
FACTS = "facts.npz"
INDEX_DIR = "index"


class CacheError(RuntimeError):
    """The KG directory holds no graph this tool can trust; the message says why."""


@dataclass
class SourceInfo:
    kind: str  # hpo | primekg | triples
    paths: list[str] = field(default_factory=list)
    sha256: str = ""
    stat: list[list[int]] = field(default_factory=list)  # [size, mtime_ns] per path

    @classmethod
    def of(cls, kind: str, paths: list[Path]) -> SourceInfo:
        return cls(kind, [str(p) for p in paths], _sha256_files(paths), [_stat(p) for p in paths])

    def is_stale(self) -> bool:
        """True when a source file still exists but its content changed since the build."""
        paths = [Path(p) for p in self.paths]
        if not paths or not all(p.exists() for p in paths):
            return False  # source gone: the cache is all the user has
        if [_stat(p) for p in paths] == self.stat:
            return False
        return _sha256_files(paths) != self.sha256


@dataclass
class Manifest:
    source: SourceInfo
    nodes: int
    edges: int
    node_types: dict[str, int]
    relations: list[dict]  # {"relation", "display_relation", "facts"}, most facts first
    files: dict[str, str]
    embedding_model: str = ""
    index_entries: int = 0
    index_collection: str = ""  # the Chroma collection of the label vectors (embedded, or on --chroma-url)
    format_version: int = FORMAT_VERSION
    tool: str = TOOL
    created: str = ""

    def write(self, kg_dir: Path) -> None:
        self.created = self.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_text(kg_dir / MANIFEST, json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, kg_dir: Path) -> Manifest:
        path = kg_dir / MANIFEST
        if not path.exists():
            raise CacheError(f"{kg_dir} holds no built knowledge graph (no {MANIFEST})")
        try:
            raw = json.loads(path.read_text())
            if raw.get("tool") != TOOL:
                raise CacheError(f"{path} was not written by {TOOL}")
            if raw.get("format_version") != FORMAT_VERSION:
                raise CacheError(
                    f"{path} has format version {raw.get('format_version')}, "
                    f"this version reads {FORMAT_VERSION}"
                )
            raw["source"] = SourceInfo(**raw["source"])
            return cls(**raw)
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
            raise CacheError(f"{path} is corrupt: {exc}") from exc


def save_graph(kg: KnowledgeGraph, kg_dir: Path, source: SourceInfo) -> Manifest:
    """Write the graph files and a manifest without index; invalidates any previous build."""
    kg_dir.mkdir(parents=True, exist_ok=True)
    (kg_dir / MANIFEST).unlink(missing_ok=True)
    node_ids = list(kg.graph)
    row = {node_id: i for i, node_id in enumerate(node_ids)}
    with atomic_file(kg_dir / NODES, "w") as out:
        for node in kg.nodes():
            record = [node.id, node.name, node.type, node.source, list(kg.synonyms.get(node.id, ()))]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    heads, tails, rels = array("i"), array("i"), array("h")
    with gc_paused():
        for u, v, data in kg.graph.edges(data=True):
            for rel, head in data["facts"]:
                heads.append(row[head])
                tails.append(row[v if head == u else u])
                rels.append(rel)
    relation_counts = np.bincount(np.frombuffer(rels, dtype=np.int16), minlength=len(kg.relations))
    relations = json.dumps([list(r) for r in kg.relations])
    with atomic_file(kg_dir / FACTS, "wb") as out:
        np.savez(
            out,
            head=np.frombuffer(heads, dtype=np.int32),
            tail=np.frombuffer(tails, dtype=np.int32),
            relation=np.frombuffer(rels, dtype=np.int16),
            relations=np.asarray([relations]),
        )
    manifest = Manifest(
        source=source,
        nodes=len(kg),
        edges=len(heads),
        node_types=dict(kg.type_counts().most_common()),
        relations=[
            {"relation": kg.relations[i].name, "display_relation": kg.relations[i].label, "facts": n}
            for i, n in Counter(dict(enumerate(relation_counts.tolist()))).most_common() if n
        ],
        files={name: _sha256_files([kg_dir / name]) for name in (NODES, FACTS)},
    )
    manifest.write(kg_dir)
    return manifest


def load_graph(kg_dir: Path) -> tuple[KnowledgeGraph, Manifest]:
    """Load a graph this tool wrote; raises CacheError if anything does not check out."""
    manifest = Manifest.read(kg_dir)
    for name, digest in manifest.files.items():
        path = kg_dir / name
        if not path.exists() or _sha256_files([path]) != digest:
            raise CacheError(f"{path} is missing or does not match its manifest checksum")
    kg = KnowledgeGraph()
    node_ids: list[str] = []
    with open(kg_dir / NODES, encoding="utf-8") as lines:
        for node_id, name, type_, source, synonyms in map(json.loads, lines):
            kg.add_node(node_id, name, type_, source, synonyms)
            node_ids.append(node_id)
    with np.load(kg_dir / FACTS) as facts:
        relations = json.loads(str(facts["relations"][0]))
        kg.add_fact_columns(
            node_ids, facts["head"].tolist(), facts["tail"].tolist(), relations, facts["relation"].tolist()
        )
    if len(kg) != manifest.nodes:
        raise CacheError(f"{kg_dir}: {len(kg)} nodes loaded, manifest says {manifest.nodes}")
    return kg, manifest


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
