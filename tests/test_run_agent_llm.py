"""`run` against a real OpenAI-compatible HTTP server (the fake one, on 127.0.0.1)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_llm import MISBEHAVING, FakeBrain, FakeOpenAIServer
from tests.test_run_agent import RECORDS

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-e2e-secret-4f1d"


@pytest.mark.parametrize("mode", ["auto", "json_schema", "tools", "text"])
def test_run_with_an_llm_end_to_end_keeps_the_key_secret(tmp_path, fixture_kg_dir, loaded, mode):
    records = tmp_path / "in.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    # a model that thinks aloud, writes verbose letters, misses the schema now and then
    brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph], MISBEHAVING)
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "MEDREASON_STRUCTURED_OUTPUT": mode}
    with FakeOpenAIServer(brain) as server:
        done = subprocess.run(
            [sys.executable, str(ROOT / "run_agent.py"), "run", str(records), "--out", str(tmp_path / "run"),
             "--kg-dir", str(fixture_kg_dir), "--base-url", server.url, "--model", "fake-model"],
            capture_output=True, text=True, env=env, timeout=300,
        )
    assert done.returncode == 0, done.stderr
    assert "Mode: LLM (fake-model at http://127.0.0.1" in done.stderr
    chosen = "json_schema" if mode == "auto" else mode
    assert f"Structured output: {chosen} (" + ("auto: json_schema: honoured)" if mode == "auto" else "as set)") in done.stderr
    assert server.authorization == {f"Bearer {SECRET}"}  # the key was used ...

    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())}
    assert brain.violations == []  # every request kept OpenAI's rules
    structured = [b for b in brain.requests if "Say hello." not in json.dumps(b["messages"])]  # not the probes
    forced = [b for b in structured if isinstance(b.get("tool_choice"), dict)]
    constrained = [b for b in structured if "response_format" in b]
    assert bool(forced) == (chosen == "tools")  # structured answers by a forced tool,
    assert bool(constrained) == (chosen == "json_schema")  # by constrained JSON, or as JSON in text
    assert rows["malaria"]["status"] == rows["tb"]["status"] == "accepted"
    assert "<think>" not in rows["malaria"]["reasoning"]
    assert 3 <= rows["malaria"]["usage"]["llm_calls"] <= 5
    assert rows["malaria"]["reasoning"].startswith("Finding reasoning paths:")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["mode"] == "llm"
    assert summary["structured_output"]["mode"] == chosen
    assert summary["usage"]["llm_calls"] + summary["structured_output"]["probe_calls"] == server.hits

    for path in (tmp_path / "run").iterdir():  # ... and written nowhere
        assert SECRET.encode() not in path.read_bytes(), path.name
    assert SECRET not in done.stdout + done.stderr
