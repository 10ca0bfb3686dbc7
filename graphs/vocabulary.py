"""The names of node types and relations the graph code relies on: PrimeKG's schema, which the
HPO build writes too, and the two HPO terms that head its hierarchy. A leaf module, so the
store, the sources and the phenotype hierarchy can all read it without importing each other."""

PHENOTYPE = "effect/phenotype"
DISEASE = "disease"
GENE = "gene/protein"
DRUG = "drug"

IS_A = "phenotype_phenotype"
DISEASE_PHENOTYPE_POSITIVE = "disease_phenotype_positive"
DISEASE_PHENOTYPE_NEGATIVE = "disease_phenotype_negative"
PHENOTYPE_PROTEIN = "phenotype_protein"
DISEASE_PROTEIN = "disease_protein"

HPO_ROOT = "HP:0000001"
PHENOTYPIC_ABNORMALITY = "HP:0000118"
"""The root's child whose subtree HPOA aspect ``P`` annotations point into; its siblings
head the inheritance, clinical-course, modifier, history, blood-group and frequency terms."""
