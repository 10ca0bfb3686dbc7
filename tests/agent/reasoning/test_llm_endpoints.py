"""What real endpoints do to LLM mode, through a real HTTP server on 127.0.0.1 (the strict fake):
constrained JSON and the choice of structured output per endpoint, bounded generations,
replies that are not chat completions, samples that degrade instead of failing, and a
reasoning model's thinking kept apart from the reasoning."""

import asyncio
import json
import time

import pytest

from agent.runs.export import ExportOptions, export_run
from agent.runs.runner import RunOptions, run_dataset
from tests.conftest import MALARIA, record
from tests.fake_llm import FakeBrain, FakeOpenAIServer, Quirks, completion, openai_violation

TB = record("A man has hemoptysis and night sweats. Which drug treats the most likely disease?", "rifampin",
            {"A": "rifampin", "B": "metformin"}, "A", id="tb")


def write_records(tmp_path, records):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run(tmp_path, server, make_settings, records=(MALARIA,), name="run", **settings):
    settings = make_settings(model="m", base_url=server.url, api_key="k", llm_max_retries=0, **settings)
    summary = asyncio.run(run_dataset(write_records(tmp_path, list(records)), tmp_path / name, settings, RunOptions()))
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / name / "results.jsonl").read_text().splitlines())}
    return rows, summary


def vocabulary(loaded):
    return [loaded.kg.name(n) for n in loaded.kg.graph]


def kind(body):
    if (body.get("response_format") or {}).get("type") == "json_schema":
        return "json_schema:" + body["response_format"]["json_schema"]["name"]
    if isinstance(body.get("tool_choice"), dict):
        return "tool:" + body["tool_choice"]["function"]["name"]
    return "text"


# -- constrained JSON and the choice per endpoint ----------------------------------------------------
def test_auto_finds_constrained_json_and_every_structured_answer_uses_it(tmp_path, make_settings, brain):
    with FakeOpenAIServer(brain) as server:
        rows, summary = run(tmp_path, server, make_settings)
    assert brain.violations == []
    kinds = [kind(b) for b in brain.requests]
    # one probe, then extract, generate (free text) and verify by constrained JSON
    assert kinds == ["json_schema:Probe", "json_schema:ExtractedEntities", "text", "json_schema:ReasonedAnswer"]
    extract = brain.requests[1]["response_format"]["json_schema"]
    assert extract["strict"] is False and extract["schema"]["properties"]["question_entities"]["type"] == "array"
    assert rows["s1"]["status"] == "accepted" and rows["s1"]["degraded"] == []
    assert summary["structured_output"] == {"setting": "auto", "mode": "json_schema", "tool_calls": None,
                                            "probes": ["json_schema: honoured"], "probe_calls": 1}
    assert summary["usage"]["llm_calls"] == len(brain.requests) - 1  # the probe is the run's, not a sample's


def test_strict_constrained_json_keeps_openais_strict_rules(tmp_path, make_settings, brain):
    with FakeOpenAIServer(brain) as server:
        rows, _ = run(tmp_path, server, make_settings, structured_output="json_schema", strict_schemas=True)
    assert brain.violations == [] and rows["s1"]["status"] == "accepted"
    spec = brain.requests[0]["response_format"]["json_schema"]
    assert spec["strict"] is True and spec["schema"]["additionalProperties"] is False
    assert spec["schema"]["required"] == ["question_entities", "answer_entities"]


@pytest.mark.parametrize("ignores, chosen, probes", [
    ({"response_format"}, "tools", ["json_schema: not honoured", "tools: honoured"]),
    ({"response_format", "tools"}, "text", ["json_schema: not honoured", "tools: not honoured"]),
])
def test_auto_falls_back_to_what_the_endpoint_honours(tmp_path, make_settings, loaded, ignores, chosen, probes):
    brain = FakeBrain(vocabulary(loaded), ignores=frozenset(ignores))
    with FakeOpenAIServer(brain) as server:
        rows, summary = run(tmp_path, server, make_settings)
    assert brain.violations == [] and rows["s1"]["status"] == "accepted"
    assert summary["structured_output"]["mode"] == chosen
    assert [p.split(" (")[0] for p in summary["structured_output"]["probes"]] == probes
    assert "(no JSON object found in the reply" in summary["structured_output"]["probes"][0]


def test_a_server_refusing_json_schema_is_probed_past_not_failed(tmp_path, make_settings, brain):
    def no_response_format(body):
        if "response_format" in body:
            return 400, {"error": {"message": "response_format is not supported", "type": "invalid_request_error"}}, {}
        return None

    with FakeOpenAIServer(brain, override=no_response_format) as server:
        rows, summary = run(tmp_path, server, make_settings)
    assert summary["structured_output"]["mode"] == "tools" and rows["s1"]["status"] == "accepted"
    assert summary["structured_output"]["probes"][0].startswith("json_schema: refused (")
    assert "HTTP 400" in summary["structured_output"]["probes"][0]


def test_without_tool_calls_a_retry_widens_the_search_kg_only_and_says_why(tmp_path, make_settings, loaded):
    # hemoptysis and rifampin are 2 hops apart: out of reach at max_hops=1, so attempt 1 finds no path
    brain = FakeBrain(vocabulary(loaded), ignores=frozenset({"tools"}))
    with FakeOpenAIServer(brain) as server:
        rows, summary = run(tmp_path, server, make_settings, records=[TB], max_hops=1)
    row = rows["tb"]
    assert row["status"] != "error" and len(row["attempts"]) >= 2
    assert not any("lookup_entity" in json.dumps(b.get("tools", [])) for b in brain.requests)
    assert row["attempts"][1]["exploration"].startswith(
        "not explored with the KG tools: the endpoint makes no tool calls (tools: not honoured")
    assert row["attempts"][1]["exploration"].endswith("the search was widened KG-only")
    assert summary["structured_output"]["tool_calls"] is False


def test_the_fake_refuses_malformed_response_formats_as_openai_does():
    user = [{"role": "user", "content": "hi"}]
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}

    def refused(response_format):
        violation = openai_violation({"model": "m", "messages": user, "response_format": response_format})
        return violation and (violation.param, violation.message)

    assert refused({"type": "json_schema", "json_schema": {"name": "A", "schema": schema, "strict": True}}) is None
    assert refused({"type": "xml"})[0] == "response_format.type"
    assert refused({"type": "json_schema"})[1] == "Missing required parameter: 'response_format.json_schema'."
    assert refused({"type": "json_schema", "json_schema": {"schema": schema}})[0] == "response_format.json_schema.name"
    assert "does not match pattern" in refused({"type": "json_schema", "json_schema": {"name": "a b", "schema": schema}})[1]
    assert refused({"type": "json_schema", "json_schema": {"name": "A", "schema": schema, "extra": 1}})[1] == \
        "Unknown parameter: 'response_format.json_schema.extra'."
    open_schema = {**schema, "additionalProperties": True}
    assert "'additionalProperties' is required to be supplied and to be false" in refused(
        {"type": "json_schema", "json_schema": {"name": "A", "schema": open_schema, "strict": True}})[1]
    optional = {**schema, "required": []}
    assert "'required' is required to include every key in properties" in refused(
        {"type": "json_schema", "json_schema": {"name": "A", "schema": optional, "strict": True}})[1]
    assert refused({"type": "json_schema", "json_schema": {"name": "A", "schema": optional}}) is None  # not strict
    assert "must contain the word 'json'" in refused({"type": "json_object"})[1]
    assert openai_violation({"model": "m", "messages": user, "max_tokens": 0}).param == "max_tokens"


# -- bounded generations -------------------------------------------------------------------------------
def test_each_node_sends_its_max_tokens(tmp_path, make_settings, brain):
    with FakeOpenAIServer(brain) as server:
        run(tmp_path, server, make_settings, structured_output="tools", max_tokens_generate=900, max_tokens_extract=300)
    sent = {b["tools"][0]["function"]["name"] if b.get("tools") else "generate": b["max_completion_tokens"] for b in brain.requests}
    assert sent == {"ExtractedEntities": 300, "generate": 900, "ReasonedAnswer": 256}


@pytest.mark.parametrize("mode", ["json_schema", "tools", "text"])
def test_a_reply_cut_off_at_max_tokens_is_repaired_once_then_the_node_falls_back(tmp_path, make_settings, loaded, mode):
    # a model that rambles whatever it is told: every reply runs into max_tokens
    brain = FakeBrain(vocabulary(loaded), Quirks(ramble=1.0, repair_factor=1.0))
    with FakeOpenAIServer(brain) as server:
        rows, summary = run(tmp_path, server, make_settings, structured_output=mode, max_tokens_generate=300)
    row = rows["s1"]
    assert brain.violations == [] and row["status"] in ("accepted", "rejected")
    assert [d.split(": ")[0] for d in row["degraded"]] == ["extract", "generate", "verify"]
    assert row["degraded"][1] == "generate: the reply was cut off at max_tokens (300), also after a repair asking for less"
    assert row["reasoning"].startswith("Finding reasoning paths:") and "Let me explain" not in row["reasoning"]
    repairs = [b for b in brain.requests if len(b["messages"]) > 1]
    assert repairs and all("cut off at the limit of" in json.dumps(b["messages"][-1]) for b in repairs)
    assert row["usage"]["llm_calls"] + summary["structured_output"]["probe_calls"] == len(brain.requests)
    assert summary["degraded"] == {"samples": 1, "by_node": {"extract": 1, "generate": 1, "verify": 1}}


def test_a_request_given_up_on_closes_its_connection_so_the_server_stops(tmp_path, make_settings, brain):
    with FakeOpenAIServer(brain, latency=5.0) as server:
        started = time.monotonic()
        rows, _ = run(tmp_path, server, make_settings, structured_output="tools", llm_timeout=0.5)
        deadline = time.monotonic() + 3
        while server.abandoned < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert rows["s1"]["status"] == "error" and "Timeout" in rows["s1"]["error"]
    assert server.abandoned == 1  # the server saw the client leave and stopped "generating"
    assert time.monotonic() - started < 4


# -- replies that are not chat completions ---------------------------------------------------------------
NOT_COMPLETIONS = {
    "html": (b"<html><body><h1>502 Bad Gateway</h1> nginx</body></html>", {"Content-Type": "text/html"},
             "not a chat completion: HTTP 200, content type text/html, body starts '<html><body><h1>502 Bad Gateway"),
    "empty": (b"", {"Content-Type": "application/json"}, "not a chat completion: HTTP 200, empty body"),
    "no choices": (b'{"id": "x", "choices": []}', {"Content-Type": "application/json"},
                   "not a chat completion (no choices): HTTP 200"),
    "error with 200": (b'{"error": {"message": "model overloaded, token sk-abcdefghijklmnop leaked"}}',
                       {"Content-Type": "application/json"},
                       "the endpoint answered HTTP 200 with an error: model overloaded, token [REDACTED] leaked"),
    "no message": (json.dumps({"id": "x", "choices": [{"index": 0, "finish_reason": "stop"}]}).encode(),
                   {"Content-Type": "application/json"}, "not a chat completion (a choice without a message): HTTP 200"),
}


def test_replies_that_are_not_chat_completions_are_that_samples_error_and_the_run_goes_on(tmp_path, make_settings, brain):
    records = [record(f"Question {name}: fever and splenomegaly. Which drug?", "chloroquine",
                      {"A": "chloroquine", "B": "metformin"}, "A", id=name) for name in NOT_COMPLETIONS]

    def bad_for_its_sample(body):
        for name, (data, headers, _) in NOT_COMPLETIONS.items():
            if f"Question {name}:" in json.dumps(body):
                return 200, data, headers
        return None

    with FakeOpenAIServer(brain, override=bad_for_its_sample) as server:
        rows, summary = run(tmp_path, server, make_settings, records=[*records, {**MALARIA, "id": "fine"}],
                            structured_output="tools")
    assert rows["fine"]["status"] == "accepted"
    for name, (_, _, message) in NOT_COMPLETIONS.items():
        row = rows[name]
        assert row["status"] == "error", name
        assert row["error"].startswith("extract: APIResponseValidationError: " + message), row["error"]
        assert "\n" not in row["error"] and len(row["error"]) < 300
    assert summary["counts"] == {"accepted": 1, "rejected": 0, "error": len(NOT_COMPLETIONS)}


# -- degraded samples, and what export does with them ------------------------------------------------------
def test_an_unusable_answer_degrades_the_node_and_export_leaves_the_sample_out(tmp_path, make_settings, brain):
    def verifier_naming_no_option(body):  # twice: the node falls back after a repair
        if [t["function"]["name"] for t in body.get("tools", [])] == ["ReasonedAnswer"] and not openai_violation(body):
            return 200, completion(tool_calls=[("ReasonedAnswer", json.dumps({"answer": "zebra"}))], prompt_tokens=7), {}
        return None

    with FakeOpenAIServer(brain, override=verifier_naming_no_option) as server:
        rows, summary = run(tmp_path, server, make_settings, records=[MALARIA, TB], structured_output="tools")
    row = rows["s1"]
    assert row["status"] == "accepted" and row["error"] is None
    assert row["degraded"] == ["verify: malformed answer after one repair attempt (the arguments did not match the "
                               "schema: answer: Value error, the answer must be one option letter: A, B, C, D)"]
    assert row["verification"]["reason"] == "KG evidence favours the answer"  # the KG-only verifier
    assert row["usage"]["llm_calls"] == 4 and row["usage"]["repairs"] == 1  # extract, generate, verify and its repair
    assert summary["degraded"]["by_node"] == {"verify": 2}

    out = tmp_path / "sft.jsonl"
    assert export_run(tmp_path / "run", "sft", out).written == 0
    assert export_run(tmp_path / "run", "sft", out, ExportOptions(include_degraded=True), force=True).written == 2


# -- a reasoning model's thinking -----------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["think", "reasoning_content"])
def test_thinking_is_kept_apart_and_exported_only_when_asked(tmp_path, make_settings, loaded, where):
    brain = FakeBrain(vocabulary(loaded), Quirks(**{where: 1.0}))
    with FakeOpenAIServer(brain) as server:
        rows, _ = run(tmp_path, server, make_settings, structured_output="text")
    row = rows["s1"]
    assert row["status"] == "accepted"
    assert [t["node"] for t in row["thinking"]] == ["extract", "generate", "verify"]
    assert all(t["text"].startswith("Let me think.") for t in row["thinking"])
    assert "Let me think" not in row["reasoning"] and "<think>" not in row["reasoning"]
    verifier_input = json.dumps(brain.requests[-1]["messages"])
    assert "Let me think" not in verifier_input

    plain, thinking = tmp_path / "plain.jsonl", tmp_path / "thinking.jsonl"
    export_run(tmp_path / "run", "sft", plain)
    export_run(tmp_path / "run", "sft", thinking, ExportOptions(include_thinking=True))
    assistant = lambda path: json.loads(path.read_text())["messages"][-1]["content"]  # noqa: E731
    assert "Let me think" not in assistant(plain)
    assert assistant(thinking).startswith("<think>\nLet me think.")
    assert assistant(thinking).endswith(assistant(plain))
    medreason = tmp_path / "medreason.jsonl"
    export_run(tmp_path / "run", "medreason", medreason, ExportOptions(include_thinking=True))
    assert "Let me think" not in medreason.read_text()
