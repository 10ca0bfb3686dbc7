"""A case report's words read as the findings they mean in clinical English, on an HPO graph
built the way the default one is (graphs.hpo) from a few stanzas written like hp.obo's."""

import pytest

from graphs.hpo import GENES_FILE, HPOA_FILE, OBO_FILE, build_hpo_graph
from tests.phenotype_graphs import findings_named

STANZAS = {
    "HP:0000001": ("All", [], []),
    "HP:0000118": ("Phenotypic abnormality", [], ["HP:0000001"]),
    "HP:0001254": ("Lethargy", ['"Dullness" EXACT []', '"Torpor" EXACT []', '"Slowness" EXACT []'], ["HP:0000118"]),
    "HP:0025237": ("Confusional arousal", ['"Disoriented" EXACT []', '"Unresponsive" EXACT []'], ["HP:0000118"]),
    "HP:0001289": ("Confusion", ['"Disorientation" EXACT layperson []'], ["HP:0000118"]),
    "HP:0012378": ("Fatigue", ['"Tired" EXACT layperson []'], ["HP:0000118"]),
    "HP:0002321": ("Vertigo", ['"Dizziness" RELATED layperson []', '"Dizzy spell" EXACT layperson []'], ["HP:0000118"]),
    "HP:0000988": ("Skin rash", ['"Rash" BROAD layperson []'], ["HP:0000118"]),
    "HP:0000490": ("Deeply set eye", ['"Sunken eyes" EXACT []', '"Deep-set eyes" EXACT layperson []'], ["HP:0000118"]),
    "HP:0000713": ("Agitation", [], ["HP:0000118"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def kg(tmp_path_factory):
    data = tmp_path_factory.mktemp("hpo")
    obo = ["format-version: 1.2\n"]
    for term_id, (name, synonyms, parents) in STANZAS.items():
        obo += ["\n[Term]\n", f"id: {term_id}\n", f"name: {name}\n"]
        obo += [f"synonym: {synonym}\n" for synonym in synonyms] + [f"is_a: {parent}\n" for parent in parents]
    (data / OBO_FILE).write_text("".join(obo), encoding="utf-8")
    (data / HPOA_FILE).write_text("#description: none\n", encoding="utf-8")
    (data / GENES_FILE).write_text("", encoding="utf-8")
    return build_hpo_graph(data)


def test_words_that_name_another_concept_in_clinical_english_are_no_finding(kg):
    text = (
        "He was found unresponsive. There is dullness to percussion and shifting dullness. "
        "He reports dizziness. His eyes are sunken. Slowness in performing tasks."
    )
    assert findings_named(kg, text) == []


def test_adjectives_of_frequent_findings_are_read_as_their_findings(kg):
    text = "She is fatigued, agitated and disoriented, with a rash; she was tired and had a dizzy spell."
    assert findings_named(kg, text) == [
        ("fatigued", ["Fatigue"]),
        ("agitated", ["Agitation"]),
        ("disoriented", ["Confusion"]),
        ("rash", ["Skin rash"]),
        ("tired", ["Fatigue"]),
        ("dizzy spell", ["Vertigo"]),
    ]


def test_a_dysmorphic_feature_is_still_found_by_its_own_names(kg):
    assert findings_named(kg, "Deep-set eyes and torpor.") == [("Deep-set eyes", ["Deeply set eye"]), ("torpor", ["Lethargy"])]
