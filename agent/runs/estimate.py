"""What a whole input will cost, projected from a pilot run of some of its records.

A sample's cost is skewed: one rejected at once (its question or answer names no graph node)
takes a call or two, one that retries takes many. A pilot of the first records, or of records
drawn at random, misses that skew one time in ten. So every record is first profiled with what
is known before any call (``Profile``): its prompt length, and what the free KG side finds in it
by name (how many graph nodes the question names, whether the answer names one). Records are
put in strata by that profile, the pilot is drawn across the strata (proportionally, then
where the spread is largest, as Neyman allocation says), and each measure is projected as a
stratified total: the pilot's own samples as they are, each stratum's rest at the stratum's
mean, with a 90% range from the strata's spread (Student's t, finite-population corrected).

By default the pilot grows in batches until the token range is within ``TARGET`` (±15%) of
the point or the pilot reaches its cap; ``--pilot N`` fixes its size. The pilot is a real run
in RUN_DIR, with the fingerprint of the whole input, so ``run INPUT --out RUN_DIR --resume``
goes on from it and pays for no sample twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.runs.cost import CHARS_PER_TOKEN, Price, Tokens

TARGET = 0.15  # the default pilot grows until the tokens' 90% range is within ±15% of the point
CONFIDENCE = 0.90  # what the ranges are meant to hold ...
QUANTILE_LEVEL = 0.975  # ... and the t quantile that does (see stratified_total)
FIRST_BATCH = 30  # the first pilot batch (fewer when the input is smaller)
GROWTH = 20  # records added per batch while the range is too wide
CAP_SHARE = 0.4  # the default pilot stops at 40% of the input ...
CAP_MIN, CAP_MAX = 30, 400  # ... but at least 30 records and at most 400
SHRINK = 2.0  # weight (in records) of the pooled spread in a stratum's own, for small strata
MEASURES = ("llm_calls", "input_tokens", "output_tokens", "tokens", "cost_usd", "seconds", "accepted")


@dataclass(frozen=True)
class Profile:
    """What is known of a record before any LLM call."""

    id: str
    prompt_tokens: int  # question and options (CHARS_PER_TOKEN characters a token)
    question_nodes: int  # graph nodes the question names (the KG-only extractor's dictionary match)
    # How the answer maps to a node on the free KG side: "exact" (a name or synonym), "close"
    # (its nearest node scores at least ``accept_score``), "weak" (at least ``min_score``: an LLM
    # would be asked to choose) or "none": a sample whose answer maps to no node is rejected at
    # once and costs a call or two, the others several.
    answer_match: str
    parsed: bool = True  # False: a malformed record, which costs nothing

    @property
    def stratum(self) -> tuple:
        if not self.parsed:
            return ("malformed",)
        return (self.answer_match, self.question_nodes > 0)


def profiles(ctx, jobs: list) -> list[Profile]:
    """Every job's profile, from its text and the graph (``ctx``: an AgentContext): names by
    dictionary, the answers by one batched entity-index query (no LLM call)."""
    from agent.reasoning.mentions import exact_or_nearest, find_mentions

    parsed = [j for j in jobs if j.record is not None]
    answers = [str(j.record.get("answer") or "") for j in parsed]
    nearest = exact_or_nearest(ctx.kg, ctx.index, answers, 1) if answers else []
    matched = {}
    for job, answer, hits in zip(parsed, answers, nearest):
        score = hits[0].score if hits else 0.0
        matched[job.id] = ("exact" if ctx.kg.nodes_named(answer) else "close" if score >= ctx.settings.accept_score
                           else "weak" if score >= ctx.settings.min_score else "none")
    found = []
    for job in jobs:
        record = job.record
        if record is None:
            found.append(Profile(job.id, 0, 0, "none", parsed=False))
            continue
        text = record["question"] + " ".join(str(v) for v in (record.get("options") or {}).values())
        found.append(Profile(job.id, len(text) // CHARS_PER_TOKEN, len(find_mentions(ctx.kg, record["question"])),
                             matched[job.id]))
    return found


def strata(profiles: list[Profile]) -> dict[tuple, list[Profile]]:
    """Records grouped by profile (``Profile.stratum``)."""
    groups: dict[tuple, list[Profile]] = defaultdict(list)
    for p in profiles:
        groups[p.stratum].append(p)
    return dict(groups)


def default_cap(records: int) -> int:
    return min(records, max(CAP_MIN, min(CAP_MAX, math.ceil(CAP_SHARE * records))))


# -- choosing the pilot ---------------------------------------------------------------------------
def choose(profiles: list[Profile], size: int, taken: Iterable[str], spread: dict[tuple, float] | None = None,
           seed: str = "") -> list[str]:
    """``size`` more records for the pilot, drawn across the strata: in proportion to each
    stratum's size, or with ``spread`` (a stratum's standard deviation of tokens) in proportion
    to size × spread (Neyman allocation), each stratum's share rounded by largest remainders;
    every stratum with room gets at least one record while there are records to give. Within
    a stratum the draw is random, seeded by ``seed`` and the record ids (reproducible)."""
    taken = set(taken)
    groups = strata(profiles)
    room = {k: [p.id for p in g if p.id not in taken] for k, g in groups.items()}
    size = min(size, sum(map(len, room.values())))
    if size <= 0:
        return []
    weight = {k: len(g) * (spread.get(k, 0.0) if spread else 1.0) for k, g in groups.items() if room[k]}
    if not any(weight.values()):
        weight = {k: float(len(groups[k])) for k in weight}
    want = _allocate(weight, {k: len(room[k]) for k in weight}, size)
    chosen = []
    for key in sorted(want, key=repr):
        ids = sorted(room[key])
        random.Random(hashlib.sha256(f"{seed}|{key}".encode()).digest()).shuffle(ids)
        chosen += ids[:want[key]]
    return chosen


def _allocate(weight: dict[tuple, float], room: dict[tuple, int], size: int) -> dict[tuple, int]:
    """``size`` split over the keys in proportion to ``weight``, none above its ``room``, every
    key with weight getting one first when ``size`` allows (largest remainders after that)."""
    want = {k: 0 for k in weight}
    for k in sorted(weight, key=lambda k: -weight[k]):
        if size > sum(want.values()) and weight[k] > 0:
            want[k] = 1
    while sum(want.values()) < size:
        open_keys = [k for k in weight if want[k] < room[k]]
        total = sum(weight[k] for k in open_keys) or len(open_keys)
        left = size - sum(want.values())
        shares = {k: (weight[k] or 1.0) / total * left for k in open_keys}
        added = False
        for k in sorted(open_keys, key=lambda k: -(shares[k] % 1 if shares[k] < 1 else shares[k])):
            step = min(room[k] - want[k], max(1, int(shares[k])), size - sum(want.values()))
            if step > 0:
                want[k] += step
                added = True
            if sum(want.values()) >= size:
                break
        if not added:
            break
    return want


# -- projecting --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    point: float
    low: float
    high: float

    @property
    def relative_half_width(self) -> float:
        return (self.high - self.low) / 2 / self.point if self.point else 0.0

    def rounded(self, digits: int = 0) -> dict[str, float]:
        shown = (lambda v: round(v, digits)) if digits else round
        return {"point": shown(self.point), "low": shown(self.low), "high": shown(self.high)}


def measures(row: dict, price: Price) -> dict[str, float | None]:
    """What a finished row says of each measure but time (which rows do not hold)."""
    usage = row.get("usage") or {}
    inp, out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    return {"llm_calls": usage.get("llm_calls", 0), "input_tokens": inp, "output_tokens": out,
            "tokens": inp + out, "cost_usd": price.cost(inp, out),
            "accepted": 1.0 if row.get("status") == "accepted" else 0.0}


def stratified_total(groups: dict[tuple, list[Profile]], observed: dict[str, float]) -> Range:
    """The total over every record of a measure ``observed`` for some of them: each stratum's
    observed values as they are, its other records at its mean (a stratum with nothing
    observed: the mean of all observed), with its range from the strata's spread and Student's
    t on the pilot's degrees of freedom.

    The quantile is Student's at ``QUANTILE_LEVEL`` (97.5%) for what is called a 90% range: a
    pilot that has not yet met a stratum's rare costly samples has a low mean and a low spread
    together, and a pilot that stops growing once its range looks tight stops more often on
    such a draw. Replayed on 200 inputs of 200 MedQA records (fake server), the default pilot's
    range held the full run 187 times at a nominal 95% quantile, 194 at 97.5% (with the cap at
    40% of the input instead of 35%); a resampled (bootstrap-t) range did worse than Student's.
    """
    from scipy.stats import t as student

    cells = []  # (records not observed, observed values) per stratum
    for group in groups.values():
        seen = [observed[p.id] for p in group if p.id in observed]
        cells.append((len(group) - len(seen), np.asarray(seen, dtype=float)))
    if not any(len(seen) for _, seen in cells):
        return Range(0.0, 0.0, 0.0)
    known = float(sum(seen.sum() for _, seen in cells))
    rest, variance = _total([r for r, _ in cells], [seen[None, :] for _, seen in cells])
    point = known + float(rest[0])
    # Within the strata; a pilot of one record per stratum has none there, and its spread is
    # then all records' spread (``_total``'s pooled fallback) on their degrees of freedom.
    observed_count = sum(len(seen) for _, seen in cells)
    dof = sum(max(len(seen) - 1, 0) for _, seen in cells) or observed_count - 1
    if point == known:  # every record observed
        return Range(point, point, point)
    if not dof:  # one record seen: no spread to go by
        return Range(point, known, math.inf)
    half = float(student.ppf(0.5 + QUANTILE_LEVEL / 2, dof)) * math.sqrt(float(variance[0]))
    return Range(point, max(point - half, known), point + half)


def _total(rests: list[int], samples: list) -> tuple:
    """For each row of the stratum ``samples`` (arrays of shape (draws, n_h)): the projected
    total of the records not observed and its variance (design-based, N_h (N_h - n_h) s_h² / n_h
    = (N_h - n_h)² s_h² / n_h + (N_h - n_h) s_h², with s_h² shrunk towards the pooled spread)."""
    draws = max(s.shape[0] for s in samples)
    counts = [s.shape[1] for s in samples]
    means = [s.mean(axis=1) if n else np.zeros(draws) for s, n in zip(samples, counts)]
    own = [s.var(axis=1, ddof=1) if n > 1 else np.zeros(draws) for s, n in zip(samples, counts)]
    dof = sum(max(n - 1, 0) for n in counts)
    everything = np.concatenate([s for s, n in zip(samples, counts) if n], axis=1)
    pooled = (sum(v * max(n - 1, 0) for v, n in zip(own, counts)) / dof if dof
              else everything.var(axis=1, ddof=1) if everything.shape[1] > 1 else np.zeros(draws))
    overall = everything.mean(axis=1)
    total, variance = np.zeros(draws), np.zeros(draws)
    for rest, n, mean, var in zip(rests, counts, means, own):
        if not rest:
            continue
        if not n:
            total += rest * overall
            variance += pooled * (rest ** 2 / everything.shape[1] + rest)
            continue
        spread = ((n - 1) * var + SHRINK * pooled) / (n - 1 + SHRINK)
        total += rest * mean
        variance += spread * (rest ** 2 / n + rest)
    return total, variance


@dataclass
class Projection:
    """The whole input's projected measures, each with its 90% range."""

    records: int
    pilot: int
    concurrency: int
    price: Price
    totals: dict[str, Range | None]
    startup_s: float = 0.0  # what a run takes before its first sample starts (model, graph, checkpoints)
    rest_seconds: float | None = None  # the summed seconds of the samples not run yet

    @property
    def tokens(self) -> Range:
        return self.totals["tokens"]

    def as_json(self) -> dict[str, Any]:
        """The flat JSON object ``estimate --json`` prints (and estimate.json records); a range
        without an upper end (a pilot of one record) has ``null`` there."""
        t = self.totals
        wall = t.get("seconds")
        accepted = t["accepted"]
        cost = t.get("cost_usd")
        per_accepted = None
        if cost is not None and accepted.point > 0:
            per_accepted = cost.point / accepted.point
        out = {
            "records": self.records, "pilot": self.pilot, "concurrency": self.concurrency,
            "llm_calls": _shown(t["llm_calls"].point), "llm_calls_low": _shown(t["llm_calls"].low),
            "llm_calls_high": _shown(t["llm_calls"].high),
            "input_tokens": _shown(t["input_tokens"].point), "input_tokens_low": _shown(t["input_tokens"].low),
            "input_tokens_high": _shown(t["input_tokens"].high),
            "output_tokens": _shown(t["output_tokens"].point), "output_tokens_low": _shown(t["output_tokens"].low),
            "output_tokens_high": _shown(t["output_tokens"].high),
            "tokens": _shown(t["tokens"].point), "tokens_low": _shown(t["tokens"].low),
            "tokens_high": _shown(t["tokens"].high),
            "tokens_range_pct": _shown(100 * t["tokens"].relative_half_width, 1),
            "wall_time_s": _shown(self._wall(wall.point), 1) if wall else None,
            "wall_time_s_low": _shown(self._wall(wall.low), 1) if wall else None,
            "wall_time_s_high": _shown(self._wall(wall.high), 1) if wall else None,
            # what `run --resume` will take for the records the pilot left
            "remaining_wall_time_s": _shown(self._wall(self.rest_seconds), 1) if self.rest_seconds is not None else None,
            "accepted_share": _shown(accepted.point / self.records, 4) if self.records else 0.0,
            "accepted_share_low": _shown(accepted.low / self.records, 4) if self.records else 0.0,
            "accepted_share_high": _shown(min(accepted.high / self.records, 1.0), 4) if self.records else 0.0,
            "cost_usd": _shown(cost.point, 6) if cost else None,
            "cost_usd_low": _shown(cost.low, 6) if cost else None,
            "cost_usd_high": _shown(cost.high, 6) if cost else None,
            "cost_per_accepted_usd": _shown(per_accepted, 6) if per_accepted is not None else None,
            "cost_per_accepted_usd_low": _shown(cost.low / min(accepted.high, self.records), 6) if cost and accepted.high else None,
            "cost_per_accepted_usd_high": (_shown(cost.high / accepted.low, 6) if accepted.low else None) if cost else None,
            "price": self.price.as_dict(),
        }
        return out

    def _wall(self, busy_seconds: float) -> float:
        """Wall time of the whole input as one run: its start, then the samples' summed seconds
        (each measured at the run's concurrency, so waiting on the others included) spread over
        the slots."""
        return self.startup_s + busy_seconds / max(self.concurrency, 1)


def _shown(value: float | None, digits: int | None = None) -> float | int | None:
    """A figure for JSON: rounded, and None for an unbounded end (JSON has no infinity)."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else round(value)


def project(profiles: list[Profile], rows: dict[str, dict], durations: dict[str, float], price: Price,
            concurrency: int) -> Projection:
    """The whole input's measures from the rows finished so far (``rows`` by id) and the pilot
    samples' wall times (``durations``, seconds by id, for the samples run in this process)."""
    groups = strata(profiles)
    totals: dict[str, Range | None] = {}
    for name in MEASURES:
        if name == "seconds":
            observed = {i: s for i, s in durations.items() if i in rows}
        else:
            observed = {i: measures(r, price)[name] for i, r in rows.items()}
            if name == "cost_usd" and not price.known:
                totals[name] = None
                continue
        totals[name] = stratified_total(groups, observed) if observed else None
    timed = {i: s for i, s in durations.items() if i in rows}
    rest_seconds = None
    if timed:  # the records without a row yet, each at its stratum's mean time (else the pilot's)
        overall = statistics.fmean(timed.values())
        rest_seconds = 0.0
        for group in groups.values():
            seen = [timed[p.id] for p in group if p.id in timed]
            rest_seconds += sum(1 for p in group if p.id not in rows) * (statistics.fmean(seen) if seen else overall)
    return Projection(len(profiles), len(rows), concurrency, price, totals, rest_seconds=rest_seconds)


def spreads(profiles: list[Profile], rows: dict[str, dict]) -> dict[tuple, float]:
    """Each stratum's standard deviation of tokens among its rows (the pooled one where it has
    fewer than two), for Neyman allocation."""
    groups = strata(profiles)
    values = {k: [Tokens.of(rows[p.id].get("usage")).total for p in g if p.id in rows]
              for k, g in groups.items()}
    pooled = [v for vs in values.values() for v in vs]
    fallback = statistics.pstdev(pooled) if len(pooled) > 1 else 1.0
    return {k: (statistics.stdev(vs) if len(vs) > 1 else fallback) or fallback * 0.1 for k, vs in values.items()}


def rest_of_run(per_sample: list[float], rest: int) -> Range | None:
    """What ``rest`` more samples will take, from what the finished ones took (their mean,
    with the same t range as a one-stratum pilot): the projection a running run shows. A run
    goes through its input in order, so this is no stratified pilot: a guide, not an estimate."""
    if not per_sample:
        return None
    seen = np.asarray(per_sample, dtype=float)[None, :]
    total, variance = _total([rest], [seen])
    point = float(total[0])
    if seen.shape[1] < 2 or not rest:
        return Range(point, point, point)
    from scipy.stats import t as student

    half = float(student.ppf(0.5 + QUANTILE_LEVEL / 2, seen.shape[1] - 1)) * math.sqrt(float(variance[0]))
    return Range(point, max(point - half, 0.0), point + half)


# -- the pilot run ------------------------------------------------------------------------------
ESTIMATE = "estimate.json"


async def run_pilot(plan, run_dir: Path, settings, options, meter, size: int | None = None,
                    on_batch: Callable[[Projection], None] = lambda projection: None) -> Projection:
    """Run the pilot in RUN_DIR, batch by batch, and return the whole input's projection.

    ``plan``: the whole input's (``runner.prepare``, RUN_DIR claimed, ``runner.identify`` done,
    so the pilot's rows carry the whole input's fingerprint); ``meter``: the run's
    ``cost.Meter``, which also times each sample. Rows already in RUN_DIR (an earlier pilot or
    a part-finished run) count as pilot samples and are never run again. ``size``: a fixed
    pilot; None grows it until the tokens' range is within ``TARGET`` or ``default_cap``."""
    from dataclasses import replace

    from agent.reasoning import resources
    from agent.runs.results import RESULTS, read_rows
    from agent.runs.runner import execute

    found = profiles(resources.load(settings), plan.jobs)
    by_id = {j.id: j for j in plan.jobs}
    seed = (plan.fingerprint or {}).get("input", {}).get("sha256", "")
    cap = min(size, len(found)) if size is not None else default_cap(len(found))

    def finished() -> dict[str, dict]:
        path = run_dir / RESULTS
        return {r["id"]: r for r in read_rows(path) if r["id"] in by_id} if path.exists() else {}

    rows = finished()
    batch = choose(found, (cap if size is not None else min(FIRST_BATCH, cap)) - len(rows), rows, seed=seed)
    projection = project(found, rows, meter.durations, meter.price, _slots(options))
    startup = 0.0
    while batch:
        plan.pending = [by_id[i] for i in batch]
        opened = time.monotonic()
        await execute(plan, run_dir, settings, options)
        if not startup and meter.first_start:  # opening the model, graph and checkpoints: once a run
            startup = meter.first_start - opened
        options = replace(options, resume=True)  # the next batch's summary adds up with this one's
        rows = finished()
        projection = project(found, rows, meter.durations, meter.price, _slots(options))
        projection.startup_s = startup
        on_batch(projection)
        if meter.reached or len(rows) >= cap or (size is None and projection.tokens.relative_half_width <= TARGET):
            break
        batch = choose(found, min(GROWTH, cap - len(rows)), rows, spreads(found, rows), seed=seed)
    return projection


def _slots(options) -> int:
    """Samples in flight at once: per actor with Ray (``--actors``, else one per CPU, unknown here: 1)."""
    return options.concurrency * (options.actors or 1 if options.executor == "ray" else 1)


def write_estimate(run_dir: Path, projection: Projection, extra: dict) -> Path:
    from graphs.atomic import write_text

    path = run_dir / ESTIMATE
    write_text(path, json.dumps({**projection.as_json(), **extra}, indent=2) + "\n")
    return path
