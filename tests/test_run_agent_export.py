"""`export` from the command line: every format and flag, after sharded runs merged."""

import asyncio
import json

from typer.testing import CliRunner

from agent.runs.runner import RunOptions, run_dataset
from run_agent import app
from tests.conftest import MALARIA

RECORDS = [
    {**MALARIA, "id": "malaria"},
    {"id": "mcq1", "question": "Which drug treats tuberculosis?", "opa": "rifampin", "opb": "metformin", "opc": "albuterol",
     "opd": "levothyroxine", "cop": 0, "exp": "Rifampin is a first-line antitubercular drug."},
]


def export(*args):
    return CliRunner().invoke(app, ["export", *map(str, args)])


def test_every_format_and_flag_after_a_sharded_run(tmp_path, make_settings):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    for i in range(2):
        asyncio.run(run_dataset(tmp_path / "in.jsonl", tmp_path / f"s{i}", make_settings(), RunOptions(shard=(i, 2))))
    assert CliRunner().invoke(app, ["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "all")]).exit_code == 0
    run = tmp_path / "all"

    statuses = [json.loads(line)["status"] for line in (run / "results.jsonl").read_text().splitlines()]
    accepted = export(run, "--format", "medreason", "--out", tmp_path / "accepted.jsonl")  # what the gate accepted
    assert accepted.exit_code == 0 and f"Wrote {statuses.count('accepted')} samples" in accepted.output
    rejected = statuses.count("rejected")
    assert (f"Left out {rejected} rows: {rejected} rejected by the run; --all takes them" in " ".join(accepted.output.split())
            if rejected else "Left out" not in accepted.output)
    done = export(run, "--format", "medreason", "--all", "--out", tmp_path / "mr.jsonl", "--dataset-name", "medbullets")
    assert done.exit_code == 0 and "Wrote 2 samples" in done.output and "containing 'ours'" in done.output
    items = sorted((json.loads(line) for line in (tmp_path / "mr.jsonl").read_text().splitlines()), key=lambda i: i["id_in_dataset"])
    assert [(i["dataset_name"], i["id_in_dataset"]) for i in items] == [("medbullets", 0), ("medbullets", 1)]  # positions survive shards
    assert "Note:" not in export(run, "--format", "medreason", "--out", tmp_path / "medreason_ours.jsonl").output

    assert export(run, "--format", "huatuo", "--all", "--out", tmp_path / "h.json").exit_code == 0
    assert {d["Response"] for d in json.loads((tmp_path / "h.json").read_text())} == {
        "The answer is A. chloroquine.", "The answer is A. rifampin. Explanation: Rifampin is a first-line antitubercular drug.",
    }

    assert export(run, "--format", "sft", "--all", "--thinking-tags", "--system", "Be careful.", "--out", tmp_path / "s.jsonl").exit_code == 0
    for line in (tmp_path / "s.jsonl").read_text().splitlines():
        system, user, assistant = json.loads(line)["messages"]
        assert system == {"role": "system", "content": "Be careful."} and user["role"] == "user"
        assert assistant["content"].startswith("<think>\n") and "\n</think>\n\nThe answer is A." in assistant["content"]

    assert export(run, "--format", "hf", "--out", tmp_path / "hf").exit_code == 0
    assert (tmp_path / "hf" / "data" / "train.jsonl").exists() and (tmp_path / "hf" / "README.md").exists()
    bad = export(run, "--format", "alpaca", "--out", tmp_path / "x.jsonl")
    assert bad.exit_code == 2 and "unknown --format 'alpaca'" in bad.output
