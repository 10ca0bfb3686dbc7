"""The static encoder under the worker threads of a run: samples encode texts with tokens no
one has seen yet while other samples grow the token table."""

import sys
import threading
import time

import numpy as np
import pytest

from graphs.embedding import DEFAULT_MODEL, Embedder, StaticEncoder


class TokenVectorsByHash(Embedder):
    """The real tokenizer; each token's vector a fixed function of its id instead of a
    transformer pass, so that the table grows thousands of times a second, as it does at
    --concurrency 16 on a big graph (where the transformer's time is spread over many samples)."""

    def token_vectors(self, token_ids, batch=2048):
        return np.stack([np.random.default_rng(int(t)).standard_normal(384).astype(np.float32) for t in token_ids])


@pytest.fixture
def switch_often():
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave between any two bytecodes
    yield
    sys.setswitchinterval(before)


def test_many_threads_encoding_unseen_tokens_at_once_all_get_the_vectors_one_thread_gets(switch_often):
    embedder = TokenVectorsByHash(DEFAULT_MODEL)
    corpus = ["fever", "anemia", "malaria", "chloroquine"]
    shared, _ = StaticEncoder.distill(embedder, corpus)
    vocab = sorted(t for t in embedder.tokenizer.get_vocab() if t.isalpha() and t.isascii() and len(t) > 3)
    threads, texts_each = 16, 40
    texts = [[" ".join(vocab[i::threads][3 * n:3 * n + 3]) + " fever" for n in range(texts_each)] for i in range(threads)]
    results, errors = {}, []
    start = threading.Barrier(threads)

    def work(i):
        start.wait()
        try:
            results[i] = np.stack([shared.encode([text, "fever anemia"])[0] for text in texts[i]])
        except ValueError as exc:  # the old race: matmul: dimension mismatch
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    alone, _ = StaticEncoder.distill(embedder, corpus)
    for i in range(threads):
        np.testing.assert_allclose(results[i], np.stack([alone.encode([t])[0] for t in texts[i]]), atol=1e-5)
    assert (shared.rows >= 0).sum() == len(shared.vectors)  # every distilled token has one row, each row one token


class SlowTokenVectors(TokenVectorsByHash):
    """A transformer pass that takes a while, as it does on a loaded machine, counted."""

    def __init__(self, model):
        super().__init__(model)
        self.passes = 0

    def token_vectors(self, token_ids, batch=2048):
        self.passes += 1
        time.sleep(0.05)
        return super().token_vectors(token_ids, batch)


def test_threads_growing_the_table_at_once_share_passes_and_keep_what_was_published():
    embedder = SlowTokenVectors(DEFAULT_MODEL)
    shared, _ = StaticEncoder.distill(embedder, ["fever", "anemia"])
    before = shared.table
    first_rows = before.vectors.copy()
    embedder.passes = 0
    words = ["nitrofurantoin", "pyelonephritis", "hydrochlorothiazide", "bisphosphonate", "cholecystectomy",
             "thyroidectomy", "glomerulonephritis", "bronchiectasis"]
    start = threading.Barrier(len(words))
    results = {}

    def work(word):
        start.wait()
        results[word] = shared.encode([word])[0]

    workers = [threading.Thread(target=work, args=(w,)) for w in words]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert embedder.passes < len(words)  # the threads that came during a pass were served by the next
    alone, _ = StaticEncoder.distill(TokenVectorsByHash(DEFAULT_MODEL), ["fever", "anemia"])
    for word in words:
        np.testing.assert_allclose(results[word], alone.encode([word])[0], atol=1e-5)
    np.testing.assert_array_equal(before.vectors, first_rows)  # a published table never changes
    assert (shared.rows >= 0).sum() == len(shared.vectors)
