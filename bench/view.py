"""Benchmark the viewer on a 30,000-sample run: startup, first list page, searches, sorting, a sample page.

Generates a seeded run directory (results.jsonl rows shaped like the agent's: a question of
about 600 characters from a medical vocabulary, options, ~1,200 characters of reasoning,
three KG paths with their hops and relevance, nine mappings, attempts, usage, a grounding with
six steps; a fifth of them rejected and a few errors; 300 reviews), starts the real command
``python run_agent.py view RUN_DIR --port N`` and times HTTP requests to it from this process:
the first list page (cold, then the median of ten), a search over question and reasoning, a
filtered search, the list sorted by grounding score, a deep page, a sample page.
Targets: first page, a search and a sorted page each under 1 s. Beside the wall times, the
server's CPU seconds (startup, and per list page, search and sorted page), which other work on
the machine does not inflate.

``--baseline DIR`` also measures the viewer of another checkout (e.g. /work/main) on the same
run, in the same invocation, so the list's new columns are measured beside the list without them.

The method it replaces, measured side by side on the same run: ``replay RUN_DIR --json``,
the terminal's list of a run's samples (no search, no paging), timed as a whole command.
The last line of output is one JSON object.

    python bench/view.py                 # 30,000 rows
    python bench/view.py --rows 5000
    python bench/view.py --baseline ../main   # and main's viewer, side by side
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("fever anemia splenomegaly jaundice cough dyspnea rash arthralgia seizure ataxia tremor myalgia "
         "hepatomegaly proteinuria hematuria edema syncope palpitations chest pain headache vomiting diarrhea "
         "weight loss fatigue pallor cyanosis clubbing lymphadenopathy hypotension tachycardia").split()
DISEASES = "malaria sarcoidosis lupus tuberculosis marfan hemochromatosis wilson amyloidosis scurvy gout".split()


def make_row(i: int, rng: random.Random) -> dict:
    findings = rng.sample(WORDS, 6)
    disease = rng.choice(DISEASES)
    question = (f"A {rng.randint(18, 80)}-year-old patient presents with {', '.join(findings)}. "
                + " ".join(rng.choice(WORDS) for _ in range(70)) + f" Which diagnosis is most likely? (case {i})")
    status = "error" if i % 97 == 0 else "rejected" if i % 5 == 0 else "accepted"
    hop = [{"relation": "phenotype_present", "label": "phenotype present", "forward": False}]
    paths = [{"nodes": [f"HP:{i}{k}", f"D:{disease}"], "names": [f, disease], "types": ["effect/phenotype", "disease"],
              "hops": [hop], "text": f"{f} ←phenotype present— {disease}", "truncated": False,
              "relevance": {"score": round(rng.random(), 4), "reasons": ["specificity 0.80", "from the presenting problem"]}}
             for k, f in enumerate(findings[:3])]
    reasoning = ("Finding reasoning paths:\n" + "\n".join(p["text"] for p in paths) + "\n\nReasoning Process:\n"
                 + " ".join(rng.choice(WORDS) for _ in range(150)) + f"\n\nConclusion:\nThe answer is A. {disease}.")
    return {
        "id": f"s{i:06d}", "status": status, "question": question,
        "options": {"A": disease, "B": rng.choice(DISEASES), "C": rng.choice(DISEASES), "D": rng.choice(DISEASES)},
        "answer": disease, "answer_idx": "A", "reasoning": reasoning if status != "error" else "", "paths": paths,
        "entities": [{"text": f, "role": "question", "type": None} for f in findings],
        "mappings": [{"mention": f, "role": "question", "node_id": f"HP:{k}", "name": f, "type": "effect/phenotype",
                      "score": 1.0, "method": "exact", "alternatives": []} for k, f in enumerate(findings + [disease] * 3)],
        "verification": {"predicted": "A", "correct": status == "accepted",
                         "reason": "KG evidence favours the answer" if status == "accepted" else "no path", "detail": "",
                         "scores": {"A": 1.2, "B": 0.3}},
        "attempts": [{"attempt": a + 1, "settings": {"attempt": a + 1, "max_hops": 3}, "paths": 3,
                      "correct": status == "accepted", "reason": "no path"} for a in range(1 if status == "accepted" else 3)],
        "usage": {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0},
        "relevance": round(sum(p["relevance"]["score"] for p in paths) / len(paths), 4),
        "grounding": None if status == "error" else {
            "score": round(rng.random(), 2), "adherence": 1.0, "steps": [
                {"text": f"Step {k}.", "label": rng.choice(("grounded", "unsupported", "unlinked")),
                 "entities": [{"text": f, "node_id": f"HP:{k}", "name": f}], "evidence": None} for k, f in enumerate(findings)]},
        "error": "extract: the model failed" if status == "error" else None,
        "thread_id": f"s{i:06d}", "dataset": rng.choice(("medqa", "medmcqa")), "extra": None, "position": i,
    }


def write_run(run_dir: Path, rows: int) -> int:
    rng = random.Random(20)
    run_dir.mkdir(parents=True)
    with open(run_dir / "results.jsonl", "w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps(make_row(i, rng)) + "\n")
    (run_dir / "checkpoints.sqlite").touch()  # replay, the baseline, opens a run only with one
    with open(run_dir / "reviews.jsonl", "w", encoding="utf-8") as f:
        for i in range(0, min(rows, 3000), 10):
            f.write(json.dumps({"id": f"s{i:06d}", "decision": rng.choice(("accept", "reject", "flag")), "note": "",
                                "who": "bench", "time": "2026-12-07T00:00:00+00:00"}) + "\n")
    return (run_dir / "results.jsonl").stat().st_size


def timed_get(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(url)
    response.raise_for_status()
    return time.perf_counter() - start, response


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process has used so far: what its work costs,
    whatever else the machine's cores are doing (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(root: Path, run_dir: Path, rows: int) -> dict:
    """The viewer of the checkout at ``root`` on ``run_dir``: its startup and request times."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "run_agent.py", "view", str(run_dir), "--port", str(port)],
                              cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                try:
                    client.get("/static/view.css")
                    break
                except httpx.TransportError:
                    if server.poll() is not None:
                        raise SystemExit(f"the viewer of {root} did not start")
                    time.sleep(0.05)
            startup = time.perf_counter() - started
            cpu = {"startup": server_cpu(server.pid)}
            first, response = timed_get(client, "/samples")
            assert f"of {rows} samples" in response.text
            before = server_cpu(server.pid)
            pages = [timed_get(client, "/samples")[0] for _ in range(10)]
            cpu["page"] = (server_cpu(server.pid) - before) / len(pages)
            search, response = timed_get(client, "/samples?q=hemochromatosis")
            before = server_cpu(server.pid)
            searches = [timed_get(client, f"/samples?q={w}")[0] for w in ("splenomegaly", "case 29999)", "nothing-matches")]
            cpu["search"] = (server_cpu(server.pid) - before) / len(searches)
            filtered = timed_get(client, "/samples?status=rejected&dataset=medqa&q=gout")[0]
            before = server_cpu(server.pid)
            by_score = [timed_get(client, "/samples?sort=-grounding")[0] for _ in range(10)]
            cpu["sorted_page"] = (server_cpu(server.pid) - before) / len(by_score)
            deep = timed_get(client, "/samples?page=500")[0]
            sample = timed_get(client, f"/sample/s{rows // 2:06d}")[0]
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {
        "startup_s": round(startup, 3), "first_page_s": round(first, 3),
        "page_median_s": round(statistics.median(pages), 3), "search_s": round(search, 3),
        "search_max_s": round(max(searches), 3), "filtered_search_s": round(filtered, 3),
        "sorted_page_median_s": round(statistics.median(by_score), 3),
        "deep_page_s": round(deep, 3), "sample_page_s": round(sample, 3),
        "targets_met": first < 1 and max(search, *searches, *by_score) < 1,
        **{f"cpu_{name}_s": round(seconds, 3) for name, seconds in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--baseline", type=Path, help="Another checkout whose viewer to measure on the same run.")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        size = write_run(run_dir, args.rows)
        viewer = measure(ROOT, run_dir, args.rows)
        baseline = measure(args.baseline.resolve(), run_dir, args.rows) if args.baseline else None
        started = time.perf_counter()
        listed = subprocess.run([sys.executable, "run_agent.py", "replay", str(run_dir), "--json"], cwd=ROOT,
                                capture_output=True, text=True, check=True)
        replay_list = time.perf_counter() - started
        assert len(json.loads(listed.stdout)["samples"]) == args.rows
    result = {
        "bench": "view", "rows": args.rows, "results_mb": round(size / 1e6, 1), "cpus": os.cpu_count(),
        "load_avg_1m_before": round(load_before, 2), "load_avg_1m": round(os.getloadavg()[0], 2),
        **viewer,
        **({"baseline": {"checkout": str(args.baseline), **baseline}} if baseline else {}),
        "baseline_replay_list_s": round(replay_list, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
