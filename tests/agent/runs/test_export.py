"""Exports of a run read the way their consumers read them, on records of every input schema,
and merging the runs of shards.

The consumers (docs/export_formats.md): MedReason's SFT.py reads JSON/JSONL and, for a data
path containing "ours", ``question``/``reasoning``/``answer``, else ``Question``/
``Complex_CoT``/``Response``; HuatuoGPT-o1's SFT_stage1.py ``json.load``s one JSON array and
reads ``Question``/``Complex_CoT``/``Response``; TRL's SFTTrainer reads ``messages``, a list
of ``{"role", "content"}`` turns; ``datasets.load_dataset(DIR)`` reads the hf directory.
"""

import asyncio
import json

import pytest

from agent.runs.fingerprint import read_fingerprint
from jinja2 import Template

from agent.runs.export import ExportError, ExportOptions, export_run, merge_runs
from agent.runs.records import FieldMap
from agent.runs.runner import RunOptions, run_dataset
from tests.conftest import MALARIA

# One record per detected schema, in file positions 0..4 (position 4 is unparsable).
RECORDS = [
    {**MALARIA, "id": "malaria"},
    {"id": "mcq1", "question": "Which drug treats tuberculosis?", "opa": "rifampin", "opb": "metformin", "opc": "albuterol",
     "opd": "levothyroxine", "cop": 0, "exp": "Rifampin is a first-line antitubercular drug."},
    {"QUESTION": "Does fever occur in malaria?", "CONTEXTS": ["Malaria causes fever.", "Chloroquine treats malaria."],
     "final_decision": "yes", "LONG_ANSWER": "Yes, fever is typical.", "pubid": "p1"},
    {"Question": "A traveller has fever, splenomegaly and anemia. Which drug treats the likely disease?",
     "Response": "chloroquine", "Complex_CoT": "Malaria is likely; chloroquine treats it."},
]
CUSTOM = [{"qid": "c1", "prompt": "Hemoptysis and night sweats: which drug treats the likely disease?",
           "choices": ["metformin", "rifampin"], "gold": 1}]


def run(tmp, name, records, loaded, fields=FieldMap(), broken=False):
    from agent.config import Settings

    path = tmp / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + ("{broken\n" if broken else ""))
    info = {"kg": {"source": "triples", "sha256": "abc123", "nodes": 43, "edges": 1, "embedding_model": "minilm"}}
    asyncio.run(run_dataset(path, tmp / name, Settings(kg_dir=loaded.path), RunOptions(info=info, fields=fields)))
    # Rejected samples with reasoning, as an LLM run writes them (KG-only ones that found no path
    # have none, and training formats leave those out: test_run_agent_export_safety), so that
    # every schema reaches every format here.
    rows = [json.loads(line) for line in (tmp / name / "results.jsonl").read_text().splitlines()]
    (tmp / name / "results.jsonl").write_text("".join(
        json.dumps({**r, "reasoning": r["reasoning"] or (f"Reasoning about {r['id']}." if r.get("question") else "")}) + "\n"
        for r in rows))
    return tmp / name


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, loaded):
    return run(tmp_path_factory.mktemp("export"), "run", RECORDS, loaded, broken=True)


@pytest.fixture(scope="module")
def custom_dir(tmp_path_factory, loaded):
    fields = FieldMap(id="qid", question="prompt", answer="gold", options="choices")
    return run(tmp_path_factory.mktemp("custom"), "custom", CUSTOM, loaded, fields)


def every(run_dir, custom_dir, format, tmp_path, name, **options):
    """The export of both runs (every schema), rejected samples included."""
    opts = ExportOptions(include_all=True, **options)
    export_run(run_dir, format, tmp_path / f"a-{name}", opts)
    export_run(custom_dir, format, tmp_path / f"b-{name}", opts)
    return tmp_path / f"a-{name}", tmp_path / f"b-{name}"


def read_like_medreason_sft(path):
    """MedReason's SFT.py: .jsonl line by line, .json whole; fields by data path."""
    if str(path).endswith(".jsonl"):
        data = [json.loads(line) for line in path.read_text().splitlines()]
    else:
        data = json.loads(path.read_text())
    out = []
    for da in data:
        if "ours" in str(path):
            q, a = da["question"], "## Thinking\n\n{}\n\n## Final Answer\n\n{}".format(da["reasoning"], da["answer"])
        else:
            q, a = da["Question"], "## Thinking\n\n{}\n\n## Final Response\n\n{}".format(da["Complex_CoT"], da["Response"])
        assert q is not None and a is not None
        out.append((q, a))
    return data, out


def test_medreason_has_the_reference_fields_and_value_formats_for_every_schema(run_dir, custom_dir, tmp_path):
    a, b = every(run_dir, custom_dir, "medreason", tmp_path, "medreason_ours.jsonl")
    data, pairs = read_like_medreason_sft(a)
    custom, _ = read_like_medreason_sft(b)
    assert len(pairs) == 4
    by_name = {d["dataset_name"]: d for d in data + custom}
    assert set(by_name) == {"medqa", "medmcqa", "pubmedqa", "huatuogpt-o1", "custom"}
    for item in data + custom:
        assert list(item) == ["dataset_name", "id_in_dataset", "question", "answer", "reasoning", "options"]
        assert type(item["id_in_dataset"]) is int
    # id_in_dataset: the record's 0-based position in its input file
    assert [by_name[n]["id_in_dataset"] for n in ("medqa", "medmcqa", "pubmedqa", "huatuogpt-o1", "custom")] == [0, 1, 2, 3, 0]
    medqa = by_name["medqa"]
    assert medqa["answer"] == "chloroquine" and medqa["question"] == MALARIA["question"]
    assert medqa["options"] == "Answer Choices:\nA. chloroquine\nB. metformin\nC. albuterol\nD. levothyroxine"
    assert by_name["medmcqa"]["answer"] == "rifampin. Explanation: Rifampin is a first-line antitubercular drug."
    pubmed = by_name["pubmedqa"]
    assert pubmed["answer"] == "The final decision is: yes. Yes, fever is typical."
    assert pubmed["question"] == ("Context: Malaria causes fever.\nChloroquine treats malaria.\n\n"
                                  "Question: Does fever occur in malaria?")
    assert pubmed["options"] == "Answer Choices:\nA. yes\nB. no\nC. maybe"
    assert by_name["huatuogpt-o1"]["answer"] == "chloroquine" and by_name["huatuogpt-o1"]["options"] == ""
    assert by_name["custom"]["answer"] == "rifampin" and by_name["custom"]["options"] == "Answer Choices:\nA. metformin\nB. rifampin"
    accepted = next(d for d in data if d["dataset_name"] == "medqa")
    assert "Finding reasoning paths:" in accepted["reasoning"]


def test_dataset_name_can_be_set(run_dir, tmp_path):
    export_run(run_dir, "medreason", tmp_path / "mb.jsonl", ExportOptions(dataset_name="medbullets", include_all=True))
    assert {json.loads(line)["dataset_name"] for line in (tmp_path / "mb.jsonl").read_text().splitlines()} == {"medbullets"}


def test_huatuo_is_a_json_array_that_huatuogpt_o1_and_medreason_read(run_dir, custom_dir, tmp_path):
    a, b = every(run_dir, custom_dir, "huatuo", tmp_path, "huatuo.json")
    for path in (a, b):
        data = json.load(open(path))  # HuatuoGPT-o1's SFT_stage1.py
        for da in data:
            assert list(da) == ["Question", "Complex_CoT", "Response"]
            assert all(isinstance(da[k], str) for k in da)
        read_like_medreason_sft(path)
    data = {d["Question"].split("\n")[0]: d for d in json.load(open(a)) + json.load(open(b))}
    medqa = data[MALARIA["question"]]
    assert medqa["Question"].endswith("Answer Choices:\nA. chloroquine\nB. metformin\nC. albuterol\nD. levothyroxine")
    assert medqa["Response"] == "The answer is A. chloroquine." and "Reasoning Process:" in medqa["Complex_CoT"]
    mcq = data["Which drug treats tuberculosis?"]
    assert mcq["Response"] == "The answer is A. rifampin. Explanation: Rifampin is a first-line antitubercular drug."
    pubmed = data["Context: Malaria causes fever."]
    assert "Question: Does fever occur in malaria?\nAnswer Choices:\nA. yes" in pubmed["Question"]
    assert pubmed["Response"] == "The final decision is: yes. Yes, fever is typical."
    assert data["A traveller has fever, splenomegaly and anemia. Which drug treats the likely disease?"]["Response"] == "chloroquine"
    # JSON Lines when the file is not .json: MedReason's SFT.py reads that too
    export_run(run_dir, "huatuo", tmp_path / "huatuo.jsonl", ExportOptions(include_all=True))
    assert len(read_like_medreason_sft(tmp_path / "huatuo.jsonl")[1]) == 4


# A chat template in the usual shape (role header, content, end of turn), as trainers render it.
CHAT = Template("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] | trim }}<|end|>\n{% endfor %}")


@pytest.mark.parametrize("thinking", [False, True])
def test_sft_messages_are_what_trl_reads_for_every_schema(run_dir, custom_dir, tmp_path, thinking):
    datasets = pytest.importorskip("datasets")
    a, b = every(run_dir, custom_dir, "sft", tmp_path, "sft.jsonl", thinking_tags=thinking, system="You are a careful physician.")
    cache = str(tmp_path / "hf-cache")  # a private cache: never a stale copy from another run
    rows = [*datasets.load_dataset("json", data_files=str(a), split="train", cache_dir=cache),
            *datasets.load_dataset("json", data_files=str(b), split="train", cache_dir=cache)]
    assert len(rows) == 5
    for row in rows:
        assert list(row) == ["messages"]
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert all(set(m) == {"role", "content"} and m["content"] for m in row["messages"])
        assert CHAT.render(messages=row["messages"]).count("<|end|>") == 3
    malaria = next(r["messages"] for r in rows if r["messages"][1]["content"].startswith("A traveller returns"))
    assert "\nAnswer Choices:\nA. chloroquine\nB. metformin" in malaria[1]["content"]
    answer = malaria[2]["content"]
    if thinking:
        assert answer.startswith("<think>\nFinding reasoning paths:") and answer.endswith("</think>\n\nThe answer is A. chloroquine.")
    else:
        assert answer.startswith("## Thinking\n\nFinding reasoning paths:")
        assert answer.endswith("## Final Answer\n\nThe answer is A. chloroquine.")
    pubmed = next(r["messages"] for r in rows if r["messages"][1]["content"].startswith("Context: Malaria causes fever."))
    assert "Question: Does fever occur in malaria?" in pubmed[1]["content"]


def test_accepted_only_by_default_and_no_system_turn_unless_asked(run_dir, tmp_path):
    n = export_run(run_dir, "sft", tmp_path / "sft.jsonl").written
    items = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    statuses = [json.loads(line)["status"] for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert n == len(items) == statuses.count("accepted") >= 1
    assert all([m["role"] for m in i["messages"]] == ["user", "assistant"] for i in items)


def test_hf_directory_has_data_and_a_card_and_loads_with_datasets(run_dir, tmp_path):
    out = tmp_path / "hf"
    n = export_run(run_dir, "hf", out, ExportOptions(include_all=True)).written
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "path: data/train.jsonl" in card
    sha = read_fingerprint(run_dir)["kg"]["sha256"]  # what the run recorded when it started, over the summary's
    assert f"sha256 `{sha}`" in card and "triples" in card and "model: none (KG-only)" in card
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert loaded.num_rows == n == 4
    pub = next(r for r in loaded if r["dataset_name"] == "pubmedqa")
    assert pub["id_in_dataset"] == 2 and pub["id"] == "p1"
    assert pub["context"] == "Malaria causes fever.\nChloroquine treats malaria." and pub["long_answer"] == "Yes, fever is typical."
    assert pub["question"] == "Does fever occur in malaria?"  # the context has its own column here
    assert [m["role"] for m in pub["messages"]] == ["user", "assistant"]
    assert set(loaded.column_names) >= {"dataset_name", "id_in_dataset", "question", "answer", "reasoning", "options", "paths"}


def test_a_row_without_a_recorded_position_is_refused_by_name(run_dir, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    (old / "results.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "position"}) + "\n" for r in rows))
    with pytest.raises(ExportError, match="sample 'malaria' has no recorded position"):
        export_run(old, "medreason", tmp_path / "x.jsonl")
    export_run(old, "huatuo", tmp_path / "x.json")  # formats without id_in_dataset do not need it


def test_merge_combines_shards_and_refuses_duplicate_ids(run_dir, tmp_path):
    rows = (run_dir / "results.jsonl").read_text().splitlines(keepends=True)
    for i, part in enumerate((rows[:2], rows[2:])):
        (tmp_path / f"s{i}").mkdir()
        (tmp_path / f"s{i}" / "results.jsonl").write_text("".join(part))
        (tmp_path / f"s{i}" / "summary.json").write_text((run_dir / "summary.json").read_text())
    summary = merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged")
    original = json.loads((run_dir / "summary.json").read_text())
    assert summary["counts"] == original["counts"] and summary["kg"]["sha256"] == "abc123"
    assert len((tmp_path / "merged" / "results.jsonl").read_text().splitlines()) == len(rows)
    first = json.loads(rows[0])["id"]
    with pytest.raises(ExportError, match=rf"duplicate id\(s\): '{first}' in .*s0 and .*s0"):
        merge_runs([tmp_path / "s0", tmp_path / "s0"], tmp_path / "again")
    with pytest.raises(ExportError, match="not empty"):
        merge_runs([tmp_path / "s0"], tmp_path / "merged")


@pytest.fixture
def fingerprinted(run_dir, tmp_path):
    """The run with a fingerprint, as runs write it (issue 17's contract)."""
    import shutil

    copy = tmp_path / "fingerprinted"
    shutil.copytree(run_dir, copy)
    (copy / "fingerprint.json").write_text(json.dumps({"run_id": "5e1f0a", "mode": "kg-only"}))
    return copy


def test_hf_rows_carry_provenance_that_datasets_reads(fingerprinted, tmp_path):
    out = tmp_path / "hf"
    export_run(fingerprinted, "hf", out, ExportOptions(include_all=True))
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf-cache"))
    malaria = next(r for r in loaded if r["id"] == "malaria")["provenance"]
    assert malaria["kg"] == {"source": "triples", "sha256": "abc123"} and malaria["model"] is None
    assert malaria["fingerprint"]["run_id"] == "5e1f0a"
    assert {n["name"] for n in malaria["nodes"]} >= {"fever", "chloroquine"}
    path = malaria["paths"][0]
    assert len(path["relations"]) == len(path["nodes"]) - 1 and path["relations"][-1] == ["indication"]
    assert malaria["grounding"]["score"] == 1.0
    assert all(s["label"] == "grounded" and s["evidence"] for s in malaria["grounding"]["steps"])
    assert "mean score 1.00" in (out / "README.md").read_text()


def test_provenance_on_request_leaves_every_consumer_reading_its_own_fields(fingerprinted, tmp_path):
    options = ExportOptions(include_all=True, provenance=True)
    export_run(fingerprinted, "medreason", tmp_path / "medreason_ours.jsonl", options)
    data, pairs = read_like_medreason_sft(tmp_path / "medreason_ours.jsonl")
    assert len(pairs) == 4 and all(d["provenance"]["kg"]["sha256"] == "abc123" for d in data)
    export_run(fingerprinted, "huatuo", tmp_path / "huatuo.json", options)
    assert all(d["provenance"]["fingerprint"]["run_id"] == "5e1f0a" for d in json.load(open(tmp_path / "huatuo.json")))
    read_like_medreason_sft(tmp_path / "huatuo.json")
    export_run(fingerprinted, "sft", tmp_path / "sft.jsonl", options)
    datasets = pytest.importorskip("datasets")
    rows = datasets.load_dataset("json", data_files=str(tmp_path / "sft.jsonl"), split="train", cache_dir=str(tmp_path / "c"))
    assert all(CHAT.render(messages=r["messages"]).count("<|end|>") == 2 for r in rows)
    export_run(fingerprinted, "sft", tmp_path / "plain.jsonl")
    assert all(list(json.loads(line)) == ["messages"] for line in (tmp_path / "plain.jsonl").read_text().splitlines())


def test_min_grounding_exports_only_samples_that_reach_it(run_dir, tmp_path):
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    graded = [r for r in rows if r.get("question") and r["grounding"] and r["grounding"]["score"] is not None]
    assert export_run(run_dir, "huatuo", tmp_path / "all.jsonl", ExportOptions(include_all=True, min_grounding=0.0)).written == len(graded)
    lowered = tmp_path / "lowered"
    lowered.mkdir()
    graded[0]["grounding"]["score"] = 0.5  # as if one sample's reasoning were half backed
    (lowered / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    n = export_run(lowered, "huatuo", tmp_path / "strict.jsonl", ExportOptions(include_all=True, min_grounding=0.9)).written
    assert n == len(graded) - 1


def test_merge_keeps_the_overlap_check_every_run_made_alike(run_dir, tmp_path):
    rows = (run_dir / "results.jsonl").read_text().splitlines(keepends=True)
    check = {"against": [{"name": "exam", "source": "exam.jsonl", "questions": 2, "sha256": "ab"}], "methods": {}}
    for i, part in enumerate((rows[:2], rows[2:])):
        (tmp_path / f"s{i}").mkdir()
        (tmp_path / f"s{i}" / "results.jsonl").write_text("".join(part))
        summary = {**json.loads((run_dir / "summary.json").read_text()), "overlap_check": check}
        (tmp_path / f"s{i}" / "summary.json").write_text(json.dumps(summary))
    assert merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "alike")["overlap_check"] == check
    (tmp_path / "s1" / "summary.json").write_text((run_dir / "summary.json").read_text())  # this one was not checked
    assert "overlap_check" not in merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "unlike")
