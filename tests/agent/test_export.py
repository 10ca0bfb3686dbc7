"""Exports of a run (sft, medreason, hf) and merging the runs of shards."""

import asyncio
import json

import pytest

from agent.export import ExportError, export_run, merge_runs
from agent.runner import RunOptions, run_dataset
from tests.conftest import MALARIA

RECORDS = [
    {**MALARIA, "id": "malaria"},
    {"id": "scurvy", "question": "Gingival bleeding in a sailor. Which drug?", "options": {"A": "chloroquine", "B": "ascorbic acid"},
     "answer": "chloroquine", "answer_idx": "A"},
    {"QUESTION": "Does fever occur in malaria?", "CONTEXTS": ["Malaria causes fever."], "final_decision": "yes",
     "LONG_ANSWER": "Yes, fever is typical.", "pubid": "p1"},
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, loaded):
    from agent.config import Settings
    from agent.context import AgentContext

    tmp = tmp_path_factory.mktemp("export")
    path = tmp / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS) + "{broken\n")
    ctx = AgentContext(loaded.kg, loaded.index, loaded.index.embedder, Settings(kg_dir=loaded.path))
    info = {"kg": {"source": "triples", "sha256": "abc123", "nodes": 43, "edges": 1, "embedding_model": "minilm"}}
    asyncio.run(run_dataset(path, tmp / "run", ctx, RunOptions(info=info)))
    return tmp / "run"


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sft_is_chat_messages_of_accepted_samples(run_dir, tmp_path):
    n = export_run(run_dir, "sft", tmp_path / "sft.jsonl")
    items = lines(tmp_path / "sft.jsonl")
    assert n == len(items) >= 1
    malaria = items[0]["messages"]
    assert [m["role"] for m in malaria] == ["user", "assistant"]
    assert malaria[0]["content"].startswith("A traveller returns") and "\nA. chloroquine\nB. metformin" in malaria[0]["content"]
    assert "Finding reasoning paths:" in malaria[1]["content"] and malaria[1]["content"].endswith("Answer: A. chloroquine")
    assert export_run(run_dir, "sft", tmp_path / "all.jsonl", include_all=True) == 3  # not the unparsable line


def test_medreason_fields(run_dir, tmp_path):
    export_run(run_dir, "medreason", tmp_path / "mr.jsonl", include_all=True)
    items = {i["id_in_dataset"]: i for i in lines(tmp_path / "mr.jsonl")}
    assert set(items["malaria"]) == {"dataset_name", "id_in_dataset", "question", "answer", "reasoning", "options"}
    assert items["malaria"]["dataset_name"] == "medqa" and items["malaria"]["answer"] == "A. chloroquine"
    assert items["malaria"]["options"].startswith("Answer Choices:\nA. chloroquine\nB. metformin")
    assert items["p1"]["dataset_name"] == "pubmedqa" and items["p1"]["answer"] == "A. yes"


def test_hf_directory_has_data_and_a_card_and_loads_with_datasets(run_dir, tmp_path):
    out = tmp_path / "hf"
    n = export_run(run_dir, "hf", out, include_all=True)
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "path: data/train.jsonl" in card
    assert "sha256 `abc123`" in card and "triples" in card and "model: none (KG-only)" in card
    rows = lines(out / "data" / "train.jsonl")
    assert len(rows) == n == 3
    pub = next(r for r in rows if r["id_in_dataset"] == "p1")
    assert pub["context"] == "Malaria causes fever." and pub["long_answer"] == "Yes, fever is typical."
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(out), split="train")
    assert loaded.num_rows == 3 and "reasoning" in loaded.column_names


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
    with pytest.raises(ExportError, match=r"2 duplicate id\(s\): 'malaria' in .*s0 and .*s0; 'scurvy'"):
        merge_runs([tmp_path / "s0", tmp_path / "s0"], tmp_path / "again")
    with pytest.raises(ExportError, match="not empty"):
        merge_runs([tmp_path / "s0"], tmp_path / "merged")
