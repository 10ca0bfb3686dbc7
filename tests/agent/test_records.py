import json

import pytest

from agent.records import InputError, RecordError, parse_record, read_raw


def records(tmp_path, text, name="in.jsonl"):
    path = tmp_path / name
    path.write_text(text)
    return list(read_raw(path))


def parsed(tmp_path, obj):
    (raw,) = records(tmp_path, json.dumps(obj) + "\n")
    return parse_record(raw)


def test_medqa_record(tmp_path):
    rec = parsed(tmp_path, {"question": " Q? ", "options": {"A": "x", "B": "y"}, "answer": "y", "answer_idx": "B", "id": 7})
    assert rec == {"id": "7", "question": "Q?", "options": {"A": "x", "B": "y"}, "answer": "y", "answer_idx": "B"}


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
