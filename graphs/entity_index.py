"""The entity index: every node name and synonym as a vector, searched by meaning.

The index lives in the KG directory as two files written at build time and only read
afterwards (a KG directory may sit on read-only storage):

    index/vectors.npy   one unit vector per label (float32), grouped by cluster
    index/encoder.npz   the static token encoder (graphs.embedding.StaticEncoder) and
                        the clusters: centroids, where each cluster's rows start, and
                        which label each row is

A query first takes the labels that equal it once normalised (score 1.0: no vector is
needed to know them), then the nearest labels by cosine in the clusters whose centroids
are closest to it (an inverted-file search: 16 of ~√N clusters, about 5% of the rows at
PrimeKG scale). The matrix is memory-mapped, so opening costs one read of the pages used.

Chroma was the store until its writes alone (about 90 s for HPO's 59k labels on two
cores) cost more than the whole first-run budget; with ``--chroma-url`` the vectors are
also published to that Chroma server, as collection ``kg-<hash of the nodes>``, for
clients that query Chroma directly.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from graphs.embedding import Embedder, StaticEncoder
from graphs.store import KnowledgeGraph

VECTORS = "vectors.npy"
ENCODER = "encoder.npz"
PROBES = 16  # clusters searched per query
RERANK = 12  # static neighbours the transformer ranks (10 and 30 gave the same recall@1)
MIN_CLUSTERED = 4096  # below this many labels one cluster (an exact scan) is fastest


class IndexFileError(RuntimeError):
    """The entity index files are missing, truncated or do not fit the graph."""


@dataclass(frozen=True)
class Candidate:
    node_id: str
    name: str
    type: str
    label: str  # the name or synonym that matched
    score: float  # cosine similarity (1.0 for a normalised exact match)


def labels_of(kg: KnowledgeGraph) -> tuple[list[str], list[str]]:
    """(node id, label) of every name and synonym, in the graph's order."""
    node_ids, labels = [], []
    for node_id in kg.graph:
        for label in kg.labels(node_id):
            node_ids.append(node_id)
            labels.append(label)
    return node_ids, labels


class EntityIndex:
    """Nearest node labels to a text, with the node id and type of each."""

    def __init__(
        self,
        kg: KnowledgeGraph,
        embedder: Embedder,
        encoder: StaticEncoder,
        vectors: np.ndarray,
        clusters: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> None:
        self.kg, self.embedder, self.encoder, self.vectors = kg, embedder, encoder, vectors
        self.centroids, self.starts, self.label_of_row = clusters
        self.node_ids, self.labels = labels_of(kg)
        self._rows_of_type: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.vectors)

    # -- building and opening -----------------------------------------------------------
    @classmethod
    def build(
        cls, kg: KnowledgeGraph, embedder: Embedder, directory: Path,
        progress: Callable[[int, int], None] | None = None,
    ) -> EntityIndex:
        """Encode every label of ``kg`` and write the index files into ``directory``."""
        report = progress or (lambda done, total: None)
        _, labels = labels_of(kg)
        report(0, len(labels))
        encoder, vectors = StaticEncoder.distill(embedder, labels)
        centroids, starts, order = _clusters(vectors)
        vectors = np.ascontiguousarray(vectors[order])
        shutil.rmtree(directory, ignore_errors=True)  # also an older format's Chroma files
        directory.mkdir(parents=True)
        with open(directory / ENCODER, "wb") as out:
            np.savez(out, rows=encoder.rows, token_vectors=encoder.vectors, weights=encoder.weights, centre=encoder.centre,
                     centroids=centroids, starts=starts, label_of_row=order)
        np.save(directory / VECTORS, vectors)
        report(len(labels), len(labels))
        return cls(kg, embedder, encoder, vectors, (centroids, starts, order))

    @classmethod
    def open(cls, kg: KnowledgeGraph, embedder: Embedder, directory: Path, entries: int) -> EntityIndex:
        """Read the index files (never writing); raises IndexFileError when they do not fit."""
        try:
            with np.load(directory / ENCODER) as saved:
                encoder = StaticEncoder(embedder, saved["rows"], saved["token_vectors"], saved["weights"], saved["centre"])
                clusters = (saved["centroids"], saved["starts"], saved["label_of_row"])
            vectors = np.load(directory / VECTORS, mmap_mode="r")
        except FileNotFoundError as exc:
            raise IndexFileError(f"the entity index is missing ({Path(exc.filename).name})") from exc
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise IndexFileError(f"the entity index in {directory} is truncated or corrupt ({exc})") from exc
        if vectors.ndim != 2 or len(vectors) != entries or len(clusters[2]) != entries:
            raise IndexFileError(
                f"the entity index in {directory} holds {len(vectors)} labels, the graph {entries}"
            )
        return cls(kg, embedder, encoder, vectors, clusters)

    # -- searching ----------------------------------------------------------------------
    def search(self, texts: list[str], k: int = 5, type: str | None = None) -> list[list[Candidate]]:
        """The ``k`` best distinct nodes for each text, best first: normalised exact
        matches (most connected first), then the nearest labels by meaning. For a text that
        matches no label exactly, the static encoder preselects ``RERANK`` labels and the
        transformer ranks and scores them (static vectors alone miss paraphrases such as
        "high temperature" → Fever); its vectors are cached across queries. The neighbours
        that follow an exact match keep their static scores: running the transformer there
        cost 13 encodes per lookup (200 ms on a loaded 2-core machine) for alternatives only.
        """
        if not texts:
            return []
        queries = self.encoder.encode(texts) if len(self) else None
        results = []
        for i, text in enumerate(texts):
            best = {c.node_id: c for c in self._exact(text, type)}
            if queries is not None and len(best) < k:
                rows, scores = self._nearest(queries[i], max(2 * k, RERANK), type)
                entries = [int(e) for e in self.label_of_row[rows]]
                if not best:  # meaning decides the top result: the transformer ranks
                    scores = self._rerank(text, entries)
                    entries = [entries[j] for j in np.argsort(-scores, kind="stable")]
                    scores = np.sort(scores)[::-1]
                for entry, score in zip(entries, scores.tolist()):
                    node_id = self.node_ids[entry]
                    if node_id not in best:
                        node = self.kg.node(node_id)
                        best[node_id] = Candidate(node_id, node.name, node.type, self.labels[entry], max(0.0, score))
            results.append(list(best.values())[:k])
        return results

    def _rerank(self, text: str, entries: list[int]) -> np.ndarray:
        vectors = self.embedder.encode([text] + [self.labels[e] for e in entries])
        return vectors[1:] @ vectors[0]

    def _exact(self, text: str, type: str | None) -> list[Candidate]:
        ids = sorted(self.kg.nodes_named(text), key=lambda n: -self.kg.degree(n))
        nodes = [self.kg.node(n) for n in ids]
        return [Candidate(n.id, n.name, n.type, text, 1.0) for n in nodes if type is None or n.type == type]

    def _nearest(self, query: np.ndarray, n: int, type: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the ``n`` labels nearest ``query``, best first."""
        if type is not None:
            rows = self._rows_of(type)
            scores = self.vectors[rows] @ query
        elif len(self.centroids) > 1:
            # cluster by cluster, on views: gathering the rows first copies megabytes per query
            spans = [(self.starts[c], self.starts[c + 1]) for c in np.argsort(-(self.centroids @ query))[:PROBES]]
            rows = np.concatenate([np.arange(start, stop) for start, stop in spans])
            scores = np.concatenate([self.vectors[start:stop] @ query for start, stop in spans])
        else:
            rows, scores = None, self.vectors @ query
        top = np.argpartition(-scores, n)[:n] if len(scores) > n else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return (top if rows is None else rows[top]), scores[top]

    def _rows_of(self, type: str) -> np.ndarray:
        rows = self._rows_of_type.get(type)
        if rows is None:
            types = np.array([self.kg.node(self.node_ids[e]).type == type for e in self.label_of_row.tolist()])
            rows = self._rows_of_type[type] = np.flatnonzero(types)
        return rows


def _clusters(vectors: np.ndarray, iterations: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spherical k-means into about √N clusters: (centroids, row starts, row order)."""
    count = len(vectors)
    k = int(np.sqrt(count)) if count >= MIN_CLUSTERED else 1
    if k == 1:
        return np.zeros((1, vectors.shape[1]), np.float32), np.array([0, count]), np.arange(count)
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(count, min(count, 50 * k), replace=False)]
    centroids = sample[rng.choice(len(sample), k, replace=False)].copy()
    for _ in range(iterations):
        assigned = np.argmax(sample @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assigned, sample)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centroids)
    assigned = np.concatenate(
        [np.argmax(vectors[s : s + 16384] @ centroids.T, axis=1) for s in range(0, count, 16384)]
    )
    order = np.argsort(assigned, kind="stable")
    starts = np.searchsorted(assigned[order], np.arange(k + 1))
    return centroids.astype(np.float32), starts, order


def publish_to_chroma(index: EntityIndex, url: str, collection: str) -> None:
    """Copy the index into a Chroma server (``--chroma-url``), replacing that collection."""
    import chromadb
    from chromadb.config import Settings

    parsed = urlparse(url)
    client = chromadb.HttpClient(host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000,
                                 settings=Settings(anonymized_telemetry=False))
    if collection in {c.name for c in client.list_collections()}:
        client.delete_collection(collection)
    target = client.create_collection(collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
    batch = min(client.get_max_batch_size(), 4096)
    for start in range(0, len(index), batch):
        rows = range(start, min(start + batch, len(index)))
        entries = [int(index.label_of_row[r]) for r in rows]
        target.upsert(
            ids=[f"{index.node_ids[e]}#{e}" for e in entries],
            embeddings=np.asarray(index.vectors[start : rows.stop]),
            documents=[index.labels[e] for e in entries],
            metadatas=[{"node_id": index.node_ids[e], "type": index.kg.node(index.node_ids[e]).type,
                        "name": index.kg.name(index.node_ids[e])} for e in entries],
        )
