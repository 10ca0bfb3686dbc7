"""Laboratory values a case report states in words, with a direction ("C1-inhibitor levels
are low", "increased serum troponin T concentration"), read as HPO's finding of the analyte
(docs/quality.md, "Findings the case report states in other forms")."""

import pytest

from tests.phenotype_graphs import findings_named, phenotype_kg


def lab_kg():
    """HPO's names for a few laboratory findings, in the forms HPO gives them."""
    names = {
        "L1": "Decreased circulating C1-esterase inhibitor concentration", "L2": "Increased circulating prolactin concentration",
        "L3": "Reduced C-peptide level", "L4": "Increased circulating troponin T concentration",
        "L5": "Elevated circulating follicle stimulating hormone level", "L6": "Decreased hemoglobin concentration",
        "L7": "Abnormal circulating protein concentration", "L8": "Swelling",
    }  # fmt: skip
    return phenotype_kg(names)


@pytest.mark.parametrize("text, surface, name", [
    ("C1-inhibitor levels are ordered and found to be extremely low.",
     "C1-inhibitor levels are ordered and found to be extremely low", "Decreased circulating C1-esterase inhibitor concentration"),
    ("His serum prolactin level is markedly elevated.", "serum prolactin level is markedly elevated",
     "Increased circulating prolactin concentration"),
    ("Her C-peptide level was found to be decreased.", "C-peptide level was found to be decreased", "Reduced C-peptide level"),
    ("He has an increased serum troponin T concentration.", "increased serum troponin T concentration",
     "Increased circulating troponin T concentration"),
    ("Labs show increased serum follicle-stimulating hormone concentration.", "increased serum follicle-stimulating hormone concentration",
     "Elevated circulating follicle stimulating hormone level"),
    ("She has decreased serum hemoglobin levels.", "decreased serum hemoglobin levels", "Decreased hemoglobin concentration"),
])
def test_a_lab_value_stated_with_a_direction_word_is_hpos_finding_of_its_analyte(text, surface, name):
    assert findings_named(lab_kg(), text) == [(surface, [name])]


@pytest.mark.parametrize("text", [
    "C1-inhibitor levels are ordered.",  # no direction: nothing found yet
    "C1-inhibitor levels are not low.",
    "Her mother's C1-inhibitor levels were low.",
    "Troponin T concentration is normal.",
    "He has an increased serum concentration.",  # no analyte
    "Her sister has prolactin levels that are elevated.",
])
def test_a_lab_value_without_a_direction_or_not_the_patients_is_no_finding(text):
    assert findings_named(lab_kg(), text) == []
