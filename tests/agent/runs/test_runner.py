"""Dataset runs in process: concurrency, resume, retries, selection, interruption."""

import asyncio
import json
import re

import pytest

from agent.runs.records import FieldMap
from agent.runs.runner import RunDirError, RunOptions, claim_run_dir, execute, plan_run, run_dataset
from tests.conftest import MALARIA
from tests.fake_llm import FakeOpenAIServer


def case(n: int) -> dict:
    return {**MALARIA, "id": f"case-{n}", "question": f"Case {n}: " + MALARIA["question"]}


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rows_of(run_dir):
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def llm_settings(make_settings):
    def make(server, **settings):
        return make_settings(model="fake", base_url=server.url, api_key="k", **settings)
    return make


def test_samples_finishing_out_of_order_are_each_written_once(tmp_path, brain, llm_settings):
    n = 8
    def latency(body):  # case 0 answers far slower than the rest, so it is the last to finish
        return 0.6 if re.search(r"Case 0:", json.dumps(body)) else 0.01
    path = write(tmp_path / "in.jsonl", [case(i) for i in range(n)])
    with FakeOpenAIServer(brain, latency=latency) as server:
        summary = asyncio.run(run_dataset(path, tmp_path / "run", llm_settings(server), RunOptions(concurrency=n)))
    ids = [r["id"] for r in rows_of(tmp_path / "run")]
    assert sorted(ids) == sorted(f"case-{i}" for i in range(n)) and len(set(ids)) == n
    assert ids != [f"case-{i}" for i in range(n)]  # written as they finished
    assert ids[-1] == "case-0"
    assert summary["counts"] == {"accepted": n, "rejected": 0, "error": 0}
    assert summary["mode"] == "llm" and summary["structured_output"]["probe_calls"] == 1  # once per run
    assert summary["usage"]["llm_calls"] + 1 == server.hits
    assert summary["samples_per_minute"] > 0 and summary["processed_this_session"] == n


def test_llm_failures_are_retried_from_their_checkpoint_with_retry_errors(tmp_path, brain, llm_settings):
    path = write(tmp_path / "in.jsonl", [case(0), case(1)])
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain, fault_rate=1.0) as server:
        settings = llm_settings(server, llm_max_retries=0)
        first = asyncio.run(run_dataset(path, run_dir, settings, RunOptions()))
        assert first["counts"]["error"] == 2 and first["error_kinds"] == {"LLM error": 2}
        assert first["rejection_reasons"] == {} and "failure_reasons" not in first
        again = asyncio.run(run_dataset(path, run_dir, settings, RunOptions(resume=True)))
        assert again["counts"]["error"] == 2 and server.hits == 2  # plain --resume: errors stay done
        server.fault_rate = 0.0
        fixed = asyncio.run(run_dataset(path, run_dir, settings, RunOptions(resume=True, retry_errors=True)))
    assert fixed["counts"] == {"accepted": 2, "rejected": 0, "error": 0}
    assert sorted(r["id"] for r in rows_of(run_dir)) == ["case-0", "case-1"]

def cancel_after_first_result(path, run_dir, settings) -> None:
    """Run ``path`` two at a time and cancel the run as soon as one sample has finished."""

    async def run_and_cancel():
        options = RunOptions(concurrency=2)
        first = asyncio.Event()
        options.on_result = lambda row: first.set()
        with claim_run_dir(run_dir, resume=False):
            task = asyncio.create_task(execute(plan_run(path, run_dir, options), run_dir, settings, options))
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(run_and_cancel())


def test_an_interrupted_run_writes_its_summary_and_resumes_without_redoing_work(tmp_path, brain, llm_settings):
    path = write(tmp_path / "in.jsonl", [case(i) for i in range(6)])
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain, latency=0.05) as server:
        settings = llm_settings(server)
        cancel_after_first_result(path, run_dir, settings)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["interrupted"] is True and 1 <= summary["records"] < 6
        assert summary["unfinished"] == 6 - summary["records"]
        hits = server.hits
        done = asyncio.run(run_dataset(path, run_dir, settings, RunOptions(resume=True, concurrency=2)))
        assert done["records"] == 6 and done["interrupted"] is False and done["unfinished"] == 0
        assert server.hits - hits < 6 * 3  # the interrupted samples went on from their checkpoints
        hits = server.hits
        with claim_run_dir(run_dir, resume=True):
            plan = plan_run(path, run_dir, RunOptions(resume=True))
            assert plan.pending == [] and sum(plan.done.values()) == 6
            asyncio.run(execute(plan, run_dir, settings, RunOptions(resume=True)))  # nothing pending: nothing opened
        assert server.hits == hits
    ids = [r["id"] for r in rows_of(run_dir)]
    assert sorted(ids) == [f"case-{i}" for i in range(6)]


def test_offset_limit_and_shards_select_by_position(tmp_path):
    path = write(tmp_path / "in.jsonl", [{"id": f"r{i}", "question": "Q", "answer": "a"} for i in range(10)])
    def ids(run, **kw):
        return [j.id for j in plan_run(path, tmp_path / run, RunOptions(**kw)).jobs]
    assert ids("a", offset=2, limit=3) == ["r2", "r3", "r4"]
    shards = [ids(f"s{i}", shard=(i, 3)) for i in range(3)]
    assert shards[0] == ["r0", "r3", "r6", "r9"] and sorted(sum(shards, [])) == sorted(f"r{i}" for i in range(10))
    assert ids("b", offset=5, shard=(1, 2)) == ["r5", "r7", "r9"]


def test_duplicate_ids_and_malformed_rows_get_their_own_error_rows(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "x", "question": "Q", "answer": "a"}\n{"id": "x", "question": "R", "answer": "b"}\n{bad\n')
    jobs = plan_run(path, tmp_path / "run", RunOptions()).jobs
    assert [(j.id, j.error) for j in jobs] == [
        ("x", None), ("x@in.jsonl:2", "in.jsonl:2: duplicate id 'x'"),
        ("in-3", "in.jsonl:3: not valid JSON (Expecting property name enclosed in double quotes, column 2)"),
    ]


def test_a_non_empty_run_dir_is_refused_without_resume(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("x")
    with pytest.raises(RunDirError, match="is not empty"):
        with claim_run_dir(tmp_path / "run", resume=False):
            pass
    with claim_run_dir(tmp_path / "run", resume=True):
        pass
    with claim_run_dir(tmp_path / "fresh", resume=False):  # a new directory is created, and claimed
        with pytest.raises(RunDirError, match=r"in use by another run \(pid \d+ on host "):
            with claim_run_dir(tmp_path / "fresh", resume=True):
                pass


def test_field_map_reaches_the_records(tmp_path):
    path = write(tmp_path / "in.jsonl", [{"k": "z1", "q": "Which?", "a": "fever"}])
    (job,) = plan_run(path, tmp_path / "run", RunOptions(fields=FieldMap(id="k", question="q", answer="a"))).jobs
    assert job.record["id"] == "z1" and job.record["answer"] == "fever"


def test_a_crash_after_a_nodes_writes_were_saved_resumes_from_there(tmp_path, make_settings):
    """SIGKILL between a node's saved writes and the next checkpoint: ``next`` is then empty
    although the graph has not finished, and the sample must go on, not count as done."""
    import sqlite3

    path = write(tmp_path / "in.jsonl", [MALARIA])
    run_dir = tmp_path / "run"
    asyncio.run(run_dataset(path, run_dir, make_settings(), RunOptions()))
    with sqlite3.connect(run_dir / "checkpoints.sqlite") as db:
        newest = [r[0] for r in db.execute("SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 2")]
        db.executemany("DELETE FROM checkpoints WHERE checkpoint_id = ?", [(c,) for c in newest])
        db.executemany("DELETE FROM writes WHERE checkpoint_id = ?", [(newest[0],)])  # verify's writes
    (run_dir / "results.jsonl").write_text("")  # its line was never written
    summary = asyncio.run(run_dataset(path, run_dir, make_settings(), RunOptions(resume=True)))
    (row,) = rows_of(run_dir)
    assert row["status"] == "accepted" and len(row["attempts"]) == 1 and summary["counts"]["accepted"] == 1


def test_a_cancelled_run_leaves_the_checkpoint_database_unlocked(tmp_path, brain, llm_settings):
    """Cancellation can cut a checkpoint write between its INSERT and its COMMIT; the run must
    end that transaction before its saver closes, or a resume in the same process finds the
    database locked. The cut falls at a random point, so several runs are cancelled."""
    import sqlite3

    path = write(tmp_path / "in.jsonl", [case(i) for i in range(4)])
    with FakeOpenAIServer(brain, latency=0.02) as server:
        settings = llm_settings(server)
        for trial in range(16):
            run_dir = tmp_path / f"run{trial}"
            cancel_after_first_result(path, run_dir, settings)
            db = sqlite3.connect(run_dir / "checkpoints.sqlite", timeout=0)
            db.execute("BEGIN IMMEDIATE")  # raises "database is locked" if a write was left open
            db.rollback()
            db.close()


def test_a_run_from_before_fingerprints_resumes_from_its_plain_thread_checkpoints(tmp_path, brain, llm_settings):
    import sqlite3

    from agent.runs.fingerprint import read_fingerprint

    path = write(tmp_path / "in.jsonl", [case(0), case(1)])
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain) as server:
        settings = llm_settings(server)
        asyncio.run(run_dataset(path, run_dir, settings, RunOptions()))
        run_id = read_fingerprint(run_dir)["run_id"]
        assert {r["thread_id"] for r in rows_of(run_dir)} == {f"{run_id}:case-0", f"{run_id}:case-1"}
        # What a run made before fingerprints left: threads named by sample id, no fingerprint,
        # and here case-1 finished in its checkpoints but its result line never written.
        with sqlite3.connect(run_dir / "checkpoints.sqlite") as db:
            for table in ("checkpoints", "writes"):
                db.execute(f"UPDATE {table} SET thread_id = substr(thread_id, ?)", (len(run_id) + 2,))
        db.close()
        (run_dir / "fingerprint.json").unlink()
        (run_dir / "results.jsonl").write_text(json.dumps({**rows_of(run_dir)[0], "thread_id": "case-0"}) + "\n")
        hits = server.hits
        asyncio.run(run_dataset(path, run_dir, settings, RunOptions(resume=True)))
        assert server.hits == hits  # case-1 came from its checkpoints: nothing paid again
    assert read_fingerprint(run_dir)["plain_thread_ids"] is True
    assert [(r["id"], r["thread_id"], r["status"]) for r in rows_of(run_dir)] == [
        ("case-0", "case-0", "accepted"), ("case-1", "case-1", "accepted")]
