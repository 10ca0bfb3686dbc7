"""Dataset-run throughput and per-sample overhead, this checkout beside main's code.

One command, about 5-8 minutes on a loaded 2-core machine:

1. per-sample overhead with an instant fake LLM (latency 0), concurrency 1, on the fixture KG,
   the HPO graph and a PrimeKG-scale graph (the 59k real triples of
   ../shared/data/primekg_sample plus all 129k real node names, so the index has PrimeKG's
   size): the median wall time between finished samples, and the agent process's CPU time per
   sample (the fake server runs in its own process, so this is the agent's own cost)
   (target ≤ 25 ms median on HPO);
2. throughput at concurrency 1, 4, 16 and 64 with 200 ms simulated LLM latency on the fixture
   KG, side by side (target: ≥ 14× sequential at 16, ≥ 30× at 64), checking every record is
   written once;
3. a CLI run of 200 records under 10% injected 429/500 faults, SIGKILLed once some results
   are written, then resumed: every record present exactly once, and the LLM requests spent;
4. Ray with 2 actors beside one process on a CPU-bound run (KG-only on the HPO graph): the
   steady rate between the first and the last result, so starting Ray and the actors is not
   counted (target ≥ 1.7×); skipped with a message when Ray is not installed.

Phases 1 (fixture) and 2 also run with today's code (--baseline-root, a checkout, or else the
tree of --baseline, a git ref: by default the commit before this round), in a subprocess, so today's method is measured in the same
run. HPO and PrimeKG-scale overhead is measured for this checkout only: today's index takes
4-13 minutes to build at those scales. Timings on a shared machine are inflated; compare the
two columns. Records: MedQA from ../shared/data/medqa/medqa_test.jsonl when present, else
generated from the fixture KG's facts. Last line: one JSON object.
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
if "--code-root" in sys.argv:  # measure another checkout's code (today's method)
    ROOT = Path(sys.argv[sys.argv.index("--code-root") + 1]).resolve()
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from shared_data import BASELINE, agent_module, code_at, run_context, shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")
FIXTURE_KG = ROOT / "tests" / "fixtures" / "medical_kg.tsv"
PRIMEKG_SAMPLE = shared_file("primekg_sample")


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
    RunOptions, run_dataset = agent_module("runner").RunOptions, agent_module("runner").run_dataset

    ctx = run_context(Settings(kg_dir=loaded.path, model="fake", base_url=server_url, api_key="k"))
    finished: list[float] = []
    options = RunOptions(concurrency=concurrency, on_result=lambda row: finished.append(time.perf_counter()))
    path = write_records(tmp / f"{name}.jsonl", records)
    started, cpu = time.perf_counter(), time.process_time()
    summary = asyncio.run(run_dataset(path, tmp / name, ctx, options))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    ids = [json.loads(line)["id"] for line in open(tmp / name / "results.jsonl")]
    assert sorted(ids) == sorted(r["id"] for r in records), f"{name}: records missing or repeated"
    gaps = [b - a for a, b in zip([started] + finished, finished)]
    return {"elapsed": elapsed, "per_sample": statistics.median(gaps), "summary": summary,
            "rate": len(records) / elapsed, "cpu_per_sample": cpu / len(records)}


def fixture_vocabulary() -> list[str]:
    with open(FIXTURE_KG) as f:
        return sorted({name for row in csv.DictReader(f, delimiter="\t") for name in (row["head"], row["tail"])})


class ServerProcess:
    """The fake OpenAI-compatible server in its own process, as a real endpoint would be, so
    that its request handling does not compete with the agent for this process's GIL."""

    def __init__(self, latency: float, vocabulary: Path | None = None) -> None:
        self.latency, self.vocabulary = latency, vocabulary

    def __enter__(self) -> ServerProcess:
        vocabulary = ["--vocabulary", str(self.vocabulary)] if self.vocabulary else []
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.latency), "--code-root", str(ROOT),
                                      *vocabulary], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def serve(latency: float, vocabulary: Path | None) -> None:
    from tests.fake_llm import FakeBrain, FakeOpenAIServer

    names = vocabulary.read_text().splitlines() if vocabulary else fixture_vocabulary()
    with FakeOpenAIServer(FakeBrain(names), latency=latency) as server:
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


def measure(args, tmp: Path) -> dict:
    """Overhead (instant LLM) and throughput (200 ms LLM) on the fixture KG, with ROOT's code."""
    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, build_kg
    from graphs.progress import Silent

    loaded = build_kg(tmp / "kg", Source("triples", FIXTURE_KG), Embedder(), Silent())
    n = 64 * args.per_worker
    records, source = (generated_records(n), "generated from the fixture KG") if args.records == "generated" else load_records(n)
    with ServerProcess(0.0) as server:
        timed_run(loaded, server.url, records[:3], tmp, "warmup", 1)
        instant = timed_run(loaded, server.url, records[:20], tmp, "instant", 1)
    runs = {}
    with ServerProcess(args.latency) as server:
        for concurrency in (1, 4, 16, 64):
            runs[concurrency] = timed_run(loaded, server.url, records[: concurrency * args.per_worker], tmp,
                                          f"c{concurrency}", concurrency)
    sequential = runs[1]["rate"]
    return {
        "records": source,
        "overhead_instant_llm_median_ms": round(1000 * instant["per_sample"], 1),
        "cpu_ms_per_sample_instant_llm": round(1000 * instant["cpu_per_sample"], 1),
        "llm_calls_per_sample_instant_run": round(instant["summary"]["usage"]["llm_calls"] / 20, 2),
        "samples_per_s": {str(c): round(r["rate"], 3) for c, r in runs.items()},
        "speedup_vs_sequential": {str(c): round(r["rate"] / sequential, 2) for c, r in runs.items()},
    }


def scale_kg(kind: str, tmp: Path):
    """The HPO graph (the default cache, built if needed) or a PrimeKG-scale one, and the
    names the fake LLM extracts from questions."""
    from graphs.embedding import Embedder
    from graphs.kg_dir import LoadedKG, Source, _build_index, open_kg
    from graphs.progress import Silent

    if kind == "hpo":
        from agent.config import default_kg_dir

        return open_kg(default_kg_dir(), Embedder(), Silent(), default_source=Source("hpo"))
    from graphs.cache import SourceInfo, save_graph
    from graphs.triples import read_triples

    triples = PRIMEKG_SAMPLE / "triples.tsv"
    kg = read_triples(triples)
    known = {kg.name(n) for n in kg.graph}
    names = PRIMEKG_SAMPLE / "entity_names.txt"
    for i, name in enumerate(names.read_text(encoding="utf-8").splitlines()):
        if name.strip() and name not in known:
            kg.add_node(f"name:{i}", name, "entity")
    kg_dir = tmp / "primekg"
    manifest = save_graph(kg, kg_dir, SourceInfo.of("triples", [triples]))
    embedder = Embedder()
    return LoadedKG(kg, _build_index(kg, kg_dir, manifest, embedder, Silent(), None), manifest, kg_dir)


def scale_overhead(kind: str, tmp: Path, records: list[dict]) -> dict:
    started = time.perf_counter()
    loaded = scale_kg(kind, tmp)
    ready = time.perf_counter() - started
    vocabulary = tmp / f"{kind}-names.txt"
    vocabulary.write_text("\n".join(n for n in (loaded.kg.name(i) for i in loaded.kg.graph) if len(n) > 3))
    with ServerProcess(0.0, vocabulary) as server:
        timed_run(loaded, server.url, records[:3], tmp, f"{kind}-warmup", 1)
        instant = timed_run(loaded, server.url, records[3:23], tmp, f"{kind}-instant", 1)
    return {"nodes": len(loaded.kg), "index_entries": len(loaded.index), "kg_ready_s": round(ready, 1),
            "overhead_instant_llm_median_ms": round(1000 * instant["per_sample"], 1),
            "cpu_ms_per_sample_instant_llm": round(1000 * instant["cpu_per_sample"], 1)}


def ray_scaling(records: list[dict], tmp: Path, actors: int = 2) -> dict:
    """KG-only on HPO, one process beside ``actors`` Ray actors: samples per second between
    the first and the last result (starting Ray and opening the graph in each actor excluded)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return {"skipped": "Ray is not installed (pip install -e '.[ray]')"}
    from agent.config import Settings, default_kg_dir
    RunOptions, run_dataset = agent_module("runner").RunOptions, agent_module("runner").run_dataset

    path = write_records(tmp / "ray-in.jsonl", records)
    rates = {}
    for name, options in (("one_process", RunOptions(concurrency=2)),
                          (f"ray_{actors}_actors", RunOptions(concurrency=2, executor="ray", actors=actors))):
        finished: list[float] = []
        options.on_result = lambda row, finished=finished: finished.append(time.perf_counter())
        asyncio.run(run_dataset(path, tmp / f"ray-{name}", Settings(kg_dir=default_kg_dir(), offline=True), options))
        rates[name] = round((len(finished) - 1) / (finished[-1] - finished[0]), 2)
    return {"records": len(records), "samples_per_s": rates,
            "speedup": round(rates[f"ray_{actors}_actors"] / rates["one_process"], 2), "target": 1.7,
            "cpus": os.cpu_count()}


def baseline_root(given: Path | None, ref: str, into: Path) -> Path | None:
    """Today's code: the checkout given, else the tree of ``ref`` ('' for none)."""
    return given or (code_at(ref, into) if ref else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--per-worker", type=int, default=10, help="records per concurrent worker in the throughput runs")
    parser.add_argument("--fault-records", type=int, default=200)
    parser.add_argument("--ray-records", type=int, default=60, help="records of the Ray-versus-one-process run")
    parser.add_argument("--records", choices=("auto", "medqa", "generated"), default="auto",
                        help="auto: MedQA when ../shared has it, else generated from the fixture KG")
    parser.add_argument("--baseline-root", type=Path, default=None, help="checkout with today's code (default: --baseline)")
    parser.add_argument("--baseline", default=BASELINE, help="git ref of today's code when no --baseline-root ('' for none)")
    parser.add_argument("--code-root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--vocabulary", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.vocabulary)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.measure:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(measure(args, Path(tmp))))
        return
    if args.records == "medqa" and not MEDQA.exists():
        print(json.dumps({"skipped": f"{MEDQA} not found (needs ../shared/data/medqa)"}))
        return

    def child(root: Path) -> dict:
        done = subprocess.run([sys.executable, __file__, "--measure", "--code-root", str(root), "--latency", str(args.latency),
                               "--per-worker", str(args.per_worker), "--records", args.records],
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"measuring {root} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    from graphs.embedding import Embedder
    from graphs.kg_dir import Source, build_kg
    from graphs.progress import Silent
    from tests.fake_llm import FakeBrain

    now = child(ROOT)
    print(f"this checkout: {now}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as baseline_tmp:
        today_root = baseline_root(args.baseline_root, args.baseline, Path(baseline_tmp) / "baseline")
        today = child(today_root) if today_root else {"skipped": "no baseline (pass --baseline or --baseline-root)"}
    print(f"today ({args.baseline_root or args.baseline}): {today}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        records, _ = load_records(23)
        scales = {"hpo": scale_overhead("hpo", tmp, records)}
        print(f"hpo: {scales['hpo']}", file=sys.stderr)
        if PRIMEKG_SAMPLE.exists():
            scales["primekg_scale"] = scale_overhead("primekg", tmp, records)
        else:
            scales["primekg_scale"] = {"skipped": f"{PRIMEKG_SAMPLE} not found"}
        print(f"primekg: {scales['primekg_scale']}", file=sys.stderr)
        loaded = build_kg(tmp / "kg", Source("triples", FIXTURE_KG), Embedder(), Silent())
        brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph])
        fault_records, _ = load_records(args.fault_records)
        faults = kill_and_resume(tmp / "kg", brain, fault_records, tmp, concurrency=8)
        ray_records, _ = load_records(args.ray_records)
        scaling = ray_scaling(ray_records, tmp)
        print(f"ray: {scaling}", file=sys.stderr)

    print(json.dumps({
        "kg": "fixture (tests/fixtures/medical_kg.tsv) unless named",
        "llm_latency_s": args.latency,
        "now": now, "today": today, "today_code": str(args.baseline_root or args.baseline),
        "overhead_at_scale": scales,
        "targets": {"overhead_median_ms_hpo": 25, "speedup_at_16": 14, "speedup_at_64": 30, "ray_2_actors_vs_one_process": 1.7},
        "fault_kill_resume": faults,
        "ray_scaling": scaling,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
