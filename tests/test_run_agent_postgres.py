"""Checkpoints in PostgreSQL (`run … --checkpoints postgresql://…`), against a real PostgreSQL 15
server started here (tests/services.py), each case as a user meets it: CLI subprocesses, a
SIGKILL mid-run, two runs sharing one database, a server that is not there."""

import json
import signal

import pytest

from tests.fake_llm import FakeOpenAIServer
from tests.services import PG_PASSWORD, free_port, postgres_server
from tests.test_run_agent import wait_for_lines
from tests.test_run_agent_faults import (
    HoldSamples,
    cli,
    cli_with_stderr_in,
    kill_after_results,
    many,
    named_as_lost,
    rows_of,
    start,
)


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


def threads_in(url: str) -> dict[str, list[int]]:
    """Every thread in the database with the step of each of its checkpoints, oldest first."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT thread_id, (metadata->>'step')::int FROM checkpoints "
                            "WHERE checkpoint_ns = '' ORDER BY thread_id, checkpoint_id").fetchall()
    found: dict[str, list[int]] = {}
    for thread, step in rows:
        found.setdefault(thread, []).append(step)
    return found


def assert_no_password(run_dir, *outputs):
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert PG_PASSWORD.encode() not in path.read_bytes(), path
    for output in outputs:
        assert PG_PASSWORD not in output.stdout + output.stderr


def test_a_run_killed_mid_way_resumes_from_its_postgres_checkpoints(tmp_path, postgres, fixture_kg_dir, brain, monkeypatch):
    url = postgres.create_database("killed")
    records = many(tmp_path / "in.jsonl", 16)
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain, latency=0.1) as server:
        args = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--model", "fake",
                "--base-url", server.url, "--concurrency", "3"]
        killed = kill_after_results([*args, "--checkpoints", url], run_dir, 3)
        assert killed.returncode == -signal.SIGKILL
        done_before = {r["id"] for r in rows_of(run_dir)}
        assert len(done_before) < 16
        hits_before = server.hits
        # --resume finds the database recorded with the run; the password comes from the environment
        resumed = cli(*args, "--resume", PGPASSWORD=PG_PASSWORD)
        assert resumed.returncode == 0, resumed.stderr
        resumed_hits = server.hits - hits_before
    assert not (run_dir / "checkpoints.sqlite").exists()
    rows = rows_of(run_dir)
    assert sorted(r["id"] for r in rows) == sorted(f"r{i}" for i in range(16))  # every id exactly once
    assert {r["status"] for r in rows} == {"accepted"}
    run_id = json.loads((run_dir / "fingerprint.json").read_text())["run_id"]
    assert {r["thread_id"] for r in rows} == {f"{run_id}:r{i}" for i in range(16)}
    threads = threads_in(url)
    for row in rows:  # one chain per sample, each step checkpointed once: no finished step ran again
        steps = threads[row["thread_id"]]
        assert steps == list(range(-1, len(steps) - 1)), (row["id"], steps)
    # the samples finished before the kill cost nothing more; the others no more than a fresh run
    # would, beside the resumed session's probe of what structured output the endpoint honours
    summary = json.loads((run_dir / "summary.json").read_text())
    probes = summary["structured_output"]["probe_calls"]
    assert resumed_hits <= sum(r["usage"]["llm_calls"] for r in rows if r["id"] not in done_before) + probes
    assert summary["checkpoints"] == postgres.url("killed", password=False)
    assert json.loads((run_dir / "fingerprint.json").read_text())["checkpoints"] == postgres.url("killed", password=False)

    listed = cli("replay", run_dir, "--json", PGPASSWORD=PG_PASSWORD)
    assert listed.returncode == 0, listed.stderr
    assert sorted(s["id"] for s in json.loads(listed.stdout)["samples"]) == sorted(f"r{i}" for i in range(16))
    timeline = cli("replay", run_dir, "--sample", "r5", "--json", PGPASSWORD=PG_PASSWORD)
    assert timeline.returncode == 0, timeline.stderr
    assert [s["node"] for s in json.loads(timeline.stdout)["steps"]][-1] == "verify"
    assert_no_password(run_dir, resumed, listed, timeline)

    from starlette.testclient import TestClient

    from agent.inspection.view import create_app

    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    page = TestClient(create_app(run_dir), base_url="http://127.0.0.1").get("/sample/r5").text
    assert "Branch 0 (the original run)" in page and "fork-command" in page  # the viewer reads the same database


def test_started_samples_whose_postgres_checkpoints_vanished_are_named_before_any_llm_call(tmp_path, postgres,
                                                                                            fixture_kg_dir, brain):
    import psycopg

    url = postgres.create_database("vanished")
    records = many(tmp_path / "in.jsonl", 10)
    run_dir = tmp_path / "run"
    samples = HoldSamples()
    with FakeOpenAIServer(brain, latency=samples) as server:
        args = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--model", "fake",
                "--base-url", server.url, "--concurrency", "2"]
        in_flight = samples.kill_with_all_slots_held([*args, "--checkpoints", url], run_dir, slots=2, after=2)
        run_id = json.loads((run_dir / "fingerprint.json").read_text())["run_id"]
        threads = [f"{run_id}:{s}" for s in sorted(in_flight)]
        assert set(threads) <= set(threads_in(url))
        with psycopg.connect(url) as conn:  # the database restored from a copy made before they started
            for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints"):
                conn.execute(f"DELETE FROM {table} WHERE thread_id = ANY(%s)", (threads,))
        samples.watch(tmp_path / "resume.stderr")
        resumed = cli_with_stderr_in(tmp_path / "resume.stderr", *args, "--resume", PGPASSWORD=PG_PASSWORD)
        assert resumed.returncode == 0, (tmp_path / "resume.stderr").read_text()
    assert samples.seen_then is not None and sorted(named_as_lost(samples.seen_then)) == sorted(in_flight)
    assert postgres.url("vanished", password=False) in " ".join(samples.seen_then.split())
    assert sorted(r["id"] for r in rows_of(run_dir)) == sorted(f"r{i}" for i in range(10))


def test_two_runs_share_one_database_without_meeting(tmp_path, postgres, fixture_kg_dir, brain):
    url = postgres.create_database("shared")
    records = many(tmp_path / "in.jsonl", 8)  # the same sample ids in both runs
    with FakeOpenAIServer(brain, latency=0.05) as server:
        runs = [start("run", records, "--out", tmp_path / name, "--kg-dir", fixture_kg_dir, "--model", "fake",
                      "--base-url", server.url, "--concurrency", "2", "--checkpoints", url) for name in ("a", "b")]
        outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    run_ids = [json.loads((tmp_path / name / "fingerprint.json").read_text())["run_id"] for name in ("a", "b")]
    assert run_ids[0] != run_ids[1]
    threads = threads_in(url)
    assert set(threads) == {f"{run_id}:r{i}" for run_id in run_ids for i in range(8)}
    for name, run_id in zip(("a", "b"), run_ids):
        rows = rows_of(tmp_path / name)
        assert sorted(r["thread_id"] for r in rows) == sorted(f"{run_id}:r{i}" for i in range(8))
        assert {r["status"] for r in rows} == {"accepted"}
        steps = json.loads(cli("replay", tmp_path / name, "--sample", "r3", "--json", PGPASSWORD=PG_PASSWORD).stdout)
        assert steps["thread_id"] == f"{run_id}:r3"


def test_a_checkpoint_database_that_cannot_be_reached_refuses_the_run_before_it_starts(tmp_path, fixture_kg_dir):
    records = many(tmp_path / "in.jsonl", 2)
    url = f"postgresql://medreason:{PG_PASSWORD}@127.0.0.1:{free_port()}/runs"
    refused = cli("run", records, "--out", tmp_path / "run", "--kg-dir", fixture_kg_dir, "--checkpoints", url)
    assert refused.returncode == 2
    message = " ".join(refused.stderr.split())
    assert "cannot reach the checkpoint database postgresql://medreason@127.0.0.1:" in message
    assert PG_PASSWORD not in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "run" / "results.jsonl").exists()
    wrong = cli("run", records, "--out", tmp_path / "run2", "--kg-dir", fixture_kg_dir, "--checkpoints", "mysql://x@h/db")
    assert wrong.returncode == 2 and "expected postgresql://USER@HOST:PORT/DB" in " ".join(wrong.stderr.split())


def test_a_server_lost_mid_run_is_named_as_the_cause_not_reported_as_a_bug(tmp_path, fixture_kg_dir, brain):
    records = many(tmp_path / "in.jsonl", 30)
    run_dir = tmp_path / "run"
    with postgres_server() as lost, FakeOpenAIServer(brain, latency=0.1) as server:  # its own: this test stops it
        url = lost.create_database("lost")
        run = start("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--model", "fake",
                    "--base-url", server.url, "--concurrency", "2", "--checkpoints", url)
        wait_for_lines(run_dir / "results.jsonl", 2, run)
        lost.stop_now()
        _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    message = " ".join(stderr.split())
    public = url.replace(f":{PG_PASSWORD}@", "@")
    assert f"The run stopped: the checkpoint database {public} failed:" in message, message
    assert "bring the PostgreSQL server back, then continue with the same command plus --resume" in message
    assert "bug" not in message and "please report" not in message and "error ignored" not in message
    assert "Traceback" not in stderr and not (run_dir / "crash.log").exists()
    assert PG_PASSWORD not in stderr


def test_a_fork_that_fails_leaves_no_branch_in_postgres(tmp_path, postgres, fixture_kg_dir):
    url = postgres.create_database("forks")
    records = many(tmp_path / "in.jsonl", 1)
    run_dir = tmp_path / "run"
    done = cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--checkpoints", url)
    assert done.returncode == 0, done.stderr
    before = threads_in(url)
    failed = cli("replay", run_dir, "--sample", "r0", "--fork", "2", "--kg-dir", fixture_kg_dir, "--offline",
                 "--set", 'mappings.1={"role": "answer"}', PGPASSWORD=PG_PASSWORD)
    assert failed.returncode == 2 and "the fork failed (KeyError" in " ".join(failed.stderr.split()), failed.stderr
    assert threads_in(url) == before  # every checkpoint the fork wrote is gone
    timeline = cli("replay", run_dir, "--sample", "r0", PGPASSWORD=PG_PASSWORD)
    assert timeline.returncode == 0 and "branch 0 of 1" in timeline.stdout, timeline.stderr
