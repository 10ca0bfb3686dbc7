"""How well ``estimate`` projects a run, and how closely a budget holds, against the strict fake
OpenAI server (tests/fake_llm.py: think blocks, repairs, answers of varying length, rambling
into ``max_tokens`` now and then) on the HPO graph.

Inputs: 10 inputs of 200 MedQA test records each (../shared/data/medqa), drawn (seeds 0-9)
from lines 1-400 and 601-1273 (401-600 are held out for another review). The fake answers
every request from the request alone, so a record costs the same whatever run it is in: every
distinct record is run once ("the full runs"), and an input's full-run tokens are its records'
sum. That is checked on input 0 by running it whole as a user would: ``estimate`` then
``run --resume`` in one RUN_DIR (which also shows that the pilot is paid once).

Measured:
- the default pilot (grown to ±15% or its cap) on each input, through the same functions as
  ``estimate`` (a real pilot run per input): the full run's tokens inside the 90% range, point
  error, range width, pilot size, and the time and accepted-share projections;
- pilots of 10, 20 and 50 records and the default one on the same 10 inputs and on 100 more
  drawn the same way, replayed from the full runs' rows (the pilot's rows are what a pilot run
  would give), beside today's method: none, or by hand a random pilot of 20 whose mean is
  multiplied by the input's size (the issue's naive pilot);
- budgets: ``--max-tokens`` caps of 30k, 100k and 300k at concurrency 1, 4 and 8: tokens spent
  (every session), overshoot over the cap and the documented bound, samples finished; then
  one capped run resumed with a higher cap, which must finish every record exactly once.

With ``--real-llm N``: only the time projection on a real server, llama.cpp's llama-server
serving SmolLM2-135M (tests/llama_server.py), over the first N eligible records: a pilot, then
``run --resume``, the rest's projected wall time against its measured one.

Load averages are recorded at the start and end. Last line: one JSON object.

    python bench/estimate.py [--inputs 10] [--records 200] [--replays 100]
    python bench/estimate.py --real-llm 12 [--real-llm-pilot 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from shared_data import shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")
HELD_OUT = range(401, 601)  # 1-based lines kept out of every input
CAPS = (30_000, 100_000, 300_000)
CONCURRENCIES = (1, 4, 8)
CONCURRENCY = 4


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def eligible_lines() -> list[str]:
    lines = MEDQA.read_text().splitlines()
    return [line for i, line in enumerate(lines, 1) if i not in HELD_OUT]


def inputs(count: int, size: int, first_seed: int = 0) -> list[list[str]]:
    """``count`` inputs of ``size`` MedQA lines, each drawn with its own seed, in file order."""
    eligible = eligible_lines()
    return [[eligible[i] for i in sorted(random.Random(seed).sample(range(len(eligible)), size))]
            for seed in range(first_seed, first_seed + count)]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def tokens(row: dict) -> int:
    return row["usage"]["input_tokens"] + row["usage"]["output_tokens"]


async def pilot_run(records: Path, run_dir: Path, settings, size: int | None, caps=None, concurrency=CONCURRENCY):
    """What ``estimate`` does, in this process (the graph stays loaded between inputs)."""
    from agent.runs.cost import Caps, Meter, find_price
    from agent.runs.estimate import run_pilot
    from agent.runs.runner import RunOptions, identify, prepare

    meter = Meter(find_price(settings.model, settings.base_url, 0.15, 0.6), caps or Caps(), settings, concurrency)
    options = RunOptions(concurrency=concurrency, meter=meter)
    with ExitStack() as held:
        plan = prepare(records, run_dir, options, held)
        identify(plan, run_dir, settings, options)
        started = time.monotonic()
        projection = await run_pilot(plan, run_dir, settings, options, meter, size)
    return projection, time.monotonic() - started


async def full_run(records: Path, run_dir: Path, settings, caps=None, concurrency=CONCURRENCY, resume=False):
    from agent.runs.cost import Caps, Meter, find_price
    from agent.runs.results import RESULTS, SUMMARY, read_rows
    from agent.runs.runner import RunOptions, run_dataset

    meter = Meter(find_price(settings.model, settings.base_url, 0.15, 0.6), caps or Caps(), settings, concurrency)
    if resume:
        meter.resume_from(read_rows(run_dir / RESULTS), json.loads((run_dir / SUMMARY).read_text()).get("spent"))
    summary = await run_dataset(records, run_dir, settings, RunOptions(concurrency=concurrency, meter=meter, resume=resume))
    return summary, meter


def replay(profiles, rows: dict[str, dict], size: int | None, seed: str):
    """A pilot replayed from the full runs' rows: the same choice and projection as run_pilot."""
    from agent.runs import estimate as E
    from agent.runs.cost import Price

    price = Price(0.15, 0.6, "bench")
    cap = size if size is not None else E.default_cap(len(profiles))
    taken = E.choose(profiles, cap if size is not None else min(E.FIRST_BATCH, cap), [], seed=seed)
    while True:
        seen = {i: rows[i] for i in taken}
        projection = E.project(profiles, seen, {}, price, CONCURRENCY)
        if size is not None or len(taken) >= cap or projection.tokens.relative_half_width <= E.TARGET:
            return projection.tokens, len(taken)
        taken += E.choose(profiles, min(E.GROWTH, cap - len(taken)), taken, E.spreads(profiles, seen), seed=seed)


def naive(rows: list[dict], size: int, seed: int) -> float:
    """The issue's naive pilot: ``size`` records at random, their mean times the input's size."""
    chosen = random.Random(seed).sample(rows, size)
    return statistics.fmean(map(tokens, chosen)) * len(rows)


def figures(results: list[tuple[int, object, int]]) -> dict:
    inside = sum(r.low <= truth <= r.high for truth, r, _ in results)
    errors = [abs(r.point - truth) / truth for truth, r, _ in results]
    widths = [r.relative_half_width for _, r, _ in results]
    return {"inputs": len(results), "inside_range": inside, "median_error_pct": round(100 * statistics.median(errors), 1),
            "p90_error_pct": round(100 * sorted(errors)[int(0.9 * len(errors))], 1),
            "max_range_pct": round(100 * max(widths), 1), "median_range_pct": round(100 * statistics.median(widths), 1),
            "mean_pilot": round(statistics.fmean(n for *_, n in results), 1)}


def real_llm(records: int, pilot: int) -> dict:
    """The time projection against llama-server + SmolLM2-135M (tests/llama_server.py): a
    pilot of ``pilot`` of the first ``records`` eligible MedQA records, then ``run --resume``
    for the rest, one sample at a time (the server's one slot); the projected time of the rest
    against the resumed session's own wall time (its summary's ``session_wall_time_s``)."""
    from agent.config import Settings
    from tests.llama_server import ServerUnavailable, built_binary, model_file, serving

    try:
        binary, model = built_binary(), model_file()
    except ServerUnavailable as exc:
        return {"skipped": str(exc)}
    report = {"records": records, "pilot": pilot, "model": "SmolLM2-135M-Instruct Q4_1", "load_start": load()}
    with tempfile.TemporaryDirectory() as tmp, serving(binary, model, Path(tmp) / "server.log") as url:
        tmp = Path(tmp)
        settings = Settings(model="smollm2", base_url=url, api_key="not-needed")
        lines = write(tmp / "in.jsonl", eligible_lines()[:records])
        projection, pilot_wall = asyncio.run(pilot_run(lines, tmp / "run", settings, pilot, concurrency=1))
        found = projection.as_json()
        report["load_after_pilot"] = load()
        summary, _ = asyncio.run(full_run(lines, tmp / "run", settings, concurrency=1, resume=True))
        from agent.runs.results import RESULTS, read_rows

        rows = read_rows(tmp / "run" / RESULTS)
    actual_rest = summary["session_wall_time_s"]
    report.update({
        "pilot_wall_s": round(pilot_wall, 1), "projected_remaining_wall_s": found["remaining_wall_time_s"],
        "actual_remaining_wall_s": actual_rest,
        "time_error_pct": round(100 * (found["remaining_wall_time_s"] - actual_rest) / actual_rest, 1),
        "projected_whole_wall_s": found["wall_time_s"], "projected_tokens": found["tokens"],
        "tokens_low": found["tokens_low"], "tokens_high": found["tokens_high"], "actual_tokens": sum(map(tokens, rows)),
        "projected_accepted_share": found["accepted_share"],
        "actual_accepted_share": round(sum(r["status"] == "accepted" for r in rows) / len(rows), 4),
        "load_end": load(),
    })
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=10)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--replays", type=int, default=100, help="more inputs for the replayed pilots")
    parser.add_argument("--real-llm", type=int, metavar="N", help="only the time projection on llama-server, over N records")
    parser.add_argument("--real-llm-pilot", type=int, default=4)
    args = parser.parse_args()
    if not MEDQA.exists():
        print(json.dumps({"skipped": f"{MEDQA} not found (needs ../shared/data/medqa)"}))
        return
    if args.real_llm:
        report = real_llm(args.real_llm, args.real_llm_pilot)
        report["targets"] = {"time_error_pct_max": 25, "met": abs(report.get("time_error_pct", 100)) <= 25}
        print(json.dumps(report))
        return
    from agent.config import Settings
    from agent.reasoning import resources
    from agent.runs import estimate as E
    from agent.runs.cost import Caps
    from agent.runs.records import RawRecord, parse_record
    from agent.runs.results import RESULTS, read_rows
    from agent.runs.runner import RunOptions, read_jobs
    from tests.fake_llm import MISBEHAVING, FakeBrain, FakeOpenAIServer

    report: dict = {"load_start": load(), "kg": "hpo", "concurrency": CONCURRENCY}
    kg = resources.load_kg(Settings()).kg
    quirks = replace(MISBEHAVING, seed=7, ramble=0.05)
    brain = FakeBrain({kg.name(n): kg.node(n).type for n in kg.graph}, quirks)
    report["quirks"] = {k: v for k, v in vars(quirks).items() if v}
    drawn = inputs(args.inputs, args.records)
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(brain) as server:
        tmp = Path(tmp)
        settings = Settings(model="fake", base_url=server.url, api_key="k", llm_max_retries=0)
        ctx = resources.load(settings)

        # The full runs: every record that an input may hold, once; an input's tokens are its records' sum.
        union = sorted(set(eligible_lines()))
        log(f"full runs: {len(union)} distinct records")
        started = time.monotonic()
        asyncio.run(full_run(write(tmp / "union.jsonl", union), tmp / "union", settings))
        report["full_runs"] = {"records": len(union), "wall_s": round(time.monotonic() - started, 1), "load": load()}
        by_text = {}
        for row in read_rows(tmp / "union" / RESULTS):
            by_text[union[row["position"]]] = row

        # Input 0 as a user runs it: estimate, then run --resume in the same RUN_DIR.
        first = write(tmp / "input0.jsonl", drawn[0])
        requests_before = len(brain.requests)
        projection, _ = asyncio.run(pilot_run(first, tmp / "user", settings, None))
        pilot_rows = read_rows(tmp / "user" / RESULTS)
        summary, meter = asyncio.run(full_run(first, tmp / "user", settings, resume=True))
        rows = read_rows(tmp / "user" / RESULTS)
        expected = sum(tokens(by_text[line]) for line in drawn[0])
        report["user_path"] = {
            "pilot": len(pilot_rows), "rows": len(rows), "distinct_ids": len({r["id"] for r in rows}),
            "tokens_estimate_then_resume": sum(map(tokens, rows)), "tokens_from_full_runs": expected,
            "spent_recorded": summary["spent"]["tokens"],
            # every request the server answered for this RUN_DIR, against the calls its rows count
            "server_requests": len(brain.requests) - requests_before, "rows_llm_calls": sum(r["usage"]["llm_calls"] for r in rows),
            "projected_rest_wall_s": projection.as_json()["remaining_wall_time_s"],
            "actual_rest_wall_s": summary["session_wall_time_s"],
        }
        log(json.dumps(report["user_path"]))

        # The default pilot, run for real on every input.
        real = []
        for k, lines in enumerate(drawn):
            records = write(tmp / f"input{k}.jsonl", lines)
            projection, wall = asyncio.run(pilot_run(records, tmp / f"pilot{k}", settings, None))
            truth = sum(tokens(by_text[line]) for line in lines)
            accepted = sum(by_text[line]["status"] == "accepted" for line in lines) / len(lines)
            found = projection.as_json()
            real.append((truth, projection.tokens, projection.pilot))
            report.setdefault("default_pilot_runs", []).append({
                "input": k, "pilot": found["pilot"], "tokens": found["tokens"], "tokens_low": found["tokens_low"],
                "tokens_high": found["tokens_high"], "full_run_tokens": truth,
                "error_pct": round(100 * (found["tokens"] - truth) / truth, 1), "range_pct": found["tokens_range_pct"],
                "accepted_share": found["accepted_share"], "full_run_accepted_share": round(accepted, 4),
                "pilot_wall_s": round(wall, 1)})
            log(json.dumps(report["default_pilot_runs"][-1]))
        report["default_pilot"] = figures(real)

        # Pilots of 10/20/50 and the default, replayed, on the same inputs and on more.
        def profiled(lines: list[str], name: str):
            jobs = read_jobs(write(tmp / f"{name}.jsonl", lines), RunOptions())
            found = E.profiles(ctx, jobs)
            return found, {j.id: by_text[line] for j, line in zip(jobs, lines)}

        more = inputs(args.replays, args.records, first_seed=1000)
        sets = {"same_10_inputs": drawn, f"{args.replays}_more_inputs": more}
        report["replayed"] = {}
        for label, chosen in sets.items():
            profiled_inputs = [profiled(lines, f"{label}{k}") for k, lines in enumerate(chosen)]
            table = {}
            for size in (10, 20, 50, None):
                results = []
                for k, (found, rows) in enumerate(profiled_inputs):
                    truth = sum(map(tokens, rows.values()))
                    results.append((truth, *replay(found, rows, size, seed=f"bench{k}")))
                table["default" if size is None else f"pilot_{size}"] = figures(results)
            naive_errors = []
            for k, (_, rows) in enumerate(profiled_inputs):
                truth = sum(map(tokens, rows.values()))
                naive_errors.append(abs(naive(list(rows.values()), 20, k) - truth) / truth)
            table["naive_random_20"] = {"median_error_pct": round(100 * statistics.median(naive_errors), 1),
                                        "p90_error_pct": round(100 * sorted(naive_errors)[int(0.9 * len(naive_errors))], 1),
                                        "range": "none"}
            report["replayed"][label] = table
            log(json.dumps({label: table}))

        # Budgets over caps and concurrencies; then one capped run resumed with a higher cap.
        budget = []
        for cap in CAPS:
            for concurrency in CONCURRENCIES:
                run_dir = tmp / f"cap{cap}_{concurrency}"
                summary, meter = asyncio.run(full_run(first, run_dir, settings, Caps(max_tokens=cap), concurrency))
                spent = summary["spent"]["tokens"]
                budget.append({"cap_tokens": cap, "concurrency": concurrency, "reached": summary["budget"]["reached"],
                               "spent_tokens": spent, "overshoot_tokens": spent - cap,
                               "overshoot_bound_tokens": summary["budget"]["overshoot_bound"]["tokens"],
                               "within_bound": spent <= cap + summary["budget"]["overshoot_bound"]["tokens"],
                               "samples": summary["records"], "unused_share_of_cap": round(max(cap - spent, 0) / cap, 3)})
                log(json.dumps(budget[-1]))
        report["budget"] = budget
        run_dir = tmp / f"cap{CAPS[0]}_{CONCURRENCIES[-1]}"
        summary, _ = asyncio.run(full_run(first, run_dir, settings, Caps(max_tokens=10 ** 9), CONCURRENCIES[-1], resume=True))
        rows = read_rows(run_dir / RESULTS)
        report["budget_resumed"] = {"rows": len(rows), "distinct_ids": len({r["id"] for r in rows}),
                                    "records": len(drawn[0]), "spent_tokens": summary["spent"]["tokens"],
                                    "rows_tokens": sum(map(tokens, rows)), "reached": summary["budget"]["reached"]}
    d = report["default_pilot"]
    report["load_end"] = load()
    report["targets"] = {
        "inside_range_min": 9, "median_error_pct_max": 10, "max_range_pct": 25,
        "met": d["inside_range"] >= 9 and d["median_error_pct"] <= 10 and d["max_range_pct"] <= 25
        and all(b["within_bound"] for b in budget)
        and report["budget_resumed"]["distinct_ids"] == report["budget_resumed"]["rows"] == len(drawn[0]),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
