"""Dataset-run throughput and durability against the fake OpenAI-compatible server.

On the fixture KG (tests/fixtures/medical_kg.tsv, built like `kg build --source triples`):

1. per-sample overhead with an instant fake LLM (latency 0), concurrency 1: median seconds
   between consecutive finished samples;
2. throughput at concurrency 1, 4 and 16 with 200 ms simulated LLM latency, side by side
   (target: ≥ 10× sequential at 16), checking every record is written once;
3. a CLI run of 200 records under 10% injected 429/500 faults, SIGKILLed once some results
   are written, then resumed: every record present exactly once, and the LLM requests spent.

Records: MedQA from ../shared/data/medqa/medqa_test.jsonl when present, else generated from
the fixture KG's facts. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shared_data import shared_file  # noqa: E402
MEDQA = shared_file("medqa", "medqa_test.jsonl")
FIXTURE_KG = ROOT / "tests" / "fixtures" / "medical_kg.tsv"


def generated_records(n: int) -> list[dict]:
    """Questions from the fixture KG: a disease's phenotypes → the drug indicated for it."""
    phenotypes, drugs = {}, {}
    with open(FIXTURE_KG) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["relation"] == "disease_phenotype_positive":
                phenotypes.setdefault(row["head"], []).append(row["tail"])
            elif row["relation"] == "indication":
                drugs.setdefault(row["tail"], row["head"])
    diseases = [d for d in phenotypes if d in drugs]
    all_drugs = sorted(set(drugs.values()))
    rng = random.Random(0)
    records = []
    for i in range(n):
        disease = diseases[i % len(diseases)]
        answer = drugs[disease]
        options = [answer] + rng.sample([d for d in all_drugs if d != answer], 3)
        rng.shuffle(options)
        letters = dict(zip("ABCD", options))
        records.append({
            "id": f"gen-{i}",
            "question": f"Case {i}: a patient presents with {', '.join(phenotypes[disease][:3])}. "
                        "Which drug treats the most likely disease?",
            "options": letters, "answer": answer, "answer_idx": next(k for k, v in letters.items() if v == answer),
        })
    return records


def load_records(n: int) -> tuple[list[dict], str]:
    if MEDQA.exists():
        with open(MEDQA) as f:
            rows = [json.loads(line) for line in islice(f, n)]
        return [{**r, "id": f"medqa-{i}"} for i, r in enumerate(rows)], "medqa"
    return generated_records(n), "generated from the fixture KG"


def write_records(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def timed_run(loaded, server_url: str, records: list[dict], tmp: Path, name: str, concurrency: int) -> dict:
    from agent.config import Settings
    from agent.context import AgentContext
    from agent.llm import make_llm
    from agent.runner import RunOptions, run_dataset

    settings = Settings(kg_dir=loaded.path, model="fake", base_url=server_url, api_key="k")
    ctx = AgentContext(loaded.kg, loaded.index, loaded.index.embedder, settings, make_llm(settings))
    finished: list[float] = []
    options = RunOptions(concurrency=concurrency, on_result=lambda row: finished.append(time.perf_counter()))
    path = write_records(tmp / f"{name}.jsonl", records)
    started = time.perf_counter()
    summary = asyncio.run(run_dataset(path, tmp / name, ctx, options))
    elapsed = time.perf_counter() - started
    ids = [json.loads(line)["id"] for line in open(tmp / name / "results.jsonl")]
    assert sorted(ids) == sorted(r["id"] for r in records), f"{name}: records missing or repeated"
    gaps = [b - a for a, b in zip([started] + finished, finished)]
    return {"elapsed": elapsed, "per_sample": statistics.median(gaps), "summary": summary,
            "rate": len(records) / elapsed}


def fixture_vocabulary() -> list[str]:
    with open(FIXTURE_KG) as f:
        return sorted({name for row in csv.DictReader(f, delimiter="\t") for name in (row["head"], row["tail"])})


class ServerProcess:
    """The fake OpenAI-compatible server in its own process, as a real endpoint would be, so
    that its request handling does not compete with the agent for this process's GIL."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.latency)], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def serve(latency: float) -> None:
    from tests.fake_llm import FakeBrain, FakeOpenAIServer

    with FakeOpenAIServer(FakeBrain(fixture_vocabulary()), latency=latency) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def kill_and_resume(kg_dir: Path, brain, records: list[dict], tmp: Path, concurrency: int) -> dict:
    from tests.fake_llm import FakeOpenAIServer

    path = write_records(tmp / "faults.jsonl", records)
    run_dir = tmp / "faults"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDREASON_"))}
    with FakeOpenAIServer(brain, latency=0.02, fault_rate=0.1, seed=1) as server:
        args = [sys.executable, str(ROOT / "run_agent.py"), "run", str(path), "--out", str(run_dir),
                "--kg-dir", str(kg_dir), "--model", "fake", "--base-url", server.url, "--concurrency", str(concurrency)]
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        results = run_dir / "results.jsonl"
        target = len(records) // 3
        while proc.poll() is None and not (results.exists() and len(results.read_text().splitlines()) >= target):
            time.sleep(0.05)
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = len(results.read_text().splitlines()) if results.exists() else 0
        hits_at_kill = server.hits
        resumed = subprocess.run(args + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        ids = [json.loads(line)["id"] for line in results.read_text().splitlines()]
        summary = json.loads((run_dir / "summary.json").read_text())
        return {
            "records": len(records),
            "killed_mid_run": killed,
            "results_at_kill": at_kill,
            "each_record_exactly_once": sorted(ids) == sorted(r["id"] for r in records),
            "llm_requests_total": server.hits,
            "llm_requests_before_kill": hits_at_kill,
            "llm_calls_recorded": summary["usage"]["llm_calls"],
            "requests_per_record": round(server.hits / len(records), 2),
            "counts": summary["counts"],
            "error_reasons": summary["error_reasons"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--per-worker", type=int, default=10, help="records per concurrent worker in the throughput runs")
    parser.add_argument("--fault-records", type=int, default=200)
    parser.add_argument("--records", choices=("auto", "medqa", "generated"), default="auto",
                        help="auto: MedQA when ../shared has it, else generated from the fixture KG")
    parser.add_argument("--serve", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, build_kg
    from graphs.progress import Silent
    from tests.fake_llm import FakeBrain

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        loaded = build_kg(tmp / "kg", Source("triples", FIXTURE_KG), Embedder(), Silent())
        brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph])
        n = max(16 * args.per_worker, args.fault_records)
        records, source = (generated_records(n), "generated from the fixture KG") if args.records == "generated" else load_records(n)
        if args.records == "medqa" and source != "medqa":
            print(json.dumps({"skipped": f"{MEDQA} not found (needs ../shared/data/medqa)"}))
            return

        with ServerProcess(0.0) as server:
            timed_run(loaded, server.url, records[:3], tmp, "warmup", 1)
            instant = timed_run(loaded, server.url, records[:20], tmp, "instant", 1)
            instant_calls = instant["summary"]["usage"]["llm_calls"] / 20

        runs = {}
        with ServerProcess(args.latency) as server:
            for concurrency in (1, 4, 16):
                runs[concurrency] = timed_run(loaded, server.url, records[: concurrency * args.per_worker], tmp,
                                              f"c{concurrency}", concurrency)
        faults = kill_and_resume(tmp / "kg", brain, records[: args.fault_records], tmp, concurrency=8)

    sequential = runs[1]["rate"]
    print(json.dumps({
        "kg": "fixture (tests/fixtures/medical_kg.tsv)",
        "records": source,
        "overhead_instant_llm_median_s": round(instant["per_sample"], 4),
        "llm_calls_per_sample_instant_run": round(instant_calls, 2),
        "llm_latency_s": args.latency,
        "samples_per_s": {str(c): round(r["rate"], 3) for c, r in runs.items()},
        "speedup_vs_sequential": {str(c): round(r["rate"] / sequential, 2) for c, r in runs.items()},
        "target_speedup_at_16": 10,
        "llm_calls_per_sample": {str(c): round(r["summary"]["usage"]["llm_calls"] / r["summary"]["records"], 2) for c, r in runs.items()},
        "fault_kill_resume": faults,
    }))


if __name__ == "__main__":
    main()
