"""Two fresh builds of the HPO graph and entity index, as on two machines: do they give the
same rows?

For each code (this checkout, and ``--baseline REF`` beside it in the same run), the README's
main command runs twice, each time from an empty cache directory of its own
(``XDG_CACHE_HOME``: the graph, its index and the vector cache all built anew), over the same
``--records`` MedQA records (lines 1-200 of the test set by default); the first build runs
one sample at a time, the second ``--concurrency`` samples at once, so samples that share the
transformer's passes differently must still agree. The rows of the two builds are compared
field by field (every field but ``thread_id`` and ``usage``, which say how the sample ran,
not what it found). Each command's wall and CPU time (its process and children) and the load
average are reported. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared_data import code_at, shared_file  # noqa: E402

MEDQA = shared_file("medqa", "medqa_test.jsonl")
HOW_IT_RAN = ("thread_id", "usage")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_and_run(code: Path, records: Path, cache: Path, concurrency: int) -> dict:
    """The main command from an empty cache: builds HPO and its index, then runs the records."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDREASON_"))}
    env.update(XDG_CACHE_HOME=str(cache), HF_HUB_OFFLINE="1", PYTHONPATH=str(code))
    out = cache / "run"
    load, started, cpu = os.getloadavg()[0], time.perf_counter(), children_cpu()
    done = subprocess.run([sys.executable, str(code / "run_agent.py"), "run", str(records), "--out", str(out),
                           "--offline", "--concurrency", str(concurrency)], cwd=code, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the run in {cache} failed:\n{done.stderr[-3000:]}")
    rows = {}
    for line in open(out / "results.jsonl"):
        row = json.loads(line)
        rows[row["id"]] = {k: v for k, v in row.items() if k not in HOW_IT_RAN}
    return {"rows": rows, "wall_s": round(time.perf_counter() - started, 1), "cpu_s": round(children_cpu() - cpu, 1),
            "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)], "concurrency": concurrency,
            "accepted": sum(r["status"] == "accepted" for r in rows.values())}


def compare(code: Path, records: Path, tmp: Path, concurrency: int) -> dict:
    first = build_and_run(code, records, tmp / "machine-1", 1)
    second = build_and_run(code, records, tmp / "machine-2", concurrency)
    a, b = first.pop("rows"), second.pop("rows")
    differing = sorted(i for i in a.keys() | b.keys() if a.get(i) != b.get(i))
    fields = sorted({k for i in differing for k in (a.get(i) or {}).keys() | (b.get(i) or {}).keys()
                     if (a.get(i) or {}).get(k) != (b.get(i) or {}).get(k)})
    return {"rows": len(a), "rows_identical": not differing, "rows_differing": len(differing),
            "differing_ids": differing[:20], "differing_fields": fields, "build_1": first, "build_2": second}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--medqa", type=Path, default=MEDQA, help="MedQA records (JSONL)")
    parser.add_argument("--concurrency", type=int, default=8, help="samples in flight in the second build's run")
    parser.add_argument("--baseline", default="4ae5cf7", help="git ref measured the same way ('' for none)")
    args = parser.parse_args()
    if not args.medqa.exists():
        print(json.dumps({"skipped": f"{args.medqa} not found (needs ../shared/data/medqa, or --medqa)"}))
        return
    result = {}
    with tempfile.TemporaryDirectory(prefix="two-builds-") as tmp:
        tmp = Path(tmp)
        records = tmp / "medqa.jsonl"
        with open(args.medqa) as f:
            records.write_text("".join(islice(f, args.records)))
        codes = {"this": ROOT}
        if args.baseline:
            codes[f"baseline ({args.baseline})"] = code_at(args.baseline, tmp / "baseline")
        for label, code in codes.items():
            result[label] = compare(code, records, tmp / label.split()[0], args.concurrency)
            print(f"{label}: {json.dumps(result[label])}", file=sys.stderr, flush=True)
    result["target"] = "identical rows from two fresh builds"
    result["met"] = result["this"]["rows_identical"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
