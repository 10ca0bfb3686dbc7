"""LLM behaviour of the nodes, with the OpenAI endpoint faked by respx (classic httpx clients
injected into ChatOpenAI, as the openai SDK itself sends through httpx2). Every request goes
through the fake's copy of OpenAI's rules, which answers a violation with HTTP 400."""

import asyncio
import json
import re
from dataclasses import replace

import httpx
import pytest
import respx
from langgraph.checkpoint.memory import InMemorySaver

from agent.reasoning.graph import compile_graph
from agent.reasoning.llm import LLM, NO_USAGE, ChatEndpoint, LLMError, response_checks
from agent.reasoning.schemas import ExtractedEntities, answer_schema
from agent.runs.runner import RunOptions, run_dataset
from tests.conftest import MALARIA, record
from tests.fake_llm import FakeBrain, FakeOpenAIServer, Quirks, completion, openai_violation

BASE = "http://llm.test/v1"
URL = f"{BASE}/chat/completions"


def make_llm(max_retries=0, structured="tools", **kw) -> LLM:
    chat = ChatEndpoint(model="m", base_url=BASE, api_key="sk-test-secret", timeout=5, max_retries=max_retries,
                        temperature=0, use_responses_api=False, http_client=httpx.Client(event_hooks=response_checks()),
                        http_async_client=httpx.AsyncClient(event_hooks=response_checks(True)), **kw)
    return LLM(chat, structured)


@pytest.fixture
def llm_context(make_context):
    def make(**settings):
        return replace(make_context(model="m", **settings), llm=make_llm())
    return make


def scripted(*replies):
    """A respx side effect that keeps OpenAI's rules and then gives ``replies`` in order."""
    replies = list(replies)

    def handler(request):
        violation = openai_violation(json.loads(request.content))
        if violation:
            return httpx.Response(400, json=violation.body())
        return httpx.Response(200, json=replies.pop(0))
    return handler


def run_graph(ctx, rec):
    app = compile_graph(InMemorySaver())
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
    from langgraph.runtime import Runtime

    from agent.reasoning.nodes import map_entities

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
    # the schema offers exactly the numbers listed: one choice per mention, mentions 1-2, and
    # the candidates' numbers up to the longest list's
    choices = body["tools"][0]["function"]["parameters"]["properties"]["choices"]
    mention, candidate = (choices["items"]["properties"][k] for k in ("mention", "candidate"))
    assert choices["maxItems"] == 2 and (mention["minimum"], mention["maximum"]) == (1, 2)
    listed = max(int(n) for n in re.findall(r"^  (\d+)\. ", body["messages"][0]["content"], re.M))
    assert (candidate["anyOf"][0]["minimum"], candidate["anyOf"][0]["maximum"]) == (1, listed)


def test_prune_covers_every_group_in_one_call_and_caps_each_group(llm_context, brain):
    from langgraph.runtime import Runtime

    from agent.reasoning.nodes import prune
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
    # at most 1 path for each of the 3 groups, numbered 1-4
    selected = sent(route)[0]["tools"][0]["function"]["parameters"]["properties"]["selected"]
    assert selected["maxItems"] == 3 and (selected["items"]["minimum"], selected["items"]["maximum"]) == (1, 4)


def test_a_longer_answer_than_the_schema_allows_is_cut_as_the_grammar_would_not_refused(llm_context, brain):
    # A model the server does not constrain lists 15 question entities, one with a sentence for
    # a name: the first 12 are kept, the name cut at 64 characters, and no repair is asked for.
    from agent.reasoning.schemas import MAX_NAME_CHARS, MAX_QUESTION_ENTITIES

    long_name = "fever that came back every other day after the trip to the tropics last summer"
    many = {"question_entities": [{"name": long_name, "type": "effect/phenotype"}]
            + [{"name": f"finding {i}", "type": "Effect/Phenotype"} for i in range(14)],
            "answer_entities": [{"name": "chloroquine", "type": "drug"}]}
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=scripted(completion(tool_calls=[("ExtractedEntities", many)])))
        found, usage, _ = make_llm().structured("extract", ExtractedEntities, "extract please")
    assert route.call_count == 1 and usage["repairs"] == 0
    assert len(found.question_entities) == MAX_QUESTION_ENTITIES
    assert found.question_entities[0].name == long_name[:MAX_NAME_CHARS]
    assert found.question_entities[-1].name == "finding 10" and found.question_entities[-1].type == "effect/phenotype"
    schema = sent(route)[0]["tools"][0]["function"]["parameters"]["properties"]["question_entities"]
    assert schema["maxItems"] == MAX_QUESTION_ENTITIES and schema["items"]["properties"]["name"]["maxLength"] == MAX_NAME_CHARS


def test_a_number_the_request_did_not_offer_is_repaired_with_the_numbers_allowed(llm_context, brain):
    from langgraph.runtime import Runtime

    from agent.reasoning.nodes import map_entities

    state = {"record": MALARIA, "entities": [{"text": "high temperature", "role": "question", "type": None},
                                             {"text": "big spleen", "role": "question", "type": None}]}
    # mention 3 of 2 is refused; "1" written as a string is read
    replies = [completion(tool_calls=[("EntityChoices", {"choices": [{"mention": 3, "candidate": 1}]})]),
               completion(tool_calls=[("EntityChoices", {"choices": [{"mention": "1", "candidate": "1"}]})])]
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=scripted(*replies))
        out = map_entities(state, Runtime(context=llm_context(min_score=0.3)))
    repair = sent(route)[1]["messages"][-1]
    assert repair["role"] == "tool" and "choices.0.mention: Input should be less than or equal to 2" in repair["content"]
    assert out["usage"]["repairs"] == 1 and [m["mention"] for m in out["mappings"] if m["method"] == "llm"] == ["high temperature"]


def test_a_retry_explores_with_kg_tools_and_passes_on_the_second_attempt(llm_context, brain):
    # hemoptysis and rifampin are 2 hops apart: out of reach of the search at max_hops=1,
    # but the model's shortest_paths call (max_hops=4) finds the path on attempt 2.
    ctx = llm_context(max_hops=1)
    rec = record("A man coughs up blood (hemoptysis). Which drug?", "rifampin", {"A": "rifampin", "B": "metformin"}, "A")
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(ctx, rec)
    assert [(a["attempt"], a["correct"]) for a in state["attempts"]] == [(1, False), (2, True)]
    explore = [b for b in sent(route) if "shortest_paths" in tool_names(b)]
    assert "A previous attempt failed: no path" in explore[0]["messages"][0]["content"]
    assert explore[-1]["messages"][-1]["role"] == "tool"  # the tool's answer went back to the model
    assert state["pruned"][0]["text"] == "hemoptysis ←phenotype present— tuberculosis ←indication— rifampin"


def test_invalid_tool_arguments_go_back_to_the_model(llm_context, brain):
    ctx = llm_context(max_hops=1, max_attempts=2, max_tool_calls=2)
    rec = record("Hemoptysis. Which drug?", "rifampin", {"A": "rifampin", "B": "metformin"}, "A")

    def handler(request):
        body = json.loads(request.content)
        if "shortest_paths" in tool_names(body) and body["messages"][-1]["role"] != "tool":
            return httpx.Response(200, json=completion(tool_calls=[("shortest_paths", {"source": "hemoptysis", "target": "rifampin", "max_hops": 50})]))
        return brain.handler(request)

    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=handler)
        state = run_graph(ctx, rec)
    tool_replies = [m for b in sent(route) for m in b["messages"] if m["role"] == "tool"]
    assert tool_replies and "invalid arguments: max_hops" in tool_replies[0]["content"]
    assert state["status"] == "rejected"  # the loop ended within its cap and the run went on


def test_a_tool_the_graph_cannot_answer_goes_back_to_the_model_and_the_sample_goes_on(llm_context, brain, loaded,
                                                                                       monkeypatch):
    # The entity index cannot answer once while the retry explores: the model's lookup_entity
    # call fails, the next request carries the tool error, and the sample ends with a verdict
    # found through shortest_paths, not as an error.
    from graphs.entity_index import IndexStoreError

    ctx = llm_context(max_hops=1)
    rec = record("A man coughs up blood (hemoptysis). Which drug?", "rifampin", {"A": "rifampin", "B": "metformin"}, "A")
    nearest, down = loaded.index.nearest, []

    def gone_once(*args):
        if down:
            down.pop()
            raise IndexStoreError(f"{loaded.index.store} failed a query (ConnectError: [Errno 111] Connection refused)")
        return nearest(*args)

    monkeypatch.setattr(loaded.index, "nearest", gone_once)

    def handler(request):
        body = json.loads(request.content)
        if "lookup_entity" in tool_names(body) and body["messages"][-1]["role"] == "user":
            down.append(True)
            return httpx.Response(200, json=completion(tool_calls=[("lookup_entity", {"name": "blood in sputum"})]))
        if "lookup_entity" in tool_names(body) and len([m for m in body["messages"] if m["role"] == "tool"]) == 1:
            return httpx.Response(200, json=completion(tool_calls=[
                ("shortest_paths", {"source": "hemoptysis", "target": "rifampin", "max_hops": 4})]))
        return brain.handler(request)

    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=handler)
        state = run_graph(ctx, rec)
    assert not down  # the failure happened, in the tool call
    explore = [b for b in sent(route) if "lookup_entity" in tool_names(b)]
    failed = explore[1]["messages"][-1]
    assert failed["role"] == "tool" and failed["tool_call_id"] == "call_0"
    error = json.loads(failed["content"])["error"]
    assert error.startswith("lookup_entity failed: the embedded Chroma store in ") and "Connection refused" in error
    assert brain.violations == []
    assert [(a["attempt"], a["correct"]) for a in state["attempts"]] == [(1, False), (2, True)]
    assert state["status"] == "accepted" and not state.get("degraded")
    assert "hemoptysis ←phenotype present— tuberculosis ←indication— rifampin" in [p["text"] for p in state["pruned"]]


def test_malformed_json_is_repaired_once():
    llm = make_llm()
    good = {"question_entities": [{"name": "fever"}], "answer_entities": [{"name": "malaria"}]}
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=scripted(
            completion(tool_calls=[("ExtractedEntities", "{bad json")]),
            completion(tool_calls=[("ExtractedEntities", good)]),
        ))
        found, usage, _ = llm.structured("extract", ExtractedEntities, "extract please")
    assert found.answer_entities[0].name == "malaria"
    assert (usage["llm_calls"], usage["repairs"]) == (2, 1)
    repair = json.loads(route.calls.last.request.content)["messages"][-1]
    assert repair["role"] == "tool" and repair["tool_call_id"] == "call_0"  # answers the call, as OpenAI requires
    assert "not valid JSON (Expecting property name enclosed in double quotes at character 1)" in repair["content"]


def test_malformed_twice_is_that_nodes_failure_not_an_empty_value():
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(tool_calls=[("ExtractedEntities", {"oops": 1})])))
        with pytest.raises(LLMError, match="extract: malformed answer after one repair attempt"):
            make_llm().structured("extract", ExtractedEntities, "x")


def test_text_mode_takes_json_out_of_plain_text():
    llm = LLM(make_llm().chat, structured="text")
    reply = 'Sure! {"question_entities": [{"name": "fever"}], "answer_entities": []} Hope this helps.'
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=scripted(completion(reply)))
        found, _, _ = llm.structured("extract", ExtractedEntities, "extract please")
    assert found.question_entities[0].name == "fever"
    assert "tools" not in json.loads(route.calls.last.request.content)


def test_429_is_retried_then_succeeds():
    llm = make_llm(max_retries=1)
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=[
            httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after-ms": "1"}),
            httpx.Response(200, json=completion("Finding reasoning paths:\nReasoning Process:\nConclusion:\nok")),
        ])
        text, usage, _ = llm.text("generate", "go")
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


def test_500s_until_retries_run_out_make_that_sample_an_error_and_the_run_goes_on(tmp_path, make_settings, brain):
    path = tmp_path / "in.jsonl"
    broken = record("Hemoptysis and night sweats. Diagnosis?", "tuberculosis", {"A": "asthma", "B": "tuberculosis"}, "B", id="broken")
    path.write_text("\n".join(json.dumps(r) for r in [broken, {**MALARIA, "id": "fine"}]) + "\n")

    def failing_on_broken(body):
        if "Hemoptysis and night sweats" in json.dumps(body):
            return 500, {"error": {"message": "boom"}}, {"retry-after-ms": "1"}
        return None

    with FakeOpenAIServer(brain, override=failing_on_broken) as server:
        settings = make_settings(model="m", base_url=server.url, api_key="k", llm_max_retries=1)
        summary = asyncio.run(run_dataset(path, tmp_path / "run", settings, RunOptions()))
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())}
    assert rows["broken"]["status"] == "error"
    assert rows["broken"]["error"].startswith("extract: ") and "HTTP 500" in rows["broken"]["error"]
    assert rows["fine"]["status"] == "accepted"
    assert summary["counts"] == {"accepted": 1, "rejected": 0, "error": 1}
    assert summary["mode"] == "llm"


# -- the fake keeps OpenAI's rules ----------------------------------------------------------------
def test_the_fake_refuses_what_openai_refuses():
    user = {"role": "user", "content": "hi"}
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    unanswered = openai_violation({"model": "m", "messages": [user, call, user]})
    assert unanswered.body() == {"error": {
        "message": "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                   "'tool_call_id'. The following tool_call_ids did not have response messages: call_1",
        "type": "invalid_request_error", "param": "messages", "code": None}}
    stray = {"role": "tool", "tool_call_id": "call_9", "content": "x"}
    assert "must be a response to a preceeding message" in openai_violation({"model": "m", "messages": [user, call, stray]}).message
    assert openai_violation({"model": "m", "messages": [user], "tool_choice": "auto"}).param == "tool_choice"
    assert openai_violation({"model": "m", "messages": [user], "parallel_tool_calls": False}).param == "parallel_tool_calls"
    assert openai_violation({"model": "m", "messages": [user], "tools": [{**tool, "function": {**tool["function"], "strict": True}}]}).code == "invalid_function_parameters"
    assert openai_violation({"model": "m", "messages": [user], "top_k": 3}).code == "unknown_parameter"
    answered = {"role": "tool", "tool_call_id": "call_1", "content": "ok"}
    assert openai_violation({"model": "m", "messages": [user, call, answered, user], "tools": [tool]}) is None


def test_a_violation_is_an_http_400_that_fails_the_node_with_openais_message(brain):
    from langchain_core.messages import AIMessage, HumanMessage

    llm = make_llm()
    dangling = AIMessage("", tool_calls=[{"name": "shortest_paths", "args": {}, "id": "call_1"}])
    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=brain.handler)
        with pytest.raises(LLMError, match=r"path: \w*(BadRequest|InvalidRequest)\w*: HTTP 400: .*must be followed by tool messages") as failed:
            llm.tool_round("path", [HumanMessage("go"), dangling, HumanMessage("again")], [], NO_USAGE)
    assert failed.value.usage["llm_calls"] == 1  # a refused request is a request


# -- what real models do, end to end through the graph --------------------------------------------
QUIRKS = {
    "think block": dict(think=1.0), "reasoning_content": dict(reasoning_content=1.0), "fenced JSON": dict(fenced=1.0),
    "prose around JSON": dict(prose=1.0), "two objects": dict(two_objects=1.0), "verbose letters": dict(verbose_letters=1.0),
    "all at once": dict(think=1.0, fenced=1.0, prose=1.0, two_objects=1.0, verbose_letters=1.0),
}


@pytest.mark.parametrize("mode", ["tools", "text"])
@pytest.mark.parametrize("quirk", list(QUIRKS))
def test_answers_shaped_as_real_models_shape_them_are_read(llm_context, loaded, mode, quirk):
    brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph], Quirks(**QUIRKS[quirk]))
    ctx = llm_context(max_attempts=1)
    ctx = replace(ctx, llm=LLM(ctx.llm.chat, structured=mode))
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(ctx, MALARIA)
    assert brain.violations == []
    assert state["status"] == "accepted", state["attempts"]
    assert state["usage"]["llm_calls"] == route.call_count == 3 and state["usage"]["repairs"] == 0
    assert state["reasoning"].startswith("Finding reasoning paths:")  # no thinking stored as reasoning
    assert "<think>" not in json.dumps(sent(route)[-1])  # nor shown to the verifier


def test_thinking_with_braces_and_a_conclusion_is_stripped_before_every_check(llm_context, brain):
    think = "<think>{\"answer\": \"B\"} Conclusion: B. Option B, metformin.</think>\n"
    reasoning = "Finding reasoning paths:\n1. fever -> malaria -> chloroquine\n\nReasoning Process:\n1. chloroquine.\n\nConclusion:\nchloroquine."
    ctx = llm_context()
    ctx = replace(ctx, llm=LLM(ctx.llm.chat, structured="text"))
    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=scripted(completion(think + reasoning), completion(think + '{"answer": "A"}')))
        text, usage, _ = ctx.llm.text("generate", "write", check=lambda t: None if t.startswith("Finding") else "format")
        answer, _, _ = ctx.llm.structured("verify", answer_schema(MALARIA["options"]), "answer")
    assert text == reasoning and usage["repairs"] == 0
    assert answer.answer == "A"  # not the "B" inside the thinking


@pytest.mark.parametrize("mode", ["tools", "text"])
def test_schema_misses_are_repaired_with_the_exact_error_and_counted(llm_context, brain, mode):
    ctx = llm_context(max_attempts=1)
    ctx = replace(ctx, llm=LLM(ctx.llm.chat, structured=mode))
    missing = {"answer_entities": [{"name": "chloroquine"}]}  # question_entities left out
    body = lambda d: completion(tool_calls=[("ExtractedEntities", d)]) if mode == "tools" else completion(json.dumps(d))  # noqa: E731

    def handler(request):
        if len(json.loads(request.content)["messages"]) == 1 and "biomedical entity extractor" in request.content.decode():
            violation = openai_violation(json.loads(request.content))
            return httpx.Response(400, json=violation.body()) if violation else httpx.Response(200, json=body(missing))
        return brain.handler(request)

    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=handler)
        state = run_graph(ctx, MALARIA)
    assert brain.violations == [] and state["status"] == "accepted"
    repair = sent(route)[1]["messages"]
    assert repair[-1]["role"] == ("tool" if mode == "tools" else "user")
    assert "question_entities: Field required" in repair[-1]["content"]
    assert state["usage"]["repairs"] == 1 and state["usage"]["llm_calls"] == route.call_count == 4


def test_a_letter_naming_no_option_is_repaired_not_a_disagreement(llm_context, brain):
    ctx = llm_context(max_attempts=1)

    def handler(request):
        body = json.loads(request.content)
        if tool_names(body) == ["ReasonedAnswer"] and len(body["messages"]) == 1:
            assert body["tools"][0]["function"]["parameters"]["properties"]["answer"]["enum"] == ["A", "B", "C", "D"]
            return httpx.Response(200, json=completion(tool_calls=[("ReasonedAnswer", {"answer": "None of the above"})]))
        return brain.handler(request)

    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=handler)
        state = run_graph(ctx, MALARIA)
    assert brain.violations == [] and state["status"] == "accepted"
    assert "the answer must be one option letter: A, B, C, D" in sent(route)[-1]["messages"][-1]["content"]
    assert state["usage"]["repairs"] == 1


@pytest.mark.parametrize("reply", ["B", "b", "B.", "(b)", "**B**", "Option B", "The answer is B.", "B. metformin",
                                   "Metformin", "<think>A or C?</think>B"])
def test_option_letters_are_read_however_they_are_written(reply):
    from agent.reasoning.schemas import option_letter

    assert option_letter(reply, MALARIA["options"]) == "B"


def test_a_reply_that_names_no_option_has_no_letter():
    from agent.reasoning.schemas import option_letter

    assert option_letter("None of the above.", MALARIA["options"]) is None
    assert option_letter("insulin", MALARIA["options"]) is None


def test_a_model_that_is_wrong_is_caught_retried_and_rejected(llm_context, loaded):
    brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph], Quirks(wrong=1.0))
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(llm_context(max_attempts=2), MALARIA)
    assert brain.violations == []
    assert state["status"] == "rejected"
    # The fixture holds no path beyond the three the first attempt used: the retry finds no new one.
    assert [a["reason"].split(" — ")[0] for a in state["attempts"]] == ["verifier disagreed", "no new path"]
    assert state["verification"]["predicted"] != "A"
    assert state["usage"]["llm_calls"] == route.call_count


def test_a_gold_answer_given_as_text_is_matched_to_its_option(llm_context, brain):
    rec = {**MALARIA, "answer": "  Chloroquine. ", "answer_idx": None}
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(llm_context(max_attempts=1), rec)
    assert state["status"] == "accepted" and state["verification"]["predicted"] == "A"
    assert "Judgement" not in [n for b in sent(route) for n in tool_names(b)]  # letters compared, no judge


def test_the_judge_sees_the_options_when_the_answer_matches_none(llm_context, brain):
    rec = {**MALARIA, "answer": "chloroquine phosphate", "answer_idx": None}
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(llm_context(max_attempts=1), rec)
    judge = [b for b in sent(route) if tool_names(b) == ["Judgement"]][0]["messages"][0]["content"]
    assert "A. chloroquine\nB. metformin" in judge and "Candidate answer: A. chloroquine" in judge
    assert state["status"] == "accepted"


def test_nothing_mapped_in_the_question_is_rejected_at_once_without_exploring(llm_context, brain):
    rec = record("Which quarterly tax form is due in April?", "chloroquine", {"A": "chloroquine", "B": "metformin"}, "A")
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(llm_context(), rec)
    assert state["status"] == "rejected" and state["verification"]["reason"] == "no question entity mapped"
    assert len(state["attempts"]) == 1
    assert not any("lookup_entity" in tool_names(b) for b in sent(route))
    assert state["usage"]["llm_calls"] == route.call_count == 1  # extract only


def test_the_explore_cap_counts_tool_calls_and_keeps_the_closing_message(llm_context, loaded):
    brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph], Quirks(parallel_tools=1.0))
    ctx = llm_context(max_hops=1, max_tool_calls=2)
    rec = record("A man with hemoptysis, cough and fever. Which drug?", "rifampin", {"A": "rifampin", "B": "metformin"}, "A")
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(ctx, rec)
    assert brain.violations == []
    explore = [b for b in sent(route) if "shortest_paths" in tool_names(b)]
    assert "parallel_tool_calls" not in explore[0] and "tool_choice" not in explore[0]  # not needed, not sent
    (called,) = [m for m in explore[-1]["messages"] if m["role"] == "assistant"]
    replies = [m for m in explore[-1]["messages"] if m["role"] == "tool"]
    # three calls in one round with a cap of 2: two run, the third is told the budget is spent,
    # and the last request lets no tool run and asks for the closing message
    assert len(called["tool_calls"]) == 3 and len(explore) == 2
    assert ["budget of 2 tool calls" in m["content"] for m in replies] == [False, False, True]
    assert explore[-1]["tool_choice"] == "none"
    assert state["explanation"] == "Found a path from the question's finding to the answer."
    assert state["attempts"][1]["correct"] is True


def test_a_tool_call_left_as_json_in_the_content_is_still_read():
    # a server whose tool-call parser missed the call (thinking first, JSON after)
    reply = '<think>{"name": "ExtractedEntities"}?</think>{"question_entities": [{"name": "fever"}], "answer_entities": []}'
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=scripted(completion(reply)))
        found, usage, _ = make_llm().structured("extract", ExtractedEntities, "extract please")
    assert found.question_entities[0].name == "fever" and route.call_count == 1 and usage["repairs"] == 0


def test_the_extracted_type_is_read_in_the_graphs_spelling(llm_context, loaded):
    types = {loaded.kg.name(n): loaded.kg.node(n).type.upper() for n in loaded.kg.graph}  # "DISEASE", "DRUG", ...
    brain = FakeBrain(types)
    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(llm_context(max_attempts=1), MALARIA)
    typed = {m["text"]: m["type"] for m in state["entities"]}
    assert typed["fever"] == "effect/phenotype" and typed["chloroquine"] == "drug"
    assert state["status"] == "accepted"


def test_strict_schemas_are_closed_with_every_property_required(llm_context, brain):
    ctx = llm_context(max_attempts=1)
    ctx = replace(ctx, llm=LLM(ctx.llm.chat, strict=True))
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(ctx, MALARIA)
    assert brain.violations == [] and state["status"] == "accepted"
    extract = sent(route)[0]["tools"][0]["function"]
    assert extract["strict"] is True
    assert extract["parameters"]["properties"]["question_entities"]["items"]["required"] == ["name", "type"]


def test_an_extraction_without_answer_entities_looks_the_answer_up_whole(llm_context, brain):
    from agent.reasoning.llm_nodes import extract

    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=scripted(completion(tool_calls=[("ExtractedEntities", {"question_entities": [{"name": "fever"}]})])))
        out = extract({"record": MALARIA}, llm_context())
    assert route.call_count == 1 and out["usage"]["repairs"] == 0
    assert [m for m in out["entities"] if m["role"] == "answer"] == [{"text": "chloroquine", "role": "answer", "type": None}]
