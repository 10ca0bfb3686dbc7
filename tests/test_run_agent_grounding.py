"""Grounding end to end: runs carry it and can require it, and `ground` reads any
chain-of-thought file, on the fixture KG, the PrimeKG slice and (for the example file) HPO."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.fake_llm import FakeBrain, FakeOpenAIServer, Quirks
from tests.test_run_agent import RECORDS

ROOT = Path(__file__).resolve().parents[1]
LABELS = {"grounded", "contradicted", "unsupported", "unlinked"}


def cli(*args, env=None):
    return subprocess.run([sys.executable, str(ROOT / "run_agent.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env=env)


def lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def kg_only_run(tmp_path_factory, fixture_kg_dir):
    tmp = tmp_path_factory.mktemp("grounded")
    records = tmp / "in.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n{broken\n")
    done = cli("run", str(records), "--out", str(tmp / "run"), "--kg-dir", str(fixture_kg_dir), "--min-grounding", "1")
    assert done.returncode == 0, done.stderr
    return tmp / "run", done


def assert_every_accepted_sample_is_fully_grounded(rows):
    accepted = [r for r in rows if r["status"] == "accepted"]
    assert accepted
    for row in accepted:
        grounding = row["grounding"]
        assert grounding["score"] == 1.0 and grounding["adherence"] == 1.0, (row["id"], grounding)
        assert all(s["label"] == "grounded" for s in grounding["steps"])


def test_every_accepted_kg_only_sample_scores_one_and_the_summary_gives_the_distribution(kg_only_run):
    run_dir, done = kg_only_run
    rows = lines(run_dir / "results.jsonl")
    assert_every_accepted_sample_is_fully_grounded(rows)
    malaria = next(r for r in rows if r["id"] == "malaria")
    step = malaria["grounding"]["steps"][0]
    assert set(step) == {"text", "label", "entities", "evidence"} and step["entities"][0]["node_id"]
    assert next(r for r in rows if r["id"] == "in-4")["grounding"] is None  # an error row: never reasoned
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["min_grounding"] == 1.0
    assert summary["grounding"]["score_bins"]["1.0"] == sum(r["status"] == "accepted" for r in rows)
    assert summary["grounding"]["steps"]["grounded"] == sum(len(r["grounding"]["steps"]) for r in rows if r["grounding"]
                                                            and r["grounding"]["steps"])
    assert "grounding (mean score)" in done.stdout


def test_every_accepted_kg_only_sample_of_the_primekg_slice_scores_one(tmp_path):
    kg_dir = tmp_path / "kg"
    assert cli("kg", "build", "--source", "primekg", "--input", str(FIXTURES / "primekg_slice.csv"), "--kg-dir", str(kg_dir)).returncode == 0
    records = tmp_path / "in.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in [
        {"id": "adhd", "question": "Which drug acting on SLC6A3 treats attention deficit hyperactivity disorder?",
         "options": {"A": "Dextroamphetamine", "B": "Levamlodipine"}, "answer": "Dextroamphetamine", "answer_idx": "A"},
        {"id": "nos3", "question": "Which drug acts on NOS3 and is metabolised by CYP3A4?",
         "options": {"A": "Levamlodipine", "B": "Dextroamphetamine"}, "answer": "Levamlodipine", "answer_idx": "A"},
    ]) + "\n")
    assert cli("run", str(records), "--out", str(tmp_path / "run"), "--kg-dir", str(kg_dir)).returncode == 0
    assert_every_accepted_sample_is_fully_grounded(lines(tmp_path / "run" / "results.jsonl"))


def test_every_accepted_sample_of_the_example_file_scores_one_on_hpo(tmp_path, hpo_kg_dir):
    done = cli("run", str(ROOT / "examples" / "medqa_sample.jsonl"), "--out", str(tmp_path / "run"), "--kg-dir", str(hpo_kg_dir))
    assert done.returncode == 0, done.stderr
    assert_every_accepted_sample_is_fully_grounded(lines(tmp_path / "run" / "results.jsonl"))


def test_ground_reads_our_results_and_every_export_format_alike(kg_only_run, fixture_kg_dir, tmp_path):
    run_dir, _ = kg_only_run
    graded = {}
    for source, name in [(run_dir / "results.jsonl", "results"), *[(None, f) for f in ("medreason", "huatuo", "sft", "hf")]]:
        if source is None:
            target = tmp_path / (name if name == "hf" else f"{name}.jsonl")
            assert cli("export", str(run_dir), "--format", name, "--out", str(target)).returncode == 0
            source = target / "data" / "train.jsonl" if name == "hf" else target
        done = cli("ground", str(source), "--kg-dir", str(fixture_kg_dir), "--out", str(tmp_path / f"{name}.grounding.jsonl"))
        assert done.returncode == 0, done.stderr  # an error row of results is read: it has no steps
        graded[name] = lines(tmp_path / f"{name}.grounding.jsonl")
    accepted = [r for r in graded["results"] if "grounding" in r and r["grounding"]["steps"]]
    for name in ("medreason", "huatuo", "sft", "hf"):
        assert [r["grounding"]["score"] for r in graded[name]] == [1.0] * len(accepted), name
        assert [[s["label"] for s in r["grounding"]["steps"]] for r in graded[name]] == \
            [[s["label"] for s in r["grounding"]["steps"]] for r in accepted], name
    summary = json.loads((tmp_path / "hf.grounding.jsonl.summary.json").read_text())
    assert summary["records"] == summary["graded"] == len(accepted) and summary["errors"] == 0


def test_ground_reads_other_datasets_and_turns_unreadable_records_into_error_lines(fixture_kg_dir, tmp_path):
    records = [
        {"question": "Fever after travel?", "reasoning": "Finding reasoning paths:\n1. Fever -> Malaria -> Chloroquine\n\n"
         "Reasoning Process:\n1. Malaria presents with fever.\n2. Chloroquine is indicated for malaria.\n\nConclusion:\nA",
         "dataset_name": "medqa", "id_in_dataset": 7},
        {"Question": "Wheeze?", "Complex_CoT": "Okay, wheezing. Asthma presents with wheezing. Aspirin treats asthma.",
         "Response": "albuterol"},
        {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content":
                      "<think>\nMetformin treats lactic acidosis.\n</think>\n\nThe answer is B."}]},
        {"question": "no reasoning here"},
        ["not", "an", "object"],
        {"reasoning": 42},
    ]
    source = tmp_path / "cot.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in records[:3]) + "\n{broken json\n"
                      + "\n".join(json.dumps(r) for r in records[3:]) + "\n")
    done = cli("ground", str(source), "--kg-dir", str(fixture_kg_dir), "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 1, done.stderr
    out = lines(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == ["medqa:7", "cot-2", "cot-3", "cot-4", "cot-5", "cot-6", "cot-7"]
    medreason, huatuo, trl = (r["grounding"] for r in out[:3])
    assert medreason["score"] == 1.0 and medreason["adherence"] == 1.0  # the listed path, held by the graph
    assert [s["label"] for s in huatuo["steps"]] == ["unlinked", "grounded", "contradicted"]
    assert [s["label"] for s in trl["steps"]] == ["unsupported"]
    errors = {r["id"]: r["error"] for r in out[3:]}
    assert "not valid JSON" in errors["cot-4"]
    assert "no chain of thought" in errors["cot-5"] and "expected a JSON object" in errors["cot-6"]
    assert "'reasoning' holds int" in errors["cot-7"]
    assert set(out[0]) == {"id", "grounding"} and set(out[0]["grounding"]) == {"score", "adherence", "steps"}
    assert "graded" in done.stdout and "4" in done.stdout


def test_ground_keeps_the_valid_records_beside_a_lone_surrogate_and_says_which_steps_were_not_graded(
        fixture_kg_dir, tmp_path):
    good = {"id": "good", "reasoning": "Malaria presents with fever."}
    surrogate = json.dumps({"id": "bad", "reasoning": "Malaria presents with fever."}).replace("with", "wi\\ud800th")
    long = {"id": "long", "reasoning": "Reasoning Process:\n" + "".join(
        f"{i}. {'Malaria presents with fever' if i % 2 else 'Asthma presents with fever'}.\n" for i in range(1, 10_001))}
    source = tmp_path / "cot.jsonl"
    source.write_text("\n".join([json.dumps(good), surrogate, json.dumps(long)]) + "\n")
    done = cli("ground", str(source), "--kg-dir", str(fixture_kg_dir), "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    good_row, bad_row, long_row = lines(tmp_path / "out.jsonl")
    assert good_row["id"] == "good" and good_row["grounding"]["score"] == 1.0
    assert bad_row["id"] == "bad" and "field 'reasoning' holds a lone surrogate (U+D800)" in bad_row["error"]
    steps = long_row["grounding"]["steps"]  # each numbered step its own, none merged into another
    assert len(steps) == 1000 and long_row["grounding"]["ungraded_steps"] == 9000
    assert [s["text"] for s in steps[-2:]] == ["Malaria presents with fever.", "Asthma presents with fever."]
    summary = json.loads((tmp_path / "out.jsonl.summary.json").read_text())
    assert summary["records"] == 3 and summary["errors"] == 1 and summary["ungraded_steps"] == 9000
    assert "steps not graded (past a record's first 1,000)" in " ".join(done.stdout.split())


def test_ground_refuses_what_it_cannot_start_on(fixture_kg_dir, tmp_path):
    missing = cli("ground", str(tmp_path / "none.jsonl"), "--kg-dir", str(fixture_kg_dir), "--out", str(tmp_path / "o.jsonl"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"reasoning": "Malaria presents with fever."}) + "\n")
    (tmp_path / "o.jsonl").write_text("keep me")
    kept = cli("ground", str(source), "--kg-dir", str(fixture_kg_dir), "--out", str(tmp_path / "o.jsonl"))
    assert kept.returncode == 2 and (tmp_path / "o.jsonl").read_text() == "keep me"


def llm_run(tmp_path, kg_dir, brain, *extra):
    records = tmp_path / "in.jsonl"
    records.write_text(json.dumps(RECORDS[0]) + "\n")
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    with FakeOpenAIServer(brain) as server:
        done = cli("run", str(records), "--out", str(tmp_path / "run"), "--kg-dir", str(kg_dir),
                   "--base-url", server.url, "--model", "fake-model", *extra, env=env)
    assert done.returncode == 0, done.stderr
    assert brain.violations == []
    return lines(tmp_path / "run" / "results.jsonl")[0]


def test_false_steps_a_model_writes_are_flagged(tmp_path, fixture_kg_dir, loaded):
    brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph], Quirks(false_steps=1.0))
    row = llm_run(tmp_path, fixture_kg_dir, brain)
    labels = {s["text"].rstrip("."): s["label"] for s in row["grounding"]["steps"]}
    assert {f["kind"] for f in brain.false_steps} == {"wrong relation", "contradicted", "unrelated pair"}
    for false in brain.false_steps:
        expected = {"contradicted"} if false["kind"] == "contradicted" else {"unsupported"}
        assert labels[false["text"]] in expected, (false, labels)
    restated = [s for s in row["grounding"]["steps"] if s["text"].rstrip(".") not in {f["text"] for f in brain.false_steps}]
    assert {s["label"] for s in restated} <= {"grounded", "unlinked"}
    assert row["status"] == "accepted" and row["grounding"]["score"] < 0.9  # no minimum asked


def test_min_grounding_rejects_the_false_steps_and_the_retry_is_told_which(tmp_path, fixture_kg_dir, loaded):
    brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph], Quirks(false_steps=1.0, repair_factor=0.0))
    row = llm_run(tmp_path, fixture_kg_dir, brain, "--min-grounding", "0.9")
    first, second = row["attempts"][:2]
    assert first["reason"].startswith("ungrounded reasoning") and not first["correct"]
    generates = [b["messages"][0]["content"] for b in brain.requests if "Medical facts:" in str(b["messages"][0]["content"])]
    assert len(generates) >= 2 and "do not back" not in generates[0]
    for false in brain.false_steps:  # the retry's prompt names every step that was not backed
        assert false["text"] in generates[1]
    assert second["correct"] and row["status"] == "accepted" and row["grounding"]["score"] == 1.0
