"""PubMedQA's context is the evidence its question is about: it reaches generate and verify,
cut to a bounded length."""

import json
from dataclasses import replace

import httpx
import respx
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from agent.reasoning.graph import compile_graph
from agent.reasoning.llm import LLM
from agent.reasoning.verbalise import PROMPT_CONTEXT_CHARS, question_text
from tests.fake_llm import FakeBrain

BASE = "http://llm.test/v1"
# A record with evidence to read, as PubMedQA's are (its options here name graph nodes, so
# that the sample reaches generate and verify on the fixture KG).
PUBMEDQA = {
    "id": "p1", "question": "Which drug treats the disease that causes fever and splenomegaly?",
    "options": {"A": "chloroquine", "B": "metformin"}, "answer": "chloroquine", "answer_idx": "A", "dataset": "pubmedqa",
    "extra": {"context": "Malaria presents with fever, splenomegaly and anemia. " + "Chloroquine cures it. " * 400,
              "long_answer": "Yes."},
}


def test_the_context_comes_first_and_is_cut_at_a_word_boundary():
    text = question_text(PUBMEDQA, PROMPT_CONTEXT_CHARS)
    context, question = text.split("\n\nQuestion: ")
    assert question == PUBMEDQA["question"]
    assert context.startswith("Context: Malaria presents with fever") and context.endswith("it. …")
    assert len(context) <= len("Context: ") + PROMPT_CONTEXT_CHARS + 2
    assert question_text(PUBMEDQA) == f"Context: {PUBMEDQA['extra']['context'].strip()}\n\nQuestion: {PUBMEDQA['question']}"
    assert question_text({"question": "Q?", "extra": {"long_answer": "x"}}) == "Q?"


def test_generate_and_verify_are_sent_the_bounded_context(make_context, loaded):
    ctx = replace(make_context(model="m"), llm=LLM(ChatOpenAI(model="m", base_url=BASE, api_key="sk-test", timeout=5, max_retries=0, temperature=0,
                             use_responses_api=False, http_client=httpx.Client(), http_async_client=httpx.AsyncClient())))
    brain = FakeBrain([loaded.kg.name(n) for n in loaded.kg.graph])
    with respx.mock() as mock:
        route = mock.post(f"{BASE}/chat/completions").mock(side_effect=brain.handler)
        app = compile_graph(InMemorySaver())
        app.invoke({"record": PUBMEDQA}, {"configurable": {"thread_id": "t"}, "recursion_limit": 60}, context=ctx)
    prompts = [json.loads(call.request.content)["messages"][0]["content"] for call in route.calls]
    generate = [p for p in prompts if "Finding reasoning paths:" in p and "Medical facts:" in p]
    verify = [p for p in prompts if "Reasoning:\n" in p]
    assert generate and verify
    for prompt in generate + verify:
        assert "Context: Malaria presents with fever, splenomegaly and anemia." in prompt
        assert prompt.count("Chloroquine cures it.") < 400  # bounded, not the whole context
