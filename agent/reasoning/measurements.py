"""Findings a case report states as a measured value: "temperature is 39.2°C", "pulse is
112/min", "Platelet count: 112,000/mm^3", "Potassium 3.2 mEq/L".

Exam vignettes give vital signs and laboratory values as numbers, not as the names HPO has
for what they show (Fever, Tachycardia, Thrombocytopenia, Hypokalemia), so KG-only
extraction missed them and the evidence for the right diagnosis looked weaker than the
vignette makes it. A value outside the usual adult reference interval (the intervals of the
USMLE laboratory values table, the clinical definitions of fever, tachycardia and
hypertension) is read as the finding of that name, looked up in the graph by name. Read
nothing when unsure: a value with no unit, a count written in another scale ("3.2 × 10^3"),
a value inside the interval, and the intervals that differ in children (vital signs,
haemoglobin, leukocytes, enzymes) for a patient not stated to be an adult.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

from graphs.store import KnowledgeGraph
from graphs.vocabulary import PHENOTYPE

ADULT_AGE = 18  # years


class Rule(NamedTuple):
    """One measure: the words naming it, the units it must be written in, the interval
    outside which it is a finding, the findings' names, and whether the interval holds
    only for adults."""

    names: str  # a regular expression
    units: str  # a regular expression for the unit written after the value
    low: float | None
    high: float | None
    below: str | None  # the finding's name under ``low``
    above: str | None  # over ``high``
    adults_only: bool
    sampled: bool = True  # a blood sample's value, not a vital sign: unread in another specimen's results


_PER_MM3 = r"/\s*(?:mm\^?3|mm³|[µμu]L|cumm)"
_MEQ = r"mE[qQ]/L|mmol/L"
RULES = (
    Rule(r"temperature|temp", r"[°º]\s*C\b", 35.0, 38.0, "Hypothermia", "Fever", False, sampled=False),
    Rule(r"temperature|temp", r"[°º]\s*F\b", 95.0, 100.4, "Hypothermia", "Fever", False, sampled=False),
    Rule(r"pulse|heart rate|pulse rate|HR", r"/\s*min|bpm|(?=[,;]|\s+(?:BP|RR|T|SpO2)\b|$)", 60, 100, "Bradycardia", "Tachycardia", True, sampled=False),
    Rule(r"respirations|respiratory rate|RR", r"/\s*min|(?=[,;]|\s+(?:BP|HR|T|SpO2)\b|$)", None, 20, None, "Tachypnea", True, sampled=False),
    Rule(r"oxygen saturation|O2 saturation|SpO2", r"%", 90, None, "Hypoxemia", None, False, sampled=False),
    Rule(r"h(?:a)?emoglobin|Hb|Hgb", r"g/dL", 12.0, None, "Anemia", None, True),
    Rule(r"platelet count|platelets", _PER_MM3, 150_000, 450_000, "Thrombocytopenia", "Thrombocytosis", False),
    Rule(r"leukocyte count|white blood cell count|WBC count|WBC|leukocytes", _PER_MM3, 4_000, 11_000,
         "Leukopenia", "Leukocytosis", True),
    Rule(r"sodium|Na\+?", _MEQ, 135, 145, "Hyponatremia", "Hypernatremia", False),
    Rule(r"potassium|K\+?", _MEQ, 3.5, 5.0, "Hypokalemia", "Hyperkalemia", False),
    Rule(r"calcium|Ca2\+|Ca\+\+|Ca", r"mg/dL", 8.4, 10.2, "Hypocalcemia", "Hypercalcemia", False),
    Rule(r"magnesium|Mg2\+|Mg", r"mE[qQ]/L|mg/dL", 1.5, None, "Hypomagnesemia", None, False),
    Rule(r"glucose", r"mg/dL", 70, 200, "Hypoglycemia", "Hyperglycemia", False),
    Rule(r"creatinine", r"mg/dL", None, 1.2, None, "Elevated circulating creatinine concentration", True),
    Rule(r"aspartate aminotransferase|AST", r"U/L", None, 40, None,
         "Elevated circulating aspartate aminotransferase concentration", True),
    Rule(r"alanine aminotransferase|ALT", r"U/L", None, 40, None,
         "Elevated circulating alanine aminotransferase concentration", True),
    Rule(r"(?:total )?bilirubin(?: \(total\))?", r"mg/dL", None, 1.2, None, "Hyperbilirubinemia", False),
    Rule(r"albumin", r"g/dL", 3.5, None, "Hypoalbuminemia", None, False),
    Rule(r"mean corpuscular volume|MCV", r"fL|μm3|µm3|um3", 80, 100,
         "Decreased mean corpuscular volume", "Increased mean corpuscular volume", True),
    # Further chemistry, its interval widened where it differs by sex or age (read nothing when unsure)
    Rule(r"(?:blood )?urea nitrogen|BUN", r"mg/dL", None, 20, None, "Increased blood urea nitrogen", False),
    Rule(r"chloride|Cl-?", _MEQ, 95, 107, "Hypochloremia", "Hyperchloremia", False),
    Rule(r"bicarbonate|HCO3-?", _MEQ, 22, None, "Decreased serum bicarbonate concentration", None, False),
    Rule(r"phosphorus|phosphate", r"mg/dL", 3.0, 4.5, "Hypophosphatemia", "Hyperphosphatemia", True),
    Rule(r"uric acid|urate", r"mg/dL", None, 8.2, None, "Hyperuricemia", False),
    Rule(r"alkaline phosphatase|ALP", r"U/L", None, 150, None, "Elevated circulating alkaline phosphatase concentration", True),
    Rule(r"lactate dehydrogenase|LDH", r"U/L", None, 250, None,
         "Increased circulating lactate dehydrogenase concentration", True),
    Rule(r"creatine kinase|creatine phosphokinase|CK|CPK", r"U/L", None, 300, None,
         "Elevated circulating creatine kinase concentration", False),
    Rule(r"amylase", r"U/L", None, 125, None, "Hyperamylasemia", False),
    Rule(r"ammonia", r"[µμu]g/dL", None, 60, None, "Hyperammonemia", True),
    Rule(r"erythrocyte sedimentation rate|ESR", r"mm/h(?:r|our)?", None, 45, None,
         "Elevated erythrocyte sedimentation rate", False),
    Rule(r"thyroid-stimulating hormone|TSH", r"[µμu]U/mL|mU/L", None, 5.0, None,
         "Elevated circulating thyroid-stimulating hormone concentration", True),
    Rule(r"ferritin", r"ng/mL", 10, 400, "Decreased circulating ferritin concentration",
         "Increased circulating ferritin concentration", True),
    Rule(r"prothrombin time|PT", r"s(?:ec(?:onds?)?)?\b", None, 15, None, "Prolonged prothrombin time", False),
    Rule(r"(?:activated )?partial thromboplastin time|a?PTT", r"s(?:ec(?:onds?)?)?\b", None, 40, None,
         "Prolonged partial thromboplastin time", False),
    Rule(r"(?:hemoglobin|Hb)\s?A1c|HbA1c|A1c", r"%", None, 6.4, None, "Elevated hemoglobin A1c", False),
    Rule(r"(?:total )?cholesterol", r"mg/dL", None, 240, None, "Hypercholesterolemia", True),
    Rule(r"triglycerides?", r"mg/dL", None, 200, None, "Hypertriglyceridemia", True),
    Rule(r"P(?:a)?CO2", r"mm\s*Hg", 35, 45, "Hypocapnia", "Hypercapnia", False),
)  # fmt: skip

# A name, then up to a few words ("is", "concentration of", ":"), then the value(s) and unit.
_VALUE = r"(?P<value>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*/\s*(?P<second>\d+))?"
_GAP = r"(?:\s*\([^()\d]{1,12}\))?[^\S\n]*(?::|,)?(?:[^\S\n]*(?:is|was|are|were|of|concentration|level|count|measured|at)\b)*[^\S\n]*:?[^\S\n]*"
_PATTERNS = tuple(
    re.compile(rf"(?<![\w+-])(?P<name>{rule.names})(?!\w){_GAP}{_VALUE}\s*(?:mm\s*Hg\s*)?(?P<unit>{rule.units})", re.IGNORECASE)
    for rule in RULES
)
_BLOOD_PRESSURE = re.compile(
    rf"(?<!\w)(?:blood pressure\b{_GAP}|BP:?\s*)(?P<systolic>\d{{2,3}})\s*/\s*(?P<diastolic>\d{{2,3}})"
    rf"(?:\s*mm\s*Hg|(?=[,;]|\s+(?:HR|RR|T|SpO2)\b|$))", re.IGNORECASE
)
_AGE = re.compile(r"\b(\d{1,3})[- ](year|month|week|day)s?[- ]old\b", re.IGNORECASE)
_FIRST_SENTENCE = re.compile(r"^.*?(?:[.?!](?=\s)|\n|$)", re.DOTALL)


class Measured(NamedTuple):
    """A measured value read as a finding: where it is written and the finding's name."""

    surface: str
    start: int
    end: int
    finding: str


def is_adult(text: str) -> bool:
    """Whether the text's first sentence (the patient's: "A 36-year-old woman…"; a mother's
    age comes later) states an age of at least ``ADULT_AGE`` years."""
    age = _AGE.search(_FIRST_SENTENCE.match(text.strip()).group(0))
    return bool(age) and age.group(2).lower() == "year" and int(age.group(1)) >= ADULT_AGE


def read_measurements(text: str) -> list[Measured]:
    """Every value in ``text`` outside its reference interval, as the finding's name, in order
    of appearance; the intervals of children's values only when the patient is an adult."""
    found = [
        Measured(match.group(0), match.start(), match.end(), finding)
        for pattern, finding_of in _readers(is_adult(text))
        for match in pattern.finditer(text)
        if (finding := finding_of(match))
    ]
    return sorted(found, key=lambda m: m.start)


def measured_nodes(kg: KnowledgeGraph, text: str) -> tuple[str, ...]:
    """The phenotypes a text shows when it is one measurement from end to end, as
    ``read_measurements`` read it in its question (where the patient's age was known)."""
    text = text.strip()
    findings = (finding_of(match) for pattern, finding_of in _readers(adult=True) if (match := pattern.fullmatch(text)))
    name = next((f for f in findings if f), None)
    return tuple(n for n in kg.nodes_named(name) if kg.node(n).type == PHENOTYPE) if name else ()


def _readers(adult: bool) -> list[tuple[re.Pattern, Callable[[re.Match], str | None]]]:
    """(pattern, the finding a match shows) of every measure read for a patient of whom
    ``adult`` is known: the rules, the children's intervals and blood pressure only for adults."""
    readers = [(pattern, partial(_finding, rule)) for rule, pattern in zip(RULES, _PATTERNS) if adult or not rule.adults_only]
    return readers + [(_BLOOD_PRESSURE, _pressure_finding)] if adult else readers


# Words naming the specimen a sentence's or a table's values were measured in: a sodium or a
# glucose of the cerebrospinal fluid, the urine or a pleural aspirate is no finding of the blood.
_SPECIMEN = re.compile(
    r"\b(?P<other>cerebrospinal|CSF|pleural|peritoneal|ascitic|synovial|urine|urinary|urinalysis|aspirate|stool|fluid)\b"
    r"|\b(?:serum|plasma|blood|arterial|venous)\b",
    re.IGNORECASE,
)
_PROSE_SENTENCE_END = re.compile(r"[.?!](?=\s)")


def in_other_specimen(text: str, start: int) -> bool:
    """Whether the value at ``start`` belongs to another specimen than blood: the last
    specimen word since the sentence before it (a table's lines hold no sentence end, so its
    heading counts) names one ("Cerebrospinal fluid (CSF):\nGlucose: 30 mg/dL"). A word on
    another line that holds a value names that value's specimen only ("Serum protein ratio:
    7.0 g/dL" above a pleural fluid's LDH)."""
    since = max((m.end() for m in _PROSE_SENTENCE_END.finditer(text, 0, start)), default=0)
    own_line = text.rfind("\n", 0, start) + 1
    last = None
    for found in _SPECIMEN.finditer(text, since, start):
        line_end = text.find("\n", found.end())
        line = text[max(since, text.rfind("\n", 0, found.start()) + 1) : line_end if line_end >= 0 else len(text)]
        if found.start() >= own_line or not any(c.isdigit() for c in line):
            last = found
    return last is not None and last.group("other") is not None


def _finding(rule: Rule, match: re.Match) -> str | None:
    """The finding's name when the matched value lies outside the rule's interval (and was
    measured in the blood, for a sample's value)."""
    if match.group("second"):
        return None  # two values ("120/80") belong to blood pressure only
    if rule.sampled and in_other_specimen(match.string, match.start()):
        return None
    value = float(match.group("value").replace(",", ""))
    if rule.low is not None and value < rule.low:
        return rule.below
    if rule.high is not None and value > rule.high:
        return rule.above
    return None


def _pressure_finding(match: re.Match) -> str | None:
    systolic, diastolic = int(match.group("systolic")), int(match.group("diastolic"))
    if systolic >= 140 or diastolic >= 90:
        return "Hypertension"
    return "Hypotension" if systolic < 90 else None
