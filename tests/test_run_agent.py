"""The command line end to end, as a user runs it, on the fixture KG."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from run_agent import app
from tests.conftest import MEDICAL_KG

ROOT = Path(__file__).resolve().parents[1]
RECORDS = [
    {"id": "malaria", "question": "A traveller returns with fever, splenomegaly and anemia. Which drug treats the most likely disease?",
     "options": {"A": "chloroquine", "B": "metformin", "C": "albuterol"}, "answer": "chloroquine", "answer_idx": "A"},
    {"id": "tb", "question": "A man has hemoptysis and night sweats. What is the most likely diagnosis?",
     "options": {"A": "asthma", "B": "tuberculosis"}, "answer": "tuberculosis", "answer_idx": "B"},
    {"id": "scurvy", "question": "Gingival bleeding in a sailor. Which drug?", "options": {"A": "chloroquine", "B": "ascorbic acid"},
     "answer": "chloroquine", "answer_idx": "A"},
]


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "run_agent.py"), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def input_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "questions.jsonl"
    lines = [json.dumps(r) for r in RECORDS] + ["{not json", json.dumps({"question": "Q", "options": ["a"], "answer": "a"})]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_build_then_run_end_to_end(tmp_path, input_file):
    kg_dir, run_dir = tmp_path / "kg", tmp_path / "run"
    built = cli("kg", "build", "--source", "triples", "--input", str(MEDICAL_KG), "--kg-dir", str(kg_dir))
    assert built.returncode == 0, built.stderr
    info = cli("kg", "info", "--json", "--kg-dir", str(kg_dir))
    assert json.loads(info.stdout.strip().splitlines()[-1])["nodes"] == 43

    done = cli("run", str(input_file), "--out", str(run_dir), "--kg-dir", str(kg_dir))
    assert done.returncode == 0, done.stderr
    assert "KG-only" in done.stderr
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["malaria", "tb", "scurvy", "questions-4", "questions-5"]
    status = {r["id"]: r["status"] for r in rows}
    assert status == {"malaria": "accepted", "tb": "accepted", "scurvy": "rejected", "questions-4": "error", "questions-5": "error"}
    malaria = rows[0]
    assert "Finding reasoning paths:" in malaria["reasoning"] and malaria["paths"]
    fingerprint = json.loads((run_dir / "fingerprint.json").read_text())
    assert malaria["thread_id"] == f"{fingerprint['run_id']}:malaria" and malaria["usage"]["llm_calls"] == 0
    assert fingerprint["mode"] == "kg-only" and fingerprint["model"] is None and fingerprint["kg"]["source"] == "triples"
    assert fingerprint["input"]["name"] == "questions.jsonl" and len(fingerprint["input"]["sha256"]) == 64
    assert fingerprint["settings"]["max_hops"] == 3 and "api_key" not in fingerprint["settings"]
    assert len(fingerprint["prompts"]) == 64 and fingerprint["tool"]["version"]
    assert "questions.jsonl:4: not valid JSON" in rows[3]["error"]
    assert "'options' must be an object" in rows[4]["error"]
    # KG-only the second attempt is the widest search; a third would search the same
    assert len(rows[2]["attempts"]) == 2 and rows[2]["verification"]["reason"] == "no path"

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["counts"] == {"accepted": 2, "rejected": 1, "error": 2}
    assert summary["with_path_share"] == 0.4 and summary["rejection_reasons"] == {"no path": 1}
    assert summary["error_kinds"] == {"invalid record": 2} and "failure_reasons" not in summary  # one key per question
    assert (run_dir / "checkpoints.sqlite").stat().st_size > 0

    again = cli("run", str(input_file), "--out", str(run_dir), "--kg-dir", str(kg_dir))
    assert again.returncode == 2 and "already holds results" in again.stderr
    resumed = cli("run", str(input_file), "--out", str(run_dir), "--kg-dir", str(kg_dir), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 5  # nothing redone


@pytest.mark.parametrize("args, message", [
    (["run", "missing.jsonl", "--out", "{tmp}/r"], "input file missing.jsonl does not exist"),
    (["run", "{empty}", "--out", "{tmp}/r"], "is empty"),
    (["run", "{input}", "--out", "{tmp}/r", "--kg-dir", "{tmp}/nowhere"], "--kg-dir {tmp}/nowhere does not exist"),
    (["kg", "build", "--source", "nope"], "unknown --source 'nope'"),
])
def test_unusable_input_gets_a_clear_error_and_exit_code_2(tmp_path, input_file, args, message):
    (tmp_path / "empty.jsonl").write_text("")
    fill = {"tmp": str(tmp_path), "empty": str(tmp_path / "empty.jsonl"), "input": str(input_file)}
    result = CliRunner().invoke(app, [a.format(**fill) for a in args])
    assert result.exit_code == 2
    assert message.format(**fill) in " ".join(result.output.split())


# -- durability: SIGKILL, Ctrl-C, resume ---------------------------------------------------
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from tests.fake_llm import FakeOpenAIServer  # noqa: E402


def many_records(path, n):
    rows = [{**RECORDS[i % 2], "id": f"r{i}", "question": f"Case {i}. " + RECORDS[i % 2]["question"]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [r["id"] for r in rows]


def llm_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDREASON_"))}
    return {**env, "HF_HUB_OFFLINE": "1"}


def start(*args):
    return subprocess.Popen([sys.executable, str(ROOT / "run_agent.py"), *args], cwd=ROOT, env=llm_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(path, n, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no results in time")


def test_sigkill_mid_run_then_resume_gives_every_record_once_and_a_finished_run_costs_nothing(tmp_path, fixture_kg_dir, brain):
    ids = many_records(tmp_path / "in.jsonl", 24)
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain, latency=0.05) as server:
        args = ["run", str(tmp_path / "in.jsonl"), "--out", str(run_dir), "--kg-dir", str(fixture_kg_dir),
                "--model", "fake", "--base-url", server.url, "--concurrency", "3"]
        proc = start(*args)
        wait_for_lines(run_dir / "results.jsonl", 4, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = len((run_dir / "results.jsonl").read_text().splitlines())
        assert killed_at < len(ids)

        refused = cli(*args)
        assert refused.returncode == 2 and "--resume" in refused.stderr

        resumed = cli(*args, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert f"{killed_at} of 24 samples already done" in " ".join(resumed.stderr.split())
        rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
        assert sorted(r["id"] for r in rows) == sorted(ids)  # every record exactly once
        assert all(r["status"] == "accepted" for r in rows)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["records"] == 24 and summary["unfinished"] == 0 and summary["model"] == "fake"
        assert summary["kg"]["source"] == "triples" and summary["kg"]["sha256"]

        hits = server.hits
        again = cli(*args, "--resume")
        assert again.returncode == 0, again.stderr
        assert server.hits == hits  # nothing left: no LLM request at all
        assert "24 of 24 samples already done, 0 to go" in " ".join(again.stderr.split())
        assert len((run_dir / "results.jsonl").read_text().splitlines()) == 24


def test_ctrl_c_flushes_writes_the_summary_and_says_resume(tmp_path, fixture_kg_dir, brain):
    many_records(tmp_path / "in.jsonl", 30)
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain, latency=0.1) as server:
        proc = start("run", str(tmp_path / "in.jsonl"), "--out", str(run_dir), "--kg-dir", str(fixture_kg_dir),
                     "--model", "fake", "--base-url", server.url, "--concurrency", "2")
        wait_for_lines(run_dir / "results.jsonl", 2, proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Interrupted" in stderr and "--resume" in stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert summary["interrupted"] is True and summary["records"] == len(lines) < 30
    assert len({json.loads(line)["id"] for line in lines}) == len(lines)


def test_shards_merge_and_export_from_the_command_line(tmp_path, make_settings):
    import asyncio

    from agent.runs.runner import RunOptions, run_dataset

    ids = many_records(tmp_path / "in.jsonl", 6)
    for i in range(2):
        asyncio.run(run_dataset(tmp_path / "in.jsonl", tmp_path / f"s{i}", make_settings(), RunOptions(shard=(i, 2))))
    # many_records repeats two questions ("Case 0. …", "Case 2. …"): merge refuses that unless asked
    merged = CliRunner().invoke(app, ["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "all"),
                                      "--allow-duplicates"])
    assert merged.exit_code == 0, merged.output
    rows = [json.loads(line) for line in (tmp_path / "all" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(ids)
    again = CliRunner().invoke(app, ["merge", str(tmp_path / "s0"), str(tmp_path / "all"), "--out", str(tmp_path / "dup")])
    assert again.exit_code == 2 and "duplicate id" in again.output
    exported = CliRunner().invoke(app, ["export", str(tmp_path / "all"), "--format", "sft", "--out", str(tmp_path / "sft.jsonl")])
    assert exported.exit_code == 0 and "Wrote 6 samples" in exported.output
    # reviews made in each shard's viewer travel with the merge: the latest decision counts
    from starlette.testclient import TestClient

    from agent.inspection.view import create_app

    shard_ids = {i: [json.loads(line)["id"] for line in (tmp_path / f"s{i}" / "results.jsonl").read_text().splitlines()]
                 for i in range(2)}
    for i, decisions in ((0, ["reject", "accept"]), (1, ["accept"])):
        viewer = TestClient(create_app(tmp_path / f"s{i}", token="t"), base_url="http://127.0.0.1")
        for decision in decisions:
            assert viewer.post(f"/review/{shard_ids[i][0]}", data={"token": "t", "decision": decision}).status_code < 400
    reviewed = CliRunner().invoke(app, ["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "rev"),
                                        "--allow-duplicates"])
    assert reviewed.exit_code == 0, reviewed.output
    only = CliRunner().invoke(app, ["export", str(tmp_path / "rev"), "--format", "hf", "--out", str(tmp_path / "ok"),
                                    "--only-reviewed", "--all"])
    assert only.exit_code == 0, only.output
    items = [json.loads(line) for line in (tmp_path / "ok" / "data" / "train.jsonl").read_text().splitlines()]
    assert sorted(item["id"] for item in items) == sorted([shard_ids[0][0], shard_ids[1][0]])
    assert {item["review_decision"] for item in items} == {"accept"}
    bad = CliRunner().invoke(app, ["run", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "x"), "--shard", "2/2"])
    assert bad.exit_code == 2 and "shards are numbered from 0" in bad.output


# -- the help a user reads ---------------------------------------------------------------------------
HELP_OF = [[], ["run"], ["export"], ["ground"], ["merge"], ["decontaminate"], ["chat"], ["view"], ["replay"],
           ["kg"], ["kg", "build"], ["kg", "download"], ["kg", "info"], ["kg", "path"], ["kg", "neighbours"], ["kg", "search"]]


def test_help_shows_every_choice_whole_and_as_written_at_any_width():
    import re
    from typing import get_args

    from agent.config import Settings
    from agent.runs.executors import EXECUTORS
    from agent.runs.export import FORMATS
    from agent.runs.records import ID_SOURCES
    from graphs.kg_dir import SOURCES

    shown = {}
    for columns in ("60", "100", "200"):
        for command in HELP_OF:
            result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": columns})
            assert result.exit_code == 0, (command, result.output)
            text = result.output
            cut = re.search(r"[\w/.:-]…", text)  # a word cut short ("--fresh-checkpoi…"); "(…)" is the help's own
            assert not cut and "`" not in text, (command, columns, text)
            shown[" ".join(command)] = " ".join(text.split())
    chosen = lambda command, option: set(re.search(rf"{option} \[([^\]]+)\]", shown[command]).group(1).split("|"))  # noqa: E731
    assert chosen("export", "--format") == set(FORMATS)
    assert chosen("run", "--executor") == set(EXECUTORS)
    assert chosen("run", "--structured-output") == set(get_args(Settings.model_fields["structured_output"].annotation))
    assert chosen("kg build", "--source") == set(SOURCES)
    assert chosen("run", "--id-from") == chosen("decontaminate", "--id-from") == set(ID_SOURCES)
    assert "pip install -e '.[ray]'" in shown["run"] and "medreason-agent[ray]" not in shown["run"]
    assert "http://127.0.0.1:8000" in shown["run"] and "--fresh-checkpoints" in shown["run"]


def test_a_run_says_what_it_loads_and_what_comes_next_and_a_finished_runs_resume_has_nothing_to_wait_for(tmp_path,
                                                                                                      fixture_kg_dir):
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    args = ["run", str(records), "--out", str(tmp_path / "run"), "--kg-dir", str(fixture_kg_dir)]
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert done.stderr.index(f"Loading the knowledge graph in {fixture_kg_dir}") < done.stderr.index("Mode:")
    text = " ".join(done.stdout.split())
    assert f"Next: python run_agent.py view {tmp_path / 'run'}" in text
    assert f"python run_agent.py export {tmp_path / 'run'} --format sft --out train.jsonl" in text
    again = cli(*args, "--resume")
    assert again.returncode == 0, again.stderr
    message = " ".join(again.stderr.split())
    assert "Samples 3/3: 2 accepted, 1 rejected, 0 errors; all done before, nothing left to run" in message
    assert "/min" not in message and "ETA" not in message


def test_source_fields_the_schema_does_not_read_are_kept_in_extra(tmp_path, fixture_kg_dir):
    records = tmp_path / "in.jsonl"
    medqa = {**RECORDS[0], "meta_info": "step1", "tags": ["infectious"], "context": {"not": "text"}}
    medmcqa = {"id": "m1", "question": "Drug of choice for malaria?", "opa": "chloroquine", "opb": "metformin",
               "opc": "albuterol", "opd": "insulin", "cop": 1, "exp": "Chloroquine treats malaria.", "choice_type": "single"}
    records.write_text(json.dumps(medqa) + "\n" + json.dumps(medmcqa) + "\n")
    done = cli("run", str(records), "--out", str(tmp_path / "run"), "--kg-dir", str(fixture_kg_dir))
    assert done.returncode == 0, done.stderr
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())}
    assert rows["malaria"]["extra"] == {"meta_info": "step1", "tags": ["infectious"], "context": {"not": "text"}}
    assert rows["malaria"]["status"] == "accepted"  # a source's own "context" that is not text is no question context
    assert rows["m1"]["extra"] == {"choice_type": "single", "explanation": "Chloroquine treats malaria."}
