import json
from pathlib import Path

from agent.reasoning import mentions
from agent.reasoning.mentions import exact_or_nearest, find_findings, find_mentions, named_or_measured, nodes_named, scan_mentions
from graphs.hpo import build_hpo_graph
from tests.phenotype_graphs import kg_with

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES, HPO_SLICE = ROOT / "examples" / "medqa_sample.jsonl", ROOT / "tests" / "fixtures" / "hpo_slice"


def test_longest_names_win_without_overlap():
    kg = kg_with(("D1", "iron deficiency anemia", "disease"), ("P1", "anemia", "effect/phenotype"), ("P2", "fatigue", "effect/phenotype"))
    assert find_mentions(kg, "Fatigue and iron deficiency anemia; anemia again.") == ["Fatigue", "iron deficiency anemia", "anemia"]


def test_function_words_and_tiny_names_are_not_entities():
    kg = kg_with(("P1", "All", "effect/phenotype"), ("P2", "PA", "effect/phenotype"), ("P3", "fever", "effect/phenotype"))
    assert find_mentions(kg, "All patients had PA and fever") == ["fever"]


def test_gene_symbols_match_only_in_their_own_case():
    kg = kg_with(("G1", "CAT", "gene/protein"))
    assert find_mentions(kg, "The cat scratched him") == []
    assert find_mentions(kg, "A CAT variant") == ["CAT"]


def test_a_two_character_gene_symbol_with_a_digit_is_the_gene_in_its_own_case_only():
    kg = kg_with(("NCBIGene:2157", "F8", "gene/protein"), ("P1", "PA", "effect/phenotype"))
    assert find_mentions(kg, "Hemophilia A: F8 variants, f8 and PA aside") == ["F8"]


def test_a_two_character_symptom_symbol_with_a_digit_is_found_in_its_own_case_only():
    kg = kg_with(("HP:0031659", "Fourth heart sound", "effect/phenotype"), ("P2", "Syncope", "effect/phenotype"))
    kg.synonyms = {"HP:0031659": ("S4",)}
    assert find_findings(kg, "Syncope at work. An S4 is present; loud S1 and S2.") == ["Syncope", "S4"]
    assert named_or_measured(kg, "S4") == ("HP:0031659",)
    assert find_findings(kg, "Pain at s4 and below.") == []


def test_negated_mentions_are_found_and_marked_not_dropped():
    kg = kg_with(("P1", "fever", "effect/phenotype"), ("P2", "cough", "effect/phenotype"))
    found = scan_mentions(kg, "Cough but no fever; fever later.")
    assert [(f.surface, f.negated) for f in found] == [("Cough", False), ("fever", True), ("fever", False)]
    assert find_mentions(kg, "Cough but no fever.") == ["Cough"]


def test_a_non_prefix_negates_the_word_it_is_joined_to_not_the_names_that_hold_it():
    kg = kg_with(("P1", "Productive cough", "effect/phenotype"), ("P2", "Cough", "effect/phenotype"),
                 ("P3", "Tender abdomen", "effect/phenotype"), ("D1", "Non-small cell lung carcinoma", "disease"))
    text = "A non-productive cough, a non tender abdomen and a productive cough; non-small cell lung carcinoma."
    assert find_mentions(kg, text) == ["cough", "productive cough", "non-small cell lung carcinoma"]


def test_punctuation_inside_names_is_tolerated():
    kg = kg_with(("D1", "Type 2 diabetes mellitus", "disease"))
    assert find_mentions(kg, "known type-2 diabetes mellitus.") == ["type-2 diabetes mellitus"]


def test_gene_symbols_written_with_a_hyphen_are_the_gene():
    kg = kg_with(("NCBIGene:3565", "IL4", "gene/protein"), ("NCBIGene:3569", "IL6", "gene/protein"))
    assert find_mentions(kg, "Which cytokine, IL-4 or il-6, drives class switching?") == ["IL-4"]


def test_qualifiers_are_not_findings():
    kg = kg_with(("HP:0000001", "All", "effect/phenotype"), ("HP:0000118", "Phenotypic abnormality", "effect/phenotype"),
                 ("HP:0012823", "Clinical modifier", "effect/phenotype"), ("HP:0012835", "Left", "effect/phenotype"),
                 ("HP:0001945", "Fever", "effect/phenotype"), ("HP:0001712", "Left ventricular hypertrophy", "effect/phenotype"))
    for child, parent in [("HP:0000118", "HP:0000001"), ("HP:0012823", "HP:0000001"), ("HP:0012835", "HP:0012823"),
                          ("HP:0001945", "HP:0000118"), ("HP:0001712", "HP:0000118")]:
        kg.add_fact(child, "phenotype_phenotype", parent)
    assert find_mentions(kg, "Fever and pain in the left flank; left ventricular hypertrophy.") == [
        "Fever", "left ventricular hypertrophy"]


class RecordingIndex:
    """The real entity index, recording which texts it was asked to embed."""

    def __init__(self, index):
        self.index, self.asked = index, []

    def search(self, texts, k=5, type=None):
        self.asked.extend(texts)
        return self.index.search(texts, k=k, type=type)


def test_exact_names_skip_the_vector_query(loaded):
    index = RecordingIndex(loaded.index)
    found = exact_or_nearest(loaded.kg, index, ["Splenomegaly", "tuberculosis infection"], k=3)
    assert index.asked == ["tuberculosis infection"]
    assert found[0] == [] and found[1][0].node_id == "disease:tuberculosis"


def test_a_finding_written_as_an_adjective_is_the_phenotype_of_its_noun():
    kg = kg_with(("P1", "Somnolence", "effect/phenotype"), ("P2", "Tachycardia", "effect/phenotype"),
                 ("P3", "Pallor", "effect/phenotype"), ("P4", "Aspiration", "effect/phenotype"),
                 ("P5", "Increased basophil count", "effect/phenotype"), ("P6", "Basophilia", "effect/phenotype"),
                 ("D1", "Cyanosis", "disease"))
    text = "He is somnolent, pale and tachycardic; not cyanotic. Fluid was aspirated; basophilic stippling."
    assert find_mentions(kg, text) == ["somnolent", "pale", "tachycardic"]
    assert nodes_named(kg, "somnolent") == ("P1",) and nodes_named(kg, "pale") == ("P3",)
    # a disease spelled like the noun is a word-alike, not the finding
    assert nodes_named(kg, "cyanotic") == ()


def test_a_finding_opened_by_another_word_for_its_direction_is_found():
    kg = kg_with(("P1", "High TSH", "effect/phenotype"), ("P2", "Reduced haptoglobin level", "effect/phenotype"),
                 ("D1", "Increased pain syndrome", "disease"))
    assert find_mentions(kg, "Elevated TSH, decreased haptoglobin level and elevated pain syndrome.") == [
        "Elevated TSH", "decreased haptoglobin level"]


def test_a_name_never_runs_across_sentences():
    kg = kg_with(("P1", "Chest pain", "effect/phenotype"), ("P2", "Type 2 diabetes", "effect/phenotype"))
    assert find_mentions(kg, "A bruise on his chest. Pain began today; type 2 diabetes.") == ["type 2 diabetes"]
    assert find_mentions(kg, "He has chest pain.") == ["chest pain"]


# Names whose normalized form a run's words reach only through normalize's rules: a short
# letter word joined to its number (first or later in the name), a Roman numeral, a possessive or an accent dropped, a
# spelling, a plural, a direction reworded.
TRICKY_NAMES = (
    ("G1", "IL4 receptor", "gene/protein"), ("P1", "Type 2 diabetes mellitus", "effect/phenotype"),
    ("D1", "Bartter syndrome", "disease"), ("D2", "Sjogren syndrome", "disease"), ("P2", "Damico sign", "effect/phenotype"),
    ("P3", "Hemoglobin A1c level", "effect/phenotype"), ("P4", "Elevated creatinine", "effect/phenotype"),
    ("G2", "TNF alpha inhibitor", "gene/protein"), ("P6", "Recurrent infections", "effect/phenotype"),
    ("P7", "Anemia", "effect/phenotype"), ("P8", "Chest pain", "effect/phenotype"), ("P9", "Somnolence", "effect/phenotype"),
    ("P10", "Anti IL4 antibody", "effect/phenotype"),
)
TRICKY_TEXT = (
    "A 40-year-old with IL-4 receptor variants, an anti IL-4 antibody, known type II diabetes mellitus and Bartter's syndrome "
    "(or Sjögren syndrome?) shows a positive d'Amico sign; HbA1c level 9%, raised creatinine, a TNF-α inhibitor, "
    "recurrent infection and anaemia. He is somnolent, with chest-pain at rest. No chest pain now."
)


def slow_scan(monkeypatch, kg, text):
    """scan_mentions with every run looked up (the pre-filter passing everything)."""
    with monkeypatch.context() as patched:
        patched.setattr(mentions, "_runs_that_may_name", lambda kg, text, words: lambda i, n: True)
        return scan_mentions(kg, text)


def test_runs_passed_over_without_a_lookup_name_no_node(monkeypatch):
    kg = kg_with(*TRICKY_NAMES)
    words = [(m.group(), m.start(), m.end()) for m in mentions._WORD.finditer(TRICKY_TEXT)]
    may_name = mentions._runs_that_may_name(kg, TRICKY_TEXT, words)
    passed_over = [(i, n) for n in range(1, mentions.MAX_WORDS + 1) for i in range(len(words) - n + 1)
                   if not may_name(i, n)]
    assert len(passed_over) > len(words)  # most runs are never looked up
    for i, n in passed_over:
        surface = TRICKY_TEXT[words[i][1] : words[i + n - 1][2]]
        assert nodes_named(kg, surface) == (), surface
    found = scan_mentions(kg, TRICKY_TEXT)
    assert found == slow_scan(monkeypatch, kg, TRICKY_TEXT)
    assert [f.surface for f in found] == [
        "IL-4 receptor", "anti IL-4 antibody", "type II diabetes mellitus", "Bartter's syndrome", "Sjögren syndrome", "d'Amico sign",
        "HbA1c level", "raised creatinine", "TNF-α inhibitor", "recurrent infection", "anaemia", "somnolent",
        "chest-pain", "chest pain"]


def test_extraction_with_the_pre_filter_finds_what_looking_up_every_run_finds(monkeypatch):
    """On the HPO slice and the example questions (the README's run)."""
    kg = build_hpo_graph(HPO_SLICE)
    records = [json.loads(line) for line in open(EXAMPLES)]
    texts = [r["question"] for r in records] + [option for r in records for option in r["options"].values()]
    found = [scan_mentions(kg, text) for text in texts]
    assert sum(map(len, found)) > len(records)
    assert found == [slow_scan(monkeypatch, kg, text) for text in texts]


def vital_kg():
    return kg_with(("P1", "Fever", "effect/phenotype"), ("P2", "Tachycardia", "effect/phenotype"),
                   ("P3", "Hypertension", "effect/phenotype"), ("P4", "Thrombocytopenia", "effect/phenotype"),
                   ("P5", "Anemia", "effect/phenotype"), ("P6", "Hypokalemia", "effect/phenotype"),
                   ("P7", "Platelet count", "effect/phenotype"), ("P8", "Cough", "effect/phenotype"))


def test_an_adults_values_outside_their_interval_are_the_findings_they_show():
    kg = vital_kg()
    question = ("A 45-year-old man has a cough. His temperature is 39.2°C (102.6°F), pulse is 112/min, and blood "
                "pressure is 150/95 mm Hg.\nHemoglobin: 13.1 g/dL\nPlatelet count: 90,000/mm^3\nPotassium 3.2 mEq/L\n"
                "Sodium 140 mEq/L")
    found = find_findings(kg, question)
    assert found == ["cough", "temperature is 39.2°C", "pulse is 112/min", "blood pressure is 150/95 mm Hg",
                     "Platelet count: 90,000/mm^3", "Potassium 3.2 mEq/L"]  # haemoglobin and sodium are normal
    assert [named_or_measured(kg, f) for f in found[1:]] == [("P1",), ("P2",), ("P3",), ("P4",), ("P6",)]


def test_values_whose_interval_differs_in_children_are_read_for_adults_only():
    kg = vital_kg()
    infant = ("A 4-month-old boy is brought by his 31-year-old mother. Temperature is 38.9°C, pulse is 150/min, "
              "hemoglobin 10.1 g/dL.")
    assert find_findings(kg, infant) == ["Temperature is 38.9°C"]  # fever is fever at any age
    adult = infant.replace("4-month-old", "40-year-old")
    assert find_findings(kg, adult) == ["Temperature is 38.9°C", "pulse is 150/min", "hemoglobin 10.1 g/dL"]


def test_a_value_without_its_unit_or_in_another_scale_is_not_read():
    kg = vital_kg()
    # the name alone is still a mention; no value is read as a finding
    assert find_findings(kg, "A 50-year-old woman. Platelet count 90. Platelets 90 × 10^3/μL. Pulse 130.") == [
        "Platelet count"]
    assert named_or_measured(kg, "Platelet count: 90") == ()


def test_a_relative_who_brings_the_patient_or_speaks_for_them_puts_nothing_outside_the_patient():
    kg = vital_kg()
    assert find_mentions(kg, "A boy is brought by his mother because of cough.") == ["cough"]
    assert find_mentions(kg, "Her mother reports a cough for 2 days.") == ["cough"]
    assert find_mentions(kg, "His mother has a cough; her brother had fever.") == []


def test_a_finding_stated_as_a_predicate_is_the_finding_its_adjective_and_noun_name():
    kg = kg_with(("P1", "Abdominal distention", "effect/phenotype"), ("P2", "Reduced tendon reflexes", "effect/phenotype"),
                 ("P3", "Mydriasis", "effect/phenotype"), ("P4", "Fever", "effect/phenotype"))
    kg.synonyms = {"P1": ("Distended abdomen",), "P2": ("Decreased tendon reflexes",), "P3": ("Dilated pupils",)}
    text = "The abdomen is mildly distended, tendon reflexes are decreased and fever. Her pupils are not dilated."
    assert find_findings(kg, text) == ["abdomen is mildly distended", "tendon reflexes are decreased", "fever"]
    assert named_or_measured(kg, "abdomen is mildly distended") == ("P1",)
    assert find_findings(kg, "There is no sign that the abdomen is distended.") == []


def reordering_kg():
    kg = kg_with(("P1", "Proximal muscle weakness", "effect/phenotype"), ("P2", "Calf pain", "effect/phenotype"),
                 ("P3", "Pain", "effect/phenotype"), ("P4", "Weakness", "effect/phenotype"),
                 ("P5", "Unsteady gait", "effect/phenotype"), ("P6", "Joint swelling", "effect/phenotype"),
                 ("P7", "Weak pulse", "effect/phenotype"), ("P8", "Increased body weight", "effect/phenotype"),
                 ("P9", "Abnormality of the neck", "effect/phenotype"), ("P10", "Flank pain", "effect/phenotype"),
                 ("HP:0012835", "Left", "effect/phenotype"), ("HP:0012823", "Clinical modifier", "effect/phenotype"),
                 ("HP:0000001", "All", "effect/phenotype"), ("HP:0000118", "Phenotypic abnormality", "effect/phenotype"),
                 ("HP:0012832", "Bilateral", "effect/phenotype"), ("HP:0012833", "Left sided weakness", "effect/phenotype"))
    kg.add_node("P11", "Lower extremity weakness", "effect/phenotype")
    kg.synonyms = {"P8": ("Weight gain",), "P9": ("Deformity of the neck",)}
    for child, parent in [("HP:0000118", "HP:0000001"), ("HP:0012823", "HP:0000001"), ("HP:0012835", "HP:0012823"),
                          ("HP:0012832", "HP:0012823"), ("HP:0012833", "HP:0012823")]:
        kg.add_fact(child, "phenotype_phenotype", parent)
    return kg


def test_a_finding_named_in_another_order_within_a_clause_is_found():
    kg = reordering_kg()
    text = ("She has weakness of the proximal muscles, with severe pain in the left calf. Her gait unsteadiness "
            "worsened. The joints are mildly swollen.")
    assert find_findings(kg, text) == ["weakness of the proximal muscles", "pain in the left calf", "gait unsteadiness",
                                       "joints are mildly swollen"]
    assert [named_or_measured(kg, f) for f in find_findings(kg, text)] == [("P1",), ("P2",), ("P5",), ("P6",)]


def test_a_name_in_another_order_is_not_found_across_a_clause_a_cue_or_a_coordination():
    kg = reordering_kg()
    # a comma, a clause turn and a coordination each stand between the name's words
    assert find_findings(kg, "Pain, mostly in the foot; the calf is normal.") == ["Pain"]
    assert find_findings(kg, "Pain but not in the calf.") == ["Pain"]
    assert find_findings(kg, "Pain in the back and calf.") == ["Pain"]
    # a negation or a relative governs the whole run
    assert find_findings(kg, "No pain in the calf.") == []
    assert find_findings(kg, "Her mother has weakness of the proximal muscles.") == []
    # an adjective shared by a coordination after it, a hyphened word's part, an infinitive
    assert find_findings(kg, "Weak lower extremity and femoral pulses.") == []
    assert find_findings(kg, "He has swan-neck deformities.") == []
    assert find_findings(kg, "She failed to gain weight.") == []
    # each of them found where no such word is next to it
    assert find_findings(kg, "Weak lower extremity. Neck deformities. She tends to gain weight; she did gain weight.") == [
        "Weak lower extremity", "Neck deformities", "gain weight"]


def test_qualifiers_alone_and_runs_saying_no_more_than_their_name_are_not_reordered():
    kg = reordering_kg()
    # "left sided weakness" is a qualifier: "weakness on the left side" is the weakness alone
    assert [named_or_measured(kg, f) for f in find_findings(kg, "Weakness on the left side.")] == [("P4",)]
    # "right flank pain" names no more than "flank pain": the name as written is kept
    assert find_findings(kg, "Right flank pain.") == ["flank pain"]


def test_a_text_names_a_finding_in_another_order_only_whole_outside_the_question_findings():
    """Answers, options and reasoning steps are scanned for names as written; a whole text
    (an option) still maps in another order."""
    kg = reordering_kg()
    assert find_mentions(kg, "Weakness of the proximal muscles") == ["Weakness"]
    assert named_or_measured(kg, "Weakness of the proximal muscles") == ("P1",)
    assert named_or_measured(kg, "Weakness of the proximal muscles and calf pain") == ()


def chemistry_kg():
    names = ["Increased blood urea nitrogen", "Hyponatremia", "Hyperchloremia", "Decreased serum bicarbonate concentration",
             "Elevated erythrocyte sedimentation rate", "Prolonged partial thromboplastin time", "Hypoglycemia",
             "Elevated circulating alkaline phosphatase concentration", "Hypokalemia"]
    return kg_with(*[(f"P{i}", name, "effect/phenotype") for i, name in enumerate(names)])


def test_chemistry_values_outside_their_interval_are_the_findings_they_show():
    kg = chemistry_kg()
    question = ("A 60-year-old man. Serum studies show:\nNa+ 128 mEq/L\nK+ 4.1 mEq/L\nCl-: 110 mEq/L\nHCO3- 15 mEq/L\n"
                "Urea nitrogen 28 mg/dL\nAlkaline phosphatase 450 U/L\nESR 56 mm/h\nPartial thromboplastin time 34 sec\n"
                "Activated partial thromboplastin time (aPTT) 60 sec")
    assert [kg.name(named_or_measured(kg, f)[0]) for f in find_findings(kg, question)] == [
        "Hyponatremia", "Hyperchloremia", "Decreased serum bicarbonate concentration", "Increased blood urea nitrogen",
        "Elevated circulating alkaline phosphatase concentration", "Elevated erythrocyte sedimentation rate",
        "Prolonged partial thromboplastin time"]  # potassium and the first time are normal


def test_values_of_another_specimen_than_blood_are_not_the_bloods_findings():
    kg = chemistry_kg()
    question = ("A 30-year-old woman. Serum\nNa+ 140 mEq/L\nGlucose 40 mg/dL\nUrine\nSodium 45 mEq/L\n"
                "Cerebrospinal fluid analysis shows a glucose concentration of 30 mg/dL. Her potassium is 3.0 mEq/L.")
    assert find_findings(kg, question) == ["Glucose 40 mg/dL", "potassium is 3.0 mEq/L"]
    # a line naming its own value's specimen does not head the lines after it
    pleural = ("A 50-year-old man. The pleural fluid is analyzed, with results shown below:\nSerum protein ratio: 0.8\n"
               "Glucose 30 mg/dL\nWhich is the cause?")
    assert find_findings(kg, pleural) == []


def test_a_grandparents_aunts_or_uncles_conditions_are_not_the_patients():
    kg = vital_kg()
    assert find_mentions(kg, "Her grandmother had anemia and her uncle a cough; she has fever.") == ["fever"]


def test_a_finding_named_before_a_noun_that_makes_it_a_modifier_is_not_found():
    kg = kg_with(("P1", "Neoplasm", "effect/phenotype"), ("P2", "Pain", "effect/phenotype"))
    kg.synonyms = {"P1": ("Tumor",)}
    text = "A mutation of a tumor suppressor gene; tumor markers are normal; despite pain medication she has pain."
    assert find_mentions(kg, text) == ["pain"]
    assert [f.start for f in scan_mentions(kg, text)] == [text.rindex("pain")]
    assert find_mentions(kg, "She has pain. Medications include aspirin.") == ["pain"]
