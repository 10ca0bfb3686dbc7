import json

import pytest

from agent.runs.records import InputError, RecordError, parse_record, read_raw


def records(tmp_path, text, name="in.jsonl"):
    path = tmp_path / name
    path.write_text(text)
    return list(read_raw(path))


def parsed(tmp_path, obj):
    (raw,) = records(tmp_path, json.dumps(obj) + "\n")
    return parse_record(raw)


def test_medqa_record(tmp_path):
    rec = parsed(tmp_path, {"question": " Q? ", "options": {"A": "x", "B": "y"}, "answer": "y", "answer_idx": "B", "id": 7})
    assert rec == {"id": "7", "question": "Q?", "options": {"A": "x", "B": "y"}, "answer": "y", "answer_idx": "B", "dataset": "medqa",
                   "position": 0}


def test_missing_pieces_are_derived_where_unambiguous(tmp_path):
    assert parsed(tmp_path, {"question": "Q", "options": {"A": "x"}, "answer_idx": "A"})["answer"] == "x"
    assert parsed(tmp_path, {"question": "Q", "options": {"A": "x"}, "answer": "x"})["answer_idx"] == "A"
    assert parsed(tmp_path, {"question": "Q", "answer": "x"})["id"] == "in-1"


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"answer": "x"}, "in.jsonl:1: field 'question' is missing or empty"),
        ({"question": "Q"}, "field 'answer' is missing or empty"),
        ({"question": "Q", "options": ["x", "y"], "answer": "x"}, "field 'options' must be an object mapping letters to texts"),
        ({"question": "Q", "options": {"A": "x"}, "answer_idx": "C"}, "'C', which is not one of the options"),
        (["not", "an", "object"], "a record must be a JSON object, found list"),
    ],
)
def test_bad_records_name_where_and_which_field(tmp_path, obj, message):
    with pytest.raises(RecordError, match=message.replace("(", r"\(")):
        parsed(tmp_path, obj)


def test_a_line_that_is_not_json_is_one_bad_record(tmp_path):
    raws = records(tmp_path, '{"question": "Q", "answer": "a"}\nnot json\n\n{"question": "R", "answer": "b"}\n')
    assert len(raws) == 3
    with pytest.raises(RecordError, match=r"in.jsonl:2: not valid JSON"):
        parse_record(raws[1])
    assert parse_record(raws[2])["id"] == "in-4"  # ids follow line numbers


def test_json_array_input(tmp_path):
    raws = records(tmp_path, json.dumps([{"question": "Q", "answer": "a"}]), "in.json")
    assert parse_record(raws[0])["question"] == "Q"


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text("  \n"), "is empty"),
    (lambda p: p.mkdir(), "is a directory"),
])
def test_unusable_files_stop_the_run(tmp_path, setup, message):
    path = tmp_path / "in.jsonl"
    setup(path)
    with pytest.raises(InputError, match=message):
        list(read_raw(path))


# -- schemas detected per record ------------------------------------------------------------
from agent.runs.records import FieldMap, detect_cop_base  # noqa: E402

MEDMCQA = {"id": "m1", "question": "Drug of choice for malaria?", "opa": "chloroquine", "opb": "metformin",
           "opc": "albuterol", "opd": "insulin", "cop": 1, "exp": "Chloroquine treats malaria.", "subject_name": "Pharm"}


def test_medmcqa_cop_is_one_based_by_default_and_zero_based_when_the_file_says_so(tmp_path):
    one = parsed(tmp_path, MEDMCQA)
    assert (one["answer_idx"], one["answer"], one["dataset"], one["id"]) == ("A", "chloroquine", "medmcqa", "m1")
    assert one["options"] == {"A": "chloroquine", "B": "metformin", "C": "albuterol", "D": "insulin"}
    assert one["extra"]["explanation"] == "Chloroquine treats malaria."
    raws = records(tmp_path, "\n".join(json.dumps({**MEDMCQA, "cop": c}) for c in (0, 1, 3)) + "\n")
    base = detect_cop_base(raws)
    assert base == 0
    assert [parse_record(r, FieldMap(cop_base=base))["answer_idx"] for r in raws] == ["A", "B", "D"]
    assert detect_cop_base(records(tmp_path, json.dumps({**MEDMCQA, "cop": 4}) + "\n")) == 1
    assert parsed(tmp_path, {**MEDMCQA, "cop": "c"})["answer_idx"] == "C"  # a letter is read as it is
    with pytest.raises(RecordError, match=r"in.jsonl:1: field 'cop' is 7, which is not an option \(1-based\)"):
        parsed(tmp_path, {**MEDMCQA, "cop": 7})
    with pytest.raises(RecordError, match="field 'opb' is missing or empty"):
        parsed(tmp_path, {**MEDMCQA, "opb": ""})


@pytest.mark.parametrize("obj", [
    {"QUESTION": "Does fever predict malaria?", "CONTEXTS": ["Fever is common.", "Malaria causes fever."],
     "final_decision": "yes", "LONG_ANSWER": "Fever is a cardinal sign."},
    {"pubid": 123, "question": "Does fever predict malaria?", "context": {"contexts": ["Fever is common.", "Malaria causes fever."]},
     "final_decision": "YES", "long_answer": "Fever is a cardinal sign."},
])
def test_pubmedqa_becomes_yes_no_maybe_keeping_context_and_long_answer(tmp_path, obj):
    rec = parsed(tmp_path, obj)
    assert rec["options"] == {"A": "yes", "B": "no", "C": "maybe"}
    assert (rec["answer"], rec["answer_idx"], rec["dataset"]) == ("yes", "A", "pubmedqa")
    assert rec["extra"] == {"context": "Fever is common.\nMalaria causes fever.", "long_answer": "Fever is a cardinal sign."}
    assert rec["id"] == ("123" if "pubid" in obj else "in-1")
    with pytest.raises(RecordError, match="field 'final_decision' must be yes, no or maybe, found 'perhaps'"):
        parsed(tmp_path, {**obj, "final_decision": "perhaps"})


def test_pubmedqa_original_json_object_keyed_by_id(tmp_path):
    raws = records(tmp_path, json.dumps({"2105": {"QUESTION": "Q?", "final_decision": "no"}}), "ori_pqal.json")
    rec = parse_record(raws[0])
    assert (rec["id"], rec["answer_idx"]) == ("2105", "B")


def test_huatuo_sft_is_free_text_keeping_the_cot(tmp_path):
    rec = parsed(tmp_path, {"Question": "What treats malaria?", "Complex_CoT": "Think...", "Response": "Chloroquine."})
    assert rec["options"] == {} and rec["answer_idx"] is None
    assert (rec["answer"], rec["dataset"], rec["extra"]) == ("Chloroquine.", "huatuogpt-o1", {"complex_cot": "Think..."})
    with pytest.raises(RecordError, match="field 'Response' is missing or empty"):
        parsed(tmp_path, {"Question": "Q", "Complex_CoT": "x"})


def test_csv_input_with_medmcqa_and_medqa_rows(tmp_path):
    text = (
        "id,question,opa,opb,opc,opd,cop\n"
        "c1,Drug for malaria?,chloroquine,metformin,albuterol,insulin,1\n"
        "c2,\"Multi, with comma?\",a,b,c,d,4\n"
        "c3,Bad cop?,a,b,c,d,x\n"
    )
    raws = records(tmp_path, text, "in.csv")
    assert [r.where for r in raws] == ["in.csv:2", "in.csv:3", "in.csv:4"]
    assert [parse_record(r)["answer_idx"] for r in raws[:2]] == ["A", "D"]
    with pytest.raises(RecordError, match="in.csv:4: field 'cop' must be the correct option"):
        parse_record(raws[2])
    medqa = records(tmp_path, 'question,options,answer_idx\nQ?,"{""A"": ""x"", ""B"": ""y""}",B\n', "q.csv")
    assert parse_record(medqa[0])["answer"] == "y"


def test_field_mapping_flags(tmp_path):
    fields = FieldMap(id="qid", question="prompt", answer="label", options="choices")
    (raw,) = records(tmp_path, json.dumps({"qid": "x9", "prompt": "Which?", "choices": ["fever", "cough"], "label": 1}) + "\n")
    rec = parse_record(raw, fields)
    assert rec == {"id": "x9", "question": "Which?", "options": {"A": "fever", "B": "cough"}, "answer": "cough",
                   "answer_idx": "B", "dataset": "custom", "position": 0}
    (raw,) = records(tmp_path, json.dumps({"qid": "x9", "prompt": "Which?", "choices": {"A": "fever", "B": "cough"}, "label": "A"}) + "\n")
    assert parse_record(raw, fields)["answer"] == "fever"
    (raw,) = records(tmp_path, json.dumps({"qid": "x9", "prompt": "Which?", "label": "fever"}) + "\n")
    assert parse_record(raw, fields)["answer"] == "fever"
    (raw,) = records(tmp_path, json.dumps({"prompt": "Which?", "label": "fever"}) + "\n")
    with pytest.raises(RecordError, match=r"field 'qid' \(--id-field\) is missing"):
        parse_record(raw, fields)
    (raw,) = records(tmp_path, json.dumps({"qid": 1, "label": "fever"}) + "\n")
    with pytest.raises(RecordError, match=r"in.jsonl:1: field 'prompt' \(--question-field\) is missing"):
        parse_record(raw, fields)
