"""The names' static vectors, kept on disk, and an exact nearest-name search that reads little.

A name's static vector is ``u = (Σ_t w_t v_t / W − c) / ‖·‖`` (graphs.embedding.StaticEncoder:
weights ``w``, distilled token vectors ``v``, their total ``W``, the centre ``c``). So a query
``q``'s cosine with every name factors through the few thousand token vectors::

    q·u_i = Σ_t a_it (q·v_t) − b_i (q·c),   a_it = w_t / (W_i n_i),  b_i = 1 / n_i

One small product scores the query against the token vectors (HPO: 8,115 × 384 floats, 12 MB,
against 57,550 × 384 floats, 88 MB, for the names), and a sparse names × tokens matrix of the
``a_it`` gives every name's score. Those fast scores pick the names scored again exactly, in
float64, from the stored float32 vectors, which decide the answer (see :meth:`NameVectors.nearest`
for why this gives exactly the names a float64 scoring of every vector would).

On disk, beside the encoder (``KG_DIR/index/``): ``vectors.npy`` (the float32 vectors, read
with mmap: a search reads the rows it re-scores, opening reads none) and ``names.npz`` (the
factored matrix, ``b`` and each name's rounding bound). Both are written at build, so opening
an index never encodes the names again (5.4 s of CPU for HPO's names).
"""

from __future__ import annotations

import zipfile
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from graphs.atomic import atomic_file

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

    from graphs.embedding import StaticEncoder

VECTORS = "vectors.npy"
FACTORS = "names.npz"
# Names taken from the fast scores beyond those wanted, then scored again in float64 (widened
# further by the fast scores' error bound, see NameVectors.nearest).
RESCORED = 16
_CHUNK = 8192  # names pooled at once when the factors are made (float64: 25 MB a chunk)
_EPS32, _EPS64 = 2.0**-24, 2.0**-53  # unit roundoff


class IndexFileError(RuntimeError):
    """The entity index files are missing, truncated or do not fit the graph."""


def _gamma(unit: float, terms: int) -> float:
    """γ_n = n·u / (1 − n·u): the relative error bound of an n-term dot product in any order."""
    return terms * unit / (1 - terms * unit)


class NameVectors:
    """Every name's static vector (one row an entry) and the factored form that scores them all
    against a query through the encoder's token vectors."""

    def __init__(self, vectors: np.ndarray, factors: csr_matrix, offsets: np.ndarray, deviations: np.ndarray,
                 encoder: StaticEncoder) -> None:
        """``factors``: names × token rows, the ``a_it``; ``offsets``: the ``b_i`` (both float32:
        the sparse product reads half as much); ``deviations``: ‖u_i − û_i‖, the stored float32
        vector's distance from the factored one (roundings), computed in float64 at build; ``encoder``: whose token vectors (its
        first ``factors.shape[1]`` rows, which never change) and centre the factors use."""
        self.vectors, self.factors, self.offsets, self.deviations = vectors, factors, offsets, deviations
        self.encoder = encoder

    def __len__(self) -> int:
        return len(self.vectors)

    # -- made at build, kept on disk -----------------------------------------------------
    @classmethod
    def of(cls, encoder: StaticEncoder, labels: list[str], vectors: np.ndarray) -> NameVectors:
        """The factors of ``labels`` from the encoder's public pieces (token ids, rows, weights,
        token vectors, centre); ``vectors``: what the encoder gave the labels."""
        from scipy.sparse import csr_matrix

        tokenized = encoder.token_ids(labels)
        lengths = np.array([len(ids) for ids in tokenized], dtype=np.int64)
        flat = np.concatenate(tokenized) if tokenized else np.zeros(0, np.int64)
        columns = encoder.rows[flat]
        if (columns < 0).any():
            raise ValueError("the encoder lacks token vectors of tokens the names use")
        weights = encoder.weights[flat].astype(np.float64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        totals = np.add.reduceat(weights, indptr[:-1]) if len(weights) else np.zeros(len(labels))
        totals[lengths == 0] = 0.0
        tokens = len(encoder.vectors)
        shares = csr_matrix((weights / np.repeat(np.where(totals > 0, totals, 1.0), lengths), columns, indptr),
                            shape=(len(labels), tokens))
        shares.sum_duplicates()  # a token twice in a name: one entry, its weight twice
        token_vectors = np.asarray(encoder.vectors, dtype=np.float64)
        centre = np.asarray(encoder.centre, dtype=np.float64)
        norms = np.zeros(len(labels))
        for start in range(0, len(labels), _CHUNK):
            norms[start : start + _CHUNK] = np.linalg.norm(shares[start : start + _CHUNK] @ token_vectors - centre, axis=1)
        usable = (totals > 0) & (norms > 0)  # else the encoder's vector is 0, and so its score
        offsets = np.zeros(len(labels), dtype=np.float32)
        offsets[usable] = 1.0 / norms[usable]
        factors = csr_matrix(shares.multiply(offsets.astype(np.float64)[:, None]), dtype=np.float32)
        factors.sort_indices()
        deviations = np.zeros(len(labels))  # from the factors as stored (float32), so their rounding counts
        for start in range(0, len(labels), _CHUNK):
            stop = min(start + _CHUNK, len(labels))
            factored = factors[start:stop].astype(np.float64) @ token_vectors - np.outer(offsets[start:stop], centre)
            deviations[start:stop] = np.linalg.norm(np.asarray(vectors[start:stop], np.float64) - factored, axis=1)
        return cls(vectors, factors, offsets, deviations, encoder)

    def save(self, directory: Path) -> None:
        with atomic_file(directory / VECTORS, "wb") as out:
            np.save(out, np.asarray(self.vectors, dtype=np.float32))
        with atomic_file(directory / FACTORS, "wb") as out:
            np.savez(out, indptr=self.factors.indptr, columns=self.factors.indices, factors=self.factors.data,
                     tokens=np.int64(self.factors.shape[1]), offsets=self.offsets, deviations=self.deviations)

    @classmethod
    def load(cls, directory: Path, encoder: StaticEncoder, entries: int) -> NameVectors:
        """The files of ``entries`` names made by ``encoder``'s build; IndexFileError, saying
        which file and what is wrong, when one is missing, truncated or does not fit."""
        from scipy.sparse import csr_matrix

        for name in (VECTORS, FACTORS):
            if not (directory / name).is_file():
                raise IndexFileError(f"the entity index in {directory} lacks {name} (built by an older version, "
                                     "or its build did not finish)")
        dimension = encoder.vectors.shape[1]
        try:
            vectors = np.load(directory / VECTORS, mmap_mode="r")
            with np.load(directory / FACTORS) as saved:
                indptr, columns, data = saved["indptr"], saved["columns"], saved["factors"]
                tokens, offsets, deviations = int(saved["tokens"]), saved["offsets"], saved["deviations"]
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise IndexFileError(f"the entity index in {directory} is truncated or corrupt ({exc})") from exc
        problems = []
        if vectors.dtype != np.float32 or vectors.shape != (entries, dimension):
            problems.append(f"{VECTORS} holds {vectors.shape} {vectors.dtype}, not ({entries}, {dimension}) float32")
        if data.dtype != np.float32 or offsets.dtype != np.float32:
            problems.append(f"{FACTORS} holds {data.dtype} factors, not float32")
        if not (len(indptr) == entries + 1 and len(offsets) == entries == len(deviations) and indptr[0] == 0
                and indptr[-1] == len(columns) == len(data) and (np.diff(indptr) >= 0).all()
                and tokens <= len(encoder.vectors) and (len(columns) == 0 or 0 <= columns.min() <= columns.max() < tokens)):
            problems.append(f"{FACTORS} does not describe {entries} names over the encoder's {len(encoder.vectors)} tokens")
        if problems:
            raise IndexFileError(f"the entity index in {directory} does not fit the graph: {'; '.join(problems)}")
        factors = csr_matrix((data, columns, indptr), shape=(entries, tokens))
        return cls(vectors, factors, offsets, deviations, encoder)

    # -- searching ----------------------------------------------------------------------
    @cached_property
    def _bounds(self) -> np.ndarray:
        """Per name, the bound E_i with |fast score − float64 score| ≤ ‖q‖·E_i (see nearest)."""
        tokens = self.factors.shape[1]
        token_norms = np.linalg.norm(np.asarray(self.encoder.vectors[:tokens], dtype=np.float64), axis=1)
        reach = abs(self.factors).astype(np.float64) @ token_norms  # M_i = Σ_t |a_it| ‖v_t‖
        magnitude = reach + np.abs(self.offsets.astype(np.float64)) * float(np.linalg.norm(
            np.asarray(self.encoder.centre, dtype=np.float64)))  # M_i + b_i‖c‖
        dimension = self.vectors.shape[1]
        terms = np.diff(self.factors.indptr)  # k_i
        float64_terms = 4 * _gamma(_EPS64, int(terms.max(initial=0)) + dimension + 2) * (magnitude + 2)
        return _gamma(_EPS32, terms + dimension + 3) * magnitude + self.deviations * (1 + 2.0**-40) + float64_terms

    def fast_scores(self, queries: np.ndarray) -> np.ndarray:
        """(queries, names): every name's cosine with each query through the token vectors,
        within ‖q‖·E_i of its float64 score (see nearest); each query's scores contiguous, as
        the selection reads them (a strided column cost more than the sparse product)."""
        tokens, queries = self.factors.shape[1], queries.astype(np.float32)
        with _one_blas_thread():
            token_scores = np.asarray(self.encoder.vectors[:tokens], dtype=np.float32) @ queries.T
            centre = queries @ np.asarray(self.encoder.centre, dtype=np.float32)
        scores = np.ascontiguousarray((self.factors @ token_scores).T)
        for row, shift in zip(scores, centre):
            row -= self.offsets * shift
        return scores

    def nearest(self, queries: np.ndarray, n: int, entries: np.ndarray | None = None) -> list[list[tuple[int, float]]]:
        """(entry, cosine) of the ``n`` names nearest each query (among ``entries``, all when
        None), best first, equal cosines in entry order. The cosine is the float64 dot product
        of the query with the stored float32 vector, and the answer is exactly the best ``n``
        of every name by that cosine, whatever else was asked at once and on any machine:

        The fast score f_i differs from the float64 score s_i by at most ε_i = ‖q‖·E_i, a
        bound that holds for any summation order (so for any BLAS). Higham's bounds, with
        γ_n = nu/(1−nu) and γ_a + γ_b + γ_a·γ_b ≤ γ_(a+b): in float32 (u = 2^-24), the token
        products p_t = q·v_t (d = 384 terms) are within γ_d‖v_t‖‖q‖, the sparse sum
        Σ_t a_it p_t (k_i terms) within γ_(k_i) of Σ|a_it||p_t|, q·c within γ_d‖c‖‖q‖, and the
        last product and difference add γ_3; together within γ32_(d+k_i+3)·(M_i + b_i‖c‖)·‖q‖
        of q·û_i, with M_i = Σ_t |a_it|‖v_t‖ and û_i = Σ_t a_it v_t − b_i c the factored vector
        (from the stored a, b). The stored vector is ‖u_i − û_i‖ = D_i from it (roundings at
        build, measured in float64 then): ‖q‖·D_i more. Every float64 step (the re-scoring's
        own sum, the build's measure of D_i) is within γ64_(k+d+2) of its terms, bounded by
        4·γ64·(M_i + b_i‖c‖ + 2)·‖q‖ (‖u_i‖ ≤ 1 + 2^-20). The best
        ``n + RESCORED`` by f have s_i ≥ τ = min(f_i − ε_i) among them; a name with
        f_j + ε_j < τ has s_j < τ, below ``n + RESCORED`` others, so it is not in the best
        ``n``. Every name with f_j + ε_j ≥ τ − 2^-40 (the comparisons' own float64 rounding,
        below 1e-15 at these magnitudes) is scored again in float64: the wanted names are
        always among them. (On HPO E_i is at most 2.8e-4 and the actual error about 3e-7; the
        lookups measured re-scored no name beyond the n + 16.)
        """
        if entries is not None and not len(entries):
            return [[] for _ in queries]
        fast = self.fast_scores(queries)
        bounds = self._bounds
        if entries is not None:
            fast, bounds = fast[:, entries], bounds[entries]
        names = fast.shape[1]
        take = min(n + RESCORED, names)
        widest = float(bounds.max(initial=0.0))
        out = []
        for query, scores in zip(queries.astype(np.float64), fast):
            if not take:
                out.append([])
                continue
            scale = float(np.linalg.norm(query)) * (1 + 2.0**-40)
            best = np.argpartition(scores, names - take)[names - take :] if take < names else np.arange(names)
            floor = (scores[best] - bounds[best] * scale).min() - 2.0**-40  # less the comparisons' own rounding
            near = np.flatnonzero(scores >= floor - 2 * widest * scale)  # a cheap pass over every name, then
            chosen = near[scores[near] + bounds[near] * scale >= floor]  # each one's own bound
            if entries is not None:
                chosen = entries[chosen]
            rows = np.asarray(self.vectors[chosen], dtype=np.float64)
            exact = (rows * query).sum(axis=1)
            order = np.lexsort((chosen, -exact))[:n]
            out.append([(int(chosen[i]), float(exact[i])) for i in order])
        return out


@contextmanager
def _one_blas_thread():
    """One BLAS thread for a search's product: a few queries against the token vectors take a
    few milliseconds, and a second thread would spin on the other core, which the samples
    running beside this one need."""
    with _blas().limit(limits=1, user_api="blas"):
        yield


@lru_cache(maxsize=1)
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
