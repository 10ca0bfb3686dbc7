"""How well and how fast reasoning steps are checked against the graph (agent/reasoning/grounding.py),
this checkout beside the code of ``--baseline`` (default 4ae5cf7, the grounding before claims were
judged by what they say) in the same run.

1. Accuracy on the hand-labelled steps (bench/fixtures/grounding_{tuning,heldout}.tsv) over the
   fixture graph, the PrimeKG slice and HPO: precision and recall of ``grounded`` and of
   ``contradicted | unsupported`` (the step is not backed), per slice: ``tuning`` (the checker
   was tuned on it) and ``heldout`` (written first, never used for tuning). Targets: ≥ 0.9 each,
   and no drop from the baseline.
2. The labelled claims (bench/fixtures/grounding_claims.tsv, five classes): the share of backed
   claims (direct, more general) grounded and of unbacked ones (more specific, gene-only,
   other-disease) not grounded, per class and slice. Targets: ≥ 90 % each.
3. A KG-only ``run`` over lines 1 to ``--records`` (at most 400: lines 401-600 are held out
   for a blind review) of ../shared/data/medqa/medqa_test.jsonl on HPO (or ``--run DIR``, such
   a run made before), then:
   - the grounding score distribution of its accepted samples, graded by each side's
     checker (grounding decides no verdict unless ``--min-grounding`` is set, so both sides'
     runs accept the same samples with the same reasoning);
   - speed: the CPU time of grounding each row with reasoning (target ≤ 20 ms per sample),
     beside the whole sample's wall time in that run.
4. ``run_agent.py ground`` of each side over 1,000 records (MedReason's ``question``/``reasoning``
   format, made from the run's rows that have reasoning, repeated to 1,000) as a user runs it,
   KG load included: wall and CPU seconds. Target: < 1 minute on 2 cores.

The HPO graph is built into ``--kg-dir`` when it is not there (about 25 s). Parts 3 and 4 are
skipped, with a message, without the MedQA data. The baseline's figures come from this script
run again on the baseline's tree (``git archive``), reading the same graphs and rows.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import islice
from pathlib import Path

HERE = Path(__file__).resolve().parent
CODE = HERE.parent  # the code measured: this checkout, or a baseline's tree (--code-root)
if "--code-root" in sys.argv:
    CODE = Path(sys.argv[sys.argv.index("--code-root") + 1]).resolve()
sys.path.insert(0, str(CODE))
sys.path.insert(0, str(HERE))
from shared_data import agent_module, code_at, shared_file  # noqa: E402

from graphs.cache import load_graph  # noqa: E402
from graphs.primekg import read_primekg  # noqa: E402
from graphs.triples import read_triples  # noqa: E402

ROOT = HERE.parent  # this checkout: its fixtures and its CLI
FIXTURES = ROOT / "bench" / "fixtures"
MEDQA = shared_file("medqa", "medqa_test.jsonl")
NOT_BACKED = {"contradicted", "unsupported"}
BASELINE = "4ae5cf7"
TUNING_LINES = 400  # MedQA test lines 401-600 are held out for a blind review: never read here
CLASSES = ("direct", "more general", "more specific", "gene-only", "other-disease")


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
    labels = [s["label"] for s in agent_module("grounding").ground_reasoning(kg, step, [])["steps"]]
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


def accuracy(graphs: dict, show_misses: bool) -> dict:
    report = {}
    for name in ("tuning", "heldout"):
        rows = labelled(name)
        pairs = [(r["label"], predicted(graphs[r["graph"]], r["step"])) for r in rows]
        if name == "tuning" and show_misses:  # the held-out misses are not printed: nobody tunes on them
            for r, (gold, got) in zip(rows, pairs):
                if gold != got:
                    print(f"tuning miss: {r['graph']}: {r['step']!r}: labelled {gold}, checker {got}", file=sys.stderr)
        report[name] = scores(pairs)
    return report


def claims(graphs: dict, show_misses: bool) -> dict:
    """Per slice and class: how many claims, and the share the checker judges as the class
    says (grounded for a backed class, anything else for an unbacked one)."""
    rows = labelled("claims")
    right: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        label = predicted(graphs[r["graph"]], r["claim"])
        ok = (label == "grounded") == (r["backed"] == "yes")
        right[r["slice"]][r["class"]].append(ok)
        if not ok and show_misses and r["slice"] == "tuning":  # held-out misses stay unread
            print(f"tuning miss: {r['class']}: {r['claim']!r}: checker {label}", file=sys.stderr)
    share = lambda oks: round(sum(oks) / len(oks), 3) if oks else None  # noqa: E731
    report = {}
    for slice_ in ("tuning", "heldout"):
        by_class = right[slice_]
        report[slice_] = {
            "backed_grounded": share(by_class["direct"] + by_class["more general"]),
            "unbacked_not_grounded": share(by_class["more specific"] + by_class["gene-only"] + by_class["other-disease"]),
            "per_class": {c: {"claims": len(by_class[c]), "right": share(by_class[c])} for c in CLASSES},
        }
    return report


def accepted_scores(kg, rows: list[dict]) -> dict:
    """The grounding of the accepted samples of a run, graded by the measured checker."""
    grounding = agent_module("grounding")
    graded = [grounding.ground_reasoning(kg, r["reasoning"], grounding.path_evidence(r["paths"])) for r in rows]
    scores_ = sorted(g["score"] for g in graded if g["score"] is not None)
    return {
        "accepted": len(rows),
        "scoring_1.0": sum(1 for s in scores_ if s >= 1),
        "median_score": scores_[len(scores_) // 2] if scores_ else None,
        "distribution": grounding.distribution(graded),
    }


def measure(kg_dir: Path, rows_file: Path | None, show_misses: bool) -> dict:
    """Every figure of the code on ``sys.path`` (this checkout or a baseline): accuracy, the
    grounding of a run's accepted samples and the CPU time of grounding its rows."""
    hpo = hpo_graph(kg_dir)
    graphs = {"fixture": read_triples(ROOT / "tests" / "fixtures" / "medical_kg.tsv"),
              "primekg": read_primekg(ROOT / "tests" / "fixtures" / "primekg_slice.csv"), "hpo": hpo}
    report = {"steps": accuracy(graphs, show_misses), "claims": claims(graphs, show_misses)}
    if rows_file is not None:
        rows = [json.loads(line) for line in rows_file.open()]
        report["kg_only_accepted"] = accepted_scores(hpo, [r for r in rows if r["status"] == "accepted"])
        report["grounding_cpu_ms_per_sample"] = cpu_per_sample(hpo, [r for r in rows if r["reasoning"]])
    return report


def cpu_per_sample(kg, reasoned: list[dict]) -> dict:
    """CPU milliseconds of grounding each row's reasoning (this process's, so other work on
    the machine does not count), after a warm-up: the name index is built once per process."""
    grounding = agent_module("grounding")
    for r in reasoned[:5]:
        grounding.ground_reasoning(kg, r["reasoning"], grounding.path_evidence(r["paths"]))
    timings = []
    for r in reasoned:
        started = time.process_time()
        grounding.ground_reasoning(kg, r["reasoning"], grounding.path_evidence(r["paths"]))
        timings.append(time.process_time() - started)
    timings.sort()
    return {"samples": len(reasoned), "mean": round(1000 * sum(timings) / len(timings), 2),
            "p50": round(1000 * timings[len(timings) // 2], 2), "max": round(1000 * timings[-1], 2)}


def baseline(tree: Path, kg_dir: Path, rows_file: Path | None) -> dict:
    """``measure`` run on a baseline's tree, in a process of its own."""
    command = [sys.executable, __file__, "--measure", "--code-root", str(tree), "--kg-dir", str(kg_dir)]
    if rows_file is not None:
        command += ["--rows", str(rows_file)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {"failed": done.stderr[-1500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def kg_only_run(kg_dir: Path, records: int, tmp: Path, done_run: Path | None) -> tuple[list[dict], float | None, float]:
    """A KG-only run of MedQA test lines 1..``records`` (or ``done_run``, one made before of
    the same lines): its rows, wall seconds (None for one made before), and the whole
    sample's wall time per record in it."""
    with MEDQA.open() as f:
        lines = list(islice(f, records))
    run_seconds = None
    if done_run is None:
        subset = tmp / "medqa.jsonl"
        subset.write_text("".join(lines))
        done_run = tmp / "run"
        started = time.perf_counter()
        done = cli("run", str(subset), "--out", str(done_run), "--kg-dir", str(kg_dir), "--offline")
        run_seconds = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-2000:]}")
    rows = [json.loads(line) for line in (done_run / "results.jsonl").open()]
    if [r["question"].strip() for r in rows] != [json.loads(line)["question"].strip() for line in lines]:
        raise SystemExit(f"{done_run} is not a run of MedQA test lines 1-{records}")
    summary = json.loads((done_run / "summary.json").read_text())
    return rows, run_seconds, summary["session_wall_time_s"] / len(rows)


def ground_command(tree: Path, source: Path, kg_dir: Path, out: Path) -> dict:
    """``run_agent.py ground`` of ``tree`` over ``source``, as a user runs it: wall and CPU
    seconds (the child's), and what it found."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "run_agent.py", "ground", str(source), "--kg-dir", str(kg_dir), "--out", str(out)],
                          cwd=tree, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)})
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{tree}: ground failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(Path(f"{out}.summary.json").read_text())
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"records": summary["records"], "wall_s": round(seconds, 1), "cpu_s": round(cpu, 1),
            "mean_score": summary["mean_score"], "steps": summary["steps"]}


def cot_file(reasoned: list[dict], path: Path, count: int) -> Path:
    """``count`` records in MedReason's format made from the rows that have reasoning."""
    with path.open("w") as f:
        for i in range(count):
            row = reasoned[i % len(reasoned)]
            f.write(json.dumps({"dataset_name": "medqa", "id_in_dataset": i, "question": row["question"],
                                "reasoning": row["reasoning"]}) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kg-dir", type=Path, required=True, help="the HPO graph (built there when missing)")
    parser.add_argument("--records", type=int, default=TUNING_LINES,
                        help=f"MedQA test lines 1..N to run (at most {TUNING_LINES})")
    parser.add_argument("--ground-records", type=int, default=1000)
    parser.add_argument("--run", type=Path, default=None,
                        help="a KG-only run directory of those lines made before (its rows are graded, not run again)")
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the checker to compare with ('' for none)")
    parser.add_argument("--code-root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.records > TUNING_LINES:
        parser.error(f"--records at most {TUNING_LINES}: MedQA test lines 401-600 are held out for a blind review")
    if args.measure:
        print(json.dumps(measure(args.kg_dir, args.rows, show_misses=False)))
        return
    hpo_graph(args.kg_dir)  # built once, before either side reads it
    report: dict = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {"this": ROOT, **({f"baseline {args.baseline}": code_at(args.baseline, tmp / "tree")} if args.baseline else {})}
        rows_file = None
        if not MEDQA.exists():
            print(f"the run and ground: skipped, {MEDQA} not found (needs ../shared/data/medqa)", file=sys.stderr)
            report["run"] = report["ground"] = "skipped: no MedQA data"
        else:
            rows, run_seconds, sample_seconds = kg_only_run(args.kg_dir, args.records, tmp, args.run)
            rows_file = tmp / "rows.jsonl"
            rows_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
            report["run"] = {"records": len(rows), "accepted": sum(r["status"] == "accepted" for r in rows),
                             "whole_sample_ms": round(1000 * sample_seconds, 1),
                             "wall_s_with_kg_load": None if run_seconds is None else round(run_seconds, 1)}
            source = cot_file([r for r in rows if r["reasoning"]], tmp / "cot.jsonl", args.ground_records)
            report["ground"] = {side: ground_command(tree, source, args.kg_dir, tmp / f"{side.split()[0]}.grounded.jsonl")
                                for side, tree in trees.items()}
        report["this"] = measure(args.kg_dir, rows_file, show_misses=True)
        if args.baseline:
            report[f"baseline {args.baseline}"] = baseline(trees[f"baseline {args.baseline}"], args.kg_dir, rows_file)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
