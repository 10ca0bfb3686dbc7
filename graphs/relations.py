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
