"""Decontamination and duplicates (agent.runs.overlap) on small hand-written MedQA-style records."""

import json

import pytest

from agent.runs.overlap import check, read_sets, repeated_questions
from agent.runs.records import FieldMap, InputError, parse_record, read_raw
from agent.runs.runner import RunOptions

# Five distinct questions, two of them on one vignette (MedQA reuses vignettes with another question).
VIGNETTE = ("A 32-year-old woman comes to the physician because she feels depressed, has difficulty sleeping, has a poor "
            "appetite, and has had trouble concentrating for the past 3 months. During high school she went through "
            "similar episodes of low mood. At that time, she would repeatedly engage in binge eating and purging behavior. "
            "There is no evidence of suicidal ideation.")
EVAL = [
    {"id": "e1", "question": VIGNETTE + " Treatment with which of the following drugs should be avoided in this patient?",
     "options": {"A": "Bupropion", "B": "Citalopram", "C": "Fluoxetine", "D": "Mirtazapine"}, "answer_idx": "A"},
    {"id": "e2", "question": "A 67-year-old man with transitional cell carcinoma of the bladder comes to the physician because of "
     "a 2-day history of ringing in his ear. He received his first course of neoadjuvant chemotherapy 1 week ago. Pure tone "
     "audiometry shows a sensorineural hearing loss of 45 dB. The beneficial effect of the drug that caused his symptoms is "
     "most likely due to which of the following actions?",
     "options": {"A": "Inhibition of thymidine synthesis", "B": "Cross-linking of DNA", "C": "Inhibition of microtubule formation",
                 "D": "Generation of free radicals"}, "answer_idx": "B"},
    {"id": "e3", "question": "A 45-year-old man comes to the emergency department because of crushing chest pain radiating to "
     "his left arm for 40 minutes. He has smoked one pack of cigarettes daily for 25 years. An electrocardiogram shows ST "
     "elevations in leads II, III and aVF. Which of the following coronary arteries is most likely occluded?",
     "options": {"A": "Left anterior descending", "B": "Left circumflex", "C": "Right coronary", "D": "Left main"}, "answer_idx": "C"},
]
OTHER = [  # real questions of another exam: the same vignette asking something else, and a question on another topic
    {"question": VIGNETTE + " Which of the following is the most likely diagnosis?",
     "options": {"A": "Bulimia nervosa", "B": "Major depressive disorder", "C": "Dysthymia", "D": "Bipolar disorder"}, "answer_idx": "B"},
    {"question": "A 6-year-old boy is brought to the physician because of a 3-day history of fever and a sore throat. He has "
     "tender anterior cervical lymph nodes and tonsillar exudates. A rapid antigen test is positive. Which of the following "
     "is the most appropriate pharmacotherapy?",
     "options": {"A": "Penicillin V", "B": "Azithromycin", "C": "Ciprofloxacin", "D": "Doxycycline"}, "answer_idx": "A"},
]


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def reformatted(record):
    """Case, spacing and punctuation changed, options shuffled and relettered."""
    texts = list(record["options"].values())[::-1]
    answer = record["options"][record["answer_idx"]]
    return {"question": "  " + record["question"].upper().replace(",", " ;").replace(" ", "  ") + " ",
            "options": {f"({letter})": text.lower() for letter, text in zip("abcd", texts)},
            "answer_idx": "abcd"[texts.index(answer)]}


def edited(record):
    """A sentence dropped, the age changed, a word swapped."""
    question = record["question"].replace("He has smoked one pack of cigarettes daily for 25 years. ", "")
    question = question.replace("45-year-old", "47-year-old").replace("crushing", "severe")
    return {**record, "question": question, "id": "edited"}


def report(tmp_path, train, evals=EVAL, **kwargs):
    result = check(read_sets([write(tmp_path / "train.jsonl", train)]), read_sets([write(tmp_path / "exam.jsonl", evals)]), **kwargs)
    return {row["id"]: row for row in result.rows()}, result


def test_verbatim_reformatted_and_edited_copies_are_found_each_match_naming_its_method_and_score(tmp_path):
    train = [{**EVAL[0], "id": "verbatim"}, {**reformatted(EVAL[1]), "id": "reformatted"}, edited(EVAL[2])]
    rows, result = report(tmp_path, train)
    for record_id, eval_id in (("verbatim", "e1"), ("reformatted", "e2"), ("edited", "e3")):
        assert rows[record_id]["matches"], record_id
        assert {m["eval"] for m in rows[record_id]["matches"]} == {"exam"}
        assert {m["eval_id"] for m in rows[record_id]["matches"]} == {eval_id}
    methods = {record_id: {m["method"]: m["score"] for m in rows[record_id]["matches"]} for record_id in rows}
    assert methods["verbatim"] == methods["reformatted"] == {"exact": 1.0, "ngram-8": 1.0, "ngram-13": 1.0, "fuzzy": 100.0}
    assert "exact" not in methods["edited"] and 0.5 <= methods["edited"]["ngram-8"] < 1.0
    assert methods["edited"].get("ngram-13", 0) < methods["edited"]["ngram-8"]  # a longer gram is broken by more edits
    span = rows["edited"]["matches"][0]["span"]
    assert span == "an electrocardiogram shows st elevations in leads ii iii and avf which of the following coronary arteries is most likely occluded left anterior descending left circumflex left main right coronary"
    summary = result.summary()
    assert summary["matched"] == 3 and summary["by_eval"]["exam"]["records"] == 3
    assert summary["by_eval"]["exam"]["methods"]["ngram-8"] == 3 and summary["by_eval"]["exam"]["methods"]["exact"] == 2


def test_distinct_questions_stay_distinct_and_the_same_vignette_with_another_answer_is_only_for_review(tmp_path):
    rows, result = report(tmp_path, OTHER)
    assert all(not row["matches"] for row in rows.values())
    [same_vignette] = rows["train-1"]["review"][:1]
    assert same_vignette["eval_id"] == "e1" and same_vignette["answers_differ"] is True
    assert rows["train-2"]["review"] == []
    assert result.summary()["for_review"] == 1


def test_a_copy_with_another_gold_answer_is_not_a_match(tmp_path):
    relabelled = {**EVAL[2], "id": "relabelled", "answer_idx": "A"}
    rows, _ = report(tmp_path, [relabelled])
    assert rows["relabelled"]["matches"] == []
    assert {m["method"] for m in rows["relabelled"]["review"]} >= {"exact", "ngram-8"}


def test_a_free_text_record_naming_the_answer_matches_an_mcq_evaluation_question(tmp_path):
    huatuo = {"Question": EVAL[2]["question"] + " A. Left anterior descending B. Left circumflex C. Right coronary D. Left main",
              "Complex_CoT": "Inferior leads point to the right coronary artery.", "Response": "The answer is the right coronary artery."}
    rows, _ = report(tmp_path, [huatuo])
    assert {m["method"] for m in rows["train-1"]["matches"]} >= {"ngram-8", "ngram-13"}


def reworded(record, every=14):
    """A word replaced every ``every`` words: most 8-grams broken, most 3-word shingles kept."""
    words = record["question"].split()
    for at in range(5, len(words), every):
        words[at] = "hyperextension"
    return {**record, "question": " ".join(words)}


def test_duplicates_within_and_across_files_exact_edited_and_reworded(tmp_path):
    unnamed = [{k: v for k, v in r.items() if k != "id"} for r in EVAL]
    edited_copy = {**OTHER[1], "question": OTHER[1]["question"].replace("6-year-old", "7-year-old")}
    first = write(tmp_path / "a.jsonl", [OTHER[0], OTHER[1], edited_copy, unnamed[1]])
    second = write(tmp_path / "b.jsonl", [reformatted(OTHER[0]), unnamed[2], reworded(unnamed[1])])
    result = check(read_sets([first, second]), read_sets([write(tmp_path / "exam.jsonl", EVAL[:1])]))
    rows = {(row["file"], row["id"]): row for row in result.rows()}
    assert rows["a", "a-1"]["duplicates"] == [{"file": "b", "id": "b-1", "method": "exact", "score": 1.0}]
    assert rows["b", "b-1"]["duplicates"] == [{"file": "a", "id": "a-1", "method": "exact", "score": 1.0}]
    [found] = rows["a", "a-2"]["duplicates"]
    assert (found["id"], found["method"]) == ("a-3", "ngram-8") and 0.5 <= found["score"] < 1.0
    [found] = rows["b", "b-3"]["duplicates"]  # reworded throughout: only MinHash sees it
    assert (found["file"], found["id"], found["method"]) == ("a", "a-4", "minhash") and 0.5 <= found["score"] < 1.0
    assert rows["a", "a-4"]["duplicates"] == [{**found, "file": "b", "id": "b-3"}]
    assert rows["b", "b-2"]["duplicates"] == []
    assert result.summary()["duplicates"] == {"records": 6, "by_method": {"exact": 2, "ngram-8": 2, "minhash": 2}}


def test_content_ids_name_the_same_question_alike_in_two_files(tmp_path):
    fields = FieldMap(id_from="content")
    a = [parse_record(raw, fields) for raw in read_raw(_file(tmp_path / "medqa50.jsonl", OTHER))]
    b = [parse_record(raw, fields) for raw in read_raw(_file(tmp_path / "medqa120.jsonl", [OTHER[1], reformatted(OTHER[0])]))]
    assert [r["id"] for r in b] == [a[1]["id"], a[0]["id"]] and a[0]["id"] != a[1]["id"]
    assert a[0]["id"].startswith("q-")
    own = [parse_record(raw, fields) for raw in read_raw(_file(tmp_path / "own.jsonl", [{**OTHER[0], "id": "x7"}]))]
    assert own[0]["id"] == "x7"  # a record's own id is kept


def _file(path, records):
    write(path, records)
    return path


def test_repeated_questions_of_result_rows(tmp_path):
    rows = [{"id": "medqa50-1", **OTHER[0], "answer": "Major depressive disorder"},
            {"id": "medqa120-1", **reformatted(OTHER[0]), "answer": "major depressive disorder"},
            {"id": "medqa120-2", **OTHER[1], "answer": "Penicillin V"}]
    assert repeated_questions(rows) == ["medqa120-1 = medqa50-1 (exact)"]
    assert repeated_questions([rows[0], rows[2]]) == []


def test_unreadable_records_get_their_line_with_the_error(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(EVAL[0]) + "\n{not json\n")
    result = check(read_sets([str(path)]), read_sets([write(tmp_path / "exam.jsonl", EVAL)]))
    rows = list(result.rows())
    assert [r["id"] for r in rows] == ["e1", "train-2"]
    assert "not valid JSON" in rows[1]["error"] and rows[1]["matches"] == []
    assert result.summary()["unreadable"] == 1 and result.summary()["records"] == 2


def test_embeddings_list_close_candidates_for_review(tmp_path, embedder):
    paraphrase = {**EVAL[2], "id": "paraphrase",
                  "question": "A 45-year-old man presents to the emergency room with crushing chest pain that radiates to the "
                              "left arm for 40 minutes. He has smoked a pack of cigarettes a day for 25 years. The ECG shows ST "
                              "elevation in leads II, III and aVF. Which coronary artery is most likely occluded?"}
    rows, _ = report(tmp_path, [paraphrase], embedder=embedder)
    assert rows["paraphrase"]["matches"] == []
    [close] = [m for m in rows["paraphrase"]["review"] if m["method"] == "embedding"]
    assert close["eval_id"] == "e3" and close["score"] >= 0.9
    rows, _ = report(tmp_path, [paraphrase])
    assert not [m for m in rows["paraphrase"]["review"] if m["method"] == "embedding"]


def test_hugging_face_names_are_refused_when_malformed():
    with pytest.raises(InputError, match="hf:OWNER/NAME"):
        read_sets(["hf:not a name"], RunOptions())


def test_hugging_face_names_without_the_datasets_package_say_which_extra_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # as on a core install: import datasets fails
    with pytest.raises(InputError, match=r"needs the datasets package: pip install 'medreason-agent\[hf\]'"):
        read_sets(["hf:openlifescienceai/medmcqa@validation"], RunOptions())
