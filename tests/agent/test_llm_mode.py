"""LLM behaviour of the nodes, with the OpenAI endpoint faked by respx (classic httpx clients
injected into ChatOpenAI, as the openai SDK itself sends through httpx2)."""

import asyncio
import json

import httpx
import pytest
import respx
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from agent.graph import build_graph
from agent.llm import LLM, LLMError
from agent.runner import RunOptions, run_dataset
from agent.schemas import ExtractedEntities
from tests.conftest import MALARIA, record
from tests.fake_llm import FakeBrain, completion

BASE = "http://llm.test/v1"
URL = f"{BASE}/chat/completions"


def make_llm(max_retries=0, **kw) -> LLM:
    chat = ChatOpenAI(model="m", base_url=BASE, api_key="sk-test-secret", timeout=5, max_retries=max_retries,
                      temperature=0, use_responses_api=False, http_client=httpx.Client(),
                      http_async_client=httpx.AsyncClient(), **kw)
    return LLM(chat)


@pytest.fixture
def brain(loaded):
    return FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph])


@pytest.fixture
def llm_context(make_context):
    def make(**settings):
        ctx = make_context(model="m", **settings)
        ctx.llm = make_llm()
        return ctx
    return make


def run_graph(ctx, rec):
    app = build_graph().compile(checkpointer=InMemorySaver())
    return app.invoke({"record": rec}, {"configurable": {"thread_id": "t"}, "recursion_limit": 60}, context=ctx)


def sent(route):
    return [json.loads(call.request.content) for call in route.calls]


def tool_names(body):
    return [t["function"]["name"] for t in body.get("tools", [])]


def test_first_attempt_uses_at_most_five_calls_and_counts_tokens(llm_context, brain):
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(llm_context(), MALARIA)
    assert state["status"] == "accepted"
    bodies = sent(route)
    assert [tool_names(b)[:1] for b in bodies] == [["ExtractedEntities"], [], ["ReasonedAnswer"]]
    assert state["usage"]["llm_calls"] == len(bodies) == 3  # no ambiguous mention, no group above K
    assert state["usage"]["input_tokens"] > 0 and state["usage"]["output_tokens"] > 0
    assert state["reasoning"].startswith("Finding reasoning paths:")
    assert "Conclusion:" not in json.dumps(bodies[-1])  # the verifier never sees the conclusion


def test_extract_asks_for_typed_entities_with_the_answer(llm_context, brain):
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(llm_context(max_attempts=1), MALARIA)
    prompt = sent(route)[0]["messages"][0]["content"]
    assert "Answer: A. chloroquine" in prompt and "B. metformin" in prompt
    roles = {(m["text"], m["role"]) for m in state["entities"]}
    assert {("fever", "question"), ("splenomegaly", "question"), ("chloroquine", "answer")} <= roles


def test_map_settles_all_ambiguous_mentions_in_one_call(llm_context, brain):
    from agent.nodes import map_entities
    from langgraph.runtime import Runtime

    state = {"record": MALARIA, "entities": [
        {"text": "high temperature", "role": "question", "type": None},
        {"text": "big spleen", "role": "question", "type": None},
        {"text": "anemia", "role": "question", "type": None},
    ]}
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        out = map_entities(state, Runtime(context=llm_context(min_score=0.3)))
    assert route.call_count == 1
    body = sent(route)[0]
    assert tool_names(body) == ["EntityChoices"]
    assert "Mention 1: high temperature" in body["messages"][0]["content"]
    assert "Mention 2: big spleen" in body["messages"][0]["content"]
    methods = {m["mention"]: m["method"] for m in out["mappings"]}
    assert methods == {"anemia": "exact", "high temperature": "llm", "big spleen": "llm"}
    assert out["usage"]["llm_calls"] == 1


def test_prune_covers_every_group_in_one_call_and_caps_each_group(llm_context, brain):
    from agent.nodes import prune
    from langgraph.runtime import Runtime
    from graphs.paths import describe

    ctx = llm_context(prune_per_group=1)
    kg = ctx.kg
    paths = [describe(kg, p) for p in [
        ("effect/phenotype:fever", "disease:malaria", "drug:chloroquine"),
        ("effect/phenotype:fever", "disease:tuberculosis", "drug:rifampin"),
        ("effect/phenotype:fever", "disease:influenza", "effect/phenotype:cough", "disease:tuberculosis", "drug:rifampin"),
        ("effect/phenotype:anemia", "disease:malaria", "drug:chloroquine"),
    ]]
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        out = prune({"record": MALARIA, "paths": paths}, Runtime(context=ctx))
    assert route.call_count == 1 and tool_names(sent(route)[0]) == ["PathSelection"]
    pairs = [(p["nodes"][0], p["nodes"][-1]) for p in out["pruned"]]
    assert len(pairs) == len(set(pairs)) == 3


def test_a_retry_explores_with_kg_tools_and_passes_on_the_second_attempt(llm_context, brain):
    # hemoptysis and rifampin are 2 hops apart: out of reach of the search at max_hops=1,
    # but the model's find_paths call (max_hops=4) finds the path on attempt 2.
    ctx = llm_context(max_hops=1)
    rec = record("A man coughs up blood (hemoptysis). Which drug?", "rifampin", {"A": "rifampin", "B": "metformin"}, "A")
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(ctx, rec)
    assert [(a["attempt"], a["correct"]) for a in state["attempts"]] == [(1, False), (2, True)]
    explore = [b for b in sent(route) if "find_paths" in tool_names(b)]
    assert "A previous attempt failed: no path" in explore[0]["messages"][0]["content"]
    assert explore[-1]["messages"][-1]["role"] == "tool"  # the tool's answer went back to the model
    assert state["pruned"][0]["text"] == "hemoptysis ←phenotype present— tuberculosis ←indication— rifampin"


def test_invalid_tool_arguments_go_back_to_the_model(llm_context, brain):
    ctx = llm_context(max_hops=1, max_attempts=2, max_tool_calls=2)
    rec = record("Hemoptysis. Which drug?", "rifampin", {"A": "rifampin", "B": "metformin"}, "A")

    def handler(request):
        body = json.loads(request.content)
        if "find_paths" in tool_names(body) and body["messages"][-1]["role"] != "tool":
            return httpx.Response(200, json=completion(tool_calls=[("find_paths", {"source": "hemoptysis", "target": "rifampin", "max_hops": 50})]))
        return brain.handler(request)

    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=handler)
        state = run_graph(ctx, rec)
    tool_replies = [m for b in sent(route) for m in b["messages"] if m["role"] == "tool"]
    assert tool_replies and "invalid arguments: max_hops" in tool_replies[0]["content"]
    assert state["status"] == "rejected"  # the loop ended within its cap and the run went on


def test_malformed_json_is_repaired_once():
    llm = make_llm()
    good = {"question_entities": [{"name": "fever"}], "answer_entities": [{"name": "malaria"}]}
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=[
            httpx.Response(200, json=completion(tool_calls=[("ExtractedEntities", "{bad json")])),
            httpx.Response(200, json=completion(tool_calls=[("ExtractedEntities", good)])),
        ])
        found, usage = llm.structured("extract", ExtractedEntities, "extract please")
    assert found.answer_entities[0].name == "malaria" and usage["llm_calls"] == 2
    repair = json.loads(route.calls.last.request.content)["messages"][-1]["content"]
    assert "could not be used" in repair


def test_malformed_twice_is_that_nodes_failure_not_an_empty_value():
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(tool_calls=[("ExtractedEntities", {"oops": 1})])))
        with pytest.raises(LLMError, match="extract: malformed answer after one repair attempt"):
            make_llm().structured("extract", ExtractedEntities, "x")


def test_text_mode_takes_json_out_of_plain_text():
    llm = LLM(make_llm().chat, structured="text")
    reply = 'Sure! {"question_entities": [{"name": "fever"}], "answer_entities": []} Hope this helps.'
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(reply)))
        found, _ = llm.structured("extract", ExtractedEntities, "extract please")
    assert found.question_entities[0].name == "fever"
    assert "tools" not in json.loads(route.calls.last.request.content)


def test_429_is_retried_then_succeeds():
    llm = make_llm(max_retries=1)
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=[
            httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after-ms": "1"}),
            httpx.Response(200, json=completion("Finding reasoning paths:\nReasoning Process:\nConclusion:\nok")),
        ])
        text, usage = llm.text("generate", "go")
    assert route.call_count == 2 and text.endswith("ok") and usage["llm_calls"] == 1


def test_401_is_not_retried():
    llm = make_llm(max_retries=3)
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(401, json={"error": {"message": "bad key"}}))
        with pytest.raises(LLMError, match=r"generate: \w*AuthenticationError: HTTP 401"):
            llm.text("generate", "go")
    assert route.call_count == 1


def test_timeouts_fail_the_node_with_a_reason():
    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(LLMError, match=r"generate: \w*TimeoutError"):
            make_llm().text("generate", "go")


def test_500s_until_retries_run_out_make_that_sample_an_error_and_the_run_goes_on(tmp_path, llm_context, brain):
    ctx = llm_context()
    ctx.llm = make_llm(max_retries=1)
    path = tmp_path / "in.jsonl"
    broken = record("Hemoptysis and night sweats. Diagnosis?", "tuberculosis", {"A": "asthma", "B": "tuberculosis"}, "B", id="broken")
    path.write_text("\n".join(json.dumps(r) for r in [broken, {**MALARIA, "id": "fine"}]) + "\n")

    def handler(request):
        if "Hemoptysis and night sweats" in request.content.decode():
            return httpx.Response(500, json={"error": {"message": "boom"}}, headers={"retry-after-ms": "1"})
        return brain.handler(request)

    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=handler)
        summary = asyncio.run(run_dataset(path, tmp_path / "run", ctx, RunOptions()))
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())}
    assert rows["broken"]["status"] == "error"
    assert rows["broken"]["error"].startswith("extract: ") and "HTTP 500" in rows["broken"]["error"]
    assert rows["fine"]["status"] == "accepted"
    assert summary["counts"] == {"accepted": 1, "rejected": 0, "error": 1}
    assert summary["mode"] == "llm"
