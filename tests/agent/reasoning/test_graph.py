"""The whole state machine, including the retry loop from verify back to path."""

from langgraph.checkpoint.memory import InMemorySaver

from agent.reasoning.graph import compile_graph
from tests.conftest import MALARIA, record


def invoke(settings, rec, thread="t"):
    app = compile_graph(InMemorySaver())
    config = {"configurable": {"thread_id": thread}, "recursion_limit": 50}
    return app, config, app.invoke({"record": rec}, config, context=settings)


def test_a_clear_case_is_accepted_on_the_first_attempt(make_settings):
    _, _, state = invoke(make_settings(), MALARIA)
    assert state["status"] == "accepted"
    assert [a["attempt"] for a in state["attempts"]] == [1]


def test_a_sample_that_fails_first_passes_after_widening(make_settings):
    # hemoptysis, night sweats and rifampin are two hops apart: out of reach at max_hops=1 until
    # the KG-only retry, which widens at once, reaches the answer through its neighbour
    # tuberculosis (the findings are two, so that the evidence is specific enough to accept).
    settings = make_settings(max_hops=1)
    rec = record("A man coughs up blood (hemoptysis) and has night sweats. Which drug?", "rifampin",
                 {"A": "rifampin", "B": "metformin"}, "A")
    _, _, state = invoke(settings, rec)
    assert state["status"] == "accepted"
    assert [(a["attempt"], a["correct"]) for a in state["attempts"]] == [(1, False), (2, True)]
    assert state["attempts"][0]["reason"].startswith("no path")
    assert state["search"]["expand_answer"] is True
    assert state["pruned"][0]["text"] == "hemoptysis ←phenotype present— tuberculosis ←indication— rifampin"


def test_a_sample_with_no_connection_exhausts_its_attempts(make_settings):
    settings = make_settings(max_attempts=3)
    rec = record("Gingival bleeding in a sailor. Which drug?", "chloroquine", {"A": "chloroquine", "B": "ascorbic acid"}, "A")
    app, config, state = invoke(settings, rec)
    assert state["status"] == "rejected"
    # KG-only the second attempt is the widest search: a third would find the same paths
    assert [a["attempt"] for a in state["attempts"]] == [1, 2]
    assert all(a["reason"].startswith("no path") for a in state["attempts"])
    assert state["verification"]["reason"] == "no path"
    history = list(app.get_state_history(config))
    assert sum(1 for h in history if h.next == ("path",)) == 2  # path ran once per attempt


def test_every_checkpoint_is_plain_json(make_settings):
    import json

    app, config, _ = invoke(make_settings(), MALARIA)
    for snapshot in app.get_state_history(config):
        json.dumps(snapshot.values)
