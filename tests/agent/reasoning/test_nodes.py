"""Each node's KG-only behaviour, called directly with a runtime over the fixture KG."""

import math

import pytest
from langgraph.runtime import Runtime

from agent.reasoning import nodes
from tests.conftest import MALARIA, record


def run(node, state, ctx):
    return node(state, Runtime(context=ctx.settings))


def through(state, ctx, *steps):
    for step in steps:
        state = {**state, **run(step, state, ctx)}
    return state


def tiny_context(tmp_path_factory, embedder, rows: list[str]):
    """The agent's context over a graph built, as a user's would be, from a few triples
    (``head, relation, tail, head type, tail type``, tab-separated)."""
    from agent.config import Settings
    from agent.reasoning import resources
    from graphs.kg_dir import Source, build_kg
    from graphs.progress import Silent

    tsv = tmp_path_factory.mktemp("src") / "kg.tsv"
    tsv.write_text("head\trelation\ttail\thead_type\ttail_type\n" + "".join(f"{row}\n" for row in rows))
    kg_dir = tmp_path_factory.mktemp("kg")
    build_kg(kg_dir, Source("triples", tsv), embedder, Silent())
    return resources.load(Settings(kg_dir=kg_dir))


def test_extract_finds_question_answer_and_option_mentions(make_context):
    out = run(nodes.extract, {"record": MALARIA}, make_context())
    by_role = {}
    for m in out["entities"]:
        by_role.setdefault(m["role"], []).append(m["text"])
    assert by_role["question"] == ["fever", "splenomegaly", "anemia"]
    assert by_role["answer"] == ["chloroquine"]
    assert by_role["option:B"] == ["metformin"]


def test_extract_keeps_an_unmatched_answer_whole_for_lookup_by_meaning(make_context):
    out = run(nodes.extract, {"record": record("Cough and wheezing?", "an inhaled bronchodilator")}, make_context())
    assert {"text": "an inhaled bronchodilator", "role": "answer", "type": None} in out["entities"]


def test_map_accepts_exact_names_and_close_embeddings_only(make_context):
    ctx = make_context()
    state = {"entities": [
        {"text": "Splenomegaly", "role": "question", "type": None},
        {"text": "tuberculosis infection", "role": "answer", "type": None},
        {"text": "quarterly tax return", "role": "option:A", "type": None},
    ]}
    mappings = run(nodes.map_entities, state, ctx)["mappings"]
    exact, embedded = mappings
    assert (exact["node_id"], exact["method"], exact["score"]) == ("effect/phenotype:splenomegaly", "exact", 1.0)
    assert (embedded["node_id"], embedded["method"]) == ("disease:tuberculosis", "embedding")
    assert 0.70 <= embedded["score"] < 1.0
    assert len(mappings) == 2  # nothing in the graph means "tax return"


def test_path_finds_labelled_shortest_paths_on_the_first_attempt(make_context):
    ctx = make_context()
    state = through({"record": MALARIA}, ctx, nodes.extract, nodes.map_entities, nodes.find_paths)
    assert state["search"]["attempt"] == 1 and state["search"]["extra_hops"] == 0
    texts = {p["text"] for p in state["paths"]}
    assert "fever ←phenotype present— malaria ←indication— chloroquine" in texts
    assert all(p["nodes"][-1] == "drug:chloroquine" for p in state["paths"])


def test_prune_keeps_at_most_k_paths_per_pair(make_context):
    ctx = make_context(prune_per_group=1)
    state = through({"record": MALARIA}, ctx, nodes.extract, nodes.map_entities, nodes.find_paths, nodes.prune)
    pairs = [(p["nodes"][0], p["nodes"][-1]) for p in state["pruned"]]
    assert len(pairs) == len(set(pairs)) == 3
    assert state["used_paths"] == [">".join(p["nodes"]) for p in state["pruned"]]


def test_generate_writes_medreasons_format_from_the_paths(make_context):
    ctx = make_context()
    state = through({"record": MALARIA}, ctx, nodes.extract, nodes.map_entities, nodes.find_paths, nodes.prune, nodes.generate)
    reasoning = state["reasoning"]
    assert reasoning.index("Finding reasoning paths:") < reasoning.index("Reasoning Process:") < reasoning.index("Conclusion:")
    assert "malaria presents with fever" in reasoning
    assert "chloroquine is indicated for malaria" in reasoning
    assert reasoning.rstrip().endswith("The answer is A. chloroquine.")


def test_verify_scores_every_option_by_kg_evidence(make_context):
    ctx = make_context()
    state = through({"record": MALARIA}, ctx, nodes.extract, nodes.map_entities, nodes.find_paths, nodes.prune, nodes.generate)
    out = run(nodes.verify, state, ctx)
    v = out["verification"]
    assert v["correct"] and v["predicted"] == "A" and out["status"] == "accepted"
    # fever, splenomegaly and anemia each reach chloroquine through malaria (degree 4), each
    # worth its information content over the fixture's 10 annotated diseases (fever and
    # anemia: 3 of them, splenomegaly: 1), divided by log2(1 + 4) for the mediator malaria
    information = math.log2(10 / 3) / math.log2(10)
    assert v["scores"]["A"] == pytest.approx((information + 1 + information) / math.log2(5), abs=1e-3)
    assert v["scores"]["B"] == v["scores"]["C"] == 0


def test_verify_grounds_the_reasoning_and_fails_a_right_answer_on_unbacked_steps(make_context):
    ctx = make_context(min_grounding=0.9)
    state = through({"record": MALARIA}, ctx, nodes.extract, nodes.map_entities, nodes.find_paths, nodes.prune, nodes.generate)
    kg_only = run(nodes.verify, state, ctx)
    assert kg_only["status"] == "accepted" and kg_only["grounding"]["score"] == 1.0
    written = state["reasoning"].replace("Conclusion:", "2. Aspirin treats asthma.\n\nConclusion:")
    out = run(nodes.verify, {**state, "reasoning": written}, ctx)
    assert out["verification"]["reason"] == "ungrounded reasoning" and out["status"] == "retry"
    last = len(out["grounding"]["steps"])  # the added step, numbered after the KG-only ones
    assert out["verification"]["detail"].endswith(f"steps {last} not backed by the graph")
    assert out["grounding"]["steps"][-1]["label"] == "contradicted"
    assert run(nodes.verify, {**state, "reasoning": written}, make_context())["status"] == "accepted"  # no minimum


def test_verify_rejects_when_the_graph_favours_another_option(make_context):
    ctx = make_context(max_attempts=1)
    wrong_gold = {**MALARIA, "answer": "metformin", "answer_idx": "B"}
    state = through({"record": wrong_gold}, ctx, nodes.extract, nodes.map_entities, nodes.find_paths, nodes.prune, nodes.generate)
    out = run(nodes.verify, state, ctx)
    assert out["status"] == "rejected"
    assert out["verification"]["reason"] in {"no path", "verifier disagreed"}
    assert out["attempts"][0]["correct"] is False


@pytest.fixture(scope="module")
def two_vitamins(tmp_path_factory, embedder):
    """A tiny graph where one name is a node of two types, as in PrimeKG."""
    return tiny_context(tmp_path_factory, embedder, ["vitamin d\tindication\trickets\tdrug\tdisease",
                                                     "vitamin d\texposure_disease\trickets\texposure\tdisease",
                                                     "vitamin d\texposure_disease\tosteomalacia\texposure\tdisease"])


@pytest.mark.parametrize("type_, node", [("drug", "drug:vitamin d"), ("exposure", "exposure:vitamin d"),
                                        (None, "exposure:vitamin d")])  # untyped: the most connected
def test_the_extracted_type_steers_which_node_a_name_maps_to(two_vitamins, type_, node):
    from agent.reasoning.kg_nodes import settle_mentions

    mention = {"text": "Vitamin D", "role": "answer", "type": type_}
    (mapping,), _ = settle_mentions(two_vitamins, [mention], two_vitamins.settings.min_score)
    assert (mapping["node_id"], mapping["method"]) == (node, "exact")


def test_an_exact_name_of_another_type_is_kept_when_no_node_has_the_type(two_vitamins):
    from agent.reasoning.kg_nodes import settle_mentions

    mention = {"text": "vitamin d", "role": "answer", "type": "gene/protein"}
    (mapping,), _ = settle_mentions(two_vitamins, [mention], two_vitamins.settings.min_score)
    assert mapping["node_id"].endswith(":vitamin d") and mapping["method"] == "exact"


@pytest.fixture(scope="module")
def angioedema(tmp_path_factory, embedder):
    """A tiny graph with a disease named only in numbered forms, as OMIM names them."""
    return tiny_context(tmp_path_factory, embedder, [
        "Angioedema, hereditary, 1\tdisease_phenotype_positive\tangioedema\tdisease\teffect/phenotype",
        "Angioedema, hereditary, 1\tdisease_phenotype_positive\tsomnolence\tdisease\teffect/phenotype"])


def test_an_answer_named_in_other_words_maps_whole_and_exactly(angioedema):
    rec = record("A somnolent boy has recurrent angioedema. Which of the following is the most likely diagnosis?",
                 "Hereditary angioedema", {"A": "Hereditary angioedema", "B": "Urticaria"}, "A")
    state = through({"record": rec}, angioedema, nodes.extract, nodes.map_entities)
    by_role = {m["role"]: m for m in state["mappings"]}
    assert [m["text"] for m in state["entities"] if m["role"] == "question"] == ["somnolent", "angioedema"]
    assert (by_role["answer"]["name"], by_role["answer"]["method"]) == ("Angioedema, hereditary, 1", "exact")
    assert by_role["question"]["method"] == "exact"
    assert {m["name"] for m in state["mappings"] if m["role"] == "question"} == {"somnolence", "angioedema"}


@pytest.fixture(scope="module")
def thyroid_cancers(tmp_path_factory, embedder):
    """A tiny graph where an answer's name is only a phenotype, and a disease is close by meaning."""
    disease = "Familial papillary or follicular thyroid carcinoma"
    return tiny_context(tmp_path_factory, embedder, [
        f"{disease}\tdisease_phenotype_positive\tPapillary thyroid carcinoma\tdisease\teffect/phenotype",
        f"{disease}\tdisease_phenotype_positive\tThyroid nodule\tdisease\teffect/phenotype"])


def test_an_answer_named_exactly_by_a_phenotype_is_that_phenotype_not_the_nearest_disease(thyroid_cancers):
    from agent.reasoning.kg_nodes import settle_mentions

    ctx = thyroid_cancers
    (hits,) = ctx.index.search(["Papillary carcinoma of the thyroid"], k=3)
    assert any(h.type == "disease" and h.score >= ctx.settings.min_score for h in hits)  # close by meaning
    mention = {"text": "Papillary carcinoma of the thyroid", "role": "answer", "type": "disease"}  # a diagnosis asked
    (mapping,), _ = settle_mentions(ctx, [mention], ctx.settings.min_score)
    assert (mapping["name"], mapping["type"], mapping["method"]) == ("Papillary thyroid carcinoma", "effect/phenotype", "exact")
