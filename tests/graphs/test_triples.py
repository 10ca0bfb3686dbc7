import pytest

from graphs.triples import TriplesFormatError, read_triples


def write(tmp_path, text, name="kg.tsv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_typed_tsv_with_header(tmp_path):
    kg = read_triples(write(tmp_path, "head\trelation\ttail\thead_type\ttail_type\nmetformin\tindication\tdiabetes\tdrug\tdisease\n"))
    assert kg.node("drug:metformin").type == "drug"
    (fact,) = kg.facts()
    assert (fact.head, fact.relation, fact.tail) == ("drug:metformin", "indication", "disease:diabetes")


def test_headerless_csv_is_sniffed(tmp_path):
    kg = read_triples(write(tmp_path, "aspirin,indication,pain\naspirin,side effect,bleeding\n", "kg.csv"))
    assert set(kg.graph) == {"aspirin", "pain", "bleeding"}
    assert kg.edge_count == 2


def test_header_columns_may_come_in_any_order(tmp_path):
    kg = read_triples(write(tmp_path, "tail,head,relation\npain,aspirin,indication\n", "kg.csv"))
    (fact,) = kg.facts()
    assert (fact.head, fact.tail) == ("aspirin", "pain")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("head\trelation\nA\tB\n", "header lacks column(s) tail"),
        ("head\trelation\ttail\nA\tr\tB\nC\tr\n", "kg.tsv:3: expected 3 columns, found 2"),
        ("head\trelation\ttail\nA\t\tB\n", "kg.tsv:2: column 'relation' is empty"),
        ("a b c\n", "cannot tell the delimiter"),
        ("head\trelation\ttail\n", "no triples"),
    ],
)
def test_bad_files_name_file_line_and_column(tmp_path, text, message):
    with pytest.raises(TriplesFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_triples(write(tmp_path, text))
