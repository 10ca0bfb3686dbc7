"""A run's identity through the command line: its fingerprint, what --resume refuses to mix,
ids that survive a renamed input, and merge across graphs and modes."""

import json
import subprocess
import sys
from pathlib import Path

from tests.fake_llm import FakeOpenAIServer
from tests.test_run_agent import RECORDS, llm_env

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, **env):
    return subprocess.run([sys.executable, str(ROOT / "run_agent.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**llm_env(), **env}, timeout=300)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def said(result) -> str:
    return " ".join(result.stderr.split())


def four_records(path: Path, with_ids: bool = True) -> Path:
    rows = [{**RECORDS[i % 2], "question": f"Case {i}. " + RECORDS[i % 2]["question"]} for i in range(4)]
    for i, row in enumerate(rows):
        row.pop("id")
        if with_ids:
            row["id"] = f"r{i}"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_resume_with_another_model_is_refused_naming_it_until_allow_changed_records_it(tmp_path, fixture_kg_dir, brain):
    records, run_dir = four_records(tmp_path / "in.jsonl"), tmp_path / "run"
    with FakeOpenAIServer(brain) as server:
        base = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--base-url", server.url]
        first = cli(*base, "--model", "model-a", "--limit", "2")
        assert first.returncode == 0, first.stderr
        hits = server.hits
        refused = cli(*base, "--model", "model-b", "--resume")
        assert refused.returncode == 2 and server.hits == hits  # refused before any LLM call
        assert 'model: "model-a" → "model-b"' in said(refused)
        assert "--allow-changed" in said(refused) and "new --out directory" in said(refused)
        assert len(lines(run_dir / "results.jsonl")) == 2

        going_on = cli(*base, "--model", "model-b", "--resume", "--allow-changed")
        assert going_on.returncode == 0, going_on.stderr
    assert {b["model"] for b in brain.requests[:hits]} == {"model-a"} and {b["model"] for b in brain.requests[hits:]} == {"model-b"}
    fingerprint = json.loads((run_dir / "fingerprint.json").read_text())
    assert fingerprint["model"] == "model-b"
    [change] = fingerprint["changes"]
    assert change["before"]["model"] == "model-a" and change["rows_before"] == ["r0", "r1"]
    assert change["changed"] == ['model: "model-a" → "model-b"']
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["changes"] == [{"at": change["at"], "changed": change["changed"], "rows_before": 2}]
    exported = cli("export", run_dir, "--format", "hf", "--out", tmp_path / "hf", "--all")  # no row relabelled
    assert exported.returncode == 0, exported.stderr
    items = lines(tmp_path / "hf" / "data" / "train.jsonl")
    assert {i["id"]: i["provenance"]["model"] for i in items} == {"r0": "model-a", "r1": "model-a", "r2": "model-b", "r3": "model-b"}
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "2 samples: mode llm, model model-a" in card and "2 samples: mode llm, model model-b" in card


def test_resume_with_a_changed_setting_or_input_is_refused_naming_it(tmp_path, fixture_kg_dir):
    records, run_dir = four_records(tmp_path / "in.jsonl"), tmp_path / "run"
    args = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir]
    assert cli(*args, "--limit", "2").returncode == 0
    refused = cli(*args, "--resume", MEDREASON_MAX_HOPS="2")
    assert refused.returncode == 2 and "settings.max_hops: 3 → 2" in said(refused)
    with open(records, "a") as f:
        f.write(json.dumps({**RECORDS[0], "id": "r9"}) + "\n")
    changed_input = cli(*args, "--resume")
    assert changed_input.returncode == 2 and "input.sha256:" in said(changed_input)
    assert len(lines(run_dir / "results.jsonl")) == 2


def other_graph(tmp_path: Path, embedder) -> Path:
    """The fixture graph and one more fact (45 nodes against 43): another graph."""
    from graphs.kg_dir import Source, build_kg
    from graphs.progress import Silent
    from tests.conftest import MEDICAL_KG

    kg_dir, triples = tmp_path / "kg2", tmp_path / "more.tsv"
    triples.write_text(MEDICAL_KG.read_text() + "lyme disease\tdisease_phenotype_positive\terythema migrans\tdisease\teffect/phenotype\n")
    build_kg(kg_dir, Source("triples", triples), embedder, Silent())
    return kg_dir


# the run command with the prompt set's hash taken as another (as after an upgrade that edited a prompt)
EDITED_PROMPTS = """
import sys
import agent.runs.fingerprint
agent.runs.fingerprint.prompt_set_hash = lambda: "e" * 64
sys.argv[0] = "run_agent.py"
from run_agent import app
app()
"""


def test_resume_with_another_graph_or_prompt_set_is_refused_naming_it(tmp_path, fixture_kg_dir, embedder):
    records, run_dir = four_records(tmp_path / "in.jsonl"), tmp_path / "run"
    args = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir]
    assert cli(*args, "--limit", "2").returncode == 0
    stored = (run_dir / "fingerprint.json").read_text()
    other = cli("run", records, "--out", run_dir, "--kg-dir", other_graph(tmp_path, embedder), "--resume")
    assert other.returncode == 2 and "kg.sha256:" in said(other) and "--allow-changed" in said(other)
    prompts = subprocess.run([sys.executable, "-c", EDITED_PROMPTS, *map(str, args), "--resume"], capture_output=True,
                             text=True, cwd=ROOT, env=llm_env(), timeout=300)
    assert prompts.returncode == 2 and 'prompts: ' in said(prompts) and '→ eeeeeeeeeeee…' in said(prompts)
    assert len(lines(run_dir / "results.jsonl")) == 2 and (run_dir / "fingerprint.json").read_text() == stored
    assert cli(*args, "--resume").returncode == 0  # with the run's own graph and prompts it goes on
    assert len(lines(run_dir / "results.jsonl")) == 4


def test_a_fork_with_another_model_from_the_command_line_calls_that_model(tmp_path, fixture_kg_dir, brain):
    records, run_dir = four_records(tmp_path / "in.jsonl"), tmp_path / "run"
    with FakeOpenAIServer(brain) as server:
        llm = ["--kg-dir", fixture_kg_dir, "--base-url", server.url, "--model", "model-a"]
        assert cli("run", records, "--out", run_dir, "--limit", "1", *llm).returncode == 0
        ran = len(brain.requests)
        forked = cli("replay", run_dir, "--sample", "r0", "--fork", "2", "--set", "settings.model=model-b", *llm)
    assert forked.returncode == 0, forked.stderr
    assert "settings.model=model-b" in " ".join(forked.stdout.split())
    assert {b["model"] for b in brain.requests[:ran]} == {"model-a"}
    assert len(brain.requests) > ran and {b["model"] for b in brain.requests[ran:]} == {"model-b"}


def test_merge_of_an_llm_run_and_a_kg_only_run_is_refused_until_allowed_then_each_row_keeps_its_mode(tmp_path, fixture_kg_dir, brain):
    records = four_records(tmp_path / "in.jsonl")
    with FakeOpenAIServer(brain) as server:
        llm = cli("run", records, "--out", tmp_path / "s0", "--kg-dir", fixture_kg_dir, "--shard", "0/2",
                  "--model", "fake", "--base-url", server.url)
    kg_only = cli("run", records, "--out", tmp_path / "s1", "--kg-dir", fixture_kg_dir, "--shard", "1/2")
    assert llm.returncode == 0 and kg_only.returncode == 0, llm.stderr + kg_only.stderr
    runs = [tmp_path / "s0", tmp_path / "s1"]
    refused = cli("merge", *runs, "--out", tmp_path / "all")
    assert refused.returncode == 2 and "mode llm, model fake" in said(refused) and "mode kg-only, model none" in said(refused)
    assert "--allow-mixed" in said(refused) and not (tmp_path / "all").exists()

    merged = cli("merge", *runs, "--out", tmp_path / "all", "--allow-mixed", "--allow-duplicates")  # four_records repeats two questions
    assert merged.returncode == 0, merged.stderr
    rows = {r["id"]: r["run"] for r in lines(tmp_path / "all" / "results.jsonl")}
    assert {i: (run["mode"], run["model"]) for i, run in rows.items()} == {
        "r0": ("llm", "fake"), "r2": ("llm", "fake"), "r1": ("kg-only", None), "r3": ("kg-only", None)}
    summary = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert summary["mode"] == "mixed" and summary["model"] is None
    assert sorted((s["mode"], s["rows"]) for s in summary["sources"]) == [("kg-only", 2), ("llm", 2)]
    exported = cli("export", tmp_path / "all", "--format", "hf", "--out", tmp_path / "hf", "--all")
    assert exported.returncode == 0, exported.stderr
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "- Mode:" not in card and "samples: mode llm, model fake" in card and "samples: mode kg-only, model none" in card


def test_resume_of_a_renamed_input_keeps_the_ids_made_from_its_name(tmp_path, fixture_kg_dir):
    records, run_dir = four_records(tmp_path / "questions.jsonl", with_ids=False), tmp_path / "run"
    first = cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--limit", "2")
    assert first.returncode == 0, first.stderr
    renamed = records.rename(tmp_path / "renamed.jsonl")
    resumed = cli("run", renamed, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "2 of 4 samples already done, 2 to go" in said(resumed)
    assert [r["id"] for r in lines(run_dir / "results.jsonl")] == [f"questions-{n}" for n in range(1, 5)]


def test_merge_of_runs_on_two_graphs_is_refused_until_allowed_then_each_row_keeps_its_graph(tmp_path, fixture_kg_dir, embedder):
    other_kg = other_graph(tmp_path, embedder)
    records = four_records(tmp_path / "in.jsonl")
    for shard, kg in ((0, fixture_kg_dir), (1, other_kg)):
        done = cli("run", records, "--out", tmp_path / f"s{shard}", "--kg-dir", kg, "--shard", f"{shard}/2")
        assert done.returncode == 0, done.stderr
    runs = [tmp_path / "s0", tmp_path / "s1"]
    refused = cli("merge", *runs, "--out", tmp_path / "all")
    assert refused.returncode == 2 and "--allow-mixed" in said(refused)
    assert "43 nodes" in said(refused) and "45 nodes" in said(refused) and not (tmp_path / "all").exists()

    merged = cli("merge", *runs, "--out", tmp_path / "all", "--allow-mixed", "--allow-duplicates")  # four_records repeats two questions
    assert merged.returncode == 0, merged.stderr
    rows = lines(tmp_path / "all" / "results.jsonl")
    run_ids = [json.loads((run / "fingerprint.json").read_text())["run_id"] for run in runs]
    assert {r["id"]: (r["run"]["kg"]["nodes"], r["run"]["run_id"]) for r in rows} == {
        "r0": (43, run_ids[0]), "r2": (43, run_ids[0]), "r1": (45, run_ids[1]), "r3": (45, run_ids[1])}
    summary = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert summary["kg"] is None and sorted((s["kg"]["nodes"], s["rows"]) for s in summary["sources"]) == [(43, 2), (45, 2)]

    exported = cli("export", tmp_path / "all", "--format", "hf", "--out", tmp_path / "hf", "--all")
    assert exported.returncode == 0, exported.stderr
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "- Knowledge graph:" not in card and "2 samples: mode kg-only" in card
    assert "(43 nodes" in card and "(45 nodes" in card
    items = lines(tmp_path / "hf" / "data" / "train.jsonl")
    assert {i["id"]: i["provenance"]["kg"]["sha256"] for i in items} == {
        r["id"]: r["run"]["kg"]["sha256"] for r in rows if r["id"] in {i["id"] for i in items}}
