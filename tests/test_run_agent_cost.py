"""`estimate` and `run`'s budget, through the command line, against the strict fake OpenAI server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_llm import MISBEHAVING, FakeBrain, FakeOpenAIServer
from tests.test_run_agent import RECORDS

ROOT = Path(__file__).resolve().parents[1]
EXIT_BUDGET = 3


@pytest.fixture
def records(tmp_path):
    """15 records: the end-to-end ones, each asked five ways (the fake's answers differ)."""
    path = tmp_path / "in.jsonl"
    lines = [json.dumps({**r, "id": f"{r['id']}-{k}", "question": r["question"] + " " * k})
             for k in range(5) for r in RECORDS]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def server(loaded):
    brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph], MISBEHAVING)
    with FakeOpenAIServer(brain) as server:
        yield server


def cli(command, records, run_dir, server, kg_dir, *extra):
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "MEDREASON_STRUCTURED_OUTPUT": "json_schema"}  # no probe calls
    return subprocess.run(
        [sys.executable, str(ROOT / "run_agent.py"), command, str(records), "--out", str(run_dir), "--kg-dir", str(kg_dir),
         "--base-url", server.url, "--model", "fake-model", *extra],
        capture_output=True, text=True, env=env, timeout=300,
    )


def rows_of(run_dir):
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def probes(run_dir):
    """Requests the session made to learn what the endpoint honours (its summary says how many)."""
    return json.loads((run_dir / "summary.json").read_text())["structured_output"]["probe_calls"]


def tokens(rows):
    return sum(r["usage"]["input_tokens"] + r["usage"]["output_tokens"] for r in rows)


def test_estimate_projects_the_input_then_run_resume_pays_nothing_twice(tmp_path, records, server, fixture_kg_dir):
    run_dir = tmp_path / "run"
    done = cli("estimate", records, run_dir, server, fixture_kg_dir, "--pilot", "6", "--json", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["records"] == 15 and found["pilot"] == 6
    for key in ("llm_calls", "input_tokens", "output_tokens", "tokens_low", "tokens_high", "wall_time_s"):
        assert found[key] is not None, key
    assert found["tokens_low"] <= found["input_tokens"] + found["output_tokens"] <= found["tokens_high"]
    assert found["cost_usd"] == 0.0 and "costs nothing" in found["price"]["source"]  # a server on 127.0.0.1
    assert "Price: free (a local server (127.0.0.1) costs nothing)" in done.stderr
    pilot = rows_of(run_dir)
    assert len(pilot) == 6 and server.hits == sum(r["usage"]["llm_calls"] for r in pilot) + probes(run_dir)
    assert found["tokens_low"] >= tokens(pilot)  # what the pilot spent is part of the whole
    assert json.loads((run_dir / "estimate.json").read_text())["tokens"] == found["tokens"]
    hits = server.hits

    done = cli("run", records, run_dir, server, fixture_kg_dir, "--resume", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    rows = rows_of(run_dir)
    assert sorted(r["id"] for r in rows) == sorted(f"{r['id']}-{k}" for k in range(5) for r in RECORDS)
    rest = [r for r in rows if r["id"] not in {p["id"] for p in pilot}]
    assert server.hits - hits == sum(r["usage"]["llm_calls"] for r in rest) + probes(run_dir)  # no pilot sample ran again
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["spent"]["tokens"] == tokens(rows)  # every session counted, once


def test_a_token_cap_stops_the_run_within_its_bound_and_a_higher_cap_resumes_it(tmp_path, records, server, fixture_kg_dir):
    run_dir = tmp_path / "run"
    cap = 15_000
    done = cli("run", records, run_dir, server, fixture_kg_dir, "--max-tokens", str(cap), "--concurrency", "3")
    assert done.returncode == EXIT_BUDGET, done.stderr
    assert "Budget reached" in done.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    budget = summary["budget"]
    assert budget["reached"] is True and budget["max_tokens"] == cap
    first = rows_of(run_dir)
    assert 0 < len(first) < 15 and summary["unfinished"] == 15 - len(first)
    assert summary["spent"]["tokens"] == tokens(first) <= cap + budget["overshoot_bound"]["tokens"]
    assert server.hits == sum(r["usage"]["llm_calls"] for r in first) + probes(run_dir)  # nothing paid that no row counts
    hits = server.hits

    done = cli("run", records, run_dir, server, fixture_kg_dir, "--resume", "--max-tokens", "10000000", "--concurrency", "3")
    assert done.returncode == 0, done.stderr  # a cap is not a setting that changes results
    rows = rows_of(run_dir)
    assert len(rows) == len({r["id"] for r in rows}) == 15
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["budget"]["reached"] is False and summary["spent"]["tokens"] == tokens(rows)
    earlier = {f["id"] for f in first}
    new_calls = sum(r["usage"]["llm_calls"] for r in rows if r["id"] not in earlier)
    assert server.hits - hits == new_calls + probes(run_dir)


def test_a_cost_cap_below_one_sample_starts_nothing(tmp_path, records, server, fixture_kg_dir):
    run_dir = tmp_path / "run"
    done = cli("run", records, run_dir, server, fixture_kg_dir, "--max-cost", "0.01",
               "--price-input", "1000", "--price-output", "1000")
    assert done.returncode == EXIT_BUDGET, done.stderr
    assert server.hits == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["budget"]["reached"] and summary["spent"]["cost_usd"] == 0.0
    assert summary["spent"]["rest"]["records"] == 15 if "rest" in summary["spent"] else summary["unfinished"] == 15
    assert summary["price"] == {"input_per_million": 1000.0, "output_per_million": 1000.0,
                                "source": "--price-input/--price-output", "dated": None}


def test_half_a_price_is_refused_before_anything_runs(tmp_path, records, server, fixture_kg_dir):
    done = cli("run", records, tmp_path / "run", server, fixture_kg_dir, "--price-input", "1")
    assert done.returncode == 2
    assert "--price-input and --price-output go together" in done.stderr
    assert server.hits == 0 and not (tmp_path / "run").exists()


def test_a_kg_only_estimate_costs_nothing_and_projects_no_calls(tmp_path, records, fixture_kg_dir):
    done = subprocess.run(
        [sys.executable, str(ROOT / "run_agent.py"), "estimate", str(records), "--out", str(tmp_path / "run"),
         "--kg-dir", str(fixture_kg_dir), "--offline", "--pilot", "3", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert (found["pilot"], found["llm_calls"], found["tokens_high"], found["cost_usd"]) == (3, 0, 0, 0.0)
    assert found["price"]["source"] == "KG-only: no LLM calls"
    assert 0.0 <= found["accepted_share_low"] <= found["accepted_share"] <= found["accepted_share_high"] <= 1.0
