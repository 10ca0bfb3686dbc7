"""Replay and fork on a run recorded in the test: list, timeline, step, fork, diff."""

import asyncio
import json

import pytest
from typer.testing import CliRunner

from agent.inspection import replay
from agent.runs.fingerprint import read_fingerprint, thread_id
from agent.runs.runner import RunOptions, run_dataset
from run_agent import app as cli

RECORDS = [
    {"id": "malaria", "question": "A traveller returns with fever, splenomegaly and anemia. Which drug treats the most likely disease?",
     "options": {"A": "chloroquine", "B": "metformin", "C": "albuterol"}, "answer": "chloroquine", "answer_idx": "A"},
    {"id": "scurvy", "question": "Gingival bleeding in a sailor. Which drug?", "options": {"A": "chloroquine", "B": "ascorbic acid"},
     "answer": "chloroquine", "answer_idx": "A"},
]


def thread(run_dir, sample="malaria"):
    """A sample's checkpoint thread: scoped by the run's id."""
    return thread_id(read_fingerprint(run_dir), sample)


@pytest.fixture
def run_dir(tmp_path, make_settings):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    out = tmp_path / "run"
    asyncio.run(run_dataset(source, out, make_settings(), RunOptions()))
    return out


def test_list_timeline_and_step(run_dir):
    with replay.open_run(run_dir) as graph:
        samples = {s["id"]: s for s in replay.list_samples(run_dir, graph)}
        assert samples["malaria"]["status"] == "accepted" and samples["malaria"]["attempts"] == 1
        assert samples["scurvy"]["status"] == "rejected" and samples["scurvy"]["attempts"] == 2
        assert samples["scurvy"]["reason"].startswith("no path")
        assert replay.thread_ids(graph) == [thread(run_dir), thread(run_dir, "scurvy")] == [
            f"{read_fingerprint(run_dir)['run_id']}:{sample}" for sample in ("malaria", "scurvy")]

        steps = replay.timeline(replay.branch(graph, thread(run_dir)))
        assert [s.node for s in steps] == ["input", "start", "extract", "map", "path", "prune", "generate", "verify"]
        by_node = {s.node: s for s in steps}
        assert "status: running→accepted" in by_node["verify"].changes
        assert any(c.startswith("paths: ") and c.endswith("items") for c in by_node["path"].changes)
        assert all(s.created_at for s in steps)


def test_cli_list_timeline_and_step_json(run_dir):
    runner = CliRunner()
    listed = runner.invoke(cli, ["replay", str(run_dir)])
    assert listed.exit_code == 0, listed.output
    assert "malaria" in listed.output and "accepted" in listed.output and "rejected" in listed.output

    timeline = runner.invoke(cli, ["replay", str(run_dir), "--sample", "malaria"])
    assert timeline.exit_code == 0, timeline.output
    assert "extract" in timeline.output and "running→accepted" in timeline.output

    step = runner.invoke(cli, ["replay", str(run_dir), "--sample", "malaria", "--step", "2", "--json"])
    assert step.exit_code == 0, step.output
    data = json.loads(step.output)
    assert data["node"] == "map" and data["next"] == ["path"]
    assert data["values"]["mappings"][0]["name"] == "fever"
    shown = runner.invoke(cli, ["replay", str(run_dir), "--sample", "malaria", "--step", "2"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    header, state = shown.output.split("\n", 1)
    assert "step 2 (map), next: path" in header and json.loads(state) == json.loads(json.dumps(data["values"]))

    missing = runner.invoke(cli, ["replay", str(run_dir), "--sample", "nope"])
    assert missing.exit_code == 2 and "no sample 'nope'" in missing.output


def test_fork_with_changed_settings_and_diff(run_dir, make_settings, loaded):
    with replay.open_run(run_dir) as graph:
        original = replay.branch(graph, thread(run_dir))
        before = [replay._id(s) for s in original]
        old, new, number = replay.fork(graph, thread(run_dir), 2, make_settings(), ["settings.max_hops=1"])
        assert number == 1
        # At one hop, fever→malaria→chloroquine is out of reach until the KG-only retry, the
        # widest search at once, reaches the answer through its neighbour malaria.
        assert old["status"] == new["status"] == "accepted"
        assert len(old["attempts"]) == 1 and len(new["attempts"]) == 2
        differs = {name for name, *_, d in replay.compare(old, new) if d}
        assert "attempts" in differs
        assert [replay._id(s) for s in replay.branch(graph, thread(run_dir), 0)] == before  # history intact
        forked = replay.branch(graph, thread(run_dir), 1)
        assert replay.diverge(original, forked) == 2  # the forked step itself is shared
        assert forked[4].metadata["source"] == "update"

    diff = CliRunner().invoke(cli, ["replay", str(run_dir), "--sample", "malaria", "--diff", "--json"])
    assert diff.exit_code == 0, diff.output
    data = json.loads(diff.output)
    assert data["diverge_after_step"] == 2 and "attempts" in data["differs"]
    assert data["steps_after"]["0"][0] == "path" and data["steps_after"]["1"][0] == "fork"


def test_fork_with_a_changed_mapping_via_cli(run_dir, fixture_kg_dir):
    # Send the answer's mapping to metformin: the verifier now sees chloroquine unsupported.
    args = ["replay", str(run_dir), "--sample", "malaria", "--fork", "2", "--kg-dir", str(fixture_kg_dir), "--offline",
            "--set", "mappings.3.node_id=drug:metformin", "--set", "mappings.3.name=metformin"]
    runner = CliRunner()
    with replay.open_run(run_dir) as graph:
        mapping = replay.branch(graph, thread(run_dir))[3].values["mappings"][3]
        assert (mapping["role"], mapping["name"]) == ("answer", "chloroquine")
        count = len(replay.branch(graph, thread(run_dir)))
    result = runner.invoke(cli, args + ["--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["branch"] == 1 and data["original"]["status"] == "accepted"
    assert data["fork"]["status"] != "accepted" or data["fork"]["attempts"] > 1
    assert data["differs"] and data["original_checkpoints"] == count

    pretty = runner.invoke(cli, ["replay", str(run_dir), "--sample", "malaria", "--diff"])
    assert pretty.exit_code == 0 and "share steps up to 2" in pretty.output

    bad = runner.invoke(cli, ["replay", str(run_dir), "--sample", "malaria", "--fork", "3", "--kg-dir", str(fixture_kg_dir),
                              "--set", "settings.nope=1"])
    assert bad.exit_code == 2 and "unknown setting 'nope'" in bad.output


def test_parse_sets_and_state_update(run_dir):
    state, settings = replay.parse_sets(["status=retry", "settings.max_hops=4", "mappings.0.score=0.5", 'x={"a": 1}'])
    assert state == {"status": "retry", "mappings.0.score": 0.5, "x": {"a": 1}} and settings == {"max_hops": 4}
    with replay.open_run(run_dir) as graph:
        values = replay.branch(graph, thread(run_dir))[-1].values
        update = replay.state_update(graph, values, {"mappings.0.score": 0.5, "attempts": []})
        assert update["mappings"][0]["score"] == 0.5 and values["mappings"][0]["score"] == 1.0
        assert type(update["attempts"]).__name__ == "Overwrite"
        with pytest.raises(replay.ReplayError, match="unknown state field"):
            replay.state_update(graph, values, {"nonsense": 1})


def test_a_fork_with_another_model_calls_that_model(tmp_path, make_settings, brain):
    from tests.fake_llm import FakeOpenAIServer

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(RECORDS[0]) + "\n")
    with FakeOpenAIServer(brain) as server:
        settings = make_settings(model="model-a", base_url=server.url, api_key="k")
        asyncio.run(run_dataset(source, tmp_path / "run", settings, RunOptions()))
        ran = len(brain.requests)
        with replay.open_run(tmp_path / "run") as graph:
            _, forked, _ = replay.fork(graph, thread(tmp_path / "run"), 2, settings, ["settings.model=model-b"])
    assert forked["status"] == "accepted"
    assert {body["model"] for body in brain.requests[:ran]} == {"model-a"}
    assert {body["model"] for body in brain.requests[ran:]} == {"model-b"}  # every call after the fork
    assert len(brain.requests) > ran


def test_a_fork_onto_a_missing_graph_is_refused_before_any_branch_is_made(run_dir, make_settings, tmp_path):
    from graphs.cache import CacheError

    with replay.open_run(run_dir) as graph:
        with pytest.raises(CacheError, match="does not exist"):
            replay.fork(graph, thread(run_dir), 2, make_settings(), [f"settings.kg_dir={tmp_path / 'nowhere'}"])
        assert len(replay.branches(graph, thread(run_dir))) == 1


@pytest.mark.parametrize("value, refusal", [
    ("mappings.3.node_id=HP:9999999", "--set mappings.3.node_id: 'HP:9999999' is not a node of the graph"),
    ('mappings.3={"node_id": "nowhere:1", "role": "answer"}', "--set mappings.3: 'nowhere:1' is not a node of the graph"),
    ('mappings.3={"role": "answer"}', "the fork failed (KeyError"),  # gets past the check, fails in a node
])
def test_a_fork_that_cannot_be_made_says_why_and_leaves_no_branch(run_dir, fixture_kg_dir, value, refusal):
    with replay.open_run(run_dir) as graph:
        before = [s.config["configurable"]["checkpoint_id"] for s in graph.checkpointer.list(None)]
    refused = CliRunner().invoke(cli, ["replay", str(run_dir), "--sample", "malaria", "--fork", "2", "--kg-dir",
                                       str(fixture_kg_dir), "--offline", "--set", value])
    assert refused.exit_code == 2, refused.output
    assert refusal in " ".join(refused.output.split()) and "Traceback" not in refused.output
    with replay.open_run(run_dir) as graph:
        assert [s.config["configurable"]["checkpoint_id"] for s in graph.checkpointer.list(None)] == before
        assert len(replay.branches(graph, thread(run_dir))) == 1
