from pathlib import Path

import pytest

from graphs.cache import load_graph
from graphs.kg_dir import Source, build_kg
from graphs.paths import describe
from graphs.primekg import COLUMNS, PrimeKGFormatError, read_primekg
from graphs.progress import Silent
from graphs.store import Fact, Relation

HEADER = ",".join(COLUMNS)
# PrimeKG-style rows: every edge in both directions; "Sodium chloride, hypertonic" is quoted;
# "ACE" names both a protein (0) and a disease (5).
ROWS = """\
protein_protein,ppi,0,1636,gene/protein,ACE,NCBI,1,185,gene/protein,AGTR1,NCBI
protein_protein,ppi,1,185,gene/protein,AGTR1,NCBI,0,1636,gene/protein,ACE,NCBI
drug_protein,target,2,DB00542,drug,Benazepril,DrugBank,0,1636,gene/protein,ACE,NCBI
indication,indication,2,DB00542,drug,Benazepril,DrugBank,3,5148,disease,hypertension,MONDO
contraindication,contraindication,4,DB09153,drug,"Sodium chloride, hypertonic",DrugBank,3,5148,disease,hypertension,MONDO
disease_disease,parent-child,3,5148,disease,hypertension,MONDO,5,9999,disease,ACE,MONDO
disease_protein,associated with,3,5148,disease,hypertension,MONDO,0,1636,gene/protein,ACE,NCBI
protein_protein,ppi,0,1636,gene/protein,ACE,NCBI,0,1636,gene/protein,ACE,NCBI
drug_protein,target,0,1636,gene/protein,ACE,NCBI,2,DB00542,drug,Benazepril,DrugBank
indication,indication,3,5148,disease,hypertension,MONDO,2,DB00542,drug,Benazepril,DrugBank
contraindication,contraindication,3,5148,disease,hypertension,MONDO,4,DB09153,drug,"Sodium chloride, hypertonic",DrugBank
disease_disease,parent-child,5,9999,disease,ACE,MONDO,3,5148,disease,hypertension,MONDO
disease_protein,associated with,0,1636,gene/protein,ACE,NCBI,3,5148,disease,hypertension,MONDO
"""


@pytest.fixture
def kg_csv(tmp_path):
    path = tmp_path / "kg.csv"
    path.write_text(HEADER + "\n" + ROWS)
    return path


def test_nodes_are_keyed_by_index_with_type_and_source(kg_csv):
    kg = read_primekg(kg_csv)
    assert set(kg.graph) == {"0", "1", "2", "3", "4", "5"}
    assert kg.node("4").name == "Sodium chloride, hypertonic"
    assert (kg.node("0").type, kg.node("0").source) == ("gene/protein", "NCBI")
    assert (kg.node("5").type, kg.node("5").source) == ("disease", "MONDO")
    assert set(kg.nodes_named("ACE")) == {"0", "5"}


def test_one_fact_per_relation_and_pair_directed_from_the_relations_head_type(kg_csv):
    kg = read_primekg(kg_csv)
    facts = sorted(kg.facts(), key=str)
    assert facts == sorted([
        Fact("0", "protein_protein", "1", "ppi"),
        Fact("2", "drug_protein", "0", "target"),
        Fact("2", "indication", "3", "indication"),
        Fact("4", "contraindication", "3", "contraindication"),
        Fact("3", "disease_disease", "5", "parent-child"),  # same types: the first row's direction
        Fact("3", "disease_protein", "0", "associated with"),
        Fact("0", "protein_protein", "0", "ppi"),  # a self-interaction, written once
    ], key=str)
    assert kg.facts_between("0", "2") == [Fact("2", "drug_protein", "0", "target")]


# A slice of real PrimeKG facts, in kg.csv's format, written for these tests: Levamlodipine
# is both a target and an enzyme substrate of NOS3 (two facts on one edge) and is
# metabolised by CYP3A4; clobetasol propionate is indicated and contraindicated for
# seborrheic dermatitis; dextroamphetamine targets and is transported by SLC6A3. Rows come
# in both directions, some protein- or disease-first, as in kg.csv.
SLICE = Path(__file__).parents[1] / "fixtures" / "primekg_slice.csv"


@pytest.fixture
def primekg_slice():
    kg = read_primekg(SLICE)
    return kg, {kg.name(n): n for n in kg.graph}


def test_target_and_enzyme_rows_for_one_pair_are_two_facts_with_their_own_labels(primekg_slice):
    kg, id_of = primekg_slice
    drug, nos3, cyp = id_of["Levamlodipine"], id_of["NOS3"], id_of["CYP3A4"]
    assert sorted(kg.facts_between(nos3, drug), key=str) == [
        Fact(drug, "drug_protein", nos3, "enzyme"), Fact(drug, "drug_protein", nos3, "target"),
    ]
    # Written protein-first in the file, read from the drug, and never called a target.
    assert kg.facts_between(cyp, drug) == [Fact(drug, "drug_protein", cyp, "enzyme")]
    amph, slc = id_of["Dextroamphetamine"], id_of["SLC6A3"]
    assert {(f.head, f.label) for f in kg.facts_between(slc, amph)} == {(amph, "target"), (amph, "transporter")}


def test_an_edge_with_two_clinical_relations_keeps_both_from_the_drug(primekg_slice):
    kg, id_of = primekg_slice
    drug, disease = id_of["Clobetasol propionate"], id_of["seborrheic dermatitis"]
    assert sorted(kg.facts_between(disease, drug), key=str) == [
        Fact(drug, "contraindication", disease, "contraindication"), Fact(drug, "indication", disease, "indication"),
    ]
    assert kg.relation_counts() == {
        Relation("drug_protein", "target"): 2, Relation("drug_protein", "enzyme"): 2,
        Relation("drug_protein", "transporter"): 1, Relation("indication", "indication"): 3,
        Relation("contraindication", "contraindication"): 1, Relation("disease_protein", "associated with"): 1,
    }
    assert kg.edge_count == 10  # distinct (head, relation, display_relation, tail) facts


def test_every_fact_of_a_hop_appears_in_the_path_with_its_own_direction(primekg_slice):
    kg, id_of = primekg_slice
    path = describe(kg, (id_of["CYP3A4"], id_of["Levamlodipine"], id_of["NOS3"]))
    assert path["text"] == "CYP3A4 ←enzyme— Levamlodipine —target, enzyme→ NOS3"
    assert [[(f["label"], f["forward"]) for f in hop] for hop in path["hops"]] == [
        [("enzyme", False)], [("target", True), ("enzyme", True)],
    ]


def test_progress_is_reported_in_bytes(kg_csv):
    seen = []

    class Recorder(Silent):
        def task(self, description, total=None):
            seen.append((description, total))
            return lambda done: seen.append(done)

    read_primekg(kg_csv, Recorder())
    assert seen[0] == ("Reading kg.csv", kg_csv.stat().st_size)
    assert seen[-1] == kg_csv.stat().st_size


def _bad(tmp_path, text):
    path = tmp_path / "kg.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"kg\.csv is empty"),
        ("relation,x_index,y_index\n", r"kg\.csv:1: header lacks column\(s\) display_relation, x_id"),
        ("\t".join(COLUMNS) + "\n", r"kg\.csv:1: the header looks tab-separated; PrimeKG's kg\.csv is comma-separated"),
        (HEADER + "\n", r"holds a header but no edges"),
        (HEADER + "\n" + ROWS + "protein_protein,ppi,0,1636,gene/protein,ACE,NCBI,1,185\n",
         r"kg\.csv:15: column 'y_type' is missing: expected 12 columns, found 9"),
        (HEADER + "\n" + ROWS.replace("\n4,DB09153", "\n,DB09153", 1).replace(",4,DB09153", ",,DB09153", 1),
         r"kg\.csv:6: column 'x_index' is empty"),
        (HEADER + "\n" + ROWS.replace("2,DB00542,drug", "two,DB00542,drug", 1),
         r"kg\.csv:4: column 'x_index' is not an integer: 'two'"),
        (HEADER + "\n" + ROWS.replace(",1,185,gene/protein,", ",1,185,,", 1),
         r"kg\.csv:2: column 'y_type' is empty"),
    ],
)
def test_bad_input_names_file_line_and_column(tmp_path, text, message):
    with pytest.raises(PrimeKGFormatError, match=message):
        read_primekg(_bad(tmp_path, text))


def test_line_numbers_count_quoted_line_breaks(tmp_path):
    text = HEADER + "\n" + ROWS.replace('"Sodium chloride, hypertonic"', '"Sodium chloride,\nhypertonic"')
    text += "indication,indication,2,DB00542,drug,Benazepril,DrugBank,,5148,disease,hypertension,MONDO\n"
    with pytest.raises(PrimeKGFormatError, match=r"kg\.csv:17: column 'y_index' is empty"):
        read_primekg(_bad(tmp_path, text))
    with pytest.raises(PrimeKGFormatError, match=r"kg\.csv:3: "):
        read_primekg(_bad(tmp_path, HEADER + "\n" + ROWS[: ROWS.index("\n") + 1] + 'drug_protein,"target\0,x\n'))


def test_build_through_the_kg_directory_reloads_equal(kg_csv, tmp_path, embedder):
    loaded = build_kg(tmp_path / "kg", Source("primekg", kg_csv), embedder, Silent())
    kg, manifest = load_graph(tmp_path / "kg")
    assert manifest.source.kind == "primekg" and manifest.edges == 7 and manifest.nodes == 6
    assert sorted(kg.facts(), key=str) == sorted(loaded.kg.facts(), key=str)
    assert [kg.node(n) for n in sorted(kg.graph)] == [loaded.kg.node(n) for n in sorted(loaded.kg.graph)]
    assert kg.relations == loaded.kg.relations
