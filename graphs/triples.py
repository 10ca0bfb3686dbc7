"""Generic triples: ``head, relation, tail[, head_type, tail_type]`` rows in TSV or CSV.

The delimiter is sniffed and a header row is recognised by its column names, so
hand-written files and exports from other tools load as they are. Nodes are keyed by
``type:name`` when types are given (the same name may denote nodes of two types), else by
name; every malformed row is reported with file, line and column.
"""

from __future__ import annotations

import csv
from pathlib import Path

from graphs.store import KnowledgeGraph

COLUMNS = ("head", "relation", "tail", "head_type", "tail_type")
UNTYPED = "entity"


class TriplesFormatError(ValueError):
    pass


def read_triples(path: Path) -> KnowledgeGraph:
    with open(path, newline="", encoding="utf-8") as f:
        sample = f.read(64 * 1024)
        if not sample.strip():
            raise TriplesFormatError(f"{path} is empty")
        f.seek(0)
        delimiter = _delimiter(path, sample)
        rows = csv.reader(f, delimiter=delimiter)
        first = next(rows)
        columns, data_start = _columns(path, first)
        kg = KnowledgeGraph()
        if data_start == 1:
            _add_row(kg, path, 1, first, columns)
        for line_no, row in enumerate(rows, start=2):
            if row and any(cell.strip() for cell in row):
                _add_row(kg, path, line_no, row, columns)
    if not len(kg):
        raise TriplesFormatError(f"{path} holds a header but no triples")
    return kg


def _delimiter(path: Path, sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample.splitlines()[0], delimiters="\t,;|").delimiter
    except csv.Error:
        raise TriplesFormatError(
            f"{path}:1: cannot tell the delimiter; use tab- or comma-separated columns "
            f"({', '.join(COLUMNS[:3])}[, head_type, tail_type])"
        ) from None


def _columns(path: Path, first: list[str]) -> tuple[dict[str, int], int]:
    """Column positions, and 2 if the first row is a header (data starts on line 2) else 1."""
    names = [c.strip().lower() for c in first]
    if {"head", "relation", "tail"} <= set(names):
        return {c: names.index(c) for c in COLUMNS if c in names}, 2
    if any(n in COLUMNS for n in names):
        missing = [c for c in COLUMNS[:3] if c not in names]
        raise TriplesFormatError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
    if len(first) not in (3, 5):
        raise TriplesFormatError(
            f"{path}:1: expected 3 or 5 columns (head, relation, tail[, head_type, tail_type]), "
            f"found {len(first)}"
        )
    return {c: i for i, c in enumerate(COLUMNS[: len(first)])}, 1


def _add_row(kg: KnowledgeGraph, path: Path, line_no: int, row: list[str], columns: dict[str, int]) -> None:
    if len(row) <= max(columns.values()):
        raise TriplesFormatError(
            f"{path}:{line_no}: expected {max(columns.values()) + 1} columns, found {len(row)}"
        )
    cell = {name: row[i].strip() for name, i in columns.items()}
    for name in ("head", "relation", "tail"):
        if not cell[name]:
            raise TriplesFormatError(f"{path}:{line_no}: column {name!r} is empty")
    head = _node(kg, cell["head"], cell.get("head_type") or UNTYPED)
    tail = _node(kg, cell["tail"], cell.get("tail_type") or UNTYPED)
    kg.add_fact(head, cell["relation"], tail)


def _node(kg: KnowledgeGraph, name: str, type_: str) -> str:
    node_id = name if type_ == UNTYPED else f"{type_}:{name}"
    if node_id not in kg:
        kg.add_node(node_id, name, type_, source="triples")
    return node_id
