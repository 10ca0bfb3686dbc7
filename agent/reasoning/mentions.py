"""KG-only entity extraction: the longest runs of words that name a node of the graph.

Word n-grams of the text are looked up in the graph's name index (names normalised the
same way on both sides, ``graphs.names``), longest first, without overlaps. Matches that
are English function words or too short to be specific are dropped, as are those naming
only qualifiers ("Left", "Acute": they say how a finding presents, not what it is), and
gene symbols must match in their own capitalisation ("CAT" the gene, not "cat"; "IL-4" is
IL4).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from agent.reasoning.measurements import measured_nodes, read_measurements
from graphs.entity_index import Candidate, EntityIndex
from graphs.names import normalize, symbol_form
from graphs.store import KnowledgeGraph
from graphs.vocabulary import GENE, PHENOTYPE

MAX_WORDS = 8
_WORD = re.compile(r"[A-Za-z0-9]+")
# A normalized word that graphs.names.normalize may join to its neighbour ("il" "4": il4).
_LETTERS, _NUMBER = re.compile(r"[a-z]{1,5}"), re.compile(r"\d{1,3}")
_JOINABLE = re.compile(f"{_LETTERS.pattern}|{_NUMBER.pattern}")

# Words that happen to be node names or synonyms in HPO/PrimeKG but say nothing medical.
STOPWORDS = frozenset(
    """a about above after again all also an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here him his how i if in into is it its itself just
    man me more most no nor not now of off on once only or other our out over own patient
    same she should so some such than that the their them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with woman would year years old you your day days week weeks month months history
    shows showed normal following most likely increased decreased may one two three""".split()
)


# Words that put the findings after them, up to the clause's end, outside the patient:
# "no fever", "denies chest pain", "family history of diabetes" (NegEx's idea, in brief).
RELATIVES = frozenset("mother father sister brother grandmother grandfather aunt uncle cousin".split())
NOT_THE_PATIENT = frozenset("no not denies denied without negative absent family".split()) | RELATIVES
# A relative who brings the patient or speaks for them is no cue: "brought by his mother
# because of fever", "her mother reports that she has had diarrhea" are the patient's.
FOR_THE_PATIENT_BEFORE = frozenset("by with".split())
FOR_THE_PATIENT_AFTER = frozenset(
    "because for reports reported states stated says said notes noted mentions mentioned describes described"
    " noticed notices explains explained brings brought".split()
)
NEGATION_WINDOW = 6  # words a cue reaches
_CLAUSE_END = re.compile(r"[.;:?!\n]")
_SENTENCE_END = re.compile(r"[.?!;\n]\s")
CLAUSE_TURN = frozenset("but except however although".split())


class Found(NamedTuple):
    """One run of words naming a node: where it is, and whether a cue puts it outside the
    patient (negated, or a relative's)."""

    surface: str
    start: int  # character offsets in the text
    end: int
    negated: bool


def find_mentions(kg: KnowledgeGraph, text: str) -> list[str]:
    """Surface forms in ``text`` that name a node, in order of appearance, each once; findings
    that are negated or belong to a relative are left out."""
    return _each_once(found.surface for found in scan_mentions(kg, text) if not found.negated)


def _each_once(surfaces: Iterable[str]) -> list[str]:
    """The surfaces in order, each once whatever its case (the first spelling kept)."""
    first: dict[str, str] = {}
    for surface in surfaces:
        first.setdefault(surface.lower(), surface)
    return list(first.values())


def scan_mentions(kg: KnowledgeGraph, text: str, reordered: bool = False) -> list[Found]:
    """Every longest run of words naming a node, in order of appearance (repeats included),
    each marked when a negation or relative cue governs it; with ``reordered``, also the runs
    naming a finding in another order (``reordered_nodes``: "weakness of the proximal
    muscles"), each in place of the names it holds when it names another node than they do
    ("pain in the leg" for "pain"; "right flank pain" stays "flank pain")."""
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    negated = [_not_the_patient(text, words, i) for i in range(len(words))]
    named = _longest_runs(text, words, negated, _runs_that_may_name(kg, text, words), lambda s: _is_specific(kg, s))
    if reordered:
        named = _with_reordered(kg, text, words, negated, named)
    return [
        Found(text[words[i][1] : words[i + n - 1][2]], words[i][1], words[i + n - 1][2], negated[i])
        for i, n in sorted(named)
    ]


# Nouns that make the finding named before them a modifier of something else: "tumor
# suppressor gene", "tumor markers", "pain medication", "seizure prophylaxis" say nothing of
# what the patient has.
NOT_THE_FINDING = frozenset(
    """suppressor suppressors marker markers medication medications medicine medicines syrup reducer reducers
    killer killers prophylaxis vaccine vaccines vaccination screening clinic specialist reliever relievers""".split()
)
# What a patient responds to or is treated for is no finding of theirs: "eyes opening to pain",
# "withdraws from pain", "sensation to pain" test a response to a stimulus; "oxycodone for pain",
# "monitoring of his pain", "to control his pain" say what care is for, not which pain the
# patient has; nor do "pain management", "pain control", "pain scores" (CARE_NOUNS after
# it). A name is no finding when the word before it (past "the", "his", "of"...) is a
# response word with "to", "from" or "on" (RESPONSE_WORDS), or a care word (CARE_WORDS); "for"
# is a care word only when a treatment word stands before it in its clause (TREATMENT_WORDS:
# "takes ibuprofen for the pain", not "comes to the physician for pain in his back"). Only for
# the names in CARED_FOR: a drug "for hypertension" still says the patient has hypertension.
RESPONSE_WORDS = frozenset(
    """open opens opening opened response responses respond responds responding responsive reaction react reacts
    withdraw withdraws withdrawing withdrawal withdrew localize localizes localizing localise localises localising
    grimace grimaces grimacing sensation sensitivity sensitive moan moans moaning""".split()
)
CARE_WORDS = frozenset(
    """control controls controlled controlling relieve relieves relieved relieving monitor monitoring monitored
    manage manages managed managing assist treat treating""".split()
)  # not "evaluation": "comes for evaluation of pain" is the patient's pain
TREATMENT_WORDS = frozenset(
    """take takes took taken taking use uses used using medication medications drug drugs needed prescribed given
    giving receive receives received receiving required requires switching analgesic analgesics""".split()
)
# A sense a sensation noun after it names ("pain and temperature sensation") is tested, not felt.
SENSE_NOUNS = frozenset("sensation sensations sense perception".split())
SENSE_PARTNERS = frozenset("temperature touch vibration vibratory proprioception".split())
CARE_NOUNS = frozenset("management control relief scale scales score scores".split())
CARED_FOR = frozenset({"pain", "pains"})
PAIN_WORDS = CARED_FOR | {"painful"}
_OBJECT_GLUE = frozenset("the his her their its a an of with patient patients s".split())


def _longest_runs(
    text: str, words: list[tuple[str, int, int]], negated: list[bool], may: Callable[[int, int], bool],
    names: Callable[[str], object],
) -> list[tuple[int, int]]:
    """(first word, length) of the longest runs, without overlaps, that ``may`` name and
    ``names`` finds a node for, each within a sentence and all governed by a cue or none."""
    taken = [False] * len(words)
    # word k is followed, in the same phrase, by a noun it then modifies (NOT_THE_FINDING)
    modifies = [next_word.lower() in NOT_THE_FINDING and not text[end:start].strip()
                for (_, _, end), (next_word, start, _) in zip(words, words[1:])] + [False]
    found: list[tuple[int, int]] = []
    for n in range(min(MAX_WORDS, len(words)), 0, -1):
        for i in range(len(words) - n + 1):
            if not may(i, n) or any(taken[i : i + n]) or any(negated[i : i + n]) != negated[i]:
                continue
            if _negated_by_prefix(text, words, i):
                continue  # "non-productive cough" is no productive cough (the cough alone is found)
            if n > 1 and _SENTENCE_END.search(text, words[i][2], words[i + n - 1][1]):
                continue  # a name never runs across sentences ("absent. Patellar reflexes")
            if modifies[i + n - 1]:
                continue  # "tumor suppressor gene"
            if n == 1 and _responded_to_or_cared_for(text, words, i):
                continue  # "eyes opening to pain", "oxycodone for pain"
            if names(text[words[i][1] : words[i + n - 1][2]]):
                taken[i : i + n] = [True] * n
                found.append((i, n))
    return found


def _responded_to_or_cared_for(text: str, words: list[tuple[str, int, int]], i: int) -> bool:
    """Whether word ``i`` names what the patient responds to or what care is for, not a
    finding of theirs (``RESPONSE_WORDS``, ``CARE_WORDS``)."""
    if words[i][0].lower() not in CARED_FOR:
        return False
    if i + 1 < len(words) and words[i + 1][0].lower() in CARE_NOUNS and not text[words[i][2] : words[i + 1][1]].strip():
        return True
    if _names_a_sense(text, words, i):
        return True
    j = i - 1
    while j >= 0 and words[j][0].lower() in _OBJECT_GLUE and not _CLAUSE_END.search(text, words[j][2], words[j + 1][1]):
        j -= 1
    if j < 0 or _CLAUSE_END.search(text, words[j][2], words[j + 1][1]):
        return False
    before = words[j][0].lower()
    if before in ("to", "from", "on"):
        return j > 0 and words[j - 1][0].lower() in RESPONSE_WORDS
    if before == "for":
        for k in range(j - 1, -1, -1):
            if _CLAUSE_END.search(text, words[k][2], words[k + 1][1]):
                return False
            if words[k][0].lower() in TREATMENT_WORDS:
                return True
        return False
    return before in CARE_WORDS


def _names_a_sense(text: str, words: list[tuple[str, int, int]], i: int) -> bool:
    """Whether pain word ``i`` is the sense a sensation noun after it names ("pain sensation",
    "loss of pain and temperature sensation"), within its clause: a sense tested, no pain."""
    after = []
    for k in range(i + 1, min(i + 4, len(words))):
        if _CLAUSE_END.search(text, words[k - 1][2], words[k][1]):
            break
        after.append(words[k][0].lower())
    return bool(after) and (after[0] in SENSE_NOUNS or len(after) == 3 and after[0] in ("and", "or")
                            and after[1] in SENSE_PARTNERS and after[2] in SENSE_NOUNS)


def _with_reordered(
    kg: KnowledgeGraph, text: str, words: list[tuple[str, int, int]], negated: list[bool], named: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The runs ``named`` with the longest runs naming a finding in another order, which may
    hold named runs whole (taking their place) but only when they name another node."""
    may_reorder = _runs_that_may_reorder(kg, text, words)
    run_of = [None] * len(words)  # the named run each word is in
    for j, m in named:
        run_of[j : j + m] = [(j, m)] * m

    def whole(i: int, n: int) -> bool:  # holds no named run in part
        first, last = run_of[i], run_of[i + n - 1]
        return (first is None or first[0] == i) and (last is None or sum(last) == i + n)

    kept = _longest_runs(text, words, negated, lambda i, n: may_reorder(i, n) and whole(i, n),
                         lambda s: reordered_nodes(kg, s))
    surfaces = {(i, n): text[words[i][1] : words[i + n - 1][2]] for i, n in named + kept}
    swallowed: set[tuple[int, int]] = set()
    for i, n in list(kept):
        held = [(j, m) for j, m in named if i <= j and j + m <= i + n]
        if held and set(reordered_nodes(kg, surfaces[i, n])) <= {x for run in held for x in nodes_named(kg, surfaces[run])}:
            kept.remove((i, n))  # "right flank pain" says no more than "flank pain"
        else:
            swallowed.update(held)
    return [run for run in named if run not in swallowed] + kept


def _runs_that_may_name(kg: KnowledgeGraph, text: str, words: list[tuple[str, int, int]]) -> Callable[[int, int], bool]:
    """Whether the run of ``n`` words from word ``i`` may name a node: False only for runs that
    cannot, so that most of a text's runs are passed over with a few list lookups instead of a
    lookup of their normalized form each.

    A run of two words or more whose gaps hold only ASCII spaces and punctuation (no apostrophe:
    a possessive is dropped, not spaced) normalizes as its words joined by spaces do
    (``graphs.names.normalize``): each word on its own, then a short letter word joined to the
    number after it ("IL 4": il4). So the run's first normalized word is that of its first two
    words, and a word that normalizes to a word of no name (``KnowledgeGraph.name_words``) and
    is not one ``normalize`` may join stays in the run's form, as do two such words side by
    side. A run whose first word opens no name or synonym (``KnowledgeGraph.name_openings``),
    holding such a word, or two words side by side that no name holds so
    (``KnowledgeGraph.name_word_pairs``) names no node, unless it opens with a direction word
    (``nodes_named`` rewords those, and reads a measured value's analyte out of its specimen
    and measure words: any two words may follow each other there). Single words (an adjective names its noun's finding) and
    other runs are looked up.
    """
    openings, vocabulary = kg.name_openings, kg.name_words
    directions = {w for same in SAME_DIRECTION for w in same}
    forms = [normalize(word) for word, _, _ in words]
    pairs = kg.name_word_pairs
    # among the first k gaps: those not plain; those between two words no name has side by side
    odd_gaps, odd_pairs, foreign = [0], [0], [0]  # foreign: words of no name among the first k
    after = [*forms[2:], "", ""]
    for (first, _, end), (second, start, _), form, following, then in zip(words, words[1:], forms, forms[1:], after):
        gap = text[end:start]
        odd_gaps.append(odd_gaps[-1] + (not gap.isascii() or "'" in gap))
        odd_pairs.append(odd_pairs[-1] + (
            first.lower() not in directions and second.lower() not in directions
            and _apart(form.rpartition(" ")[2], following.split(" ", 2), then, pairs)))
    for (word, _, _), form in zip(words, forms):  # a direction word is reworded, so never foreign
        foreign.append(foreign[-1] + (word.lower() not in directions and any(
            w not in vocabulary and not _JOINABLE.fullmatch(w) for w in form.split())))
    opens = [
        word.lower() in directions or _first_word(form, following) in openings
        for (word, _, _), form, following in zip(words, forms, forms[1:])
    ]
    directed = [word.lower() in directions for word, _, _ in words]  # "low serum prolactin level": any pairs
    return lambda i, n: n == 1 or odd_gaps[i + n - 1] > odd_gaps[i] or (
        opens[i] and foreign[i + n] == foreign[i] and (directed[i] or odd_pairs[i + n - 1] == odd_pairs[i]))


# A finding's name written in another order within one clause: "weakness of the proximal
# muscles" is Proximal muscle weakness, "Bowel sounds are hyperactive" Hyperactive bowel
# sounds, "pain in the left calf" Calf pain. The run's content words are the name's, in any
# order; function words (REORDER_GLUE), adverbs no name holds ("mildly") and, when the name
# has no side, the side are not content. An adjective stands for its noun where a name says
# the noun ("weak": weakness), a "-ness" noun for its adjective ("gait unsteadiness":
# Unsteady gait). Two content words at least (one word is a name as written), at most
# REORDER_WORDS words, opening and ending with a content word, never across a comma or a
# clause break, nor holding a coordination, a clause turn or a negation (REORDER_BREAKS):
# "pain, mostly in the foot" and "pain in the back and foot" are no foot pain.
REORDER_WORDS = 8
REORDER_GLUE = frozenset(
    """a an the his her their its of in on at over from to within into along both is are was were be been being
    has have had appear appeared seem seemed become became noted present seen mild moderate severe marked slight
    significant very""".split()
)
SIDES = frozenset("left right bilateral".split())
REORDER_BREAKS = frozenset(
    "and or but nor while after before because although however except than versus no not without".split()
)
RUN_PREPOSITIONS = frozenset("to of in on at over around along within across".split())
IRREGULAR_PARTS = {"swollen": "swelling", "painful": "pain"}  # an adjective whose noun is not "-ness"

# A finding at a site written in a case report's words is HPO's finding of that site
# (``reordered_nodes``, after the words as written): "pain in her belly", "left lower quadrant
# pain", "substernal pain" Abdominal / Chest pain, "pain in the right lower extremity" Lower limb
# pain, "mass in the left upper quadrant" Abdominal mass. Each lay or anatomical word for
# a site is read as the word HPO's names use for it (SITE_WORDS: HPO's word, then the words a
# case report uses), then, where no name says where on the site, the words saying it
# (WHERE_WORDS: "upper", "lower", "side") are left out. Some findings at a site HPO names by
# other words (LAY_FINDINGS: HPO's words, then the words that stand for them): "pain in her
# head" Headache, "pain during sexual intercourse" Dyspareunia, "pain with urination" Dysuria,
# "enlarged lymph nodes" Lymphadenopathy, "lymph nodes in the neck" Cervical lymphadenopathy,
# "left-sided weakness" Hemiparesis.
SITE_WORDS = {
    "abdominal": "abdomen belly tummy quadrant periumbilical umbilicus umbilical suprapubic hypogastric hypogastrium"
                 " rlq ruq llq luq",
    "chest": "substernal retrosternal sternum sternal rib",
    "limb": "extremity",
    "upper limb": "arm",
    "leg": "thigh calf calve shin",
    "testicular": "testicle testis",
    "axillary": "armpit axilla",
}  # fmt: skip
_HPO_SITE = {lay: hpo for hpo, lays in SITE_WORDS.items() for lay in lays.split()}
# What brings a pain on, after "pain" ("pain with urination", "pain during intercourse", "pain
# when urinating"): glue there only ("red blood cells with increased pallor" is no Polycythemia).
PAIN_LINKS = frozenset("with during when upon on".split())
POSITIONS = frozenset("upper lower middle mid central".split())  # adjectives: never a run's last word
WHERE_WORDS = POSITIONS | frozenset("side region area aspect part portion".split())
# Words that, before "of", say which part of the site after it: "the back of his knee".
PART_WORDS = WHERE_WORDS | {"back", "front"}
LAY_FINDINGS = (
    ("headache", "head pain"),
    ("dyspareunia", "sexual intercourse pain"), ("dyspareunia", "vaginal intercourse pain"), ("dyspareunia", "intercourse pain"),
    ("dysuria", "urination pain"), ("dysuria", "urinating pain"), ("dysuria", "urinate pain"), ("dysuria", "micturition pain"),
    ("odynophagia", "swallowing pain"), ("odynophagia", "swallow pain"),
    ("lymphadenopathy", "enlarged lymph node"), ("lymphadenopathy", "lymph node enlargement"),
    ("lymphadenopathy", "palpable lymph node"), ("lymphadenopathy", "swollen lymph node"),
    # "neck" is "cervical" only for lymph nodes: a "cervical" tumor, polyp or motion tenderness is the uterine cervix's
    ("cervical lymphadenopathy", "neck lymphadenopathy"), ("inguinal lymphadenopathy", "groin lymphadenopathy"),
    # a weakness of one side ("left-sided weakness") is HPO's "Weakness of one side of body"; one of a
    # part of that side has the part's name ("right-sided facial weakness" holds "facial weakness")
    ("hemiparesis", "sided weakness"),
)  # fmt: skip
_LAY_FINDINGS = tuple((hpo, frozenset(lay.split())) for hpo, lay in LAY_FINDINGS)
LAY_VOCABULARY = frozenset(_HPO_SITE) | WHERE_WORDS | frozenset(w for _, lay in _LAY_FINDINGS for w in lay)
_CLAUSE_GAP = re.compile(r"[^\sA-Za-z0-9'’-]")


def reordered_nodes(kg: KnowledgeGraph, text: str) -> tuple[str, ...]:
    """The phenotypes (qualifiers aside) a run names in another order: its content words
    are a name's (see ``REORDER_WORDS``), its adjectives read as their nouns if need be."""
    words = _WORD.findall(text)
    if not 2 <= len(words) <= REORDER_WORDS or _CLAUSE_GAP.search(text):
        return ()
    forms = [normalize(w) for w in words]
    if any(w.lower() in REORDER_BREAKS and not _joins_positions(forms, k) for k, w in enumerate(words)):
        return ()
    glue = _glue(kg, forms)
    if glue[0] or glue[-1]:
        return ()
    content = [w for form, g in zip(forms, glue) if not g for w in form.split()]
    sideless = [w for w in content if w not in SIDES]
    keys = [content, [_other_part(kg, w) for w in content], sideless, [_other_part(kg, w) for w in sideless]]
    for key in [key for key in keys if len(key) >= 2] + [hpo for key in keys[2:] for hpo in in_hpo_words(key)]:
        found = tuple(n for n in kg.reworded_index.get(frozenset(key), ())
                      if kg.node(n).type == PHENOTYPE and n not in kg.qualifiers)
        if found:
            return found
    return ()


def in_hpo_words(words: list[str]) -> list[frozenset[str]]:
    """A finding's words (normalized) in those HPO's names use (``SITE_WORDS``,
    ``LAY_FINDINGS``), then without the words saying where on the site (``WHERE_WORDS``):
    the keys to look up after the words as written, of two words at least unless a lay
    finding's word stands for two ("pain with urination": Dysuria)."""
    found = set(words)
    for hpo, lay_words in _LAY_FINDINGS:
        if lay_words <= found:
            found = (found - lay_words) | set(hpo.split())
    lay = bool(found - set(words))  # a lay finding's HPO word stands for two words: one may be a key
    found = {hpo for w in found for hpo in _HPO_SITE.get(w, w).split()}
    keys = [frozenset(found)] if found != set(words) else []
    if found - WHERE_WORDS < found:
        keys.append(frozenset(found - WHERE_WORDS))
    return [key for key in keys if len(key) >= 2 or lay and key]


def _other_part(kg: KnowledgeGraph, word: str) -> str:
    """The noun of an adjective or the adjective of a "-ness" noun where a name has it
    ("weak" weakness, "unsteadiness" unsteady, "swollen" swelling), else the word."""
    if word in IRREGULAR_PARTS:
        return IRREGULAR_PARTS[word]
    other = word[:-4] if word.endswith("ness") else word + "ness"
    other = other[:-1] + "y" if other.endswith("i") else other  # "unsteadi(ness)": unsteady
    return other if other in kg.name_words else word


def _glue(kg: KnowledgeGraph, forms: list[str]) -> list[bool]:
    """Which of a run's words (normalized) say nothing a finding's name says (``_is_glue``,
    ``PAIN_LINKS`` after a pain)."""
    return [_is_glue(kg, form) or form in PAIN_LINKS and k > 0 and forms[k - 1] in PAIN_WORDS or _joins_positions(forms, k)
            for k, form in enumerate(forms)]


def _joins_positions(forms: list[str], k: int) -> bool:
    """Whether word ``k`` (of normalized ``forms``) is the "and" of "upper and lower": the two
    positions together are the whole site ("weakness of the upper and lower extremities" is
    Limb muscle weakness), a run's glue, no coordination of two findings."""
    return forms[k] == "and" and 0 < k < len(forms) - 1 and {forms[k - 1], forms[k + 1]} == {"upper", "lower"}


def _is_glue(kg: KnowledgeGraph, form: str) -> bool:
    """Whether a word's normalized form says nothing a finding's name says: a function word or
    an adverb no name holds ("mildly")."""
    return form in REORDER_GLUE or form.endswith("ly") and form not in kg.name_words and form not in LAY_VOCABULARY


def _runs_that_may_reorder(kg: KnowledgeGraph, text: str, words: list[tuple[str, int, int]]) -> Callable[[int, int], bool]:
    """Whether the run of ``n`` words from word ``i`` may name a finding in another order
    (``reordered_nodes``): False for runs that cannot (a word of no name, a break, glue at
    an end), that cut a hyphened word, that follow "to" (what the patient "failed to gain",
    not what they have) or whose opening adjective may be shared by a coordination after it
    ("weak lower extremity and femoral pulses"; not an item of a list after a comma:
    "infections, enlarged lymph nodes, and fevers"), or that end on a side or on a part of
    what follows ("pain at the back of his knee", PART_WORDS), with a few list lookups each."""
    vocabulary = kg.name_words
    forms = [normalize(word) for word, _, _ in words]
    glue = _glue(kg, forms)
    known = [g or bool(form) and all(w in vocabulary or w in LAY_VOCABULARY or _other_part(kg, w) in vocabulary
                                     for w in form.split())
             for g, form in zip(glue, forms)]
    lowered = [word.lower() for word, _, _ in words]
    broken = [w in REORDER_BREAKS and not _joins_positions(forms, k) for k, w in enumerate(lowered)]  # a break word
    gaps = [bool(_CLAUSE_GAP.search(text, end, start)) for (_, _, end), (_, start, _) in zip(words, words[1:])]
    shared = [w in PREDICATES or _other_part(kg, w).endswith(("ness", "ing")) for w in lowered]
    hyphened = [text[end:start] == "-" for (_, _, end), (_, start, _) in zip(words, words[1:])] + [False]
    # word i follows an infinitive's "to" ("failed to gain weight"), not "due to"
    infinitive = [False] + [w == "to" and (k == 0 or lowered[k - 1] != "due") for k, w in enumerate(lowered)]

    def may_reorder(i: int, n: int) -> bool:
        last = i + n - 1
        if not 2 <= n <= REORDER_WORDS or glue[i] or glue[last] or broken[i] or infinitive[i]:
            return False
        if i and hyphened[i - 1] or hyphened[last]:
            return False  # part of a hyphened word: "swan-neck deformities" is no neck deformity
        if not all(known[i : last + 1]) or any(broken[i : last + 1]) or any(gaps[i:last]):
            return False
        if lowered[last] in SIDES | POSITIONS or last + 1 < len(words) and lowered[last + 1] == "of" and lowered[last] in PART_WORDS:
            return False  # "pain at the back (of his knee)" is no back pain, "the left (hand)" no site
        coordinated = last + 1 < len(words) and words[last + 1][0].lower() in ("and", "or")
        # an item of a list after a comma has its own adjective ("infections, enlarged lymph nodes, and fevers")
        listed = i > 0 and text[words[i - 1][2] : words[i][1]].strip() == ","
        # a run whose noun a preposition follows ends on what the coordination adds to: "decreased
        # sensation to pain (and temperature)" is the adjective's with its noun
        headed = any(w in RUN_PREPOSITIONS for w in lowered[i + 1 : last])
        return not (coordinated and shared[i] and not listed and not headed)

    return may_reorder


def _apart(last: str, following: list[str], then: str, pairs: frozenset[tuple[str, str]]) -> bool:
    """Whether a plain run's normalized form keeps ``last`` (a word's form's last word) and the
    next word's first, ``following[0]``, side by side, neither joined to a number nor a number
    joined to it, and no name holds them so. ``then``: the form of the word after the next."""
    head = following[0]
    successor = following[1] if len(following) > 1 else then.partition(" ")[0]
    joined = (_NUMBER.fullmatch(last) or _NUMBER.fullmatch(head)
              or _LETTERS.fullmatch(head) and _NUMBER.fullmatch(successor))
    return not joined and (last, head) not in pairs


def _first_word(form: str, following: str) -> str:
    """The first word of a plain run's normalized form, from its first two words' forms: the
    first, joined to a number after it if it is a short letter word ("il" "4": il4)."""
    first, _, rest = form.partition(" ")
    joined = not rest and _LETTERS.fullmatch(first) and _NUMBER.fullmatch(following.partition(" ")[0])
    return first + following.partition(" ")[0] if joined else first


def find_findings(kg: KnowledgeGraph, question: str) -> list[str]:
    """A question's mentions (``find_mentions``), its measured values outside their
    reference intervals ("pulse is 112/min": ``agent.reasoning.measurements``) and its
    findings stated as a predicate ("the abdomen is distended": ``predicated_findings``)
    whose finding the graph names, and the first of two coordinated sites with the finding
    after the second ("back and neck pain": ``coordinated_nodes``), in order of appearance,
    each once; a name inside such a phrase ("Platelet count: 90,000/mm3" holds no "platelet
    count" finding) is the phrase."""
    phrases = [(m.start, m.end, m.surface) for m in read_measurements(question) if measured_nodes(kg, m.surface)]
    phrases += [(start, end, surface) for start, end, surface in predicated_findings(kg, question)
                if not any(s <= start < e or start <= s < end for s, e, _ in phrases)]
    found = [(start, surface) for start, _, surface in phrases] + [
        (f.start, f.surface) for f in scan_mentions(kg, question, reordered=True)
        if not f.negated and not any(s <= f.start < e for s, e, _ in phrases)
    ]
    found += [(start, surface) for start, surface in (_coordinated_site(question, start, surface) for start, surface in found)
              if surface and coordinated_nodes(kg, surface) and not _governed(question, start)]
    found.sort()
    return _each_once(surface for k, (start, surface) in enumerate(found)
                      if not _said_more_by(kg, question, start, surface, [s for _, s in found[:k]]))


# A site coordinated with a finding's site shares the finding: "back and neck pain" is Back
# pain as well as Neck pain, "axillary and inguinal lymphadenopathy" Axillary lymphadenopathy
# too. Only one word before "and", written as a name writes it (no plural: "swelling of her
# hands and joint pain" is no hand pain) and after no article or possessive (a noun's object:
# "swelling of the knee and ankle pain"), and only where it with the finding's other words is
# a name as written ("pain in his legs and general weakness" holds no leg weakness).
_SITE_BEFORE_AND = re.compile(r"\b([A-Za-z]+) and $")
_OWNERS = frozenset("the a an his her their its my your our".split())


def _coordinated_site(text: str, start: int, surface: str) -> tuple[int, str]:
    """The phrase from a site before "and" to the end of the finding at ``start`` ("back and
    neck pain" for "neck pain"), with its start; (start, "") where there is none."""
    before = _SITE_BEFORE_AND.search(text, max(0, start - 30), start)
    if not before or len(surface.split()) < 2 or normalize(before.group(1)) != before.group(1).lower():
        return start, ""
    preceding = _WORD.findall(text, max(0, before.start() - 20), before.start())
    if preceding and preceding[-1].lower() in _OWNERS:
        return start, ""
    return before.start(), text[before.start() : start + len(surface)]


def coordinated_nodes(kg: KnowledgeGraph, text: str) -> tuple[str, ...]:
    """The phenotypes the first site of a coordination names with the finding after the
    second ("back and neck pain": Back pain), when the second names one too. For a question's
    findings only: an answer "Back and neck pain" is not Back pain."""
    match = re.fullmatch(r"([A-Za-z]+) and [A-Za-z]+ (.+)", text.strip())
    if not match or not nodes_named(kg, text.strip().partition(" and ")[2]):
        return ()
    return tuple(n for n in nodes_named(kg, f"{match.group(1)} {match.group(2)}")
                 if kg.node(n).type == PHENOTYPE and n not in kg.qualifiers)


# After a pain, words that say where it is: "pain in her vagina" is a pain of its own.
_PLACED = re.compile(r"\s+(?:in|of|over|on|at|around|along|within|across)\b", re.IGNORECASE)


def _said_more_by(kg: KnowledgeGraph, text: str, start: int, surface: str, before: list[str]) -> bool:
    """Whether ``surface`` (at ``start`` in ``text``) is a bare pain ("The pain radiates to his
    back", "the cause of this patient's pain") after a finding of the question that names a
    kind of pain ("substernal pain": Chest pain, "pain in her head": Headache): it is that
    pain, and as Pain it would only lead to kinds of pain the patient does not have. A pain
    said to be somewhere ("pain in her vagina") or before any kind of pain is its own."""
    if normalize(surface) not in CARED_FOR or _PLACED.match(text, start + len(surface)):
        return False
    general = set(nodes_named(kg, surface))
    others = [other for other in before if normalize(other) not in CARED_FOR]
    return any(set(normalize(other).split()) & PAIN_WORDS for other in others) or any(
        general & (set(kg.specificity.ancestors(n)) - {n}) for other in others for n in named_or_measured(kg, other))


def named_or_measured(kg: KnowledgeGraph, text: str) -> tuple[str, ...]:
    """The nodes a mention names (``nodes_named``), or the finding it measures when it is a
    measured value ("Potassium 2.9 mEq/L": Hypokalemia) or states as a predicate ("the
    abdomen is distended": Abdominal distention)."""
    return nodes_named(kg, text) or measured_nodes(kg, text) or predicated_nodes(kg, text) or reordered_nodes(kg, text)


# A finding a case report states as a predicate of a body part or measure: "the abdomen is
# mildly distended", "deep tendon reflexes are decreased", "her pupils are dilated". Read as
# the adjective before the noun ("distended abdomen", "decreased deep tendon reflexes"),
# which is how HPO names or a synonym say it; an adverb ending in -ly, or another adjective
# and "and" ("the abdomen is firm and distended"), may stand between.
PREDICATES = ("enlarged dilated swollen tender distended absent decreased increased elevated reduced diminished"
              " low high palpable dry cold erythematous edematous weak thickened prolonged").split()
_PREDICATED = re.compile(
    rf"\b(?P<noun>(?:[a-z0-9][a-z0-9-]* ){{0,2}}[a-z0-9][a-z0-9-]*) (?:is|are|was|were|appears?|seems?)"
    rf" (?:(?:[a-z]+ and )?found to be )?(?:[a-z]+ly )?(?:[a-z]+ and )?"
    rf"(?P<adjective>{'|'.join(PREDICATES)})\b",
    re.IGNORECASE,
)


def predicated_findings(kg: KnowledgeGraph, text: str) -> list[tuple[int, int, str]]:
    """Where ``text`` states a finding as a predicate the graph names (``predicated_nodes``),
    as (start, end, surface), leaving out those a negation or relative cue governs."""
    found = []
    for match in _PREDICATED.finditer(text):
        words = [w.lower() for w in _WORD.findall(match.group("noun"))]
        while words and words[0] in STOPWORDS:
            words.pop(0)  # "the abdomen": the article is no part of the finding
        if not words:
            continue
        start = match.start("noun") + match.group("noun").lower().index(words[0])
        surface = text[start : match.end()]
        if predicated_nodes(kg, surface) and not _governed(text, start):
            found.append((start, match.end(), surface))
    return found


def predicated_nodes(kg: KnowledgeGraph, text: str) -> tuple[str, ...]:
    """The phenotypes a predicate phrase names: "deep tendon reflexes are decreased" is
    "decreased deep tendon reflexes", else the adjective with the noun's last words
    ("absent pulses" for "right pedal pulses are absent")."""
    match = _PREDICATED.fullmatch(text.strip())
    if not match:
        return ()
    words = match.group("noun").split()
    for k in range(len(words)):
        named = tuple(n for n in nodes_named(kg, f"{match.group('adjective')} {' '.join(words[k:])}")
                      if kg.node(n).type == PHENOTYPE and n not in kg.qualifiers)
        if named:
            return named
    return ()


def _governed(text: str, start: int) -> bool:
    """Whether a negation or relative cue governs the word at ``start`` from within its clause."""
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text, 0, start + 1)]
    return bool(words) and _not_the_patient(text, words, len(words) - 1)


def _negated_by_prefix(text: str, words: list[tuple[str, int, int]], i: int) -> bool:
    """Whether word ``i`` is the stem of a "non-" word ("non-productive", "non tender"): a run
    opening there names the opposite of what the patient has, while a run opening at "non"
    itself is a name that holds it ("Non-small cell lung carcinoma") and is looked up."""
    return i > 0 and words[i - 1][0].lower() == "non" and text[words[i - 1][2] : words[i][1]] in ("-", " ", "")


def _not_the_patient(text: str, words: list[tuple[str, int, int]], i: int) -> bool:
    """Whether a negation or relative cue governs word ``i`` from within its clause."""
    for j in range(i - 1, max(-1, i - 1 - NEGATION_WINDOW), -1):
        if _CLAUSE_END.search(text, words[j][2], words[j + 1][1]) or words[j][0].lower() in CLAUSE_TURN:
            return False
        if words[j][0].lower() in NOT_THE_PATIENT and is_cue([w.lower() for w, _, _ in words[max(0, j - 2) : j + 2]], min(j, 2)):
            return True
    return False


def is_cue(words: list[str], j: int) -> bool:
    """Whether lower-case word ``j`` puts the findings after it outside the patient: a
    negation, or a relative other than one who brings the patient or speaks for them
    (``FOR_THE_PATIENT_BEFORE``, ``FOR_THE_PATIENT_AFTER``)."""
    word = words[j]
    if word not in NOT_THE_PATIENT:
        return False
    if word not in RELATIVES:
        return True
    before = words[j - 2] if j >= 2 and words[j - 1] in ("his", "her", "the", "their") else words[j - 1] if j else ""
    after = words[j + 1] if j + 1 < len(words) else ""
    return before not in FOR_THE_PATIENT_BEFORE and after not in FOR_THE_PATIENT_AFTER


def exact_or_nearest(kg: KnowledgeGraph, index: EntityIndex, texts: list[str], k: int) -> list[list[Candidate]]:
    """Embedding neighbours for the texts that name no node exactly; none for those that do.

    An exact (normalised) name is the mention's meaning; its embedding neighbours would
    only compete with it ("IL-4" lands next to IL6), and skipping them saves the query.
    """
    unmatched = [t for t in texts if not named_or_measured(kg, t)]
    nearest = dict(zip(unmatched, index.search(unmatched, k=k))) if unmatched else {}
    return [nearest.get(t, []) for t in texts]


# An adjective a case report writes for a finding, and the endings of the finding's noun:
# "somnolent" somnolence, "tachycardic" tachycardia, "cyanotic" cyanosis, "hypotensive"
# hypotension, "jaundiced" jaundice, "confused" confusion. Not "-ated" ("aspirated" is a
# procedure's), "-philic" (a stain's: "basophilic stippling" is no basophil count) nor
# "-tonic" (a solution's: "hypertonic saline").
NOUN_ENDINGS = (
    ("eic", "ea"), ("etic", "esis"), ("otic", "osis"), ("ctic", "xia"), ("ic", "ia"), ("ic", "y"),
    ("ent", "ence"), ("sive", "sion"), ("used", "usion"), ("iced", "ice"), ("tous", ""),
)  # fmt: skip
NOT_A_FINDING_ADJECTIVE = ("philic", "tonic")
# Adjectives whose noun is another word, or whose ending the rules above leave alone ("-ated",
# "-ed": "aspirated" is a procedure's, "depressed" a fracture's or an ST segment's too).
IRREGULAR_NOUNS = {
    "febrile": "fever", "pale": "pallor", "obese": "obesity", "fatigued": "fatigue", "drowsy": "drowsiness",
    "agitated": "agitation", "disoriented": "disorientation", "dehydrated": "dehydration",
    "hypopigmented": "hypopigmentation",
}  # fmt: skip


# Words a finding's name opens with that say the same direction: "elevated TSH" is HPO's
# "High TSH", "raised creatinine" its "Elevated creatinine".
SAME_DIRECTION = (("elevated", "increased", "high", "raised"), ("decreased", "low", "reduced", "diminished"))
# A laboratory value's finding in the case report's words is HPO's in its own: "low serum
# prolactin levels" is "Reduced circulating prolactin concentration", "decreased C-peptide
# level" "Reduced C-peptide level". The analyte is what the words hold after the specimen
# before it (SPECIMEN_WORDS) and the measure after it (MEASURE_WORDS), looked up in the forms
# HPO's names take (ANALYTE_FORMS, after the direction word) and, where HPO names the analyte
# by another word, by that (ANALYTE_WORDS: HPO's words, then the case report's).
SPECIMEN_WORDS = frozenset("serum plasma blood circulating".split())
MEASURE_WORDS = frozenset("level concentration".split())  # normalized: plurals are singular
ANALYTE_FORMS = ("{}", "{} level", "{} concentration", "circulating {} level", "circulating {} concentration",
                 "serum {}", "serum {} level")
ANALYTE_WORDS = {"c1 esterase inhibitor": ("c1 inhibitor",)}
_ANALYTE_NAME = {lay: hpo for hpo, lays in ANALYTE_WORDS.items() for lay in lays}
_DIRECTED_TEXT = re.compile(r"[A-Za-z0-9 -]+")


def nodes_named(kg: KnowledgeGraph, text: str) -> tuple[str, ...]:
    """The nodes a text names: by name or synonym; a finding opened by a direction in
    another word for it ("elevated TSH": High TSH); for one adjective, the phenotypes its
    noun names ("somnolent": Somnolence). Only phenotypes: a finding's wording, and a
    disease or gene spelled like a derived noun would be a word-alike."""
    named = kg.nodes_named(text)
    if named:
        return named
    first, _, rest = text.strip().partition(" ")
    if rest:
        same = next((words for words in SAME_DIRECTION if first.lower() in words), ())
        if not same or not _DIRECTED_TEXT.fullmatch(text):
            return ()
        for word in same:
            for said in (rest, *(form.format(analyte) for analyte in _analytes(rest) for form in ANALYTE_FORMS)):
                found = tuple(n for n in kg.nodes_named(f"{word} {said}") if kg.node(n).type == PHENOTYPE)
                if found:
                    return found
        return ()
    if not text.isalpha():
        return ()
    word = text.lower()
    if word.endswith(NOT_A_FINDING_ADJECTIVE):
        return ()
    nouns = [IRREGULAR_NOUNS[word]] if word in IRREGULAR_NOUNS else [
        word[: -len(ending)] + noun for ending, noun in NOUN_ENDINGS if word.endswith(ending) and len(word) > len(ending) + 3
    ]
    for noun in nouns:
        found = tuple(n for n in kg.nodes_named(noun) if kg.node(n).type == PHENOTYPE)
        if found:
            return found
    return ()


def _analytes(measured: str) -> list[str]:
    """What a measured value's words ("serum C1-inhibitor levels") name as its analyte
    ("c1 inhibitor", HPO's "c1 esterase inhibitor"), when a specimen or measure word was there
    to leave out; none otherwise (the words as written are looked up as they are)."""
    words = normalize(measured).split()
    analyte = words[1:] if words and words[0] in SPECIMEN_WORDS else words
    analyte = analyte[:-1] if analyte and analyte[-1] in MEASURE_WORDS else analyte
    if not analyte or analyte == words:
        return []
    said = " ".join(analyte)
    return [said, _ANALYTE_NAME[said]] if said in _ANALYTE_NAME else [said]


def _is_specific(kg: KnowledgeGraph, surface: str) -> bool:
    if not nodes_named(kg, surface):
        return False
    words = surface.lower().split()
    if all(w in STOPWORDS or w.isdigit() for w in _WORD.findall(surface.lower())):
        return False
    ids = mention_nodes(kg, surface)
    if len(words) == 1 and len(surface) < 3:
        # Two characters name a node only as a symbol with a digit written in its own case: a
        # gene ("F8"), a heart sound ("S4"), never "f8" or "s4"
        return any(c.isdigit() for c in surface) and any(surface in kg.labels(i) for i in ids)
    return bool(ids)


def mention_nodes(kg: KnowledgeGraph, surface: str) -> tuple[str, ...]:
    """The nodes a mention can stand for, most connected first: those named so, qualifiers
    excepted, gene symbols only in their own capitalisation."""
    ids = [i for i in nodes_named(kg, surface) if i not in kg.qualifiers and _matches_case(kg, i, surface)]
    return tuple(sorted(ids, key=lambda i: -kg.degree(i)))


def _matches_case(kg: KnowledgeGraph, node_id: str, surface: str) -> bool:
    """Gene symbols are only recognised in their own capitalisation."""
    if kg.graph.nodes[node_id]["type"] != GENE:
        return True
    return symbol_form(surface) in {symbol_form(label) for label in kg.labels(node_id)}
