"""Findings a case report states with their site or in lay words, and pain that is not the
patient's finding (docs/quality.md, "Findings the case report states in other forms")."""

import pytest

from agent.reasoning.mentions import coordinated_nodes, find_findings, named_or_measured
from tests.phenotype_graphs import PHENOTYPE, findings_named, phenotype_kg


def sites_kg():
    """HPO's names for pain, lymph node and edema findings of a few sites, under their
    general terms, with HPO's side qualifiers (``KnowledgeGraph.qualifiers``)."""
    names = {
        "P0": "Pain", "P1": "Abdominal pain", "P2": "Chest pain", "P3": "Lower limb pain", "P4": "Upper limb pain",
        "P5": "Limb pain", "P6": "Back pain", "P7": "Headache", "P8": "Dyspareunia", "P9": "Dysuria",
        "P10": "Odynophagia", "P11": "Lymphadenopathy", "P12": "Cervical lymphadenopathy", "P13": "Edema",
        "P14": "Pedal edema", "P15": "Testicular pain", "P16": "Polycythemia", "P17": "Neck pain",
        "HP:0000001": "All", "HP:0000118": "Phenotypic abnormality", "HP:0012823": "Clinical modifier", "HP:0012835": "Left", "HP:0012834": "Right",
    }  # fmt: skip
    is_a = [("P1", "P0"), ("P2", "P0"), ("P5", "P0"), ("P3", "P5"), ("P4", "P5"), ("P6", "P0"), ("P7", "P0"),
            ("P15", "P0"), ("P17", "P0"), ("P12", "P11"), ("P14", "P13"), ("HP:0000118", "HP:0000001"),
            ("HP:0012823", "HP:0000001"),
            ("HP:0012835", "HP:0012823"), ("HP:0012834", "HP:0012823")]
    kg = phenotype_kg(names, is_a)
    kg.synonyms = {"P3": ("Leg pain",), "P10": ("Painful swallowing",), "P11": ("Swollen lymph nodes",),
                   "P14": ("Edema of the lower limbs",), "P16": ("Increased red blood cells",)}
    return kg


@pytest.mark.parametrize("text, surface, name", [
    ("She has fevers and left lower quadrant pain.", "left lower quadrant pain", "Abdominal pain"),
    ("The boy is crying about pain in his belly.", "pain in his belly", "Abdominal pain"),
    ("She has dull suprapubic pain for 3 hours.", "suprapubic pain", "Abdominal pain"),
    ("He describes non-radiating substernal pain.", "substernal pain", "Chest pain"),
    ("He has pain in the right upper quadrant of his abdomen.", "pain in the right upper quadrant", "Abdominal pain"),
    ("She has a burning pain in her upper right back.", "pain in her upper right back", "Back pain"),
    ("He has severe pain of the right lower extremity.", "pain of the right lower extremity", "Lower limb pain"),
    ("He has pain in his left thigh for a week.", "pain in his left thigh", "Lower limb pain"),
    ("She presents with right arm pain.", "right arm pain", "Upper limb pain"),
    ("He has swelling and pain in his right testicle.", "pain in his right testicle", "Testicular pain"),
    ("He has stabbing pain in the middle of his chest.", "pain in the middle of his chest", "Chest pain"),
    ("She has pain in the right side of her abdomen.", "pain in the right side of her abdomen", "Abdominal pain"),
    # HPO's own word for a site is read as written, before any lay reading ("neck" is not "cervical" here)
    ("He has pain in his neck.", "pain in his neck", "Neck pain"),
])
def test_a_pain_named_with_its_site_in_lay_or_anatomical_words_is_that_sites_pain(text, surface, name):
    kg = sites_kg()
    assert findings_named(kg, text) == [(surface, [name])]


@pytest.mark.parametrize("text, surface, name", [
    ("She has severe pain in her head.", "pain in her head", "Headache"),
    ("She reports pain during sexual intercourse.", "pain during sexual intercourse", "Dyspareunia"),
    ("She has pain with urination.", "pain with urination", "Dysuria"),
    ("He has had pain when urinating.", "pain when urinating", "Dysuria"),
    ("She has painful urination.", "painful urination", "Dysuria"),
    ("She has painful swallowing.", "painful swallowing", "Odynophagia"),
])
def test_a_pain_hpo_names_by_another_word_is_that_finding(text, surface, name):
    kg = sites_kg()
    assert findings_named(kg, text) == [(surface, [name])]


def test_lymph_nodes_and_edema_at_a_site_are_that_sites_finding():
    kg = sites_kg()
    assert findings_named(kg, "She has enlarged lymph nodes in the neck.") == [
        ("enlarged lymph nodes in the neck", ["Cervical lymphadenopathy"])]
    assert findings_named(kg, "There is lymph node enlargement.") == [("lymph node enlargement", ["Lymphadenopathy"])]
    # an item of a list after a comma keeps its adjective to itself
    assert findings_named(kg, "He has had edema, enlarged lymph nodes, and headaches.") == [
        ("edema", ["Edema"]), ("enlarged lymph nodes", ["Lymphadenopathy"]), ("headaches", ["Headache"])]
    assert findings_named(kg, "There is 2+ pitting edema of the lower extremities.") == [
        ("edema of the lower extremities", ["Pedal edema"])]


def test_words_that_say_only_where_or_link_a_pain_name_nothing_alone():
    kg = sites_kg()
    # "with" links a pain to what brings it on, nowhere else; side and position words alone are no finding
    assert findings_named(kg, "Smear shows red blood cells with increased central pallor.") == []
    assert findings_named(kg, "A nodule in the right upper lobe; the left lower lobe is clear.") == []
    # "neck" is "cervical" only for its lymph nodes: a cervical tumor is the uterine cervix's
    kg = sites_kg()
    kg.add_node("P19", "Cervical polyp", PHENOTYPE)
    kg.add_node("P20", "Neoplasm", PHENOTYPE)
    kg.synonyms = {**kg.synonyms, "P19": ("Cervical tumor",), "P20": ("Tumor",)}
    assert findings_named(kg, "There is a tumor in the neck.") == [("tumor", ["Neoplasm"])]
    # the back of a knee is no back, and a run never ends on a side or position adjective
    assert findings_named(kg, "He has pain at the back of his left knee.") == [("pain", ["Pain"])]
    assert findings_named(kg, "She has edema in the lower half of the body.") == [("edema", ["Edema"])]
    # a site word next to a finding that names no site-specific node leaves the finding as written
    assert findings_named(kg, "She has pain in her vagina.") == [("pain", ["Pain"])]


def test_a_pain_at_a_site_the_question_denies_or_gives_a_relative_is_not_found():
    kg = sites_kg()
    assert find_findings(kg, "No pain in her belly.") == []
    assert find_findings(kg, "She denies suprapubic pain or pain with urination.") == []
    assert find_findings(kg, "Her mother has pain in her belly; she has a headache.") == ["headache"]


def test_pain_the_patient_responds_to_or_is_treated_for_is_no_finding():
    kg = sites_kg()
    not_findings = [
        "He is obtunded, with eyes opening to pain.", "She withdraws from pain.",
        "He grimaces on pain and localizes in response to pain.", "Sensation to pain is intact.",
        "Her only current medication is oxycodone for pain.", "She has taken ibuprofen for the pain.",
        "His pain management team recommends a new drug.", "He is admitted for monitoring of his pain.",
        "Morphine is dosed to control his pain.", "It is unrelieved by any pain relievers.",
        "He tried several pain medications.", "The average pain score was 2.",
    ]
    for text in not_findings:
        assert find_findings(kg, text) == [], text
    # a pain the patient comes for, or has despite treatment, is theirs
    assert findings_named(kg, "He comes to the physician for pain in his back.") == [("pain in his back", ["Back pain"])]
    assert find_findings(kg, "She has pain despite ibuprofen.") == ["pain"]
    assert find_findings(kg, "She comes for evaluation of pain.") == ["pain"]


def test_a_bare_pain_after_a_named_kind_of_pain_is_that_pain():
    kg = sites_kg()
    text = "He has substernal pain. The pain radiates to his jaw. What is the cause of his pain?"
    assert findings_named(kg, text) == [("substernal pain", ["Chest pain"])]
    # a pain read as a finding HPO names by another word is such a kind too
    kg = sites_kg()
    kg.add_node("P18", "Dysmenorrhea", PHENOTYPE)  # not under Pain in this graph, as Headache in HPO
    kg.synonyms = {**kg.synonyms, "P18": ("Painful menstruation",)}
    assert find_findings(kg, "She has painful menstruation. The pain lasts two days.") == ["painful menstruation"]
    # with no kind of pain named before it, or said to be somewhere, the pain is a finding of its own
    assert find_findings(kg, "He has pain. The pain radiates to his jaw.") == ["pain"]
    assert find_findings(kg, "She has pain. Hours later, a headache.") == ["pain", "headache"]
    assert find_findings(kg, "She has a headache and pain in her vagina.") == ["headache", "pain"]


def weakness_kg():
    """HPO's weakness terms with a site: one side of the body, the limbs, a part of the face."""
    kg = sites_kg()
    for node_id, name in {"W0": "Asthenia", "W1": "Hemiparesis", "W2": "Limb muscle weakness",
                          "W3": "Upper limb muscle weakness", "W4": "Weakness of facial musculature"}.items():
        kg.add_node(node_id, name, PHENOTYPE)
    kg.synonyms = {**kg.synonyms, "W0": ("Weakness",), "W1": ("Weakness of one side of body",),
                   "W2": ("Limb weakness",), "W4": ("Facial weakness",)}
    return kg


@pytest.mark.parametrize("text, surface, name", [
    ("She has headaches and left-sided weakness.", "left-sided weakness", "Hemiparesis"),
    ("He has a right sided weakness for 2 hours.", "right sided weakness", "Hemiparesis"),
    # "upper and lower" together are the whole site
    ("There is moderate weakness of the upper and lower extremities.", "weakness of the upper and lower extremities",
     "Limb muscle weakness"),
    ("He has weakness of both his upper and lower extremities.", "weakness of both his upper and lower extremities",
     "Limb muscle weakness"),
    ("She has pain in the upper and lower abdomen.", "pain in the upper and lower abdomen", "Abdominal pain"),
])
def test_a_weakness_of_one_side_or_of_both_limbs_is_hpos_weakness_of_that_site(text, surface, name):
    assert findings_named(weakness_kg(), text)[-1] == (surface, [name])


def test_a_weakness_of_no_site_or_of_a_part_of_one_side_is_not_a_hemiparesis():
    kg = weakness_kg()
    assert findings_named(kg, "He has right-sided facial weakness.") == [("facial weakness", ["Weakness of facial musculature"])]
    assert findings_named(kg, "She has fatigue and weakness.") == [("weakness", ["Asthenia"])]
    assert findings_named(kg, "No left-sided weakness.") == []
    # of two findings before a site, only the one next to it is read at the site
    assert findings_named(kg, "Weakness and pain of the upper extremities.") == [
        ("Weakness", ["Asthenia"]), ("pain of the upper extremities", ["Upper limb pain"])]
    # "and" between other words than "upper" and "lower" still breaks a run
    assert findings_named(kg, "Weakness in proximal and distal extremities.") == [("Weakness", ["Asthenia"])]


def test_pain_as_a_sense_tested_is_no_pain_and_its_decrease_is_read_before_a_coordination():
    kg = sites_kg()
    kg.add_node("S1", "Impaired pain sensation", PHENOTYPE)
    kg.synonyms = {**kg.synonyms, "S1": ("Decreased pain sensation",)}
    assert find_findings(kg, "There is a loss of pain and temperature sensation in the right leg.") == []
    assert find_findings(kg, "Pain sensation is tested.") == []
    assert findings_named(kg, "Examination shows decreased sensation to pain and temperature over the left side.") == [
        ("decreased sensation to pain", ["Impaired pain sensation"])]
    # a pain before another finding, or before a sense in another clause, is the patient's
    assert find_findings(kg, "She has pain and temperature of 39°C.") == ["pain"]
    assert find_findings(kg, "He has pain; sensation is intact.") == ["pain"]


def test_the_first_of_two_coordinated_sites_shares_the_finding_after_the_second():
    kg = sites_kg()
    kg.add_node("P21", "Axillary lymphadenopathy", PHENOTYPE)
    kg.add_node("P22", "Inguinal lymphadenopathy", PHENOTYPE)
    found = find_findings(kg, "He has back and neck pain and axillary and inguinal lymphadenopathy.")
    assert [(f, [kg.name(n) for n in named_or_measured(kg, f) or coordinated_nodes(kg, f)]) for f in found] == [
        ("back and neck pain", ["Back pain"]), ("neck pain", ["Neck pain"]),
        ("axillary and inguinal lymphadenopathy", ["Axillary lymphadenopathy"]),
        ("inguinal lymphadenopathy", ["Inguinal lymphadenopathy"])]
    # the first word must name the finding as written with it; a denied pair is no finding
    assert find_findings(kg, "He has pain in his legs and chest pain.") == ["pain in his legs", "chest pain"]
    assert find_findings(kg, "She has swelling of the back and neck pain.") == ["neck pain"]
    assert find_findings(kg, "No back and neck pain.") == []
    assert coordinated_nodes(kg, "back and neck") == ()


def test_an_answer_of_two_coordinated_sites_is_not_mapped_to_the_first(tmp_path):
    from agent.reasoning.kg_nodes import _named_exactly  # noqa: PLC0415 - the mapping's own rule

    class Context:
        kg = sites_kg()

    assert _named_exactly(Context, {"text": "Back and neck pain", "role": "answer", "type": None}) == ()
    assert _named_exactly(Context, {"text": "back and neck pain", "role": "question", "type": None}) == ("P6",)
