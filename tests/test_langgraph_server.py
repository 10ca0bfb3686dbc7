"""The agent as the LangGraph server serves it: ``langgraph.json`` names the compiled graph, and a
run's context is JSON (the settings). Loaded here the way langgraph_api loads a graph given as
``path:attr`` (the file imported as a module of its own), and, when ``langgraph dev`` is
installed, served by it and given a run over HTTP."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MALARIA
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[1]


def served_graphs() -> dict[str, str]:
    config = json.loads((ROOT / "langgraph.json").read_text())
    return config["graphs"]


def load_like_the_server(spec: str):
    """langgraph_api's ``_graph_from_spec`` for a ``./file.py:attr`` spec."""
    path, attr = spec.rsplit(":", 1)
    modname = path.replace("/", "__").replace(".py", "").replace(" ", "_").lstrip(".")
    module_spec = importlib.util.spec_from_file_location(modname, ROOT / path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[modname] = module
    module_spec.loader.exec_module(module)
    return module.__dict__[attr]


def test_langgraph_json_serves_the_agent_run_with_a_json_context(fixture_kg_dir):
    graphs = served_graphs()
    assert list(graphs) == ["medreason"]
    graph = load_like_the_server(graphs["medreason"])
    context_schema = graph.get_context_jsonschema()  # what Studio shows as the run's context form
    assert {"kg_dir", "embedding_model", "max_hops", "chroma_url"} <= set(context_schema["properties"])
    context = json.loads(json.dumps({"kg_dir": str(fixture_kg_dir), "offline": True, "max_attempts": 2}))
    state = graph.invoke({"record": MALARIA}, context=context)
    assert state["status"] == "accepted"
    assert state["pruned"] and "chloroquine" in state["reasoning"]
    with pytest.raises(Exception, match="max_hops"):  # a context that is not valid settings is refused
        graph.invoke({"record": MALARIA}, context={"kg_dir": str(fixture_kg_dir), "max_hops": "many"})


def langgraph_dev() -> str:
    """The ``langgraph`` command with its in-memory server (``langgraph-cli[inmem]``), or skip."""
    command = os.environ.get("MEDREASON_LANGGRAPH_CLI") or shutil.which("langgraph")
    if command is None:
        pytest.skip('langgraph dev is not installed (pip install "langgraph-cli[inmem]"; .ci/run sets it up '
                    "and names it in MEDREASON_LANGGRAPH_CLI)")
    python = Path(command).with_name("python")
    probe = subprocess.run([str(python) if python.exists() else sys.executable, "-c", "import langgraph_api"],
                           capture_output=True)
    if probe.returncode:
        pytest.skip("langgraph is installed without its in-memory server (langgraph-cli[inmem])")
    return command


def test_langgraph_dev_serves_the_agent_and_runs_it_over_http(tmp_path, fixture_kg_dir):
    import httpx

    command = langgraph_dev()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDREASON_", "LANGSMITH_"))}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", LANGGRAPH_CLI_NO_ANALYTICS="1", LANGSMITH_TRACING="false")
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([command, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port),
                               "--config", str(ROOT / "langgraph.json")], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        run = httpx.post(f"{url}/runs/wait", timeout=300, json={
            "assistant_id": "medreason", "input": {"record": MALARIA},
            "context": {"kg_dir": str(fixture_kg_dir), "offline": True},
        })
        assert run.status_code == 200, run.text
        state = run.json()
        assert state["status"] == "accepted" and "chloroquine" in state["reasoning"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
