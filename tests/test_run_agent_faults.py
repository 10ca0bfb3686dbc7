"""The command line under faults and hostile input, each case as a user meets it: a subprocess
per command, an endpoint that echoes the key, two runs on one directory, damaged files."""

import html
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from tests.agent.runs.test_runner import rows_of
from tests.agent.runs.test_runner import write as write_records
from tests.fake_llm import FakeOpenAIServer
from tests.test_run_agent import RECORDS, wait_for_lines

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-live-7c1e0b9d4f2a8e6b3c5d7f9a1b2c4d6e"


def env(**extra):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDREASON_"))}
    return {**base, "HF_HUB_OFFLINE": "1", **extra}


def cli(*args, input=None, **extra_env):
    return subprocess.run([sys.executable, str(ROOT / "run_agent.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env(**extra_env), input=input, timeout=300)


# -- the key never reaches disk or screen ----------------------------------------------------
def assert_no_key(where: str, data: bytes | str) -> None:
    data = data.encode() if isinstance(data, str) else data
    for secret in (KEY, KEY[:12], KEY[-16:]):
        assert secret.encode() not in data, f"{secret[:6]}… found in {where}"


def assert_no_key_in_dir(directory: Path) -> None:
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files
    for path in files:  # checkpoints.sqlite, its -wal, results, summary, lock
        assert_no_key(str(path), path.read_bytes())


def test_an_endpoint_echoing_the_key_never_gets_it_written_or_shown(tmp_path, fixture_kg_dir, brain):
    records = write_records(tmp_path / "in.jsonl", RECORDS[:2])
    run_dir, store = tmp_path / "run", tmp_path / "chat"
    endpoint = FakeOpenAIServer(brain)
    endpoint.reject_echoing_key = True
    with endpoint:
        llm = ["--kg-dir", fixture_kg_dir, "--model", "fake", "--base-url", endpoint.url]
        outputs = []
        failed = cli("run", records, "--out", run_dir, *llm, OPENAI_API_KEY=KEY)
        outputs.append(failed)
        assert failed.returncode == 0, failed.stderr
        rows = rows_of(run_dir)
        assert [r["status"] for r in rows] == ["error", "error"]
        assert "HTTP 401" in rows[0]["error"] and "[REDACTED]" in rows[0]["error"]  # the cause is still told
        assert_no_key_in_dir(run_dir)

        endpoint.reject_echoing_key = False
        retried = cli("run", records, "--out", run_dir, *llm, "--resume", "--retry-errors", OPENAI_API_KEY=KEY)
        outputs.append(retried)
        assert retried.returncode == 0, retried.stderr
        assert "no checkpoints left" not in retried.stderr  # a failed sample's first steps are checkpointed
        assert {r["status"] for r in rows_of(run_dir)} == {"accepted"}
        with sqlite3.connect(run_dir / "checkpoints.sqlite") as db:  # the failed attempts' error writes stay ...
            errors = [bytes(v) for (v,) in db.execute("SELECT value FROM writes WHERE channel = '__error__'")]
        assert errors and all(b"REDACTED" in e for e in errors)  # ... redacted
        outputs += [cli("replay", run_dir), cli("replay", run_dir, "--sample", "malaria"),
                    cli("replay", run_dir, "--sample", "malaria", "--step", "1", "--json")]

        endpoint.reject_echoing_key = True
        chat = cli("chat", *llm, "--store", store, input=RECORDS[0]["question"] + "\n/paths\n/quit\n", OPENAI_API_KEY=KEY)
        outputs.append(chat)
        assert chat.returncode == 0, chat.stderr
        assert "The turn failed" in chat.stdout and "HTTP 401" in chat.stdout and "[REDACTED]" in chat.stdout
        assert "No turn yet" in chat.stdout  # the session went on after the failed turn
    assert_no_key_in_dir(run_dir)
    assert_no_key_in_dir(store)
    for result in outputs:
        assert_no_key("output of " + " ".join(result.args[2:4]), result.stdout + result.stderr)


URL_PASSWORD, URL_QUERY_KEY = "pw-9f8e7d6c5b4a3f2e", "qk-1a2b3c4d5e6f7a8b"


def test_credentials_in_the_endpoint_url_are_never_written_or_shown(tmp_path, fixture_kg_dir, brain):
    from starlette.testclient import TestClient

    from agent.inspection.view import create_app

    records = write_records(tmp_path / "in.jsonl", RECORDS[:2])
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain) as server:
        secret_url = server.url.replace("http://", f"http://medreason:{URL_PASSWORD}@") + f"?api_key={URL_QUERY_KEY}"
        llm = ["--kg-dir", fixture_kg_dir, "--model", "fake", "--base-url", secret_url]
        outputs = [cli("run", records, "--out", run_dir, *llm, "--limit", "1"),
                   cli("run", records, "--out", run_dir, *llm, "--resume"),
                   cli("replay", run_dir), cli("replay", run_dir, "--sample", "tb", "--step", "1", "--json"),
                   cli("replay", run_dir, "--sample", "tb", "--fork", "2", "--set", f"settings.base_url={secret_url}", *llm),
                   cli("merge", run_dir, "--out", tmp_path / "merged"),
                   cli("export", tmp_path / "merged", "--format", "hf", "--out", tmp_path / "hf", "--all"),
                   cli("export", run_dir, "--format", "sft", "--out", tmp_path / "sft.jsonl", "--provenance")]
        assert server.hits > 0
    for done in outputs:
        assert done.returncode == 0, done.stderr
    # the endpoint is recorded and shown, always without its credentials
    assert f"fake at {server.url})" in " ".join(outputs[0].stderr.split())
    assert f"settings.base_url={server.url}" in " ".join(outputs[4].stdout.split())
    assert json.loads((run_dir / "summary.json").read_text())["base_url"] == server.url
    assert json.loads((run_dir / "fingerprint.json").read_text())["endpoint"] == server.url
    overview = TestClient(create_app(run_dir), base_url="http://127.0.0.1").get("/").text
    assert server.url in overview
    for text in [overview, *(o.stdout + o.stderr for o in outputs),
                 *(p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file())]:
        assert URL_PASSWORD not in text and URL_QUERY_KEY not in text


# -- one run per RUN_DIR -----------------------------------------------------------------------
def start(*args, **extra_env):
    return subprocess.Popen([sys.executable, str(ROOT / "run_agent.py"), *map(str, args)], cwd=ROOT, env=env(**extra_env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def many(path, n):
    return write_records(path, [{**RECORDS[i % 2], "id": f"r{i}", "question": f"Case {i}. " + RECORDS[i % 2]["question"]}
                                for i in range(n)])


@pytest.mark.parametrize("resume", [False, True])
def test_two_runs_on_one_run_dir_one_is_refused_and_every_id_is_written_once(tmp_path, fixture_kg_dir, brain, resume):
    records = many(tmp_path / "in.jsonl", 16)
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain, latency=0.05) as server:
        args = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--model", "fake",
                "--base-url", server.url, "--concurrency", "2", *(["--resume"] if resume else [])]
        first, second = start(*args), start(*args)
        (out1, err1), (out2, err2) = first.communicate(timeout=300), second.communicate(timeout=300)
        hits = server.hits
    codes = sorted([first.returncode, second.returncode])
    assert codes == [0, 2], (err1, err2)
    refusal = err1 if first.returncode == 2 else err2
    assert "is in use by another run" in " ".join(refusal.split())
    assert f"pid {(first if first.returncode == 0 else second).pid} on host" in " ".join(refusal.split())
    rows = rows_of(run_dir)
    assert sorted(r["id"] for r in rows) == sorted(f"r{i}" for i in range(16))  # each once
    probes = json.loads((run_dir / "summary.json").read_text())["structured_output"]["probe_calls"]
    assert hits == sum(r["usage"]["llm_calls"] for r in rows) + probes  # nobody paid twice


def kill_after_results(args, run_dir: Path, lines: int) -> subprocess.Popen:
    """Start ``run`` with ``args`` and SIGKILL it once ``lines`` results are written."""
    proc = start(*args)
    wait_for_lines(run_dir / "results.jsonl", lines, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc


def test_a_killed_runs_lock_does_not_block_resume(tmp_path, fixture_kg_dir, brain):
    records = many(tmp_path / "in.jsonl", 12)
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain, latency=0.1) as server:
        args = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--model", "fake", "--base-url", server.url]
        proc = kill_after_results(args, run_dir, 2)
        assert str(proc.pid) in (run_dir / "run.lock").read_text()  # the stale holder is still named there
        resumed = cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["id"] for r in rows_of(run_dir)) == sorted(f"r{i}" for i in range(12))


def test_resume_keeps_one_row_of_ids_that_results_already_holds_twice(tmp_path, fixture_kg_dir):
    records = write_records(tmp_path / "in.jsonl", RECORDS)
    run_dir = tmp_path / "run"
    assert cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir).returncode == 0
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    (run_dir / "results.jsonl").write_text("\n".join(lines + lines[:2]) + "\n")  # as two unlocked runs left it
    resumed = cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "held 2 id(s) more than once (malaria, tb); kept one row each" in " ".join(resumed.stderr.split())
    assert [r["id"] for r in rows_of(run_dir)] == ["malaria", "tb", "scurvy"]
    assert json.loads((run_dir / "summary.json").read_text())["records"] == 3


# -- export never destroys a file ----------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, fixture_kg_dir):
    tmp = tmp_path_factory.mktemp("finished")
    records = write_records(tmp / "in.jsonl", RECORDS)
    done = cli("run", records, "--out", tmp / "run", "--kg-dir", fixture_kg_dir)
    assert done.returncode == 0, done.stderr
    return tmp / "run"


def test_export_refuses_the_runs_own_files_and_existing_files_without_force(finished_run, tmp_path):
    before = {p.name: p.read_bytes() for p in finished_run.iterdir()}
    for target in ("results.jsonl", "summary.json", "checkpoints.sqlite"):
        refused = cli("export", finished_run, "--format", "sft", "--out", finished_run / target, "--force")
        assert refused.returncode == 2 and "would destroy the run" in " ".join(refused.stderr.split()), refused.stderr
    linked = tmp_path / "link.jsonl"
    linked.symlink_to(finished_run / "results.jsonl")
    assert cli("export", finished_run, "--format", "sft", "--out", linked, "--force").returncode == 2
    assert cli("export", finished_run, "--format", "hf", "--out", finished_run, "--force").returncode == 2
    assert {p.name: p.read_bytes() for p in finished_run.iterdir()} == before  # untouched
    assert cli("replay", finished_run).returncode == 0

    out = tmp_path / "sft.jsonl"
    out.write_text("precious\n")
    kept = cli("export", finished_run, "--format", "sft", "--out", out)
    assert kept.returncode == 2 and "already exists; pass --force" in " ".join(kept.stderr.split())
    assert out.read_text() == "precious\n"
    forced = cli("export", finished_run, "--format", "sft", "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(out.read_text().splitlines()) == 2 and list(tmp_path.glob("*.tmp")) == [] == list(tmp_path.glob(".*tmp"))


def test_export_onto_a_directory_or_an_unwritable_place_is_a_clear_error(finished_run, tmp_path):
    directory = cli("export", finished_run, "--format", "medreason", "--out", tmp_path)
    assert directory.returncode == 2 and "is a directory; name a file" in " ".join(directory.stderr.split())
    (tmp_path / "file").write_text("x")
    under_file = cli("export", finished_run, "--format", "sft", "--out", tmp_path / "file" / "out.jsonl")
    assert under_file.returncode == 2 and "cannot write" in under_file.stderr and "Traceback" not in under_file.stderr
    assert (tmp_path / "file").read_text() == "x"


# -- damaged checkpoints: refused before anything is spent ------------------------------------
@pytest.mark.parametrize("with_wal", [False, True])
def test_a_damaged_checkpoint_database_is_refused_before_any_llm_call(tmp_path, fixture_kg_dir, brain, with_wal):
    records = many(tmp_path / "in.jsonl", 10)
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(brain, latency=0.1) as server:
        args = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--model", "fake", "--base-url", server.url]
        kill_after_results(args, run_dir, 3)  # a crash
        database = run_dir / "checkpoints.sqlite"
        with sqlite3.connect(database) as db:  # everything into the database file, the -wal emptied
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        if with_wal:  # a second crash leaves newer pages in a -wal beside the older database
            proc = start(*args, "--resume")
            wait_for_lines(run_dir / "results.jsonl", 4, proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert (run_dir / "checkpoints.sqlite-wal").stat().st_size > 0
        size = database.stat().st_size
        with open(database, "r+b") as f:  # half-written, as a copy cut short
            f.truncate(size // 2)
        done = len(rows_of(run_dir))
        hits = server.hits
        refused = cli(*args, "--resume")
        assert refused.returncode == 2, refused.stderr
        message = " ".join(refused.stderr.split())
        assert "checkpoints.sqlite is damaged" in message and "--resume --fresh-checkpoints" in message
        assert f"the {10 - done} unfinished sample(s)" in message and "Traceback" not in message
        assert server.hits == hits  # nothing was spent

        fresh = cli(*args, "--resume", "--fresh-checkpoints")
        assert fresh.returncode == 0, fresh.stderr
    assert sorted(r["id"] for r in rows_of(run_dir)) == sorted(f"r{i}" for i in range(10))
    assert {r["status"] for r in rows_of(run_dir)} == {"accepted"}
    assert len(list(run_dir.glob("checkpoints.*.sqlite"))) == 1  # the damaged one, kept aside


# -- checkpoints that vanished: named before anything is paid for again ------------------------------
class HoldSamples:
    """A latency for FakeOpenAIServer that, once ``hold`` is set, keeps waiting every request
    of a sample that made one before: such a sample has finished a step, so it has
    checkpoints. When ``held`` has one sample per slot, every sample in flight is one of them.
    ``watch(path)``: the text of ``path`` (a command's stderr) when the next request arrives."""

    def __init__(self, latency: float = 0.05) -> None:
        self.latency, self.lock = latency, threading.Lock()
        self.asked: Counter = Counter()
        self.held: set[str] = set()
        self.hold, self.release = threading.Event(), threading.Event()
        self.watched: Path | None = None
        self.seen_then: str | None = None

    def __call__(self, body: dict) -> float:
        with self.lock:
            if self.watched is not None and self.seen_then is None:
                self.seen_then = self.watched.read_text()
        case = re.search(r"Case (\d+)\.", json.dumps(body))
        if case:
            sample = f"r{case.group(1)}"
            with self.lock:
                self.asked[sample] += 1
                waits = self.hold.is_set() and self.asked[sample] > 1
                if waits:
                    self.held.add(sample)
            if waits:
                self.release.wait(timeout=300)
        return self.latency

    def kill_with_all_slots_held(self, args, run_dir: Path, slots: int, after: int) -> set[str]:
        """Start ``run`` with ``args``; once ``after`` results are written, hold the samples,
        SIGKILL the run when ``slots`` are held, and return the held (in-flight) samples."""
        proc = start(*args)
        wait_for_lines(run_dir / "results.jsonl", after, proc)
        self.hold.set()
        deadline = time.monotonic() + 120
        while len(self.held) < slots:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.hold.clear()
        self.release.set()
        return set(self.held)

    def watch(self, path: Path) -> None:
        path.write_text("")
        self.watched, self.seen_then = path, None


def threads_in_sqlite(*files: Path) -> set[str]:
    """The threads of a SQLite checkpoint database made of ``files`` (the database, then its
    -wal and -shm if given), read from a copy so that nothing is checkpointed into the original."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.sqlite"
        for part, suffix in zip(files, ("", "-wal", "-shm")):
            shutil.copyfile(part, f"{copy}{suffix}")
        with closing(sqlite3.connect(copy)) as db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'checkpoints'").fetchone():
                return set()
            return {t for (t,) in db.execute("SELECT DISTINCT thread_id FROM checkpoints")}


def named_as_lost(stderr: str) -> list[str]:
    """The sample ids of the lost-checkpoints warning, which must give their number first."""
    found = re.search(r"Warning: (\d+) started sample\(s\) have no checkpoints left in \S+: (.*?)\. They will be "
                      r"redone from scratch", " ".join(stderr.split()))
    assert found, stderr
    named = found.group(2).split(", ")
    assert int(found.group(1)) == len(named)
    return named


def cli_with_stderr_in(path: Path, *args, **extra_env) -> subprocess.CompletedProcess:
    """``cli``, its stderr written to ``path`` as it goes (``HoldSamples.watch`` reads it)."""
    with open(path, "a") as stderr:
        return subprocess.run([sys.executable, str(ROOT / "run_agent.py"), *map(str, args)], stdout=subprocess.PIPE,
                              stderr=stderr, text=True, cwd=ROOT, env=env(**extra_env), timeout=300)


@pytest.mark.parametrize("wal_deleted", [True, False])
def test_started_samples_whose_checkpoints_vanished_are_named_before_any_llm_call(tmp_path, fixture_kg_dir, brain,
                                                                                   wal_deleted):
    records = many(tmp_path / "in.jsonl", 12)
    run_dir, stderr = tmp_path / "run", tmp_path / "resume.stderr"
    samples = HoldSamples()
    with FakeOpenAIServer(brain, latency=samples) as server:
        args = ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--model", "fake", "--base-url", server.url,
                "--concurrency", "3"]
        in_flight = samples.kill_with_all_slots_held(args, run_dir, slots=3, after=2)
        assert in_flight.isdisjoint(r["id"] for r in rows_of(run_dir))
        run_id = json.loads((run_dir / "fingerprint.json").read_text())["run_id"]
        database = run_dir / "checkpoints.sqlite"
        wal, shm = database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")
        had = threads_in_sqlite(database, wal, shm)
        assert {f"{run_id}:{s}" for s in in_flight} <= had  # each sample in flight had checkpoints
        if wal_deleted:  # the case: the content was in the -wal, and the -wal is gone
            assert wal.stat().st_size > 0
            wal.unlink()
            shm.unlink()
        left = threads_in_sqlite(*(part for part in (database, wal, shm) if part.exists()))
        vanished = sorted(s for s in in_flight if f"{run_id}:{s}" not in left)
        assert bool(vanished) == wal_deleted
        with sqlite3.connect(database) as db:  # what remains passes SQLite's check
            assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        db.close()

        samples.watch(stderr)
        resumed = cli_with_stderr_in(stderr, *args, "--resume")
        assert resumed.returncode == 0, stderr.read_text()
    assert samples.seen_then is not None  # the resumed run asked the server, and this is what it had said by then
    if wal_deleted:
        assert sorted(named_as_lost(samples.seen_then)) == vanished
        assert "redone from scratch" in " ".join(samples.seen_then.split())
        assert json.loads((run_dir / "summary.json").read_text())["checkpoints_lost"] == named_as_lost(stderr.read_text())
    else:
        assert "no checkpoints left" not in stderr.read_text()
        assert "checkpoints_lost" not in json.loads((run_dir / "summary.json").read_text())
    assert sorted(r["id"] for r in rows_of(run_dir)) == sorted(f"r{i}" for i in range(12))
    assert {r["status"] for r in rows_of(run_dir)} == {"accepted"}


# -- --out that cannot take a run ------------------------------------------------------------------
def mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode == 0


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_read_only_out_is_refused_before_the_graph_loads(tmp_path):
    records = write_records(tmp_path / "in.jsonl", RECORDS)
    place = tmp_path / "ro"
    if not mount_tmpfs(place, "ro,size=1m"):
        place.chmod(0o555)  # without root: a directory we may not write
        if os.access(place, os.W_OK):
            pytest.skip("cannot make a read-only directory here (not root, and permissions are not enforced)")
    try:
        # --kg-dir names a directory that does not exist: had the graph been opened first, that
        # would have been the error; the --out check comes before it.
        refused = cli("run", records, "--out", place / "run", "--kg-dir", tmp_path / "no-kg")
    finally:
        unmount(place)
    assert refused.returncode == 2, refused.stderr
    message = " ".join(refused.stderr.split())
    assert "cannot be written" in message and ("Read-only file system" in message or "Permission denied" in message)


def test_a_full_disk_is_refused_before_the_graph_loads_and_running_out_midway_stops_cleanly(tmp_path, fixture_kg_dir):
    records = write_records(tmp_path / "in.jsonl", [{**RECORDS[i % 3], "id": f"r{i}"} for i in range(60)])
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "size=8m"):
        pytest.skip("mounting a tmpfs needs root: the full-disk case cannot be set up here")
    try:
        def leave_free(kb):
            (disk / "filler").write_bytes(b"")
            stats = os.statvfs(disk)
            (disk / "filler").write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - kb * 1024))

        leave_free(64)
        full = cli("run", records, "--out", disk / "run", "--kg-dir", tmp_path / "no-kg")
        assert full.returncode == 2 and "KB free on its file system" in full.stderr, full.stderr

        leave_free(1300)  # room for some 20 of the 60 samples' checkpoints
        stopped = cli("run", records, "--out", disk / "run", "--kg-dir", fixture_kg_dir)
        message = " ".join(stopped.stderr.split())
        assert stopped.returncode == 1, stopped.stderr
        assert "The run stopped" in message and "--resume" in message and "Traceback" not in message
        saved = rows_of(disk / "run")  # complete lines only, each id once
        assert len({r["id"] for r in saved}) == len(saved) < 60

        (disk / "filler").unlink()
        resumed = cli("run", records, "--out", disk / "run", "--kg-dir", fixture_kg_dir, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert sorted(r["id"] for r in rows_of(disk / "run")) == sorted(f"r{i}" for i in range(60))
    finally:
        unmount(disk)


def test_a_damaged_vector_cache_stops_the_run_naming_that_file_and_resume_goes_on_once_it_is_gone(tmp_path, fixture_kg_dir):
    from graphs.embedding import DEFAULT_MODEL, model_key

    # an option no node names: its vector is looked up in the cache, then computed
    records = write_records(tmp_path / "in.jsonl", [{**RECORDS[0], "options": {**RECORDS[0]["options"], "B": "a sudden warm feeling"}}])
    damaged = tmp_path / "vectors" / f"{model_key(DEFAULT_MODEL)}.sqlite"
    damaged.parent.mkdir()
    damaged.write_bytes(b"not a database " * 300)
    stopped = cli("run", records, "--out", tmp_path / "run", "--kg-dir", fixture_kg_dir,
                  MEDREASON_VECTOR_CACHE=str(damaged.parent))
    message = " ".join(stopped.stderr.split())
    assert stopped.returncode == 1, stopped.stderr
    assert f"the vector cache {damaged} failed: file is not a database" in message, message
    assert "checkpoint database" not in message and "Traceback" not in message and "--resume" in message

    damaged.unlink()
    resumed = cli("run", records, "--out", tmp_path / "run", "--kg-dir", fixture_kg_dir, "--resume",
                  MEDREASON_VECTOR_CACHE=str(damaged.parent))
    assert resumed.returncode == 0, resumed.stderr
    assert [r["id"] for r in rows_of(tmp_path / "run")] == [RECORDS[0]["id"]]


# -- input that used to be mangled -----------------------------------------------------------------
def test_latin1_input_is_refused_with_its_line_or_read_with_encoding(tmp_path, fixture_kg_dir):
    text = "".join(json.dumps({**r, "question": r["question"] + " Café au lait spots?"}, ensure_ascii=False) + "\n"
                   for r in RECORDS)
    for name in ("in.jsonl", "in.json"):
        path = tmp_path / name
        path.write_bytes((text if name.endswith("l") else json.dumps(RECORDS + [{"q": "é"}], ensure_ascii=False))
                         .encode("latin-1"))
        refused = cli("run", path, "--out", tmp_path / f"run-{name}", "--kg-dir", fixture_kg_dir)
        assert refused.returncode == 2, refused.stderr
        message = " ".join(refused.stderr.split())
        assert "not valid UTF-8 (byte 0xe9" in message and "--encoding" in message and "Traceback" not in message
    assert "in.jsonl:1: not valid UTF-8" in " ".join(cli("run", tmp_path / "in.jsonl", "--out", tmp_path / "r",
                                                         "--kg-dir", fixture_kg_dir).stderr.split())
    for codec in ("nope", "rot13", "base64"):  # unknown, and codecs that are not text encodings
        for command in (["run", "--out", tmp_path / "r"], ["ground", "--out", tmp_path / "g.jsonl"]):
            refused = cli(command[0], tmp_path / "in.jsonl", *command[1:], "--encoding", codec)
            assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
            assert f"unknown --encoding '{codec}': not a text encoding" in " ".join(refused.stderr.split())
    done = cli("run", tmp_path / "in.jsonl", "--out", tmp_path / "run", "--kg-dir", fixture_kg_dir, "--encoding", "latin-1")
    assert done.returncode == 0, done.stderr
    assert all(r["question"].endswith("Café au lait spots?") for r in rows_of(tmp_path / "run"))


@pytest.mark.parametrize("content", ["[]", "{}", "id,question,answer\n"])
def test_input_without_records_cannot_start(tmp_path, content):
    path = tmp_path / ("in.csv" if "," in content else "in.json")
    path.write_text(content)
    refused = cli("run", path, "--out", tmp_path / "run")
    assert refused.returncode == 2 and "holds no records" in refused.stderr, refused.stderr
    assert not (tmp_path / "run").exists()


def test_option_keys_in_any_case_or_two_letters_through_llm_mode(tmp_path, fixture_kg_dir, brain):
    malaria, tb = RECORDS[0], RECORDS[1]
    records = write_records(tmp_path / "in.jsonl", [
        {**malaria, "id": "lower", "options": {k.lower(): v for k, v in malaria["options"].items()}, "answer_idx": "a"},
        {**tb, "id": "two-letter", "options": {"AA": "asthma", "AB": "tuberculosis"}, "answer_idx": "AB"},
        {**tb, "id": "medmcqa-style", "options": {"opa": "asthma", "opb": "tuberculosis"}, "answer_idx": "opb"},
        {**tb, "id": "clash", "options": {"a": "asthma", "A": "tuberculosis"}, "answer_idx": "A"},
    ])
    with FakeOpenAIServer(brain) as server:
        done = cli("run", records, "--out", tmp_path / "run", "--kg-dir", fixture_kg_dir, "--model", "fake",
                   "--base-url", server.url)
    assert done.returncode == 0, done.stderr
    rows = {r["id"]: r for r in rows_of(tmp_path / "run")}
    assert rows["lower"]["options"] == {"A": "chloroquine", "B": "metformin", "C": "albuterol"}
    assert rows["lower"]["answer_idx"] == "A" and rows["lower"]["status"] == "accepted"
    assert rows["two-letter"]["answer_idx"] == "AB" and rows["two-letter"]["status"] == "accepted"
    assert rows["two-letter"]["verification"]["predicted"] == "AB"
    assert rows["medmcqa-style"]["options"] == {"A": "asthma", "B": "tuberculosis"}
    assert rows["medmcqa-style"]["status"] == "accepted"
    assert rows["clash"]["status"] == "error" and "two options labelled 'A'" in rows["clash"]["error"]


def test_an_invalid_record_keeps_its_own_id(tmp_path, fixture_kg_dir):
    records = write_records(tmp_path / "in.jsonl", [{"id": "q-17", "question": "Which?"}, {"question": "No id?"}])
    done = cli("run", records, "--out", tmp_path / "run", "--kg-dir", fixture_kg_dir)
    assert done.returncode == 0, done.stderr
    assert [(r["id"], r["status"]) for r in rows_of(tmp_path / "run")] == [("q-17", "error"), ("in-2", "error")]


# -- data is printed as text, never as markup --------------------------------------------------------
def test_replay_prints_ids_that_look_like_markup_as_they_are(tmp_path, fixture_kg_dir):
    records = write_records(tmp_path / "in.jsonl", [{**RECORDS[0], "id": "[/]"}, {**RECORDS[2], "id": "[bold red]x[/]"},
                                                    {"id": "m", "question": "Q?", "options": {"[red]z[/red]": "x"}, "answer": "x"}])
    run_dir = tmp_path / "run"
    done = cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir)
    assert done.returncode == 0, done.stderr
    assert "option key '[red]z[/red]'" in done.stdout.replace("\n", "")  # the error reason, in the summary
    listed = cli("replay", run_dir)
    assert listed.returncode == 0, listed.stderr
    assert "[/]" in listed.stdout and "[bold red]x[/]" in listed.stdout
    for sample in ("[/]", "[bold red]x[/]"):
        timeline = cli("replay", run_dir, "--sample", sample)
        assert timeline.returncode == 0, timeline.stderr
        assert sample in timeline.stdout.replace("\n", "")
        step = cli("replay", run_dir, "--sample", sample, "--step", "1")
        assert step.returncode == 0 and sample in step.stdout, step.stderr
    missing = cli("replay", run_dir, "--sample", "[red]nope[/]")
    assert missing.returncode == 2 and "[red]nope[/]" in " ".join(missing.stderr.split())


# -- chat keeps the session ----------------------------------------------------------------------------
def test_chat_save_onto_a_directory_reports_and_keeps_the_session(tmp_path, fixture_kg_dir):
    question = RECORDS[0]["question"] + " A) chloroquine B) metformin"
    chat = cli("chat", "--kg-dir", fixture_kg_dir, "--offline", "--store", tmp_path / "store",
               input=f"{question}\n/save {tmp_path}\n/save {tmp_path / 'turns.jsonl'}\n/quit\n")
    assert chat.returncode == 0, chat.stderr
    text = " ".join(chat.stdout.split())
    assert f"Could not save to {tmp_path}: Is a directory" in text
    assert "Saved turn chat-" in text and json.loads((tmp_path / "turns.jsonl").read_text())["status"] == "unverified"


# -- a damaged results.jsonl: every reader names the line ----------------------------------------------
@pytest.mark.parametrize("damage, problem", [
    ('{"id": "tb", "status": "acc', "not JSON (Unterminated string"),  # a bad copy
    ('{"id": "tb", "reasoning": "edited by hand"}', "missing status, paths, attempts, error"),
])
def test_a_corrupt_line_in_results_is_named_by_every_command_that_reads_it(tmp_path, fixture_kg_dir, damage, problem):
    records = write_records(tmp_path / "in.jsonl", RECORDS)
    run_dir = tmp_path / "run"
    assert cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir).returncode == 0
    results = run_dir / "results.jsonl"
    lines = results.read_text().splitlines()
    results.write_text("\n".join([lines[0], damage, lines[2]]) + "\n")
    before = results.read_bytes()
    for args in (["view", run_dir, "--port", "0"], ["export", run_dir, "--format", "sft", "--out", tmp_path / "sft.jsonl"],
                 ["merge", run_dir, "--out", tmp_path / "merged"], ["replay", run_dir],
                 ["replay", run_dir, "--sample", "malaria"],
                 ["run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--resume"]):
        refused = cli(*args)
        message = " ".join(refused.stderr.split())
        assert refused.returncode == 2, (args, refused.stderr)
        assert f"{results} line 2 is not a row of this run: {problem}" in message, (args, message)
        assert "Fix that line, or delete it" in message and "Traceback" not in refused.stderr, (args, message)
    assert results.read_bytes() == before and not (tmp_path / "sft.jsonl").exists() and not (tmp_path / "merged").exists()

    results.write_text("\n".join([lines[0], lines[2]]) + "\n")  # the line deleted: resume makes that sample again
    resumed = cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["id"] for r in rows_of(run_dir)) == ["malaria", "scurvy", "tb"]


@pytest.mark.parametrize("damage, problem", [
    ('{"counts": {"accepted": 2', "not JSON"),  # a torn copy
    ("[1, 2]", "a JSON list, not an object"),
])
def test_a_damaged_summary_stops_only_what_needs_it_and_a_resume_writes_it_anew(tmp_path, fixture_kg_dir, damage, problem):
    """summary.json is made from the rows: the viewer and a resume go on without it; an export,
    whose provenance only it records, stops with the file named and what to do."""
    records = write_records(tmp_path / "in.jsonl", RECORDS)
    run_dir = tmp_path / "run"
    assert cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir).returncode == 0
    summary = run_dir / "summary.json"
    recorded = json.loads(summary.read_text())
    summary.write_text(damage)
    for args in (["export", run_dir, "--format", "sft", "--out", tmp_path / "sft.jsonl"],
                 ["merge", run_dir, "--out", tmp_path / "merged"]):
        refused = cli(*args)
        message = " ".join(refused.stderr.split())
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, (args, refused.stderr)
        assert f"{summary} cannot be read ({problem}" in message and "--resume) writes it anew" in message, (args, message)
    assert not (tmp_path / "sft.jsonl").exists() and not (tmp_path / "merged").exists()

    from starlette.testclient import TestClient

    from agent.inspection.view import create_app

    page = TestClient(create_app(run_dir, token="t"), base_url="http://127.0.0.1").get("/", params={"token": "t"})
    assert page.status_code == 200 and f"not recorded: {summary} cannot be read ({problem}" in html.unescape(page.text)

    resumed = cli("run", records, "--out", run_dir, "--kg-dir", fixture_kg_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    rewritten = json.loads(summary.read_text())
    assert rewritten["counts"] == recorded["counts"] and rewritten["kg"] == recorded["kg"]
    exported = cli("export", run_dir, "--format", "sft", "--out", tmp_path / "sft.jsonl")
    assert exported.returncode == 0, exported.stderr


# -- a service lost mid-run is the environment, not a bug ------------------------------------------------
def unknown_word(i: int) -> str:
    """A long word no graph names: the fake model extracts it, and mapping it asks the index."""
    return "".join("bcdfghjklmnpqrstvwz"[(i * 7 + k * 3) % 19] + "aeiou"[(i + k) % 5] for k in range(5))


def test_a_chroma_server_lost_mid_run_does_not_stop_it(tmp_path, brain):
    """The index is read from the server when the graph opens and searched in the process
    (graphs/entity_index.py), so a server lost afterwards costs nothing; a server that fails
    while a Ray actor opens the index is named as the cause (agent/runs/stops.py)."""
    from tests.services import chroma_server_process

    records = write_records(tmp_path / "in.jsonl", [
        {**RECORDS[0], "id": f"r{i}", "question": f"A patient reports {unknown_word(i)} and {unknown_word(i + 100)}."}
        for i in range(30)])
    run_dir, kg_dir = tmp_path / "run", tmp_path / "kg"
    with chroma_server_process(tmp_path / "chroma") as (url, chroma), FakeOpenAIServer(brain, latency=0.1) as server:
        built = cli("kg", "build", "--source", "triples", "--input", ROOT / "tests" / "fixtures" / "medical_kg.tsv",
                    "--kg-dir", kg_dir, "--chroma-url", url)
        assert built.returncode == 0, built.stderr
        run = start("run", records, "--out", run_dir, "--kg-dir", kg_dir, "--chroma-url", url, "--model", "fake",
                    "--base-url", server.url)
        wait_for_lines(run_dir / "results.jsonl", 2, run)
        chroma.kill()
        chroma.wait()
        _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    assert "bug" not in stderr and "Traceback" not in stderr and not (run_dir / "crash.log").exists()
    assert sorted(r["id"] for r in rows_of(run_dir)) == sorted(f"r{i}" for i in range(30))
