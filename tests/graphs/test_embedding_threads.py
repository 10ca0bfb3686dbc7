"""Encoding from many threads at once, as a dataset run's samples map their mentions: the
static encoder learns new tokens while other threads read it, and concurrent callers share
the transformer's passes (graphs.embedding._Coalescer). Each caller must get what it gets alone, bit for bit."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Words of exam questions that the fixture graph's names do not use: tokens new to its encoder.
WORDS = ("nitrofurantoin pyelonephritis hydrochlorothiazide bisphosphonate cholecystectomy "
         "thyroidectomy glomerulonephritis bronchiectasis hepatosplenomegaly oligohydramnios "
         "polyhydramnios craniopharyngioma pheochromocytoma rhabdomyolysis sarcoidosis "
         "spondylolisthesis tenosynovitis xanthelasma zygomycosis keratoacanthoma").split()


def test_many_threads_encoding_at_once_get_what_each_gets_alone(loaded):
    texts = [f"{a} with {b}" for a, b in zip(WORDS, WORDS[7:] + WORDS[:7])]
    encoder, embedder = loaded.index.encoder, loaded.index.embedder
    with ThreadPoolExecutor(len(texts)) as pool:
        static = list(pool.map(lambda t: encoder.encode([t])[0], texts))
        transformer = list(pool.map(lambda t: embedder.encode([t])[0], texts))
    assert np.allclose(static, [encoder.encode([t])[0] for t in texts], atol=1e-6)
    alone = [embedder._encode([t])[0] for t in texts]  # one uncached pass per text
    assert np.array_equal(transformer, alone)
