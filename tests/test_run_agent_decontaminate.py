"""`decontaminate`, `run --exclude-overlap`, `merge` of repeated questions and `--id-from content`,
from the command line."""

import json
import os

from tests.fake_llm import FakeBrain, FakeOpenAIServer
from tests.test_run_agent import RECORDS
from tests.test_run_agent_identity import cli, lines, said

# The evaluation set holds a re-formatted copy of "tb" (case, punctuation, options relettered in another order).
EXAM = [
    {"id": "exam-7", "question": "a MAN has hemoptysis, and night-sweats! what is the most likely diagnosis",
     "options": {"a": "Tuberculosis", "b": "Asthma"}, "answer_idx": "a"},
    {"id": "exam-8", "question": "A woman has a butterfly rash and joint pain. Which antibody is most specific for the disease?",
     "options": {"A": "anti-dsDNA", "B": "ANA"}, "answer_idx": "A"},
]


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_decontaminate_writes_one_line_per_record_and_prints_matches_per_set_and_method(tmp_path):
    records, exam = write(tmp_path / "train.jsonl", RECORDS + [RECORDS[0]]), write(tmp_path / "exam.jsonl", EXAM)
    done = cli("decontaminate", records, "--against", exam, "--out", tmp_path / "report.jsonl")
    assert done.returncode == 0, done.stderr
    rows = lines(tmp_path / "report.jsonl")
    assert [r["id"] for r in rows] == ["malaria", "tb", "scurvy", "malaria@train.jsonl:4"]
    assert [m["method"] for m in rows[1]["matches"]] == ["exact", "ngram-8", "ngram-13", "fuzzy"]
    assert {(m["eval"], m["eval_id"]) for m in rows[1]["matches"]} == {("exam", "exam-7")}
    assert rows[0]["matches"] == rows[2]["matches"] == []
    assert "duplicate id 'malaria'" in rows[3]["error"]  # run's id rules: its row says why
    printed = " ".join(done.stdout.split())
    assert "4 records checked against exam (2 questions)" in printed
    assert "exact 1, ngram-8 1, ngram-13 1, fuzzy 1" in printed and "tb = exam exam-7 (exact 1.0)" in printed
    assert "Matched: 1 of 4 records" in printed and "Unreadable records (their lines say why): 1" in printed

    again = cli("decontaminate", records, "--against", exam, "--out", tmp_path / "report.jsonl")
    assert again.returncode == 2 and "already exists; pass --force" in said(again)
    missing = cli("decontaminate", records, "--against", tmp_path / "nope.jsonl", "--out", tmp_path / "r2.jsonl")
    assert missing.returncode == 2 and "nope.jsonl does not exist" in said(missing) and not (tmp_path / "r2.jsonl").exists()


def test_decontaminate_reports_duplicates_across_files_and_content_ids_name_them_alike(tmp_path):
    unnamed = [{k: v for k, v in r.items() if k != "id"} for r in RECORDS]
    first = write(tmp_path / "medqa50.jsonl", unnamed[:2])
    second = write(tmp_path / "medqa120.jsonl", [{**unnamed[1], "question": unnamed[1]["question"].upper()}, unnamed[2]])
    done = cli("decontaminate", first, second, "--against", write(tmp_path / "exam.jsonl", EXAM[1:]),
               "--out", tmp_path / "report.jsonl", "--id-from", "content")
    assert done.returncode == 0, done.stderr
    rows = lines(tmp_path / "report.jsonl")
    assert [r["file"] for r in rows] == ["medqa50", "medqa50", "medqa120", "medqa120"]
    assert rows[1]["id"] == rows[2]["id"] and rows[1]["id"].startswith("q-")  # one question, one id
    assert rows[1]["duplicates"] == [{"file": "medqa120", "id": rows[2]["id"], "method": "exact", "score": 1.0}]
    assert rows[0]["duplicates"] == rows[3]["duplicates"] == []
    assert "Duplicates of other input records: 2 (exact 2)" in " ".join(done.stdout.split())
    refused = cli("decontaminate", first, "--against", first, "--out", tmp_path / "r.jsonl", "--id-from", "line")
    assert refused.returncode == 2 and "unknown --id-from 'line'; choose one of file, content" in said(refused)


def test_a_hugging_face_dataset_offline_is_a_clear_error(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = cli("decontaminate", "hf:GBaker/MedQA-USMLE-4-options@test", "--against", write(tmp_path / "exam.jsonl", EXAM),
               "--out", tmp_path / "report.jsonl", **env)
    assert done.returncode == 2, done.stderr
    assert said(done).startswith("error: hf:GBaker/MedQA-USMLE-4-options@test: cannot fetch the dataset from the Hugging "
                                 "Face Hub and it is not in the local cache (are you offline?")
    assert "Traceback" not in done.stderr and not (tmp_path / "report.jsonl").exists()


def test_run_exclude_overlap_sends_no_request_about_an_excluded_record_and_export_leaves_it_out(tmp_path, fixture_kg_dir, loaded):
    records, exam = write(tmp_path / "in.jsonl", RECORDS), write(tmp_path / "exam.jsonl", EXAM)
    brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph])
    with FakeOpenAIServer(brain) as server:
        done = cli("run", records, "--out", tmp_path / "run", "--kg-dir", fixture_kg_dir, "--base-url", server.url,
                   "--model", "fake-model", "--exclude-overlap", exam, OPENAI_API_KEY="sk-test")
    assert done.returncode == 0, done.stderr
    assert "Overlap check: 1 record(s) excluded as copies of" in said(done)
    assert brain.violations == [] and brain.requests  # the strict server saw valid requests ...
    asked = json.dumps(brain.requests).lower()
    assert RECORDS[1]["question"].lower() not in asked and "night sweats" not in asked  # ... none about the excluded record
    assert RECORDS[0]["question"].lower() in asked
    rows = {r["id"]: r for r in lines(tmp_path / "run" / "results.jsonl")}
    assert rows["tb"]["status"] == "excluded" and rows["tb"]["usage"]["llm_calls"] == 0
    assert rows["tb"]["reason"] == "overlaps exam exam-7 (exact 1.0)" and rows["tb"]["overlap"][0]["method"] == "exact"
    assert rows["malaria"]["status"] in ("accepted", "rejected")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["counts"]["excluded"] == 1 and summary["records"] == 3
    assert [(a["name"], a["questions"]) for a in summary["overlap_check"]["against"]] == [("exam", 2)]
    assert "excluded (evaluation overlap)" in done.stdout

    exported = cli("export", tmp_path / "run", "--format", "hf", "--out", tmp_path / "hf", "--all")
    assert exported.returncode == 0, exported.stderr
    items = lines(tmp_path / "hf" / "data" / "train.jsonl")
    assert "tb" not in {i["id"] for i in items} and len(items) == 2
    assert "Left out 1 rows: 1 excluded before the run (they overlap an evaluation set)" in " ".join(exported.stderr.split())
    assert items[0]["provenance"]["overlap_check"]["against"][0]["name"] == "exam"
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "- Decontamination: checked against exam (2 questions, " in card and "1 records excluded before generation" in card

    missing = cli("run", records, "--out", tmp_path / "run2", "--exclude-overlap", tmp_path / "nope.jsonl")
    assert missing.returncode == 2 and "nope.jsonl does not exist" in said(missing) and not (tmp_path / "run2").exists()
    resumed = cli("run", records, "--out", tmp_path / "run", "--kg-dir", fixture_kg_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr  # nothing left to do; the check stays recorded
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["overlap_check"] == summary["overlap_check"]


def test_merge_refuses_the_same_question_under_two_file_ids_unless_asked(tmp_path, fixture_kg_dir):
    unnamed = [{k: v for k, v in r.items() if k != "id"} for r in RECORDS]
    small, large = write(tmp_path / "medqa50.jsonl", unnamed[:2]), write(tmp_path / "medqa120.jsonl", unnamed)
    for name, path in (("a", small), ("b", large)):
        done = cli("run", path, "--out", tmp_path / name, "--kg-dir", fixture_kg_dir)
        assert done.returncode == 0, done.stderr
    refused = cli("merge", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "all")
    assert refused.returncode == 2 and not (tmp_path / "all").exists()
    assert "2 row(s) repeat the question of another row under another id: medqa120-1 = medqa50-1 (exact); " \
           "medqa120-2 = medqa50-2 (exact)" in said(refused) and "--allow-duplicates" in said(refused)
    merged = cli("merge", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "all", "--allow-duplicates")
    assert merged.returncode == 0, merged.stderr
    assert len(lines(tmp_path / "all" / "results.jsonl")) == 5

    for name, path in (("c", small), ("d", large)):
        done = cli("run", path, "--out", tmp_path / name, "--kg-dir", fixture_kg_dir, "--id-from", "content")
        assert done.returncode == 0, done.stderr
    by_content = cli("merge", tmp_path / "c", tmp_path / "d", "--out", tmp_path / "all2")
    assert by_content.returncode == 2 and "2 duplicate id(s): 'q-" in said(by_content)
