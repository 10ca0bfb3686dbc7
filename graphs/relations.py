"""How relations read: display labels, which fact end is the head, and which labels are clinical.

PrimeKG gives each row a ``display_relation`` (its ``relation`` column is coarse: every
drug–protein row is ``drug_protein``, whether the protein is the drug's target, enzyme,
carrier or transporter), so a PrimeKG fact keeps the label its row gives. ``DISPLAY`` is
the label for sources that give none (HPO builds use PrimeKG's relation names, so their
paths read the same way); ``drug_protein`` has no single label and reads as itself.
"""

from __future__ import annotations

DISPLAY = {
    "anatomy_anatomy": "parent-child",
    "anatomy_protein_absent": "expression absent",
    "anatomy_protein_present": "expression present",
    "bioprocess_bioprocess": "parent-child",
    "bioprocess_protein": "interacts with",
    "cellcomp_cellcomp": "parent-child",
    "cellcomp_protein": "interacts with",
    "contraindication": "contraindication",
    "disease_disease": "parent-child",
    "disease_phenotype_negative": "phenotype absent",
    "disease_phenotype_positive": "phenotype present",
    "disease_protein": "associated with",
    "drug_drug": "synergistic interaction",
    "drug_effect": "side effect",
    "exposure_bioprocess": "interacts with",
    "exposure_cellcomp": "interacts with",
    "exposure_disease": "linked to",
    "exposure_exposure": "parent-child",
    "exposure_molfunc": "interacts with",
    "exposure_protein": "interacts with",
    "indication": "indication",
    "molfunc_molfunc": "parent-child",
    "molfunc_protein": "interacts with",
    "off-label use": "off-label use",
    "pathway_pathway": "parent-child",
    "pathway_protein": "interacts with",
    "phenotype_phenotype": "parent-child",
    "phenotype_protein": "associated with",
    "protein_protein": "ppi",
}

# PrimeKG writes every edge twice, once from each end. For relations between two node
# types the fact is read from the type its relation name puts first (a drug is indicated
# for a disease, not the reverse), whichever of the two rows came first in the file.
HEAD_TYPE = {
    "drug_protein": "drug",
    "drug_effect": "drug",
    "indication": "drug",
    "contraindication": "drug",
    "off-label use": "drug",
    "disease_protein": "disease",
    "disease_phenotype_positive": "disease",
    "disease_phenotype_negative": "disease",
    "phenotype_protein": "effect/phenotype",
    "anatomy_protein_present": "anatomy",
    "anatomy_protein_absent": "anatomy",
    "bioprocess_protein": "biological_process",
    "cellcomp_protein": "cellular_component",
    "molfunc_protein": "molecular_function",
    "pathway_protein": "pathway",
    "exposure_disease": "exposure",
    "exposure_protein": "exposure",
    "exposure_bioprocess": "exposure",
    "exposure_cellcomp": "exposure",
    "exposure_molfunc": "exposure",
}

# Labels that say little about a clinical question: hierarchy, protein interactions,
# tissue expression, pathway membership. A path hop whose facts are all generic costs
# GENERIC_HOP_COST (in the same unit as a hub: log2 of 1 + degree) when paths are ranked.
GENERIC_LABELS = frozenset({
    "parent-child", "ppi", "interacts with", "expression present", "expression absent",
    "synergistic interaction",
})
GENERIC_HOP_COST = 3.0


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


# PrimeKG's display labels by their letters, so that ``OFF_LABEL_USE`` reads "off-label use".
_KNOWN_LABELS = {_letters(label): label for label in [*DISPLAY.values(), "target", "enzyme", "carrier", "transporter"]}


def display(relation: str) -> str:
    """The label shown when the source gives none: PrimeKG's for its relation names and for
    its display labels however they are cased or joined (``OFF_LABEL_USE``); other relations
    read as themselves, underscores as spaces, an all-capitals name in lower case."""
    label = DISPLAY.get(relation) or _KNOWN_LABELS.get(_letters(relation))
    if label is not None:
        return label
    text = relation.replace("_", " ")
    return text.lower() if text.isupper() else text


def hop_cost(labels) -> float:
    """What a hop adds to a path's cost: nothing when any of its facts is clinical."""
    return GENERIC_HOP_COST if all(label in GENERIC_LABELS for label in labels) else 0.0


# -- how reasoning words a relation ---------------------------------------------------------
# One row per way of stating a relation in prose: the phrases (a regular expression, matched
# on whole words, case-insensitive), the display labels of the facts that back the statement,
# and those that deny it. A step grounds against this table (``agent.reasoning.grounding``); a phrase
# said under a negation ("does not present with") is backed by the denying labels and denied
# by the backing ones. A row with no labels names no relation ("suggests", "points to"): any
# fact joining the two entities backs it, or one a chain implies (``graphs.entailment``); a
# link only through a gene or another disease does not. Earlier rows win where phrases
# overlap ("contraindicated" before "indicated").
TREATS = frozenset({"indication", "off-label use"})
PROTEIN_LINKS = frozenset({"ppi", "interacts with", "synergistic interaction", "target", "enzyme", "transporter", "carrier"})

RELATION_WORDING: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    # phrases                                                         backed by               denied by
    (r"contraindicat\w*|should be avoided|must be avoided|avoided in",  frozenset({"contraindication"}), TREATS),
    (r"(?:used )?off-label(?: use)?(?: for)?",                         frozenset({"off-label use"}), frozenset({"contraindication"})),
    (r"indicated (?:for|in)|treat\w*|therap\w*|drug of choice|first-line|used (?:to treat|for|in)|"
     r"manag\w*|cures?|prescribed|given (?:for|in|to)|effective (?:for|against|in)|relieves?",
                                                                       TREATS, frozenset({"contraindication"})),
    (r"side effects?|adverse (?:effects?|reactions?|events?)|toxicit\w*|(?:drug-)?induced?|can cause",
                                                                       frozenset({"side effect"}), frozenset()),
    (r"present\w* with|manifest\w* (?:as|with)|features? of|signs? of|symptoms? of|characteri[sz]\w*(?: by)?|"
     r"typical of|hallmark of|seen in|found in|present in|occurs? in|common in|findings? (?:of|in)|"
     r"presents? as|shows?|has|have",
                                                                       frozenset({"phenotype present"}), frozenset({"phenotype absent"})),
    (r"(?:caused by |due to |results? from )?(?:mutations?|variants?|defects?) (?:in|of)|gene",
                                                                       frozenset({"associated with"}), frozenset()),
    (r"causes?|caused by|leads? to|results? in|produces?",             frozenset({"phenotype present", "side effect"}), frozenset({"phenotype absent"})),
    (r"(?:kind|type|form|subtype|variant|subclass|category|example) of|more specific form of|classified as|is an? form",
                                                                       frozenset({"parent-child"}), frozenset()),
    (r"acts? on|targets?|inhibit\w*|blocks?|agonist\w*|antagonist\w*|binds?(?: to)?",
                                                                       frozenset({"target"}), frozenset()),
    (r"metaboli[sz]ed by|substrate of",                                frozenset({"enzyme"}), frozenset()),
    (r"transported by",                                                frozenset({"transporter"}), frozenset()),
    (r"carried by",                                                    frozenset({"carrier"}), frozenset()),
    (r"expressed in|expression in",                                    frozenset({"expression present"}), frozenset({"expression absent"})),
    (r"interacts? with|interaction",                                   PROTEIN_LINKS, frozenset()),
    (r"associated with|association|linked to|links?|related to|suggest\w*|points? to|consistent with|"
     r"compatible with|indicates|indicative of|explains?|supports?|due to|because of|in favou?r of|fits?|"
     r"implicat\w*|raises?",                                           frozenset(), frozenset()),
)

# Labels that state an absence or a harm: a positive wording that names no relation is
# denied, not backed, by a fact carrying only these.
DENYING_LABELS = frozenset({"phenotype absent", "expression absent", "contraindication"})
