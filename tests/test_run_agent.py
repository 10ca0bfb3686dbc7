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
    assert malaria["thread_id"] == "malaria" and malaria["usage"]["llm_calls"] == 0
    assert "questions.jsonl:4: not valid JSON" in rows[3]["error"]
    assert "'options' must be an object" in rows[4]["error"]
    assert len(rows[2]["attempts"]) == 3 and rows[2]["verification"]["reason"] == "no path"

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["counts"] == {"accepted": 2, "rejected": 1, "error": 2}
    assert summary["with_path_share"] == 0.4 and summary["rejection_reasons"] == {"no path": 1}
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
