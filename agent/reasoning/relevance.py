"""Whether a graph path explains the question's answer: what the question asks, where each
finding sits in it, and a relevance a user can read for every path.

A path can be true and still explain nothing: "Pulmonary tuberculosis ← Selective IgM
deficiency → Growth delay" holds in the graph, but no clinician would reason through a
rare immunodeficiency the patient shows no sign of. So a path's **relevance** (a number
in [0, 1] stored with its reasons beside the path) is its specificity (``path_weight``:
how much the path says about its end given its start) times what the question makes of it:

* where its first finding sits in the question: the presenting problem counts whole,
  background history ("a history of hypertension, diabetes and asthma") much less, and a
  denied finding ("denies chest pain", "no fever") not at all;
* every disease it passes through must be one the patient's findings point to: a mediator
  counts only when it explains at least ``MEDIATOR_SUPPORT`` of the question's findings
  (or the question names it), not any disease that shares one phenotype;
* a gene counts only where the question is about genes or inheritance.

What a question asks for (a diagnosis, a finding, a drug, a test...) decides which node
types an answer may map to (``wanted_types``): a diagnosis is a disease, not the
same-named phenotype, and a graph with no drugs cannot hold a drug answer at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

from agent.reasoning.mentions import CLAUSE_TURN, NEGATION_WINDOW, is_cue
from graphs.names import normalize
from graphs.store import KnowledgeGraph
from graphs.vocabulary import DISEASE, GENE, PHENOTYPE

# How much a path counts by where its first finding sits in the question.
ROLE_FACTOR = {"presenting": 1.0, "elsewhere": 0.7, "background": 0.3, "denied": 0.0}
ROLE_REASON = {
    "presenting": "from the presenting problem",
    "elsewhere": "from a finding not written as such in the question",
    "background": "from background history",
    "denied": "from a finding the question denies",
}
MEDIATOR_SUPPORT = 3  # question findings (the path's own included) a disease on it must explain to count
# Two findings co-occurring in another disease, even one the findings support, explain the
# answer less than the answer explaining the finding itself (a drug treating a disease that
# has the finding is not discounted: there the disease is the explanation).
MEDIATOR_FACTOR = 0.5

# What the question's last sentence asks for, tried in this order (a question asking for
# the treatment of "this patient's diagnosis" asks for a treatment).
ASKS = (
    ("management", r"next (?:best )?step|manag|treat|therap|drug|medication|pharmaco|prescri|antibiotic|vaccin"
                   r"|interven|surg|operat|procedure|administer|recommend|prevent|prophyla|counsel|advice|dose"),
    ("test", r"\btests?\b|\bstud(?:y|ies)\b|imaging|screen|confirm|evaluat|work-?up|investigation|assay"),
    ("mechanism", r"mechanism|mode of action|acts? by|inhibit|mediat|pathophysiolog|pathogenesis|enzyme|receptor"
                  r"|cell type|structure|nerve|arter|vein|muscle|organism|pathogen|bacteri|virus|infectious agent"
                  r"|\bgene\b|chromosom|mutation|inherit|lobe|region|site|location|lesion|injur|cell|tissue|layer"),
    ("cause", r"\bcause|etiolog|explain|responsible|underl|accounts? for|due to|because|reason|contribut"),
    ("diagnosis", r"diagnos|condition|disease|disorder|syndrome|suffer|has which"),
    ("finding", r"finding|sign\b|symptom|feature|show|reveal|expected|complicat|risk|associated|abnormal|develop"
                r"|present|seen|see\b|found|observ|\blevels?\b|\bvalues?\b|laborator|serum|urine|blood"),
)
# The node types each kind of answer may be, preferred first. A diagnosis is a disease, or
# the phenotype of its name when the graph has no such disease (HPO holds "Aortic
# regurgitation" or "Chronic obstructive pulmonary disease" only as phenotypes).
WANTED = {
    "diagnosis": (DISEASE, PHENOTYPE),
    "cause": (DISEASE, PHENOTYPE),
    "finding": (PHENOTYPE, DISEASE),
    "management": ("drug",),
    "test": (),
    "mechanism": (GENE, "pathway", "biological_process", "molecular_function", "anatomy", "cellular_component"),
}
GENETIC = re.compile(
    r"\bgenes?\b|genetic|mutation|inherit|autosomal|x-linked|chromosom|karyotyp|trisomy|deletion|codon|allele"
    r"|pedigree|consanguin|dna\b|heterozyg|homozyg|carrier|sequencing",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE_END = re.compile(r"[.;?!\n]")
_WORDS = re.compile(r"[A-Za-z0-9]+")
# A cue that what follows, up to the clause's end or a presenting verb, is background.
_BACKGROUND = re.compile(
    r"\b(?:history|hx|pmh|known|diagnosed|medications?|takes|taking|previous(?:ly)?|prior|past|treated for"
    r"|underwent|childhood|years? ago)\b", re.IGNORECASE,
)
# How long the complaint has lasted, right before a "history" cue ("a 3-month history of").
_DURATION = re.compile(
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|several|few)[- ]"
    r"(?:hours?|days?|weeks?|months?|years?)[- ](?:long )?$", re.IGNORECASE,
)
_PRESENTING = re.compile(
    r"\b(?:presents?|presented|presenting|comes?|came|complain\w*|reports?|reported|develop\w*|brought"
    r"|admitted|now|today|currently|shows?|showed|reveals?|revealed|exam\w*|notes?|noticed|found)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class QuestionFrame:
    """What a question asks for, whether it is about genes, and where each question node
    sits in it (``presenting``, ``background``, ``denied`` or ``elsewhere``)."""

    asks: str
    genetic: bool
    roles: dict[str, str]
    findings: frozenset[str]  # question nodes that are the patient's findings (not denied)

    @property
    def wanted(self) -> tuple[str, ...] | None:
        return wanted_types(self.asks)


class Relevance(TypedDict):
    score: float  # in [0, 1]: specificity times the factors the reasons name
    reasons: list[str]


def wanted_types(asks: str) -> tuple[str, ...] | None:
    """The node types an answer to such a question may be, preferred first (empty: no graph
    holds it, as a lab test); None when any may."""
    return WANTED.get(asks)


def asked_for(question: str) -> str:
    """What the question's last sentence asks for (``ASKS``' names, or ``other``)."""
    asking = _asking_sentence(question)
    for name, pattern in ASKS:
        if re.search(pattern, asking, re.IGNORECASE):
            return name
    return "other"


# An asking sentence that wants the one option that does NOT fit ("Which would NOT be expected?",
# "All of the following EXCEPT", "least likely"): the KG's best-supported option is then the
# opposite of the answer, so evidence cannot verify it.
_EXCEPTION = re.compile(r"\b(?:NOT|EXCEPT)\b|\b[Ll]east\b")


def asks_for_exception(question: str) -> bool:
    """Whether the question's asking sentence wants the option that does not fit."""
    return bool(_EXCEPTION.search(_asking_sentence(question)))


def _asking_sentence(question: str) -> str:
    sentences = [s for s in _SENTENCES.split(question.strip()) if s]
    return next((s for s in reversed(sentences) if "?" in s), sentences[-1] if sentences else "")


def finding_role(question: str, surface: str) -> str:
    """Where a mention sits in the question: ``presenting`` if any occurrence is, else
    ``background`` or ``denied``; ``elsewhere`` when the text does not contain it."""
    roles = {_role_at(question, m.start()) for m in re.finditer(re.escape(surface), question, re.IGNORECASE)}
    for role in ("presenting", "background", "denied"):
        if role in roles:
            return role
    return "elsewhere"


def _role_at(text: str, start: int) -> str:
    clause_start = max((m.end() for m in _CLAUSE_END.finditer(text, 0, start)), default=0)
    prefix = text[clause_start:start]
    words = [w.lower() for w in _WORDS.findall(prefix)][-NEGATION_WINDOW - 2 :]  # two more: "by his" mother
    for j in range(len(words) - 1, max(-1, len(words) - 1 - NEGATION_WINDOW), -1):
        if words[j] in CLAUSE_TURN:
            break
        if is_cue(words, j):
            return "denied"
    cues = [c for c in _BACKGROUND.finditer(prefix) if not _presenting_illness(prefix, c)]
    if cues and not _PRESENTING.search(prefix, cues[-1].end()):
        return "background"
    return "presenting"


def _presenting_illness(prefix: str, cue: re.Match) -> bool:
    """Whether a background cue is the history of the present illness: "comes because of a
    3-month history of cough", "presents with a 2-day history of fever" state the presenting
    problem and how long it has lasted; "He has a 10-year history of hypertension" stays
    background (no presenting verb before it)."""
    return bool(_DURATION.search(prefix, 0, cue.start())) and bool(_PRESENTING.search(prefix, 0, cue.start()))


def frame_question(question: str, mappings: list) -> QuestionFrame:
    """The frame of one question, from its text and its question mappings."""
    roles: dict[str, str] = {}
    order = list(ROLE_FACTOR)
    for m in mappings:
        if m["role"] != "question":
            continue
        role = finding_role(question, m["mention"])
        if m["node_id"] not in roles or order.index(role) < order.index(roles[m["node_id"]]):
            roles[m["node_id"]] = role
    findings = frozenset(n for n, r in roles.items() if r != "denied")
    return QuestionFrame(asked_for(question), bool(GENETIC.search(question)), roles, findings)


def factor(kg: KnowledgeGraph, path: tuple[str, ...] | list[str], frame: QuestionFrame) -> tuple[float, list[str]]:
    """What the question makes of a path, apart from its specificity: the product of the
    factors below and the reasons naming them."""
    role = frame.roles.get(path[0], "elsewhere")
    value, reasons = ROLE_FACTOR[role], [ROLE_REASON[role]]
    specificity = kg.specificity
    for before, node, after in zip(path, path[1:], path[2:]):
        kind = kg.node(node).type
        if kind == GENE:
            if not frame.genetic:
                return 0.0, reasons + [f"through the gene {kg.name(node)} in a question not about genes"]
            reasons.append(f"through the gene {kg.name(node)} (the question is about genes)")
        elif kind == DISEASE and not specificity.is_phenotype(node):
            if node in frame.findings:
                reasons.append(f"through {kg.name(node)}, which the question names")
                continue
            if is_form_of(kg, node, path[-1]):
                reasons.append(f"through {kg.name(node)}, a form of {kg.name(path[-1])}")
                continue
            # the path's own finding counts: the path shows how the disease explains it
            explained = len((specificity.explained_by(node) & frame.findings) | {path[0]})
            detour = specificity.is_phenotype(before) and specificity.is_phenotype(after)
            # a detour between two findings needs MEDIATOR_SUPPORT of them; a bridge to a drug
            # or gene (the disease the drug treats), that many or all the question has
            needed = MEDIATOR_SUPPORT if detour else min(MEDIATOR_SUPPORT, max(1, len(frame.findings)))
            if explained < needed:
                return 0.0, reasons + [f"through {kg.name(node)}, which explains {explained} of the question's findings"]
            if detour:
                value *= MEDIATOR_FACTOR  # two findings that co-occur in it, not the answer explaining one
            reasons.append(f"through {kg.name(node)}, which explains {explained} of the question's findings")
    return value, reasons


_FILLER = frozenset("a an the of and or in with to for by on from due type form familial autosomal dominant recessive"
                    " x linked susceptibility to".split())
# Words a name adds that say which form of a concept it is, not that it is another concept.
FORM_WORDS = frozenset("disease syndrome disorder infection positivity malignant hereditary familial type classic"
                       " like form".split())


def is_form_of(kg: KnowledgeGraph, disease: str, target: str) -> bool:
    """Whether a disease is named as a form of the target, by the target's name or one of
    its synonyms ("Cardiomyopathy, familial hypertrophic, 4" of "Hypertrophic
    cardiomyopathy"; "Thrombophilia due to protein S deficiency" of "Reduced protein S
    activity", whose synonym is "Protein S deficiency"): passing through it is reaching the
    answer itself, not a detour through another disease. A name that adds what the answer's
    does not say (a site, a cause, an age: "Malignant peritoneal mesothelioma" of "Mesothelioma,
    malignant", "Staphylococcal necrotizing pneumonia" of "Pneumonia") names another disease,
    which blind reviewers judged no rationale for a patient who need not have it; a name
    saying the disease is due to the answer names the answer's own disease."""
    name = kg.name(disease)
    named, caused = _name_words(name), normalize(name)
    for label in kg.labels(target):
        words = _name_words(label)
        if words and words <= named and (named - words <= FORM_WORDS or caused.endswith(f"due to {normalize(label)}")):
            return True
    return False


def _name_words(name: str) -> frozenset[str]:
    return frozenset(w for w in normalize(name).split() if w not in _FILLER and not w.isdigit())


def mediated(kg: KnowledgeGraph, path: tuple[str, ...] | list[str]) -> bool:
    """Whether a path reaches its end through another disease or a gene (not only through
    annotations, is-a steps and forms of the end itself). A disease before a drug or a gene
    is the bridge, not a detour: a drug explains a finding by treating a disease that has it."""
    clinical_end = kg.node(path[-1]).type in (DISEASE, PHENOTYPE)
    for node in path[1:-1]:
        kind = kg.node(node).type
        if kind == GENE or (clinical_end and kind == DISEASE and not is_form_of(kg, node, path[-1])):
            return True
    return False


def relevance(kg: KnowledgeGraph, path: tuple[str, ...] | list[str], weight: float, frame: QuestionFrame) -> Relevance:
    """A path's relevance: its specificity ``weight`` (``search.path_weight``) times
    ``factor``, with the reasons it is built from."""
    value, reasons = factor(kg, path, frame)
    return Relevance(score=round(weight * value, 4), reasons=[f"specificity {weight:.2f}"] + reasons)


def mean_relevance(paths: list) -> float | None:
    """A sample's relevance: the mean relevance of the paths its reasoning was given."""
    scores = [p["relevance"]["score"] for p in paths if p.get("relevance")]
    return round(sum(scores) / len(scores), 4) if scores else None
