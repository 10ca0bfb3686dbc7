"""The entity index: every node name and synonym as a vector, stored in a Chroma collection
and searched exactly in the process.

Built in one pass, as the data flows: the graph's names (``labels_of``), their static vectors
(graphs.embedding.StaticEncoder, distilled from the names), the store. Chroma is the store, in
one of two places reached by the same code: embedded (chromadb's ``PersistentClient`` in
``KG_DIR/index/chroma``), or a Chroma server (``--chroma-url``) that many machines and other
tools share. Beside it, in ``KG_DIR/index/``: ``encoder.npz``, the static token encoder that
made the vectors and encodes queries, and the names' vectors in the form the search reads
(graphs.name_vectors: ``vectors.npy``, read with mmap, and ``names.npz``), so opening an index
reads files and never encodes the names again.

A query first takes the labels that equal it once normalised (score 1.0: no vector query is
needed to know them), then the nearest labels by the static vectors, of which the transformer
ranks the ``RERANK`` nearest. The nearest are found exactly (every name scored through the
token vectors, the best re-scored in float64 with a proven margin; ties go to the earlier
name: graphs.name_vectors), not by Chroma's HNSW index: an HNSW graph depends on the order
and threads of its insertions, so two builds of the same graph disagreed on 20% of the
12-nearest lists and gave different rows for 6 of 200 MedQA records; exact search gives every
build on every machine the same answer (see docs/architecture.md). Filtering by node type is
a mask over the same scores.

Opening a KG never writes to it (it may sit on read-only storage), but chromadb writes to its
catalogue (``chroma.sqlite3``) whenever it opens one. So an embedded index is opened from a
private copy of the catalogue in a temporary directory, its vector segments linked read-only
from the KG directory. The collection is named by the graph's nodes and the embedding model
(``collection_name``) and records both, with its size, in its metadata; the KG manifest
records the name. A collection that does not match is refused with what to do, never used.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from graphs.embedding import Embedder, StaticEncoder
from graphs.name_vectors import IndexFileError, NameVectors
from graphs.recent import Recent
from graphs.store import KnowledgeGraph

ENCODER = "encoder.npz"
EMBEDDED = "chroma"  # the embedded Chroma store, under KG_DIR/index/
CATALOGUE = "chroma.sqlite3"
# Static neighbours the transformer ranks, the candidates of a text that names no node: 8, not
# 12, costs a quarter less CPU per sample with the same recall@1 on PrimeKG's names (altered 0.73,
# typed 0.855 against 0.845) and 4 other top mappings in 160 MedQA samples (docs/benchmarks.md).
RERANK = 8
WRITE_BATCH = 4096


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


def collection_name(nodes_sha256: str, model: str) -> str:
    """One collection per graph and embedding model, so graphs share a Chroma server safely."""
    return f"kg-{nodes_sha256[:16]}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


class ChromaStore:
    """Where the collection lives: an embedded store in a directory, or a Chroma server."""

    def __init__(self, directory: Path, url: str | None = None) -> None:
        self.directory, self.url = directory / EMBEDDED, url
        self._private: tempfile.TemporaryDirectory | None = None  # the catalogue copy, kept while open

    def __str__(self) -> str:
        return f"the Chroma server at {self.url}" if self.url else f"the embedded Chroma store in {self.directory}"

    def client(self, new: bool):
        """A chromadb client: of the server, or, embedded, of a new store (``new``: being
        built) or of a private copy of the built store's catalogue (see the module doc). A
        server that cannot be reached is an error saying so, never a quiet switch to the
        local store."""
        import chromadb
        from chromadb.config import Settings
        from chromadb.errors import ChromaError

        settings = Settings(anonymized_telemetry=False)
        if self.url:
            parsed = urlparse(self.url)
            try:
                client = chromadb.HttpClient(host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000,
                                             ssl=parsed.scheme == "https", settings=settings)
                client.heartbeat()
            except (ValueError, ConnectionError, OSError) as exc:
                raise IndexStoreError(f"cannot reach the Chroma server at {self.url} ({exc}); start it (chroma run "
                                      "--host 127.0.0.1 --port PORT --path DIR) or leave out --chroma-url") from None
            return client
        if new:
            self.directory.mkdir(parents=True)
            return chromadb.PersistentClient(path=str(self.directory), settings=settings)
        if not (self.directory / CATALOGUE).is_file():
            raise IndexFileError(f"the entity index is missing ({EMBEDDED}/{CATALOGUE})")
        self._private = tempfile.TemporaryDirectory(prefix="medreason-chroma-")
        private = Path(self._private.name)
        for part in self.directory.iterdir():
            if part.name.startswith(CATALOGUE):  # the catalogue and any -wal: copied, chromadb writes them
                shutil.copy2(part, private / part.name)
            else:  # the vector segments: read, never written, by queries
                (private / part.name).symlink_to(part.resolve())
        try:
            return chromadb.PersistentClient(path=str(private), settings=settings)
        except ChromaError as exc:  # a damaged catalogue
            raise IndexFileError(f"the entity index in {self.directory} is truncated or corrupt ({exc})") from exc


class IndexStoreError(RuntimeError):
    """The Chroma store cannot be used as it is (unreachable, or a collection that does not
    fit the graph); the message says why and what to do."""


class EntityIndex:
    """Nearest node labels to a text, with the node id and type of each."""

    # Lookups kept, most recently used first: a dataset run looks the same answers and
    # findings up sample after sample ("Metformin", "Fever"), and a text that names no node
    # costs a static encoding and a search each time (its transformer vectors are cached by
    # the embedder).
    RESULTS_KEPT = 20_000

    def __init__(self, kg: KnowledgeGraph, names: tuple[list[str], list[str]], encoder: StaticEncoder,
                 name_vectors: NameVectors, collection, store: ChromaStore) -> None:
        """``names``: (node id, label) of every entry (``labels_of``); ``name_vectors``: their
        static vectors, searched here; ``collection``: where ``store`` holds the same vectors."""
        self.kg, self.encoder, self.collection, self.store = kg, encoder, collection, store
        self.embedder = encoder.embedder
        self.node_ids, self.labels = names
        self.name_vectors = name_vectors
        self._results: Recent[tuple[str, int, str | None], list[Candidate]] = Recent(self.RESULTS_KEPT)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def vectors(self) -> np.ndarray:
        """The static vector of every entry, one row each (read from disk as needed)."""
        return self.name_vectors.vectors

    # -- building and opening -----------------------------------------------------------
    @classmethod
    def build(
        cls, kg: KnowledgeGraph, embedder: Embedder, directory: Path, name: str, url: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> EntityIndex:
        """Graph, names, vectors, store: the labels of ``kg`` encoded with static token vectors
        distilled from them, the encoder and the vectors written into ``directory``, the
        vectors also into collection ``name`` (embedded, or at ``url``)."""
        names = labels_of(kg)
        encoder, vectors = StaticEncoder.distill(embedder, names[1])
        name_vectors = NameVectors.of(encoder, names[1], vectors)
        shutil.rmtree(directory, ignore_errors=True)  # also an older format's files
        directory.mkdir(parents=True)
        store = ChromaStore(directory, url)
        client = store.client(new=True)
        collection = _write(client, name, embedder.model_name, vectors, progress or (lambda done, total: None))
        if not url:  # embedded: its files complete, and no handle left on them should they be rebuilt
            client.close()
            collection = None
        encoder.save(directory / ENCODER)
        name_vectors.save(directory)
        return cls(kg, names, encoder, name_vectors, collection, store)

    @classmethod
    def open(
        cls, kg: KnowledgeGraph, embedder: Embedder, directory: Path, name: str, entries: int, url: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> EntityIndex:
        """Open the index (never writing to ``directory``). Raises IndexFileError when the
        local files are missing or do not fit (a rebuild mends them), IndexStoreError when the
        Chroma store cannot be used. A server that lacks the collection is given it
        (``progress`` counts the labels written)."""
        encoder = _load_encoder(embedder, directory)
        names = labels_of(kg)
        name_vectors = NameVectors.load(directory, encoder, len(names[1]))
        from chromadb.errors import NotFoundError

        store = ChromaStore(directory, url)
        client = store.client(new=False)
        if url and _unwritten(client, name):
            collection = _write(client, name, embedder.model_name, name_vectors.vectors, progress or (lambda d, t: None))
        else:
            try:
                collection = client.get_collection(name)
            except NotFoundError as exc:
                raise IndexFileError(f"the entity index in {store.directory} has no collection {name}") from exc
        _check(collection, store, embedder.model_name, entries)
        return cls(kg, names, encoder, name_vectors, collection, store)

    # -- searching ----------------------------------------------------------------------
    def search(self, texts: list[str], k: int = 5, type: str | None = None) -> list[list[Candidate]]:
        """The ``k`` best distinct nodes for each text, best first: normalised exact
        matches (most connected first), then the nearest labels by meaning. For a text that
        matches no label exactly, the static vectors preselect ``RERANK`` labels and the
        transformer ranks and scores them (static vectors alone miss paraphrases such as
        "high temperature" → Fever); they are its candidates, so it gets fewer than ``k`` when
        several are one node's names, never a static score among the transformer's (the two
        differ in scale). Its vectors are cached across queries. The neighbours
        that follow an exact match keep their static scores: running the transformer there
        cost 13 encodes per lookup (200 ms on a loaded 2-core machine) for alternatives only.
        Texts that need vectors are searched in one product, and their candidates sent to
        the transformer in one call. A text looked up before (with the same ``k`` and ``type``)
        gets the candidates it got then.
        """
        keys = [(text, k, type) for text in texts]
        known = self._results.found(keys)
        missing = list(dict.fromkeys(text for text, key in zip(texts, keys) if key not in known))
        if missing:
            found = dict(zip(((text, k, type) for text in missing), self._search(missing, k, type)))
            known.update(found)
            self._results.keep(found)
        return [list(known[key]) for key in keys]

    def _search(self, texts: list[str], k: int, type: str | None) -> list[list[Candidate]]:
        found = [{c.node_id: c for c in self._exact(text, type)} for text in texts]
        wanted = [i for i, best in enumerate(found) if len(best) < k]
        if not wanted or not len(self):
            return [list(best.values())[:k] for best in found]
        queries = self.encoder.encode([texts[i] for i in wanted])
        nearest = dict(zip(wanted, self.nearest(queries, max(2 * k, RERANK), type)))
        # Meaning decides the top result of a text with no exact match: the transformer ranks
        # the nearest labels of all such texts in one call (one pass, or a few by length,
        # instead of one per text).
        ranks = [i for i in wanted if not found[i] and nearest[i] and RERANK]  # RERANK 0: the static vectors alone
        reranked = dict(zip(ranks, self._rerank([(texts[i], [e for e, _ in nearest[i][:RERANK]]) for i in ranks])))
        for i in wanted:
            best = found[i]
            entries = [e for e, _ in nearest[i]]
            scores = np.array([s for _, s in nearest[i]], dtype=np.float32)
            if i in reranked:  # the RERANK nearest, as the transformer ranks and scores them
                order = np.argsort(-reranked[i], kind="stable")
                entries, scores = [entries[j] for j in order], reranked[i][order]
            for entry, score in zip(entries, scores.tolist()):
                node_id = self.node_ids[entry]
                if node_id not in best:
                    node = self.kg.node(node_id)
                    best[node_id] = Candidate(node_id, node.name, node.type, self.labels[entry], max(0.0, score))
        return [list(best.values())[:k] for best in found]

    def _rerank(self, wanted: list[tuple[str, list[int]]]) -> list[np.ndarray]:
        """The transformer's cosine of each text with each of its labels (by entry), in order,
        every text and label encoded in one call."""
        texts = [[text] + [self.labels[e] for e in entries] for text, entries in wanted]
        unique = list(dict.fromkeys(t for group in texts for t in group))
        position = {t: i for i, t in enumerate(unique)}
        if not unique:
            return []
        vectors = self.embedder.encode(unique).astype(np.float64)  # products exact, sums to 1e-16
        scores = []
        for group in texts:
            rows = vectors[[position[t] for t in group]]
            scores.append((rows[1:] * rows[0]).sum(axis=1))
        return scores

    def _exact(self, text: str, type: str | None) -> list[Candidate]:
        ids = sorted(self.kg.nodes_named(text), key=lambda n: -self.kg.degree(n))
        nodes = [self.kg.node(n) for n in ids]
        return [Candidate(n.id, n.name, n.type, text, 1.0) for n in nodes if type is None or n.type == type]

    def nearest(self, queries: np.ndarray, n: int, type: str | None = None) -> list[list[tuple[int, float]]]:
        """(label entry, cosine) of the ``n`` labels nearest each query (of ``type``), best
        first, equal cosines in entry order, exactly (NameVectors.nearest): the same whatever
        else was asked at once and on any machine."""
        entries = self._entries_of_type.get(type, np.zeros(0, np.int64)) if type is not None else None
        return self.name_vectors.nearest(queries, n, entries)

    @cached_property
    def _entries_of_type(self) -> dict[str, np.ndarray]:
        types = np.array([self.kg.node(node_id).type for node_id in self.node_ids], dtype=object)
        return {t: np.flatnonzero(types == t) for t in dict.fromkeys(types.tolist())}


def _load_encoder(embedder: Embedder, directory: Path) -> StaticEncoder:
    try:
        with np.load(directory / ENCODER) as saved:
            return StaticEncoder(embedder, saved["rows"], saved["token_vectors"], saved["weights"], saved["centre"])
    except FileNotFoundError as exc:
        raise IndexFileError(f"the entity index is missing ({Path(exc.filename).name})") from exc
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise IndexFileError(f"the entity index in {directory} is truncated or corrupt ({exc})") from exc


def _write(client, name: str, model: str, vectors: np.ndarray, report: Callable[[int, int], None]):
    """Collection ``name`` made anew with ``vectors`` (ids: label entry numbers), marked
    complete last, so an interrupted write is never taken for an index. (``add`` to a new
    collection: ``upsert`` looks every id up first.)"""
    if name in {c.name for c in client.list_collections()}:
        client.delete_collection(name)
    collection = client.create_collection(name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                                          metadata={"embedding_model": model, "entries": -1})
    batch = min(client.get_max_batch_size(), WRITE_BATCH)
    for start in range(0, len(vectors), batch):
        stop = min(start + batch, len(vectors))
        collection.add(ids=[str(e) for e in range(start, stop)], embeddings=vectors[start:stop])
        report(stop, len(vectors))
    collection.modify(metadata={"embedding_model": model, "entries": len(vectors)})
    return collection


def _unwritten(client, name: str) -> bool:
    """The server lacks the collection, or holds one whose write never finished (its process
    died): write it anew, as a build would."""
    if name not in {c.name for c in client.list_collections()}:
        return True
    return (client.get_collection(name).metadata or {}).get("entries", -1) < 0


def _check(collection, store: ChromaStore, model: str, entries: int) -> None:
    """Refuse a collection that does not fit the graph: another embedding model, another size,
    or a write that never finished."""
    meta = collection.metadata or {}
    if meta.get("embedding_model") != model or meta.get("entries") != entries or collection.count() != entries:
        problem = (f"collection {collection.name} in {store} holds {collection.count()} labels embedded with "
                   f"{meta.get('embedding_model')!r} (complete: {meta.get('entries', -1) >= 0}), the graph {entries} "
                   f"labels with {model!r}")
        if store.url:
            raise IndexStoreError(f"{problem}; delete that collection on the server, or rebuild the graph "
                                  f"(kg build ... --chroma-url {store.url})")
        raise IndexFileError(problem)
