"""Human-readable labels for PrimeKG's relation names (its ``display_relation`` column).

Sources that carry their own display labels (PrimeKG's CSV) override these; HPO builds use
the same relation names as PrimeKG, so their paths read the same way.
"""

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
    "drug_protein": "target",
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


def display(relation: str) -> str:
    """The label shown in paths and reasoning; unknown relations read as themselves."""
    return DISPLAY.get(relation, relation.replace("_", " "))
