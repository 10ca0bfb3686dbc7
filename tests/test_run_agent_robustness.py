"""A run is one thing, whatever happens to it: many samples at once on the big graph, a bug,
SIGTERM, and input that must never crash it. Each case through the command a user runs."""

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.fake_llm import FakeOpenAIServer
from tests.test_run_agent import RECORDS, cli, llm_env, start, wait_for_lines

ROOT = Path(__file__).resolve().parents[1]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_main_job_at_concurrency_16_on_hpo_finishes_every_sample(tmp_path, hpo_kg_dir):
    examples = lines(ROOT / "examples" / "medqa_sample.jsonl")
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({**r, "id": f"{r.get('id', i)}-{copy}"}) + "\n"
                               for copy in range(2) for i, r in enumerate(examples)))
    done = cli("run", str(records), "--out", str(tmp_path / "run"), "--kg-dir", str(hpo_kg_dir), "--concurrency", "16")
    assert done.returncode == 0, done.stderr
    rows = lines(tmp_path / "run" / "results.jsonl")
    assert len(rows) == len({r["id"] for r in rows}) == 2 * len(examples)
    assert not [r for r in rows if r["status"] == "error"]


BUG_AFTER_TWO = """
import sys
import agent.runs.samples
real, calls = agent.runs.samples.result_row, []
def result_row(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        raise KeyError("a bug in the third sample")
    return real(*args, **kwargs)
agent.runs.samples.result_row = result_row
sys.argv[0] = "run_agent.py"
from run_agent import app
app()
"""


def test_a_bug_that_stops_a_run_says_what_is_kept_in_a_few_lines_and_logs_the_traceback(tmp_path, fixture_kg_dir):
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({**RECORDS[i % 2], "id": f"r{i}"}) + "\n" for i in range(5)))
    run_dir = tmp_path / "run"
    args = ["run", str(records), "--out", str(run_dir), "--kg-dir", str(fixture_kg_dir)]
    crashed = subprocess.run([sys.executable, "-c", BUG_AFTER_TWO, *args], capture_output=True, text=True, cwd=ROOT,
                             env=llm_env(), timeout=300)
    assert crashed.returncode == 1
    message = " ".join(crashed.stderr.split())
    assert "The run stopped on a bug: KeyError: 'a bug in the third sample'" in message
    assert "2 of 5 samples are saved" in message and "--resume" in message and str(run_dir / "crash.log") in message
    assert "Traceback" not in crashed.stderr and len(crashed.stderr.splitlines()) <= 8
    log = (run_dir / "crash.log").read_text()
    assert "Traceback (most recent call last)" in log and "a bug in the third sample" in log
    resumed = cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["id"] for r in lines(run_dir / "results.jsonl")) == [f"r{i}" for i in range(5)]


def test_sigterm_is_handled_like_ctrl_c_summary_written_exit_143(tmp_path, fixture_kg_dir, brain):
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({**RECORDS[i % 2], "id": f"r{i}"}) + "\n" for i in range(30)))
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain, latency=0.1) as server:
        proc = start("run", str(records), "--out", str(run_dir), "--kg-dir", str(fixture_kg_dir),
                     "--model", "fake", "--base-url", server.url, "--concurrency", "2")
        wait_for_lines(run_dir / "results.jsonl", 2, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    message = " ".join(stderr.split())
    assert "Terminated (SIGTERM)" in message and "--resume" in message and "summary.json" in message
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = lines(run_dir / "results.jsonl")
    assert summary["interrupted"] is True and summary["records"] == len(rows) < 30
    assert f"{len(rows)} of 30 samples have results" in message
    assert len({r["id"] for r in rows}) == len(rows)


def test_a_lone_surrogate_makes_its_record_an_error_row_and_its_neighbours_run(tmp_path, fixture_kg_dir):
    records = tmp_path / "in.jsonl"
    malaria, tb = RECORDS[0], RECORDS[1]
    in_question = json.dumps({**tb, "id": "bad-question"}).replace("night sweats", "night \\ud800 sweats")
    in_option = json.dumps({**tb, "id": "bad-option"}).replace('"asthma"', '"asth\\udc00ma"')
    assert json.loads(in_question)["question"] != tb["question"]  # Python's json accepts it
    records.write_text("\n".join([json.dumps(malaria), in_question, json.dumps({**tb, "id": "tb"}), in_option]) + "\n")
    run_dir = tmp_path / "run"
    args = ["run", str(records), "--out", str(run_dir), "--kg-dir", str(fixture_kg_dir)]
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    rows = {r["id"]: r for r in lines(run_dir / "results.jsonl")}
    assert {i: r["status"] for i, r in rows.items()} == {
        "malaria": "accepted", "bad-question": "error", "tb": "accepted", "bad-option": "error"}
    assert rows["bad-question"]["error"] == ("in.jsonl:2: field 'question' holds a lone surrogate (U+D800) at character 32, "
                                            "which is not text; fix the record's escape sequence")
    assert "field 'options.A' holds a lone surrogate (U+DC00) at character 5" in rows["bad-option"]["error"]
    for _ in range(2):  # resumed twice: nothing redone, nothing silently replaced
        assert cli(*args, "--resume").returncode == 0
    text = (run_dir / "results.jsonl").read_text()
    assert len(lines(run_dir / "results.jsonl")) == 4
    assert not any(replaced in text for replaced in ("night ? sweats", "asth?ma", "\ufffd", "night  sweats"))
