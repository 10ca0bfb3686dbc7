"""Dataset runs on Ray actors, as a user runs them: the CLI in a subprocess against a real local
Ray (one `ray start --head` cluster shared by the module; one test lets the CLI start its own).
A Ray run writes the rows a local run writes; a SIGKILLed actor's samples finish, every id
exactly once; a SIGKILLed driver's run goes on with --resume."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from agent.reasoning.llm import PROBE_PROMPT
from agent.runs.fingerprint import read_fingerprint
from tests.fake_llm import FakeOpenAIServer
from tests.test_run_agent import RECORDS

pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")

ROOT = Path(__file__).resolve().parents[1]
RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command of this interpreter, wherever pip put it


# The token of this session's Ray clusters: a fresh machine has no ~/.ray/auth_token, and
# `ray start` with token authentication creates none (the CLI's own local Ray would).
RAY_TOKEN = secrets.token_hex(32)


def env() -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDREASON_", "RAY_"))}
    # Token authentication, as `ray start` enables it: every client must present the token too.
    return {**base, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": RAY_TOKEN}


def run_args(records: Path, run_dir: Path, kg_dir: Path, *extra) -> list[str]:
    return [sys.executable, str(ROOT / "run_agent.py"), "run", str(records), "--out", str(run_dir),
            "--kg-dir", str(kg_dir), *map(str, extra)]


def cli(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def records(path: Path, n: int) -> list[str]:
    rows = [{**RECORDS[i % 3], "id": f"r{i}", "question": f"Case {i}. " + RECORDS[i % 3]["question"]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [r["id"] for r in rows]


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def by_id(run_dir: Path) -> dict[str, dict]:
    """The rows by id, each id once, without the thread id (scoped by the run's own id), which
    is checked here instead."""
    found = rows(run_dir)
    ids = [r["id"] for r in found]
    assert len(ids) == len(set(ids)), f"ids written more than once: {sorted(i for i in ids if ids.count(i) > 1)}"
    run_id = read_fingerprint(run_dir)["run_id"]
    assert all(r["thread_id"] == f"{run_id}:{r['id']}" for r in found)
    return {r["id"]: {k: v for k, v in r.items() if k != "thread_id"} for r in found}


def wait_for_rows(run_dir: Path, n: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    path = run_dir / "results.jsonl"
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:  # the whole of what it said, not a shortened repr
            raise AssertionError(f"the run ended early (exit {proc.returncode}): {proc.communicate()[1][-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} rows in time")


def descendants(pid: int) -> dict[int, str]:
    """The processes below ``pid`` (pid: command line)."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = commands.get(child, "")
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs, as `ray start --head` makes one; its address. ``--block``
    keeps the command in the foreground and stops every process it started when it ends."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    head = subprocess.Popen([*RAY, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
                             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while (status := subprocess.run([*RAY, "status", f"--address={address}"], env=env(), capture_output=True,
                                        text=True)).returncode:
            assert head.poll() is None, head.stderr.read()
            assert time.monotonic() < deadline, f"Ray did not start: {status.stderr[-2000:]}"
            time.sleep(1)
        yield head, address
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()


def test_a_ray_run_writes_the_rows_of_a_local_run_kg_only_and_with_an_llm(tmp_path, fixture_kg_dir, brain, ray_cluster):
    _, address = ray_cluster
    path = tmp_path / "in.jsonl"
    ids = records(path, 6)
    kg_only = {name: run_args(path, tmp_path / name, fixture_kg_dir, "--concurrency", 2) for name in ("local", "ray")}
    cli(kg_only["local"])
    cli(kg_only["ray"] + ["--executor", "ray", "--ray-address", address])
    assert sorted(by_id(tmp_path / "ray")) == sorted(ids)
    assert by_id(tmp_path / "ray") == by_id(tmp_path / "local")
    assert {r["status"] for r in rows(tmp_path / "ray")} == {"accepted", "rejected"}  # scurvy's gold is wrong

    with FakeOpenAIServer(brain) as server:
        llm = ["--model", "fake", "--base-url", server.url, "--concurrency", 3]
        cli(run_args(path, tmp_path / "llm-local", fixture_kg_dir, *llm))
        local_hits, local_probes = sample_calls(brain), probes(brain)
        cli(run_args(path, tmp_path / "llm-ray", fixture_kg_dir, *llm, "--executor", "ray", "--ray-address", address))
        assert sample_calls(brain) - local_hits == local_hits  # the same requests, made by the actors
        ray_probes = probes(brain) - local_probes
    ray_rows = by_id(tmp_path / "llm-ray")
    assert ray_rows == by_id(tmp_path / "llm-local") and sorted(ray_rows) == sorted(ids)
    assert all(r["usage"]["llm_calls"] > 0 for r in ray_rows.values())
    summary = json.loads((tmp_path / "llm-ray" / "summary.json").read_text())
    assert summary["records"] == 6 and summary["mode"] == "llm" and summary["usage"]["llm_calls"] == local_hits
    # The driver found what the endpoint honours, once, and handed it to the actors, which
    # asked nothing: the summary's report accounts for every probe the endpoint saw.
    found = summary["structured_output"]
    assert found["setting"] == "auto" and found["mode"] == "json_schema" and found["tool_calls"] is True
    assert ray_probes == found["probe_calls"] == len(found["probes"]) == 2


def sample_calls(brain) -> int:
    """Requests made for samples: the driver's probes of what the endpoint honours are left out."""
    return len(brain.requests) - probes(brain)


def probes(brain) -> int:
    return sum(PROBE_PROMPT in json.dumps(b["messages"]) for b in brain.requests)


def test_a_killed_actors_samples_finish_from_their_checkpoints_each_written_once(tmp_path, fixture_kg_dir, brain, ray_cluster):
    head, address = ray_cluster
    path = tmp_path / "in.jsonl"
    ids = records(path, 16)
    with FakeOpenAIServer(brain) as server:
        cli(run_args(path, tmp_path / "local", fixture_kg_dir, "--model", "fake", "--base-url", server.url, "--concurrency", 4))
        local_hits = sample_calls(brain)
    with FakeOpenAIServer(brain, latency=0.15) as server:
        args = run_args(path, tmp_path / "ray", fixture_kg_dir, "--model", "fake", "--base-url", server.url,
                        "--concurrency", 2, "--executor", "ray", "--ray-address", address)
        driver = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_rows(tmp_path / "ray", 2, driver)
        actors = [pid for pid, command in descendants(head.pid).items() if command.startswith("ray::SampleActor")]
        assert len(actors) == 2, descendants(head.pid)
        os.kill(actors[0], signal.SIGKILL)
        killed_at = len(rows(tmp_path / "ray"))
        _, stderr = driver.communicate(timeout=600)
        assert driver.returncode == 0, stderr[-3000:]
    assert killed_at < len(ids)
    found = by_id(tmp_path / "ray")
    assert sorted(found) == sorted(ids)
    assert found == by_id(tmp_path / "local")  # the interrupted samples went on to the same results
    # Only the steps the kill cut short were asked again: at most one request per sample in flight.
    assert local_hits <= sample_calls(brain) - local_hits <= local_hits + 2 * 3
    assert json.loads((tmp_path / "ray" / "summary.json").read_text())["records"] == len(ids)


def test_a_killed_driver_resumes_with_resume_and_its_local_ray_goes_with_it(tmp_path, fixture_kg_dir, brain):
    path = tmp_path / "in.jsonl"
    ids = records(path, 12)
    with FakeOpenAIServer(brain, latency=0.1) as server:
        llm = ["--model", "fake", "--base-url", server.url, "--concurrency", 2, "--executor", "ray", "--actors", 2]
        args = run_args(path, tmp_path / "run", fixture_kg_dir, *llm)
        driver = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_rows(tmp_path / "run", 3, driver)
        started = descendants(driver.pid)  # the local Ray the run started: head processes and actors
        assert any(command.startswith("ray::SampleActor") for command in started.values()), started
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        killed = time.monotonic()
        killed_at = len(rows(tmp_path / "run"))

        try:
            resumed = cli(args + ["--resume"])
            assert f"{killed_at} of 12 samples already done" in " ".join(resumed.stderr.split())
            cli(run_args(path, tmp_path / "local", fixture_kg_dir, *llm[:6]))
        finally:  # Ray's processes notice that their driver is gone and end (its node agents poll for a minute)
            while (left := [pid for pid in started if alive(pid)]) and time.monotonic() < killed + 180:
                time.sleep(1)
            for pid in left:  # cleanup only: the assertion below reports them
                os.kill(pid, signal.SIGKILL)
    assert not left, f"the local Ray outlived its run: {[started[p] for p in left]}"
    assert killed_at < len(ids)
    found = by_id(tmp_path / "run")
    assert sorted(found) == sorted(ids) and found == by_id(tmp_path / "local")


def test_sigterm_under_ray_writes_the_summary_and_exits_143_like_the_local_executor(tmp_path, fixture_kg_dir, brain):
    path = tmp_path / "in.jsonl"
    records(path, 30)
    with FakeOpenAIServer(brain, latency=0.1) as server:
        args = run_args(path, tmp_path / "run", fixture_kg_dir, "--model", "fake", "--base-url", server.url,
                        "--executor", "ray", "--actors", 2)
        driver = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_rows(tmp_path / "run", 2, driver)
        driver.send_signal(signal.SIGTERM)
        _, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 143, stderr[-3000:]
    message = " ".join(stderr.split())
    assert "Terminated (SIGTERM)" in message and "--resume" in message and "Aborted" not in message
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["records"] == len(rows(tmp_path / "run")) < 30
