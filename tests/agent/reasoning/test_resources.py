"""The one loader: settings in, the opened graph, index, embedder and model out, once per process."""

import dataclasses

import pytest

from agent.config import Settings
from agent.reasoning import resources
from agent.reasoning.context import AgentContext
from agent.reasoning.graph import graph
from graphs.cache import CacheError
from tests.conftest import MALARIA


def test_the_same_settings_share_what_was_opened_and_a_new_model_opens_its_own(make_settings):
    kg_only = resources.load(make_settings())
    again = resources.load(make_settings(max_hops=1))  # a search setting: the same graph and index
    assert again.kg is kg_only.kg and again.index is kg_only.index and again.embedder is kg_only.embedder
    assert kg_only.llm is None and again.settings.max_hops == 1

    a = resources.load(make_settings(model="a", base_url="http://127.0.0.1:9/v1"))
    b = resources.load(make_settings(model="b", base_url="http://127.0.0.1:9/v1"))
    assert a.llm.chat.model_name == "a" and b.llm.chat.model_name == "b"
    assert resources.load(make_settings(model="a", base_url="http://127.0.0.1:9/v1")).llm is a.llm
    assert resources.load(make_settings(model="a", base_url="http://127.0.0.1:9/v1", offline=True)).llm is None


def test_the_settings_alone_say_whether_a_model_is_used(make_context, make_settings):
    llm = make_context(model="m", base_url="http://127.0.0.1:9/v1").llm
    with pytest.raises(ValueError, match="settings say kg-only"):
        dataclasses.replace(make_context(), llm=llm)
    with pytest.raises(ValueError, match="settings say llm"):
        AgentContext(llm=None, **{f: getattr(make_context(), f) for f in ("kg", "index", "embedder")},
                     settings=make_settings(model="m"))


def test_a_missing_graph_directory_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(CacheError, match=r"does not exist; build a graph there with `kg build"):
        resources.load(Settings(kg_dir=tmp_path / "nowhere"))


def test_the_served_graph_runs_with_its_context_given_as_json(fixture_kg_dir):
    """As the LangGraph server runs it: the compiled graph, a JSON context, no live objects."""
    context = {"kg_dir": str(fixture_kg_dir), "max_attempts": 1, "offline": True}
    state = graph.invoke({"record": MALARIA}, {"recursion_limit": 50}, context=context)
    assert state["status"] == "accepted" and len(state["attempts"]) == 1
    assert state["pruned"] and "chloroquine" in state["reasoning"]
