"""The path and prune nodes: every (question node, answer node) group with paths keeps one,
and a search cut short by its work bound is recorded."""

from langgraph.runtime import Runtime

from agent.reasoning import nodes
from agent.reasoning.search import connect, settings_for_attempt
from tests.conftest import MALARIA


def through(state, ctx, *steps):
    for step in steps:
        state = {**state, **step(state, Runtime(context=ctx.settings))}
    return state


def test_prune_keeps_one_path_of_every_group_even_under_a_tighter_cap(make_context):
    ctx = make_context(prune_per_group=1, max_pruned_paths=1)
    state = through({"record": MALARIA}, ctx, nodes.extract, nodes.map_entities, nodes.find_paths, nodes.prune)
    groups = {(p["nodes"][0], p["nodes"][-1]) for p in state["paths"]}
    assert len(groups) == 3
    assert {(p["nodes"][0], p["nodes"][-1]) for p in state["pruned"]} == groups


def test_a_pair_whose_search_hits_the_work_bound_is_reported(make_context):
    ctx = make_context(path_max_work=5)
    search = settings_for_attempt(ctx.settings, 1)
    cut: set = set()
    found = connect(ctx.kg, ["effect/phenotype:fever"], ["drug:chloroquine"], search, ctx.settings, cut)
    assert found == [] and cut == {("effect/phenotype:fever", "drug:chloroquine")}
    roomy = make_context()
    cut = set()
    found = connect(roomy.kg, ["effect/phenotype:fever"], ["drug:chloroquine"], search, roomy.settings, cut)
    assert found and cut == set()
    state = through({"record": MALARIA}, roomy, nodes.extract, nodes.map_entities, nodes.find_paths)
    assert state["paths"] and not any(p["truncated"] for p in state["paths"])
