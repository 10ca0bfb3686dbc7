"""A run's identity through the command line: its fingerprint, what --resume refuses to mix,
ids that survive a renamed input, and merge across graphs and modes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fake_llm import FakeOpenAIServer
from tests.test_run_agent import RECORDS, llm_env

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, **env):
    return subprocess.run([sys.executable, str(ROOT / "run_agent.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**llm_env(), **env}, timeout=300)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def said(result) -> str:
    return " ".join(result.stderr.split())


def four_records(path: Path, with_ids: bool = True) -> Path:
    rows = [{**RECORDS[i % 2], "question": f"Case {i}. " + RECORDS[i % 2]["question"]} for i in range(4)]
    for i, row in enumerate(rows):
        row.pop("id")
        if with_ids:
            row["id"] = f"r{i}"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_resume_with_another_model_is_refused_naming_it_until_allow_changed_records_it(tmp_path, fixture_kg_dir, brain):
    records, run_dir = four_records(tmp_path / "in.jsonl"), tmp_path / "run"
    with FakeOpenAIServer(brain) as server:
        base = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--base-url", server.url]
        first = cli(*base, "--model", "model-a", "--limit", "2")
        assert first.returncode == 0, first.stderr
        hits = server.hits
        refused = cli(*base, "--model", "model-b", "--resume")
        assert refused.returncode == 2 and server.hits == hits  # refused before any LLM call
        assert 'model: "model-a" → "model-b"' in said(refused)
        assert "--allow-changed" in said(refused) and "new --out directory" in said(refused)
        assert len(lines(run_dir / "results.jsonl")) == 2

        going_on = cli(*base, "--model", "model-b", "--resume", "--allow-changed")
        assert going_on.returncode == 0, going_on.stderr
    assert {b["model"] for b in brain.requests[:hits]} == {"model-a"} and {b["model"] for b in brain.requests[hits:]} == {"model-b"}
    fingerprint = json.loads((run_dir / "fingerprint.json").read_text())
    assert fingerprint["model"] == "model-b"
    [change] = fingerprint["changes"]
    assert change["before"]["model"] == "model-a" and change["rows_before"] == ["r0", "r1"]
    assert change["changed"] == ['model: "model-a" → "model-b"']
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["changes"] == [{"at": change["at"], "changed": change["changed"], "rows_before": 2}]


def test_resume_with_a_changed_setting_or_input_is_refused_naming_it(tmp_path, fixture_kg_dir):
    records, run_dir = four_records(tmp_path / "in.jsonl"), tmp_path / "run"
    args = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir]
    assert cli(*args, "--limit", "2").returncode == 0
    refused = cli(*args, "--resume", MEDREASON_MAX_HOPS="2")
    assert refused.returncode == 2 and "settings.max_hops: 3 → 2" in said(refused)
    with open(records, "a") as f:
        f.write(json.dumps({**RECORDS[0], "id": "r9"}) + "\n")
    changed_input = cli(*args, "--resume")
    assert changed_input.returncode == 2 and "input.sha256:" in said(changed_input)
    assert len(lines(run_dir / "results.jsonl")) == 2


def test_resume_of_a_renamed_input_keeps_the_ids_made_from_its_name(tmp_path, fixture_kg_dir):
    records, run_dir = four_records(tmp_path / "questions.jsonl", with_ids=False), tmp_path / "run"
    first = cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--limit", "2")
    assert first.returncode == 0, first.stderr
    renamed = records.rename(tmp_path / "renamed.jsonl")
    resumed = cli("run", renamed, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "2 of 4 samples already done, 2 to go" in said(resumed)
    assert [r["id"] for r in lines(run_dir / "results.jsonl")] == [f"questions-{n}" for n in range(1, 5)]
