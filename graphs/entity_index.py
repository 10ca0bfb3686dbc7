"""The entity index: node names and synonyms in a Chroma collection, searched by meaning.

Embeddings are computed here and handed to Chroma, never by a Chroma embedding function:
Chroma's default function downloads a model on first use, and a persisted custom function
would tie the index to this process's registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from graphs.embedding import Embedder
from graphs.store import KnowledgeGraph

COLLECTION = "entities"


@dataclass(frozen=True)
class Candidate:
    node_id: str
    name: str
    type: str
    label: str  # the name or synonym that matched
    score: float  # cosine similarity


def _client(path: Path | None, url: str | None):
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url)
        return chromadb.HttpClient(
            host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000, settings=settings
        )
    if path is None:
        return chromadb.EphemeralClient(settings=settings)
    return chromadb.PersistentClient(path=str(path), settings=settings)


class EntityIndex:
    """Nearest node labels to a text, with the node id and type of each."""

    def __init__(
        self,
        embedder: Embedder,
        path: Path | None = None,
        url: str | None = None,
        collection: str = COLLECTION,
    ) -> None:
        self.embedder = embedder
        self._client = _client(path, url)
        self._name = collection
        self._collection = self._open_collection()

    def _open_collection(self):
        return self._client.get_or_create_collection(
            self._name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def clear(self) -> None:
        """Drop every entry (through Chroma: its clients cache open files per path)."""
        self._client.delete_collection(self._name)
        self._collection = self._open_collection()

    def __len__(self) -> int:
        return self._collection.count()

    def build(self, kg: KnowledgeGraph, progress: Callable[[int, int], None] | None = None) -> None:
        """Index every name and synonym of ``kg``; ``progress(done, total)`` after each batch."""
        ids, documents, metadatas = [], [], []
        for node in kg.nodes():
            for k, label in enumerate(kg.labels(node.id)):
                ids.append(f"{node.id}#{k}")
                documents.append(label)
                metadatas.append({"node_id": node.id, "type": node.type, "name": node.name})
        batch = min(self._client.get_max_batch_size(), 4096)
        for start in range(0, len(ids), batch):
            stop = start + batch
            self._collection.upsert(
                ids=ids[start:stop],
                embeddings=self.embedder.encode(documents[start:stop]),
                documents=documents[start:stop],
                metadatas=metadatas[start:stop],
            )
            if progress:
                progress(min(stop, len(ids)), len(ids))

    def search(
        self, texts: list[str], k: int = 5, type: str | None = None
    ) -> list[list[Candidate]]:
        """The ``k`` best distinct nodes for each text, best first."""
        if not texts or not len(self):
            return [[] for _ in texts]
        result = self._collection.query(
            query_embeddings=self.embedder.encode(texts),
            n_results=min(3 * k, len(self)),
            where={"type": type} if type else None,
            include=["distances", "metadatas", "documents"],
        )
        return [
            _best_per_node(metas, docs, dists, k)
            for metas, docs, dists in zip(
                result["metadatas"], result["documents"], result["distances"]
            )
        ]


def _best_per_node(metas, docs, dists, k: int) -> list[Candidate]:
    best: dict[str, Candidate] = {}
    for meta, doc, dist in zip(metas, docs, dists):
        node_id = meta["node_id"]
        if node_id not in best:
            best[node_id] = Candidate(
                node_id, meta["name"], meta["type"], doc, max(0.0, 1.0 - float(dist))
            )
    return sorted(best.values(), key=lambda c: -c.score)[:k]
