"""Evaluation questions found in a dataset before an LLM call is paid for them, and questions
found twice within and across datasets (docs/decontamination.md has the reasoning and figures).

A question is compared as its ``question_key`` (``agent.runs.records``: the normalised question
followed by its normalised options in sorted order, so case, spacing, punctuation, Unicode
forms and the order and letters of the options do not tell copies apart), and its answer as
normalised text. The methods, each naming itself and its score in every match:

| method | score | a match at |
| --- | --- | --- |
| ``exact`` | 1.0: the keys are equal | always |
| ``ngram-8``, ``ngram-13`` | share of the record's word n-grams that the evaluation question has | ≥ ``NGRAM_MATCH`` |
| ``fuzzy`` | rapidfuzz ``ratio`` of the two keys, 0-100 | ≥ ``FUZZY_MATCH`` (the open-thoughts / m1 convention) |
| ``embedding`` | cosine of the questions' MiniLM vectors | only listed for review |
| ``minhash`` | Jaccard of word 3-gram shingles (datasketch MinHash LSH), for duplicates only | ≥ ``DUPLICATE_JACCARD`` |

The options count with the question twice over: they are part of the key (MCQ options are
short and would slip through n-grams alone), and a pair whose texts match but whose answers
differ is not a copy but the same vignette asking something else — MedQA reuses vignettes
with another question and other options — and is listed for review instead. Pairs scoring
between the review and the match thresholds are listed for review too.

Scale: the evaluation side is indexed once (``EvalIndex``: its 8-gram hashes sorted in numpy
arrays); each record's candidates are the evaluation questions sharing enough of its
distinctive 8-grams (those in at most ``COMMON_GRAM_QUESTIONS`` evaluation questions, so
template phrasing such as "which of the following is the most likely diagnosis" finds
nothing), found for all records at once; the exact shares, the fuzzy ratio and the
embedding are computed for the few candidates only.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz

from agent.runs.records import InputError, RawRecord, is_hf_name, normalised, question_key, read_hf, read_raw
from agent.runs.runner import RunOptions, parse_jobs

NGRAM_SIZES = (8, 13)
NGRAM_MATCH = 0.5  # share of the record's n-grams
NGRAM_REVIEW = 0.2
FUZZY_MATCH = 95.0
FUZZY_REVIEW = 85.0
EMBEDDING_REVIEW = 0.9
ANSWER_AGREEMENT = 90.0  # rapidfuzz ratio at which two answer texts are the same answer
# An 8-gram in more evaluation questions than this is phrasing, not content: it finds no candidates.
COMMON_GRAM_QUESTIONS = 32
CANDIDATE_SHARE = 0.1  # of the record's 8-grams, distinctive ones shared, for a candidate
CANDIDATES_PER_RECORD = 8
RECORDS_PER_PASS = 4096  # records whose candidates are gathered at once (bounds memory)
SHINGLE_WORDS = 3
MINHASH_PERMUTATIONS = 64
DUPLICATE_JACCARD = 0.5
SPAN_CHARS = 200
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # the rolling hash of word ids, mixed by _fmix64
HASH_BITS = 40
_HASH_MASK = np.uint64((1 << HASH_BITS) - 1)
MAX_QUESTIONS = 1 << (64 - HASH_BITS)  # questions compared at once


@dataclass(frozen=True)
class Question:
    id: str
    key: str  # question_key: what copies share
    answer: str  # normalised
    text: str  # the question as written (for embeddings and examples)


@dataclass
class QuestionSet:
    """The readable questions of one file or dataset, with the ids ``run`` gives them."""

    name: str
    source: str  # the path or hf: name it was read from
    questions: list[Question]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (id, why)
    sha256: str | None = None  # of the file, for provenance

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "questions": len(self.questions), "sha256": self.sha256}


def read_set(spec: str, options: RunOptions | None = None, name: str | None = None) -> QuestionSet:
    """A file ``run`` reads (JSONL, JSON, CSV; every schema it detects, ``options.fields`` for
    others) or a Hugging Face dataset (``hf:OWNER/NAME``); raises InputError when it cannot."""
    options = options or RunOptions()
    if is_hf_name(spec):
        raws: list[RawRecord] = read_hf(spec)
        digest = None
    else:
        path = Path(spec)
        raws = read_raw(path, options.encoding)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    questions, unreadable = [], []
    for job in parse_jobs(raws, options):
        if job.record is None:
            unreadable.append((job.id, job.error or "unreadable"))
            continue
        r = job.record
        questions.append(Question(job.id, question_key(r), normalised(r.get("answer") or ""), r["question"]))
    default = spec.removeprefix("hf:") if is_hf_name(spec) else Path(spec).stem
    return QuestionSet(name or default, spec, questions, unreadable, digest)


def set_names(specs: Sequence[str]) -> list[str]:
    """Names for sets in reports: the file stem (or hf name), the whole path where two stems agree."""
    stems = [s.removeprefix("hf:") if is_hf_name(s) else Path(s).stem for s in specs]
    repeated = {s for s, n in Counter(stems).items() if n > 1}
    return [spec if stem in repeated else stem for spec, stem in zip(specs, stems)]


# -- word n-grams as numpy hashes -------------------------------------------------------------


class Vocabulary:
    """Word → integer id, shared by everything compared in one check, so equal words hash alike."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def encode(self, keys: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """All keys' word ids (from 1) concatenated, and each key's number of words."""
        keys = list(keys)
        words = " ".join(keys).split()  # keys are normalised: words joined by single spaces
        lengths = np.array([k.count(" ") + 1 if k else 0 for k in keys], dtype=np.int64)
        lookup = self.ids
        new = set(words).difference(lookup)
        lookup.update(zip(sorted(new), range(len(lookup) + 1, len(lookup) + 1 + len(new))))
        return np.fromiter(map(lookup.__getitem__, words), dtype=np.uint64, count=len(words)), lengths


@dataclass(frozen=True)
class Grams:
    """Each question's distinct word n-grams as sorted 64-bit hashes: question ``i`` has
    ``hashes[offsets[i]:offsets[i + 1]]``. A question shorter than n words has one gram, itself."""

    hashes: np.ndarray
    offsets: np.ndarray
    owners: np.ndarray  # the question of each hash

    def of(self, i: int) -> np.ndarray:
        return self.hashes[self.offsets[i]:self.offsets[i + 1]]

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finaliser: every bit of a rolling hash spread to the low bits kept."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xFF51AFD7ED558CCD)
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xC4CEB9FE1A85EC53)
        return h ^ (h >> np.uint64(33))


def word_grams(ids: np.ndarray, lengths: np.ndarray, n: int) -> Grams:
    """The n-gram hashes of every question at once (a polynomial rolling hash of word ids)."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    windows = np.maximum(lengths - n + 1, 0)
    with np.errstate(over="ignore"):
        rolled = np.zeros(max(len(ids) - n + 1, 0), dtype=np.uint64)
        for k in range(n):
            rolled = rolled * _MULTIPLIER + ids[k:k + len(rolled)]
        owners = np.repeat(np.arange(len(lengths)), windows)
        positions = np.repeat(starts - (np.cumsum(windows) - windows), windows) + np.arange(windows.sum())
        hashes = rolled[positions]
        short = np.flatnonzero((lengths > 0) & (lengths < n))
        if len(short):  # the whole question as its one gram, marked by its length
            whole = np.zeros(len(short), dtype=np.uint64)
            for j, q in enumerate(short):
                h = np.uint64(lengths[q])
                for word in ids[starts[q]:starts[q] + lengths[q]]:
                    h = h * _MULTIPLIER + word
                whole[j] = h
            hashes = np.concatenate([hashes, whole])
            owners = np.concatenate([owners, short])
    # One sort of (question, hash) packed in 64 bits: 24 bits of question, 40 of hash (a false
    # equality of two grams is a 1 in 2^40 chance, immaterial to a share of hundreds).
    if len(lengths) > MAX_QUESTIONS:
        raise InputError(f"{len(lengths):,} questions are more than one check compares ({MAX_QUESTIONS:,}); split the input")
    hashes = _fmix64(hashes)
    packed = np.sort((owners.astype(np.uint64) << np.uint64(HASH_BITS)) | (hashes & _HASH_MASK))
    packed = packed[np.concatenate([[True], packed[1:] != packed[:-1]])] if len(packed) else packed
    owners = (packed >> np.uint64(HASH_BITS)).astype(np.int64)
    hashes = packed & _HASH_MASK
    offsets = np.searchsorted(owners, np.arange(len(lengths) + 1))
    return Grams(hashes, offsets, owners)


def shared_share(record: np.ndarray, other: np.ndarray) -> float:
    """The share of ``record``'s distinct grams that ``other`` has (both sorted and distinct)."""
    if not len(record):
        return 0.0
    return len(np.intersect1d(record, other, assume_unique=True)) / len(record)


# -- the evaluation side, indexed once ----------------------------------------------------------


class Compared:
    """Questions as they are compared: their keys' word ids and n-gram hashes, computed once
    for every comparison they take part in (against evaluation sets, against each other)."""

    def __init__(self, sets: Sequence[QuestionSet], vocabulary: Vocabulary) -> None:
        self.questions = [q for s in sets for q in s.questions]
        self.set_of = [s.name for s in sets for _ in s.questions]
        self.ids, self.lengths = vocabulary.encode(q.key for q in self.questions)
        self.grams = {n: word_grams(self.ids, self.lengths, n) for n in NGRAM_SIZES}


class EvalIndex:
    """The evaluation questions, indexed once for many records: exact keys, n-gram hashes, and
    the distinctive 8-grams sorted for candidate search."""

    def __init__(self, compared: Compared) -> None:
        self.source = compared
        self.questions, self.set_of, self.grams = compared.questions, compared.set_of, compared.grams
        self.exact: dict[str, list[int]] = defaultdict(list)
        for i, q in enumerate(self.questions):
            self.exact[q.key].append(i)
        eights = self.grams[8]
        order = np.argsort(eights.hashes, kind="stable")
        hashes, owners = eights.hashes[order], eights.owners[order]
        _, counts = np.unique(hashes, return_counts=True)
        distinctive = np.repeat(counts <= COMMON_GRAM_QUESTIONS, counts)
        self.distinctive, self.distinctive_owners = hashes[distinctive], owners[distinctive]

    def candidates(self, grams: Grams, share: float = CANDIDATE_SHARE) -> list[list[int]]:
        """For each question of ``grams``, the evaluation questions sharing at least ``share``
        of its 8-grams among the distinctive ones (at least one), most shared first."""
        found: list[list[int]] = [[] for _ in range(len(grams.offsets) - 1)]
        total = len(self.questions)
        for begin in range(0, len(found), RECORDS_PER_PASS):
            end = min(begin + RECORDS_PER_PASS, len(found))
            lo_at, hi_at = grams.offsets[begin], grams.offsets[end]
            hashes, owners = grams.hashes[lo_at:hi_at], grams.owners[lo_at:hi_at]
            order = np.argsort(hashes)  # sorted queries search the index in one sweep of memory
            hashes, owners = hashes[order], owners[order]
            lo = np.searchsorted(self.distinctive, hashes, "left")
            hits = np.searchsorted(self.distinctive, hashes, "right") - lo
            at = np.repeat(lo - (np.cumsum(hits) - hits), hits) + np.arange(hits.sum())
            pairs = np.repeat(owners.astype(np.int64), hits) * total + self.distinctive_owners[at]
            pairs, shared = np.unique(pairs, return_counts=True)
            records, evals = np.divmod(pairs, total)
            needed = np.maximum(1, np.ceil(share * grams.counts()[records]))
            chosen = shared >= needed
            records, evals, shared = records[chosen], evals[chosen], shared[chosen]
            for at in np.lexsort((-shared, records)):
                if len(found[records[at]]) < CANDIDATES_PER_RECORD:
                    found[records[at]].append(int(evals[at]))
        return found


# -- comparing a record with its candidates ------------------------------------------------------


def answers_agree(a: str, b: str) -> bool:
    """Whether two normalised answers are the same answer: equal, one inside the other (a
    free-text response naming the option), or nearly equal; unknown when either is empty."""
    if not a or not b or a == b:
        return True
    if f" {a} " in f" {b} " or f" {b} " in f" {a} ":
        return True
    return fuzz.ratio(a, b) >= ANSWER_AGREEMENT


def longest_shared_run(record: str, other: str, n: int = 8) -> str:
    """The longest run of the record's words covered by n-grams the other has (the span shown
    with a match); the shorter text whole when it has fewer than n words."""
    words, theirs = record.split(), other.split()
    if len(words) < n or len(theirs) < n:
        return record[:SPAN_CHARS] if record in other else ""
    have = {tuple(theirs[i:i + n]) for i in range(len(theirs) - n + 1)}
    best, start, previous = (0, 0), 0, -2
    for i in range(len(words) - n + 1):
        if tuple(words[i:i + n]) in have:  # consecutive shared grams are one run of shared text
            start = start if i == previous + 1 else i
            previous = i
            if i + n - start > best[1] - best[0]:
                best = (start, i + n)
    return " ".join(words[best[0]:best[1]])[:SPAN_CHARS]


@dataclass
class Scores:
    exact: bool
    shares: dict[int, float]
    ratio: float
    agree: bool

    def methods(self) -> list[tuple[str, float]]:
        """The methods whose match threshold the pair reaches, with their scores."""
        found = [("exact", 1.0)] if self.exact else []
        found += [(f"ngram-{n}", round(s, 3)) for n, s in self.shares.items() if s >= NGRAM_MATCH]
        if self.ratio >= FUZZY_MATCH:
            found.append(("fuzzy", round(self.ratio, 1)))
        return found

    def review(self) -> list[tuple[str, float]]:
        """Below the match thresholds, the methods that still reach their review threshold."""
        found = [(f"ngram-{n}", round(s, 3)) for n, s in self.shares.items() if NGRAM_REVIEW <= s < NGRAM_MATCH]
        if FUZZY_REVIEW <= self.ratio < FUZZY_MATCH:
            found.append(("fuzzy", round(self.ratio, 1)))
        return found


def score(record: Question, other: Question, record_grams: dict[int, np.ndarray], other_grams: dict[int, np.ndarray]) -> Scores:
    return Scores(
        exact=record.key == other.key,
        shares={n: shared_share(record_grams[n], other_grams[n]) for n in NGRAM_SIZES},
        ratio=fuzz.ratio(record.key, other.key, score_cutoff=FUZZY_REVIEW),
        agree=answers_agree(record.answer, other.answer),
    )


@dataclass
class Finding:
    """What one record is found to share with evaluation questions and with other records."""

    matches: list[dict] = field(default_factory=list)
    review: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)


def _match(eval_set: str, other: Question, method: str, value: float, span: str, **more) -> dict:
    return {"eval": eval_set, "eval_id": other.id, "method": method, "score": value, "span": span, **more}


def find_overlap(compared: Compared, index: EvalIndex, embedder=None) -> list[Finding]:
    """Each record's matches and pairs for review against the indexed evaluation questions;
    with an ``embedder`` (graphs.embedding.Embedder), the candidates not matched are also
    compared by question embedding and listed for review at ≥ ``EMBEDDING_REVIEW``."""
    records, grams = compared.questions, compared.grams
    themselves = index.source is compared  # the inputs against themselves (duplicates): a record is not its own copy
    candidates = index.candidates(grams[8])
    findings = [Finding() for _ in records]
    unmatched: list[tuple[int, int]] = []
    for r, record in enumerate(records):
        pool = list(dict.fromkeys([*index.exact.get(record.key, []), *candidates[r]]))
        mine = {n: grams[n].of(r) for n in NGRAM_SIZES}
        for e in pool:
            if themselves and e == r:
                continue
            other = index.questions[e]
            scores = score(record, other, mine, {n: index.grams[n].of(e) for n in NGRAM_SIZES})
            matched, review = scores.methods(), scores.review()
            span = longest_shared_run(record.key, other.key) if (matched or review) and not themselves else ""
            if matched and scores.agree:
                findings[r].matches += [_match(index.set_of[e], other, m, v, span) for m, v in matched]
            elif matched:
                findings[r].review += [_match(index.set_of[e], other, m, v, span, answers_differ=True) for m, v in matched]
            else:
                findings[r].review += [_match(index.set_of[e], other, m, v, span) for m, v in review]
                unmatched.append((r, e))
    if embedder is not None and unmatched:
        _embedding_review(records, index, unmatched, embedder, findings)
    return findings


def _embedding_review(records, index: EvalIndex, pairs: list[tuple[int, int]], embedder, findings: list[Finding]) -> None:
    texts = list(dict.fromkeys([records[r].text for r, _ in pairs] + [index.questions[e].text for _, e in pairs]))
    vectors = dict(zip(texts, embedder.encode(texts)))
    for r, e in pairs:
        other = index.questions[e]
        similarity = float(np.dot(vectors[records[r].text], vectors[other.text]))
        if similarity >= EMBEDDING_REVIEW:
            findings[r].review.append(_match(index.set_of[e], other, "embedding", round(similarity, 3), ""))


# -- duplicates within and across the inputs -----------------------------------------------------


def find_duplicates(compared: Compared) -> list[list[dict]]:
    """For each of the ``compared`` questions, the others that are the same question, answers
    agreeing: the same key (``exact``); what ``find_overlap`` would match were one of the pair
    an evaluation question (``ngram-8``, ``ngram-13``, ``fuzzy``: an edited copy, a question
    inside a longer one); or word 3-gram shingles whose Jaccard similarity datasketch's MinHash
    LSH estimates at ≥ ``DUPLICATE_JACCARD`` (``minhash``: a copy reworded throughout). Each
    pair is listed on both sides, by the first method that finds it."""
    from datasketch import MinHash, MinHashLSH

    questions = list(zip(compared.set_of, compared.questions))
    pairs: dict[tuple[int, int], tuple[str, float]] = {}

    def add(i: int, j: int, method: str, value: float) -> None:
        if i != j and (i, j) not in pairs:
            pairs[i, j] = pairs[j, i] = (method, value)

    by_key: dict[str, list[int]] = defaultdict(list)
    for i, (_, q) in enumerate(questions):
        by_key[q.key].append(i)
    for group in by_key.values():
        for i in group:
            for j in group:
                add(i, j, "exact", 1.0)
    at = {(name, q.id): i for i, (name, q) in enumerate(questions)}
    for i, finding in enumerate(find_overlap(compared, EvalIndex(compared))):  # the inputs as their own evaluation side
        for match in finding.matches:
            add(i, at[match["eval"], match["eval_id"]], match["method"], match["score"])
    shingles = word_grams(compared.ids, compared.lengths, SHINGLE_WORDS)
    signatures = MinHash.bulk((shingles.of(i).tolist() for i in range(len(questions))),
                              num_perm=MINHASH_PERMUTATIONS, hashfunc=int, scheme="affine64")
    lsh = MinHashLSH(threshold=DUPLICATE_JACCARD, num_perm=MINHASH_PERMUTATIONS)
    with lsh.insertion_session() as session:
        for i, signature in enumerate(signatures):
            session.insert(i, signature, check_duplication=False)
    for i, signature in enumerate(signatures):
        for j in lsh.query(signature):
            if j != i and (i, j) not in pairs:
                similarity = signature.jaccard(signatures[j])
                if similarity >= DUPLICATE_JACCARD and answers_agree(questions[i][1].answer, questions[j][1].answer):
                    add(i, j, "minhash", round(similarity, 3))
    found: list[list[dict]] = [[] for _ in questions]
    for (i, j), (method, value) in pairs.items():
        name, other = questions[j]
        found[i].append({"file": name, "id": other.id, "method": method, "score": value})
    for entries in found:
        entries.sort(key=lambda d: (d["method"] != "exact", d["file"], d["id"]))
    return found


# -- the whole check, as ``decontaminate`` and ``run --exclude-overlap`` make it -------------------

THRESHOLDS = {"ngram_match": NGRAM_MATCH, "ngram_review": NGRAM_REVIEW, "fuzzy_match": FUZZY_MATCH,
              "fuzzy_review": FUZZY_REVIEW, "embedding_review": EMBEDDING_REVIEW,
              "duplicate_jaccard": DUPLICATE_JACCARD, "answers_must_agree": True}


@dataclass
class Check:
    """Every input record's findings and the counts the printed report and provenance give."""

    inputs: list[QuestionSet]
    evals: list[QuestionSet]
    findings: list[Finding]  # one per question of the inputs, in order
    embeddings: bool = False

    def rows(self) -> Iterable[dict]:
        """The report: one line per input record, unreadable ones with their error."""
        at = 0
        for s in self.inputs:
            for q in s.questions:
                f = self.findings[at]
                at += 1
                yield {"id": q.id, **({"file": s.name} if len(self.inputs) > 1 else {}), "matches": f.matches,
                       "review": f.review, "duplicates": f.duplicates}
            for record_id, error in s.unreadable:
                yield {"id": record_id, **({"file": s.name} if len(self.inputs) > 1 else {}), "error": error,
                       "matches": [], "review": [], "duplicates": []}

    def summary(self, examples: int = 3) -> dict:
        ids = [q.id for s in self.inputs for q in s.questions]
        by_set: dict[str, dict] = {e.name: {"records": 0, "methods": Counter(), "examples": []} for e in self.evals}
        for record_id, f in zip(ids, self.findings):
            for name in dict.fromkeys(m["eval"] for m in f.matches):
                entry = by_set[name]
                entry["records"] += 1
                mine = [m for m in f.matches if m["eval"] == name]
                entry["methods"].update(list(dict.fromkeys(m["method"] for m in mine)))
                if len(entry["examples"]) < examples:
                    best = mine[0]
                    entry["examples"].append({"id": record_id, **{k: best[k] for k in ("eval_id", "method", "score", "span")}})
        duplicates = Counter(d["method"] for f in self.findings for d in f.duplicates[:1])
        return {
            "records": len(ids) + sum(len(s.unreadable) for s in self.inputs),
            "unreadable": sum(len(s.unreadable) for s in self.inputs),
            "inputs": [s.describe() for s in self.inputs],
            "against": [e.describe() for e in self.evals],
            "matched": sum(1 for f in self.findings if f.matches),
            "by_eval": {name: {"records": v["records"], "methods": dict(v["methods"].most_common()), "examples": v["examples"]}
                        for name, v in by_set.items()},
            "for_review": sum(1 for f in self.findings if f.review and not f.matches),
            "duplicates": {"records": sum(1 for f in self.findings if f.duplicates), "by_method": dict(duplicates)},
            "methods": {"ngram_sizes": list(NGRAM_SIZES), "embeddings": self.embeddings, **THRESHOLDS},
        }


def check(inputs: Sequence[QuestionSet], evals: Sequence[QuestionSet], embedder=None, duplicates: bool = True) -> Check:
    """``inputs`` against ``evals``, and, with ``duplicates``, against each other and themselves."""
    vocabulary = Vocabulary()
    compared = Compared(inputs, vocabulary)
    findings = find_overlap(compared, EvalIndex(Compared(evals, vocabulary)), embedder)
    if duplicates:
        for f, dups in zip(findings, find_duplicates(compared)):
            f.duplicates = dups
    return Check(list(inputs), list(evals), findings, embedder is not None)


def read_sets(specs: Sequence[str], options: RunOptions | None = None) -> list[QuestionSet]:
    """Each of ``specs`` read (``read_set``), named apart (``set_names``)."""
    if not specs:
        raise InputError("nothing to check: name at least one file or hf: dataset")
    return [read_set(spec, options, name) for spec, name in zip(specs, set_names(specs))]


# -- run --exclude-overlap -----------------------------------------------------------------------


def exclusion_reason(matches: list[dict]) -> str:
    best = matches[0]
    return f"overlaps {best['eval']} {best['eval_id']} ({best['method']} {best['score']})"


def excluded_rows(jobs, evals: Sequence[QuestionSet]) -> tuple[dict[str, dict], dict]:
    """For ``run --exclude-overlap``: the rows (status ``excluded``, the match as ``reason``)
    of the ``jobs`` whose record matches an evaluation question, by job id, and what was
    checked against what (for summary.json, the dataset card and each item's provenance)."""
    from agent.runs.results import result_row

    readable = [j for j in jobs if j.record is not None]
    records = [Question(j.id, question_key(j.record), normalised(j.record.get("answer") or ""), j.record["question"])
               for j in readable]
    vocabulary = Vocabulary()
    findings = find_overlap(Compared([QuestionSet("input", "input", records)], vocabulary), EvalIndex(Compared(evals, vocabulary)))
    rows = {}
    for job, finding in zip(readable, findings):
        if finding.matches:
            row = result_row(job.id, "", {"record": job.record})
            rows[job.id] = {**row, "status": "excluded", "reason": exclusion_reason(finding.matches),
                            "overlap": finding.matches}
    info = {"against": [e.describe() for e in evals], "methods": {"ngram_sizes": list(NGRAM_SIZES), **THRESHOLDS}}
    return rows, info


def repeated_questions(rows: Sequence[dict]) -> list[str]:
    """For ``merge``: the result rows (with ``question``, ``options``, ``answer``) that repeat an
    earlier row's question, exactly or nearly (``find_duplicates``), each as "id = earlier id (method)"."""
    readable = [r for r in rows if r.get("question")]
    questions = [Question(r["id"], question_key(r), normalised(r.get("answer") or ""), r["question"]) for r in readable]
    first = {q.id: n for n, q in enumerate(questions)}
    said = []
    for n, (q, found) in enumerate(zip(questions, find_duplicates(Compared([QuestionSet("rows", "rows", questions)], Vocabulary())))):
        earlier = [d for d in found if first[d["id"]] < n]
        if earlier:
            said.append(f"{q.id} = {earlier[0]['id']} ({earlier[0]['method']})")
    return said
