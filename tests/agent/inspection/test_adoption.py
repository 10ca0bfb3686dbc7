"""Adopting a fork as a sample's result, from the command line: a reviewer fixes a rejected
sample with ``replay --fork``, adopts the fork with ``adopt``, and the export takes it with
who adopted it; ``--branch 0`` brings the run's own row back."""

import json

from typer.testing import CliRunner

from agent.runs.reviews import read_reviews
from run_agent import app
from tests.agent.inspection.view_run import FIX, FIXED_QUESTION


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def rows(run_dir) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())}


# settings the fork runs with, recorded on the adopted row (the key never)
FORK_SETTINGS = ["settings.max_hops=2", "settings.api_key=sk-not-for-the-row"]


def fork_scurvy(run_dir, kg_dir) -> None:
    sets = [*FIX, *FORK_SETTINGS]
    forked = cli("replay", run_dir, "--sample", "scurvy", "--fork", 0, *(a for s in sets for a in ("--set", s)), "--kg-dir", kg_dir,
                 "--offline", "--json")
    assert forked.exit_code == 0, forked.output
    assert json.loads(forked.output)["fork"]["status"] == "accepted", forked.output


def test_an_adopted_fork_becomes_the_result_and_the_original_comes_back(reviewable_run, fixture_kg_dir, tmp_path):
    original = rows(reviewable_run)["scurvy"]
    assert original["status"] == "rejected"
    fork_scurvy(reviewable_run, fixture_kg_dir)

    done = cli("adopt", reviewable_run, "--sample", "scurvy", "--branch", 1, "--who", "dr b", "--note", "question fixed")
    assert done.exit_code == 0, done.output
    assert "now fork 1 (accepted; the run had rejected), adopted by dr b" in " ".join(done.output.split())
    row = rows(reviewable_run)["scurvy"]
    assert row["status"] == "accepted" and row["question"] == FIXED_QUESTION and row["reasoning"]
    adopted = row["adopted"]
    assert (adopted["branch"], adopted["who"], adopted["original_status"], adopted["forked_at_step"]) == (1, "dr b", "rejected", 0)
    assert adopted["changes"] == [f"record: question {len(original['question'])} chars→{len(FIXED_QUESTION)} chars"]
    assert adopted["checkpoint_id"]
    assert adopted["settings"] == ["settings.max_hops=2", "settings.api_key=[REDACTED]"]
    assert "sk-not-for-the-row" not in (reviewable_run / "results.jsonl").read_text()
    assert json.loads((reviewable_run / "adoptions.jsonl").read_text())["replaced"] == original
    review = read_reviews(reviewable_run)["scurvy"]
    assert (review["decision"], review["who"], review["note"], review["adopted"]) == ("accept", "dr b", "question fixed", 1)
    summary = json.loads((reviewable_run / "summary.json").read_text())
    assert summary["counts"]["accepted"] == 3 and summary["adopted_forks"] == 1

    out = tmp_path / "hf"
    exported = cli("export", reviewable_run, "--format", "hf", "--out", out, "--only-reviewed", "--json")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout) == {
        "written": 1, "out": str(out), "left_out": {"review:none": 1, "degraded": 1, "no question": 1}}
    [item] = map(json.loads, (out / "data" / "train.jsonl").read_text().splitlines())
    assert (item["id"], item["question"], item["review_decision"], item["reviewer"], item["adopted_fork"]) == (
        "scurvy", FIXED_QUESTION, "accept", "dr b", 1)
    assert item["provenance"]["adopted"]["who"] == "dr b" and item["provenance"]["review"]["note"] == "question fixed"
    assert item["provenance"]["adopted"]["settings"][0] == "settings.max_hops=2"
    card = (out / "README.md").read_text()
    assert "1 of 1 samples reviewed (accept 1) by dr b" in card and "adopted" in card and "1 not reviewed" in card

    restored = cli("adopt", reviewable_run, "--sample", "scurvy", "--branch", 0, "--who", "dr b")
    assert restored.exit_code == 0, restored.output
    assert rows(reviewable_run)["scurvy"] == original
    assert read_reviews(reviewable_run)["scurvy"]["decision"] == "flag"
    assert json.loads((reviewable_run / "summary.json").read_text())["counts"]["accepted"] == 2


def test_what_cannot_be_adopted_is_refused_with_the_reason(reviewable_run, fixture_kg_dir):
    before = (reviewable_run / "results.jsonl").read_bytes()
    for args, message in (
        (["--sample", "scurvy", "--branch", 1, "--who", "dr b"], "has no fork 1; its forks are none"),
        (["--sample", "scurvy", "--branch", 0, "--who", "dr b"], "adopted no fork"),
        (["--sample", "nope", "--branch", 1, "--who", "dr b"], "no sample 'nope'"),
        (["--sample", "broken", "--branch", 1, "--who", "dr b"], "never ran"),
        (["--sample", "scurvy", "--branch", 1, "--who", " "], "say who adopts the fork"),
    ):
        done = cli("adopt", reviewable_run, *args)
        assert done.exit_code == 2 and message in " ".join(done.output.split()), (args, done.output)
    assert (reviewable_run / "results.jsonl").read_bytes() == before
    assert not (reviewable_run / "adoptions.jsonl").exists()
