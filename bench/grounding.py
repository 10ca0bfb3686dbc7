"""How well and how fast reasoning steps are checked against the graph (agent/reasoning/grounding.py).

1. Accuracy on the hand-labelled steps (bench/fixtures/grounding_*.tsv) over the fixture graph,
   the PrimeKG slice and HPO: precision and recall of ``grounded`` and of ``contradicted |
   unsupported`` (the step is not backed), per slice: ``tuning`` (the checker was tuned on it)
   and ``heldout`` (written first, never used for tuning). Targets: ≥ 0.9 each.
2. Speed on HPO: a KG-only ``run`` over ../shared/data/medqa (``--records``), then the grounding
   of each result row timed in this process, beside the whole sample's time in that run
   (its wall time per record). Target: ≤ 20 ms per sample.
3. ``run_agent.py ground`` over 1,000 records (MedReason's ``question``/``reasoning`` format,
   made from the run's rows that have reasoning, repeated to 1,000) as a user runs it, KG load
   included. Target: < 1 minute on 2 cores.

The HPO graph is built into ``--kg-dir`` when it is not there (about 25 s). Parts 2 and 3 are
skipped, with a message, without the MedQA data. There is no earlier method to set beside
the check: the whole sample's time is the reference. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from shared_data import shared_file  # noqa: E402

from agent.reasoning.grounding import ground_reasoning, path_evidence  # noqa: E402
from graphs.cache import load_graph  # noqa: E402
from graphs.primekg import read_primekg  # noqa: E402
from graphs.triples import read_triples  # noqa: E402

FIXTURES = ROOT / "bench" / "fixtures"
MEDQA = shared_file("medqa", "medqa_test.jsonl")
NOT_BACKED = {"contradicted", "unsupported"}


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_agent.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, **kwargs)


def hpo_graph(kg_dir: Path):
    if not (kg_dir / "manifest.json").exists():
        built = cli("kg", "build", "--source", "hpo", "--kg-dir", str(kg_dir))
        if built.returncode:
            raise SystemExit(f"building HPO into {kg_dir} failed: {built.stderr[-2000:]}")
    return load_graph(kg_dir)[0]


def labelled(name: str) -> list[dict]:
    with open(FIXTURES / f"grounding_{name}.tsv", encoding="utf-8") as f:
        return list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))


def predicted(kg, step: str) -> str:
    """The checker's label for one hand-written step (the worst of its sentences)."""
    labels = [s["label"] for s in ground_reasoning(kg, step, [])["steps"]]
    for label in ("contradicted", "unsupported", "grounded"):
        if label in labels:
            return label
    return "unlinked"


def scores(pairs: list[tuple[str, str]]) -> dict:
    """Precision and recall of ``grounded`` and of not backed, over (gold, predicted) labels."""
    def pr(positive) -> dict:
        tp = sum(1 for g, p in pairs if positive(g) and positive(p))
        predicted_pos = sum(1 for _, p in pairs if positive(p))
        gold_pos = sum(1 for g, _ in pairs if positive(g))
        return {"precision": round(tp / predicted_pos, 3) if predicted_pos else None,
                "recall": round(tp / gold_pos, 3) if gold_pos else None}
    return {
        "steps": len(pairs),
        "grounded": pr(lambda label: label == "grounded"),
        "contradicted|unsupported": pr(lambda label: label in NOT_BACKED),
        "exact_label_accuracy": round(sum(g == p for g, p in pairs) / len(pairs), 3),
    }


def accuracy(graphs: dict) -> dict:
    report = {}
    for name in ("tuning", "heldout"):
        rows = labelled(name)
        pairs = [(r["label"], predicted(graphs[r["graph"]], r["step"])) for r in rows]
        if name == "tuning":  # the held-out misses are not printed: nobody tunes on them
            for r, (gold, got) in zip(rows, pairs):
                if gold != got:
                    print(f"tuning miss: {r['graph']}: {r['step']!r}: labelled {gold}, checker {got}", file=sys.stderr)
        report[name] = scores(pairs)
    return report


def speed(kg, kg_dir: Path, records: int, tmp: Path) -> tuple[dict, list[dict]]:
    subset = tmp / "medqa.jsonl"
    with MEDQA.open() as f:
        subset.write_text("".join(islice(f, records)))
    started = time.perf_counter()
    done = cli("run", str(subset), "--out", str(tmp / "run"), "--kg-dir", str(kg_dir), "--offline")
    run_seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-2000:]}")
    rows = [json.loads(line) for line in (tmp / "run" / "results.jsonl").open()]
    reasoned = [r for r in rows if r["reasoning"]]
    for r in reasoned[:5]:  # warm: the name index is built once per process, as in a run
        ground_reasoning(kg, r["reasoning"], path_evidence(r["paths"]))
    timings = []
    for r in reasoned:
        started = time.perf_counter()
        ground_reasoning(kg, r["reasoning"], path_evidence(r["paths"]))
        timings.append(time.perf_counter() - started)
    timings.sort()
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    accepted = [r for r in rows if r["status"] == "accepted"]
    return {
        "records": len(rows),
        "samples_with_reasoning": len(reasoned),
        "grounding_ms_per_sample": {"mean": round(1000 * sum(timings) / len(timings), 2),
                                    "p50": round(1000 * timings[len(timings) // 2], 2),
                                    "max": round(1000 * timings[-1], 2)},
        "whole_sample_ms_in_the_run": round(1000 * summary["session_wall_time_s"] / len(rows), 1),
        "run_wall_s_with_kg_load": round(run_seconds, 1),
        "accepted": len(accepted),
        "accepted_scoring_1.0": sum(1 for r in accepted if r["grounding"]["score"] == 1.0),
        "mean_adherence_accepted": round(sum(r["grounding"]["adherence"] for r in accepted) / len(accepted), 4)
        if accepted else None,
    }, reasoned


def ground_command(reasoned: list[dict], kg_dir: Path, tmp: Path, count: int) -> dict:
    source = tmp / "cot.jsonl"
    with source.open("w") as f:
        for i in range(count):
            row = reasoned[i % len(reasoned)]
            f.write(json.dumps({"dataset_name": "medqa", "id_in_dataset": i, "question": row["question"],
                                "reasoning": row["reasoning"]}) + "\n")
    started = time.perf_counter()
    done = cli("ground", str(source), "--kg-dir", str(kg_dir), "--out", str(tmp / "grounded.jsonl"))
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"ground failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads((tmp / "grounded.jsonl.summary.json").read_text())
    return {"records": summary["records"], "wall_s": round(seconds, 1), "mean_score": summary["mean_score"],
            "steps": summary["steps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kg-dir", type=Path, required=True, help="the HPO graph (built there when missing)")
    parser.add_argument("--records", type=int, default=300, help="MedQA records to run for the speed figures")
    parser.add_argument("--ground-records", type=int, default=1000)
    args = parser.parse_args()
    hpo = hpo_graph(args.kg_dir)
    graphs = {"fixture": read_triples(ROOT / "tests" / "fixtures" / "medical_kg.tsv"),
              "primekg": read_primekg(ROOT / "tests" / "fixtures" / "primekg_slice.csv"), "hpo": hpo}
    report = {"accuracy": accuracy(graphs), "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    if not MEDQA.exists():
        print(f"speed and ground: skipped, {MEDQA} not found (needs ../shared/data/medqa)", file=sys.stderr)
        report["speed"] = report["ground"] = "skipped: no MedQA data"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            report["speed"], reasoned = speed(hpo, args.kg_dir, args.records, Path(tmp))
            report["ground"] = ground_command(reasoned, args.kg_dir, Path(tmp), args.ground_records)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
