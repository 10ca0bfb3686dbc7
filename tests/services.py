"""Real services the scale-out tests run against, started here and stopped afterwards:
PostgreSQL 15 (Debian's package, run as the ``postgres`` user when the tests run as root, as
initdb refuses root) and a Chroma server (chromadb's own ``chroma run``). Both bind
127.0.0.1 on a free port; both skip the test with the reason when not installed."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "medreason"
PG_PASSWORD = "s3cret-pg-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    host: str
    port: int
    data: Path

    def url(self, database: str, password: bool = True) -> str:
        secret = f":{PG_PASSWORD}" if password else ""
        return f"postgresql://{PG_USER}{secret}@{self.host}:{self.port}/{database}"

    def stop_now(self) -> None:
        """Stop the server at once, as a crash or a lost host would (``pg_ctl stop -m immediate``)."""
        subprocess.run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "stop", "-m", "immediate"]),
                       check=True, capture_output=True)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_postgres_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as Debian's ``postgres`` user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A fresh cluster in its own directory under the system temp dir (pytest's tmp_path is
    private to root, so the postgres user could not reach it), removed afterwards."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 is not installed ({PG_BIN}); .ci/run installs Debian's postgresql")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no postgres user to run PostgreSQL as (root cannot)")
    tmp = Path(tempfile.mkdtemp(prefix="medreason-pg-"))
    data, password_file = tmp / "data", tmp / "password"
    password_file.write_text(PG_PASSWORD + "\n")
    if os.geteuid() == 0:
        for path in (tmp, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    subprocess.run(_as_postgres_user([
        str(PG_BIN / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={password_file}",
        "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
    ]), check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(_as_postgres_user([
        str(PG_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(tmp),
        "-c", "fsync=off", "-c", "max_connections=50",
    ]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            ready = subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True)
            if ready.returncode == 0:
                break
            if server.poll() is not None:
                raise RuntimeError("PostgreSQL exited while starting")
            time.sleep(0.1)
        yield Postgres("127.0.0.1", port, data)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def chroma_server(path: Path) -> Iterator[str]:
    """A real Chroma server on a free local port; yields its URL."""
    with chroma_server_process(path) as (url, _):
        yield url


@contextmanager
def chroma_server_process(path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real Chroma server on a free local port; yields its URL and its process (to kill it
    mid-run)."""
    import httpx

    if shutil.which("chroma") is None:
        pytest.skip("the chroma command of chromadb is not installed")
    port = free_port()
    proc = subprocess.Popen(["chroma", "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/api/v2/heartbeat", timeout=0.5)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise RuntimeError("chroma run exited while starting") from None
                time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
