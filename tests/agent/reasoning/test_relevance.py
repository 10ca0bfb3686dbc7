"""Accepted must mean sound: paths that explain the answer, a relevance a user can read, an
acceptance gate that rejects with a reason, answers mapped in the sense the question asks.

On a small thyroid graph with no drugs (tests/fixtures/thyroid_kg.tsv): Graves disease is
both a disease and a phenotype of that name (as in HPO), a rare syndrome shares tremor and
proptosis with it, a gene joins it to weight loss.
"""

import json
from dataclasses import replace

import pytest
import respx
from langgraph.checkpoint.memory import InMemorySaver
from typer.testing import CliRunner

from agent.config import Settings
from agent.reasoning import kg_nodes, resources
from agent.reasoning.graph import compile_graph
from run_agent import app
from tests.agent.reasoning.test_llm_mode import URL, make_llm
from tests.conftest import FIXTURES, record
from tests.fake_llm import FakeBrain

DIAGNOSIS = "Which of the following is the most likely diagnosis?"
OPTIONS = {"A": "Graves disease", "B": "Toxic multinodular goiter", "C": "Hashimoto thyroiditis"}


@pytest.fixture(scope="module")
def thyroid_kg_dir(tmp_path_factory, embedder):
    from graphs.kg_dir import Source, build_kg
    from graphs.progress import Silent

    kg_dir = tmp_path_factory.mktemp("thyroid")
    build_kg(kg_dir, Source("triples", FIXTURES / "thyroid_kg.tsv"), embedder, Silent())
    return kg_dir


@pytest.fixture
def context(thyroid_kg_dir):
    def make(**settings):
        return resources.load(Settings(kg_dir=thyroid_kg_dir, **settings))
    return make


def run_graph(ctx, rec):
    app_ = compile_graph(InMemorySaver())
    return app_.invoke({"record": rec}, {"configurable": {"thread_id": "t"}, "recursion_limit": 60}, context=ctx)


def diagnosis(findings: str, answer="Graves disease", options=OPTIONS, question=DIAGNOSIS):
    gold = next((k for k, v in options.items() if v == answer), None)
    return record(f"{findings} {question}", answer, options, gold)


def path_from(state, start: str, through: str | None = None, key="paths"):
    found = [p for p in state[key] if p["names"][0] == start and (through is None or through in p["names"][1:-1])]
    assert found, f"no path from {start} through {through}: {[p['text'] for p in state[key]]}"
    return found[0]


def test_a_denied_finding_the_model_extracts_starts_no_path_it_reasons_over(context, loaded):
    ctx = replace(context(model="m"), llm=make_llm())
    brain = FakeBrain([ctx.kg.name(n) for n in ctx.kg.graph])
    rec = diagnosis("A woman presents with goiter, proptosis and heat intolerance. She denies tremor.")
    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=brain.handler)
        state = run_graph(ctx, rec)
    assert "tremor" in [m["mention"] for m in state["mappings"] if m["role"] == "question"]  # the model took it
    denied = path_from(state, "tremor")
    assert denied["relevance"]["score"] == 0 and "from a finding the question denies" in denied["relevance"]["reasons"]
    assert state["pruned"] and all(p["names"][0] != "tremor" for p in state["pruned"])


def test_background_history_counts_less_than_the_presenting_problem(context):
    ctx = context()
    background = run_graph(ctx, diagnosis("A woman with a history of hypertension presents with goiter, tremor and proptosis."))
    presenting = run_graph(ctx, diagnosis("A woman presents with hypertension, goiter, tremor and proptosis."))
    old, new = (path_from(s, "hypertension")["relevance"] for s in (background, presenting))
    assert "from background history" in old["reasons"] and "from the presenting problem" in new["reasons"]
    assert old["score"] == pytest.approx(0.3 * new["score"], abs=1e-3) and new["score"] > 0
    firsts = [p["names"][0] for p in background["pruned"]]
    assert firsts.index("hypertension") == len(firsts) - 1  # the presenting findings' paths come first


def test_a_gene_hop_counts_only_in_a_question_about_genes(context):
    ctx = context()
    plain = run_graph(ctx, diagnosis("A woman presents with weight loss, goiter and tremor."))
    genetic = run_graph(ctx, diagnosis("A woman presents with weight loss, goiter and tremor. Genetic testing shows a mutation."))
    dropped, kept = (path_from(s, "weight loss", through="TSHR")["relevance"] for s in (plain, genetic))
    assert dropped["score"] == 0 and "through the gene TSHR in a question not about genes" in dropped["reasons"]
    assert kept["score"] > 0 and "through the gene TSHR (the question is about genes)" in kept["reasons"]
    assert not any("TSHR" in p["names"] for p in plain["pruned"])


def test_a_mediating_disease_counts_only_when_several_findings_point_to_it(context):
    ctx = context()
    lone = run_graph(ctx, diagnosis("A man presents with ataxia and goiter."))
    supported = run_graph(ctx, diagnosis("A man presents with ataxia, tremor and proptosis."))
    mediator = "fragile x tremor ataxia syndrome"
    unsupported = path_from(lone, "ataxia", through=mediator)["relevance"]
    assert unsupported["score"] == 0
    assert f"through {mediator}, which explains 1 of the question's findings" in unsupported["reasons"]
    backed = path_from(supported, "ataxia", through=mediator)["relevance"]
    assert backed["score"] > 0 and f"through {mediator}, which explains 3 of the question's findings" in backed["reasons"]


def test_a_drug_answer_on_a_graph_without_drugs_is_rejected_as_outside_the_graph(context):
    rec = diagnosis("A woman presents with goiter, tremor, proptosis and pretibial myxedema.", answer="Methimazole",
                    options={"A": "Methimazole", "B": "Levothyroxine"},
                    question="Which of the following is the most appropriate pharmacotherapy?")
    state = run_graph(context(), rec)
    assert state["status"] == "rejected" and state["verification"]["reason"] == "answer outside the graph"
    assert "the graph holds no drug" in state["verification"]["detail"]
    assert len(state["attempts"]) == 1  # a wider search cannot put a drug in the graph


@pytest.mark.parametrize("question, kind", [(DIAGNOSIS, "disease"),
                                            ("Which of the following findings is most likely?", "effect/phenotype")])
def test_an_answer_maps_to_a_node_of_the_kind_the_question_asks_for(context, question, kind):
    state = run_graph(context(), diagnosis("A woman presents with goiter and tremor.", question=question))
    (answer,) = [m for m in state["mappings"] if m["role"] == "answer"]
    assert (answer["name"], answer["type"], answer["method"]) == ("graves disease", kind, "exact")


def test_an_answer_of_the_opposite_polarity_is_no_match(context):
    ctx = context()
    (hits,) = ctx.index.search(["Normal DLCO"], k=3)
    assert hits[0].name == "decreased dlco" and hits[0].score >= ctx.settings.min_score  # close by meaning
    rec = record("A man presents with dyspnea. Which of the following findings is most likely?", "Normal DLCO",
                 {"A": "Normal DLCO", "B": "Goiter"}, "A")
    state = run_graph(ctx, rec)
    assert not [m for m in state["mappings"] if m["role"] == "answer"]
    assert state["verification"]["reason"] == "no answer entity mapped"


def test_kg_only_accepts_specific_evidence_clearly_ahead_and_records_its_relevance(context):
    ctx = context()
    sound = run_graph(ctx, diagnosis("A woman presents with goiter, tremor, heat intolerance, proptosis and pretibial myxedema."))
    assert sound["status"] == "accepted", sound["verification"]
    assert sound["relevance"] == pytest.approx(
        sum(p["relevance"]["score"] for p in sound["pruned"]) / len(sound["pruned"]), abs=1e-3)
    assert {p["names"][-1] for p in sound["pruned"]} == {"graves disease"}
    close = run_graph(ctx, diagnosis("A woman presents with goiter, tremor and heat intolerance."))
    assert close["status"] == "rejected"
    assert close["verification"]["reason"] in {"tie", "evidence not clearly ahead"}


def test_a_condition_the_question_names_explains_its_answer_alone_where_one_shared_finding_does_not(make_context):
    ctx = make_context()
    drugs = {"A": "rifampin", "B": "metformin", "C": "levothyroxine"}
    treats = run_graph(ctx, record("Which drug treats tuberculosis?", "rifampin", drugs, "A"))
    assert treats["status"] == "accepted", treats["verification"]
    one_finding = run_graph(ctx, record("A man presents with cough. Which of the following is the most likely diagnosis?",
                                        "tuberculosis", {"A": "tuberculosis", "B": "malaria"}, "A"))
    assert one_finding["status"] == "rejected"
    assert one_finding["verification"]["reason"] == "weak evidence"


def test_an_adults_measured_value_is_a_finding_of_the_question(context):
    ctx = context()
    findings = "presents with goiter, tremor and heat intolerance. Her blood pressure is 165/100 mm Hg."
    adult = run_graph(ctx, diagnosis(f"A 35-year-old woman {findings}"))
    (measured,) = [m for m in adult["mappings"] if m["mention"] == "blood pressure is 165/100 mm Hg"]
    assert (measured["name"], measured["method"]) == ("hypertension", "exact")
    assert "from the presenting problem" in path_from(adult, "hypertension")["relevance"]["reasons"]
    assert adult["status"] == "accepted", adult["verification"]  # without it: not clearly ahead (test above)
    child = run_graph(ctx, diagnosis(f"A 6-year-old girl {findings}"))  # a child's blood pressure runs lower
    assert "hypertension" not in [m["name"] for m in child["mappings"] if m["role"] == "question"]
    assert child["status"] == "rejected"


def test_findings_after_a_relative_who_brings_the_patient_are_the_patients(context):
    state = run_graph(context(), diagnosis(
        "A girl is brought by her mother because of goiter, tremor, heat intolerance, proptosis and pretibial myxedema."))
    assert path_from(state, "goiter")["relevance"]["reasons"][1] == "from the presenting problem"
    assert state["status"] == "accepted", state["verification"]
    relative = run_graph(context(), diagnosis("A girl is seen. Her mother has goiter, tremor and proptosis."))
    assert relative["verification"]["reason"] == "no question entity mapped"


def test_a_question_wanting_the_option_that_does_not_fit_is_rejected_as_such(context):
    rec = diagnosis("A woman presents with goiter, tremor, heat intolerance, proptosis and pretibial myxedema.",
                    question="Which of the following would NOT be expected in this patient?")
    state = run_graph(context(), rec)
    assert state["status"] == "rejected" and state["verification"]["reason"] == "question asks for an exception"
    assert len(state["attempts"]) == 1


def test_relevance_is_shown_to_the_llm_pruner(context):
    from langgraph.runtime import Runtime

    from agent.reasoning import nodes

    kg_only = context()
    state = {"record": diagnosis("A woman presents with goiter, tremor and heat intolerance.")}
    for step in (nodes.extract, nodes.map_entities, nodes.find_paths):
        state = {**state, **step(state, Runtime(context=kg_only))}
    ctx = replace(context(model="m", prune_per_group=1), llm=make_llm())
    brain = FakeBrain([ctx.kg.name(n) for n in ctx.kg.graph])
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=brain.handler)
        nodes.prune(state, Runtime(context=ctx))
    (call,) = route.calls
    prompt = json.loads(call.request.content)["messages"][0]["content"]
    direct = path_from(state, "tremor")
    assert f"{direct['text']} (relevance {direct['relevance']['score']:.2f}: specificity" in prompt
    assert "from the presenting problem" in prompt


def test_the_run_summary_gives_the_accepted_relevance_and_the_rejection_reasons(tmp_path, thyroid_kg_dir):
    records = tmp_path / "in.jsonl"
    rows = [diagnosis("A woman presents with goiter, tremor, heat intolerance, proptosis and pretibial myxedema."),
            diagnosis("A woman presents with goiter and tremor.", answer="Methimazole",
                      options={"A": "Methimazole", "B": "Levothyroxine"},
                      question="Which of the following is the most appropriate pharmacotherapy?")]
    records.write_text("".join(json.dumps({**r, "id": f"s{i}"}) + "\n" for i, r in enumerate(rows)))
    result = CliRunner().invoke(app, ["run", str(records), "--out", str(tmp_path / "out"), "--kg-dir", str(thyroid_kg_dir)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["accepted"] == 1
    assert summary["rejection_reasons"] == {"answer outside the graph": 1}
    accepted = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").open()][0]
    assert summary["relevance"]["accepted_mean"] == accepted["relevance"] > 0
    assert "relevance (mean, accepted)" in result.output and "Rejected: answer outside the graph × 1" in result.output


def test_kg_only_does_not_judge_an_answer_ahead_of_options_the_graph_does_not_hold(context):
    """Leading options that score 0 because the graph has no node for them says nothing:
    with two of the three other options outside the graph the same sound findings are
    rejected with a reason naming them; with all of them in it, accepted."""
    ctx = context()
    findings = "A woman presents with goiter, tremor, heat intolerance, proptosis and pretibial myxedema."
    compared = run_graph(ctx, diagnosis(findings, options={**OPTIONS, "D": "Pheochromocytoma"}))
    assert compared["status"] == "accepted", compared["verification"]
    options = {"A": "Graves disease", "B": "Toxic multinodular goiter", "C": "Pheochromocytoma", "D": "Panic disorder"}
    uncompared = run_graph(ctx, diagnosis(findings, options=options))
    assert uncompared["status"] == "rejected"
    assert uncompared["verification"]["reason"] == "options outside the graph"
    assert uncompared["verification"]["detail"] == \
        "1 of the 3 other options are in the graph; not: C. Pheochromocytoma, D. Panic disorder"
    assert len(uncompared["attempts"]) == 1  # a wider search cannot put them in the graph



PAIN_KG = """head\trelation\ttail\thead_type\ttail_type
myalgia\tphenotype_phenotype\tpain\teffect/phenotype\teffect/phenotype
arthralgia\tphenotype_phenotype\tpain\teffect/phenotype\teffect/phenotype
polymyalgia rheumatica\tdisease_phenotype_positive\tmyalgia\tdisease\teffect/phenotype
polymyalgia rheumatica\tdisease_phenotype_positive\tarthralgia\tdisease\teffect/phenotype
polymyalgia rheumatica\tdisease_phenotype_positive\tmorning stiffness\tdisease\teffect/phenotype
polymyalgia rheumatica\tdisease_phenotype_positive\tfever\tdisease\teffect/phenotype
giant cell arteritis\tdisease_phenotype_positive\theadache\tdisease\teffect/phenotype
giant cell arteritis\tdisease_phenotype_positive\tfever\tdisease\teffect/phenotype
"""


def test_kg_only_reasoning_shows_the_one_path_each_finding_counts_by(tmp_path, embedder):
    """The evidence counts a finding once, by its best path: the reasoning shows that path,
    not every route from the same finding ("pain" through myalgia and through arthralgia
    would say the patient has both), whatever the LLM pruner's K."""
    from graphs.kg_dir import Source, build_kg
    from graphs.progress import Silent

    (tmp_path / "kg.tsv").write_text(PAIN_KG)
    build_kg(tmp_path / "kg", Source("triples", tmp_path / "kg.tsv"), embedder, Silent())
    ctx = resources.load(Settings(kg_dir=tmp_path / "kg", prune_per_group=3))
    state = run_graph(ctx, diagnosis("A woman presents with pain, fever and morning stiffness.",
                                     answer="Polymyalgia rheumatica",
                                     options={"A": "Polymyalgia rheumatica", "B": "Giant cell arteritis"}))
    from_pain = [p["names"][1] for p in state["paths"] if p["names"][0] == "pain" and p["relevance"]["score"] > 0]
    assert sorted(from_pain) == ["arthralgia", "myalgia"]  # two equally good routes from one finding
    shown = [(p["names"][0], p["names"][-1]) for p in state["pruned"]]
    assert sorted(shown) == [("morning stiffness", "polymyalgia rheumatica"), ("pain", "polymyalgia rheumatica")]
    assert state["reasoning"].count("Starting from pain:") == 1


def test_an_answer_the_graph_cannot_judge_is_rejected_as_such_whatever_its_paths(context):
    """A loosely mapped answer is the reason, final at once, not that the question's only
    path (through a gene, in a question not about genes) explains nothing: no retry can map
    the answer better, and no path is searched for it."""
    ctx = context()
    (hit,) = ctx.index.search(["Graves ophthalmopathy"], k=1)
    assert hit[0].name == "graves disease" and hit[0].score < 1.0  # the nearest name, not the answer's own
    state = run_graph(ctx, diagnosis("A woman presents with weight loss.", answer="Graves ophthalmopathy",
                                     options={**OPTIONS, "A": "Graves ophthalmopathy"}))
    assert state["verification"]["reason"] == "answer mapped loosely"
    assert len(state["attempts"]) == 1 and state["paths"] == []
    searched = kg_nodes.searched_paths(state, ctx)["paths"]  # what the search would have found
    assert searched and not any(p["relevance"]["score"] for p in searched)
