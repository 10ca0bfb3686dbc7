"""Issue 24, round 5: the answer's own concept under the graph's name is accepted, wrong
senses stay rejected with the reason, a disease named as a form of the answer is no detour,
and "a 3-month history of cough" is the presenting problem.

On a small written HPO-like graph (real names and is-a links, much trimmed), built in memory
with synonyms as the HPO loader gives them.
"""

from __future__ import annotations

import pytest

from agent.reasoning.kg_nodes import LOOSE, answer_problem
from agent.reasoning.relevance import finding_role, frame_question, relevance
from agent.reasoning.search import path_weight
from graphs.store import KnowledgeGraph
from graphs.vocabulary import DISEASE, DISEASE_PHENOTYPE_POSITIVE, IS_A, PHENOTYPE

FINDING_QUESTION = "A woman presents with fatigue. Which of the following findings is most likely?"
CAUSE_QUESTION = "A woman presents with constipation, hypercalcemia and fatigue. Which of the following is the most likely cause?"

PHENOTYPES = {  # id: (name, parent, synonyms)
    "HP:0000001": ("All", None, ()),
    "HP:0000118": ("Phenotypic abnormality", "HP:0000001", ()),
    "HP:0033211": ("Decreased total iron binding capacity", "HP:0000118", ()),
    "HP:0033513": ("Addictive cocaine use", "HP:0000118", ("Cocaine addiction",)),
    "HP:0000114": ("Proximal tubulopathy", "HP:0000118", ("Proximal tubule dysfunction",)),
    "HP:0033120": ("Abnormal proximal convoluted tubule morphology", "HP:0000118", ()),
    "HP:0012060": ("Acral lentiginous melanoma", "HP:0000118", ()),
    "HP:0000843": ("Hyperparathyroidism", "HP:0000118", ()),
    "HP:0008200": ("Primary hyperparathyroidism", "HP:0000843", ()),
    "HP:0003072": ("Hypercalcemia", "HP:0000118", ()),
    "HP:0002019": ("Constipation", "HP:0000118", ()),
    "HP:0012378": ("Fatigue", "HP:0000118", ()),
    "HP:0004855": ("Reduced protein S activity", "HP:0000118", ("Protein S deficiency",)),
    "HP:0001907": ("Thromboembolism", "HP:0000118", ()),
    "HP:0100001": ("Malignant mesothelioma", "HP:0000118", ()),
    "HP:0002094": ("Dyspnea", "HP:0000118", ()),
}
DISEASES = {  # id: (name, annotations)
    "ORPHA:45": ("Adenosine monophosphate deaminase deficiency", ["HP:0012378"]),
    "OMIM:102700": ("Severe combined immunodeficiency due to adenosine deaminase deficiency", ["HP:0012378"]),
    "OMIM:239200": ("Hyperparathyroidism, neonatal severe", ["HP:0008200", "HP:0003072", "HP:0002019"]),
    "ORPHA:904": ("Williams syndrome", ["HP:0008200", "HP:0003072", "HP:0012378"]),
    "OMIM:612336": ("Thrombophilia due to protein S deficiency", ["HP:0004855", "HP:0001907"]),
    "ORPHA:168811": ("Malignant peritoneal mesothelioma", ["HP:0100001", "HP:0002094"]),
    "OMIM:156240": ("Mesothelioma, malignant, familial", ["HP:0100001", "HP:0002094"]),
}


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    graph = KnowledgeGraph()
    for node_id, (name, _, synonyms) in PHENOTYPES.items():
        graph.add_node(node_id, name, PHENOTYPE, synonyms=synonyms)
    for node_id, (name, _) in DISEASES.items():
        graph.add_node(node_id, name, DISEASE)
    for node_id, (_, parent, _) in PHENOTYPES.items():
        if parent:
            graph.add_fact(node_id, IS_A, parent)
    for node_id, (_, annotations) in DISEASES.items():
        for term in annotations:
            graph.add_fact(node_id, DISEASE_PHENOTYPE_POSITIVE, term)
    return graph


def embedding_match(kg: KnowledgeGraph, answer: str, node_id: str, score: float) -> dict:
    return {"mention": answer, "role": "answer", "node_id": node_id, "name": kg.name(node_id),
            "type": kg.node(node_id).type, "score": score, "method": "embedding", "alternatives": []}


def judged(kg: KnowledgeGraph, answer: str, node_id: str, score: float, question: str = FINDING_QUESTION):
    record = {"question": question, "answer": answer, "options": {"A": answer}, "answer_idx": "A"}
    return answer_problem(kg, record, [embedding_match(kg, answer, node_id, score)], frame_question(question, []))


def test_the_answers_own_concept_under_the_graphs_name_is_the_answer(kg):
    # the only concept whose name holds every word of the answer, found by meaning as well
    assert judged(kg, "Decreased iron-binding capacity", "HP:0033211", 0.974) is None


@pytest.mark.parametrize("answer, node_id, score, why", [
    # two concepts hold the words: the graph cannot tell which is meant
    ("Adenosine deaminase deficiency", "ORPHA:45", 0.928, "Adenosine monophosphate deaminase deficiency"),
    ("Proximal tubule", "HP:0000114", 0.851, "Proximal tubulopathy"),
    # one word's completions are many concepts, even where the graph names one
    ("Cocaine", "HP:0033513", 0.80, "Addictive cocaine use"),
    # the only concept holding the words, but not as close by meaning as a form of it
    ("Acral lentiginous", "HP:0012060", 0.707, "Acral lentiginous melanoma"),
])
def test_a_wrong_sense_or_a_distant_match_stays_rejected_as_mapped_loosely(kg, answer, node_id, score, why):
    verdict = judged(kg, answer, node_id, score)
    assert verdict is not None and verdict["reason"] == LOOSE and not verdict["correct"]
    assert f"{answer!r} ~ {why}" in verdict["detail"]


def one_finding_frame(kg: KnowledgeGraph, finding: str):
    mapping = {"mention": finding.lower(), "role": "question", "node_id": kg.nodes_named(finding)[0]}
    return frame_question(f"A woman presents with {finding.lower()}. What is the most likely cause?", [mapping])


def named_path(kg: KnowledgeGraph, *names: str) -> tuple[str, ...]:
    return tuple(kg.nodes_named(n)[0] for n in names)


def test_a_form_of_the_answers_parent_is_a_detour_the_findings_must_support(kg):
    # Blind reviewers judged "Hypercalcemia ← Hyperparathyroidism, neonatal severe → Primary
    # hyperparathyroidism" unsound for a 66-year-old: a rare inherited form of the parent is
    # another disease, not the answer itself.
    frame = one_finding_frame(kg, "Hypercalcemia")
    for mediator in ("Hyperparathyroidism, neonatal severe", "Williams syndrome"):
        detour = named_path(kg, "Hypercalcemia", mediator, "Primary hyperparathyroidism")
        unsupported = relevance(kg, detour, path_weight(kg, detour), frame)
        assert unsupported["score"] == 0
        assert f"through {mediator}, which explains 1 of the question's findings" in unsupported["reasons"]


def test_a_disease_named_as_a_form_of_a_synonym_of_the_answer_is_no_detour(kg):
    path = named_path(kg, "Thromboembolism", "Thrombophilia due to protein S deficiency", "Reduced protein S activity")
    scored = relevance(kg, path, path_weight(kg, path), one_finding_frame(kg, "Thromboembolism"))
    assert scored["score"] > 0
    assert "through Thrombophilia due to protein S deficiency, a form of Reduced protein S activity" in scored["reasons"]


def test_a_name_adding_a_site_names_another_disease_words_saying_which_form_do_not(kg):
    # Blind reviewers judged a pleural tumour reasoned through "Malignant peritoneal
    # mesothelioma" unsound: the site makes it another disease than the answer
    frame = one_finding_frame(kg, "Dyspnea")
    form = named_path(kg, "Dyspnea", "Mesothelioma, malignant, familial", "Malignant mesothelioma")
    assert "through Mesothelioma, malignant, familial, a form of Malignant mesothelioma" in \
        relevance(kg, form, path_weight(kg, form), frame)["reasons"]
    site = named_path(kg, "Dyspnea", "Malignant peritoneal mesothelioma", "Malignant mesothelioma")
    assert relevance(kg, site, path_weight(kg, site), frame)["score"] == 0


@pytest.mark.parametrize("question, finding, role", [
    ("A 53-year-old man comes to the physician because of a 3-month history of cough and weight loss.", "cough", "presenting"),
    ("A woman presents to the emergency department with a 2-day history of fever.", "fever", "presenting"),
    ("He reports a 2-month history of exertional chest pain.", "chest pain", "presenting"),
    ("A man presents with dyspnea. He has a 10-year history of hypertension.", "hypertension", "background"),
    ("A woman with a history of hypertension presents with goiter.", "hypertension", "background"),
    ("A man presents with fever. He had a 4-day history of diarrhea last year.", "diarrhea", "background"),
])
def test_the_history_of_the_present_illness_is_the_presenting_problem(question, finding, role):
    assert finding_role(question, finding) == role
