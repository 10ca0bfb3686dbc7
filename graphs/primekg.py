"""PrimeKG's ``kg.csv``: ~8.1M comma-separated rows, every undirected edge written twice.

Columns: relation, display_relation, x_index, x_id, x_type, x_name, x_source, y_index,
y_id, y_type, y_name, y_source. Nodes are keyed by PrimeKG's ``x_index`` (as a string):
``x_source:x_id`` is not unique in PrimeKG (an id can recur under another type) and names
certainly are not. A relation is keyed by (``relation``, ``display_relation``): the coarse
``drug_protein`` rows say ``target``, ``enzyme``, ``carrier`` or ``transporter``, and a drug
can be target and enzyme substrate of one protein, two facts on one edge. Since each edge
appears once in each direction, one fact is kept per unordered node pair and keyed
relation, directed from the node type the relation name puts first (``graphs.relations.
HEAD_TYPE``: drug → disease, drug → protein); same-type relations keep the first row's.

The file is streamed with the csv module (names may be quoted and hold commas); rows are
collected as integer columns, deduplicated with numpy and bulk-loaded into the graph,
which keeps a full PrimeKG build within a couple of minutes. Malformed input raises
``PrimeKGFormatError`` naming file, line and column.
"""

from __future__ import annotations

import csv
import os
from array import array
from itertools import islice
from pathlib import Path

import numpy as np

from graphs.progress import Progress
from graphs.relations import HEAD_TYPE, display
from graphs.store import KnowledgeGraph, Relation, gc_paused

COLUMNS = (
    "relation", "display_relation",
    "x_index", "x_id", "x_type", "x_name", "x_source",
    "y_index", "y_id", "y_type", "y_name", "y_source",
)
CHUNK_ROWS = 200_000  # rows between progress updates


class PrimeKGFormatError(ValueError):
    pass


def read_primekg(path: Path, progress: Progress | None = None) -> KnowledgeGraph:
    path = Path(path)
    total_bytes = os.path.getsize(path)
    update = progress.task("Reading kg.csv", total_bytes) if progress is not None else None
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise PrimeKGFormatError(f"{path} is empty")
            col = _columns(path, header)
            with gc_paused():
                nodes, heads, tails, rels, relations = _read_rows(path, reader, col, f.buffer, update)
        except csv.Error as exc:
            raise PrimeKGFormatError(f"{path}:{reader.line_num}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise PrimeKGFormatError(f"{path}: not UTF-8 text ({exc})") from None
    if update is not None:
        update(total_bytes)
    if not heads:
        raise PrimeKGFormatError(f"{path} holds a header but no edges")
    return _build(nodes, heads, tails, rels, relations)


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    names = [c.strip().lstrip("\ufeff").lower() for c in header]
    if len(names) == 1 and "\t" in names[0]:
        raise PrimeKGFormatError(
            f"{path}:1: the header looks tab-separated; PrimeKG's kg.csv is comma-separated"
        )
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise PrimeKGFormatError(
            f"{path}:1: header lacks column(s) {', '.join(missing)} "
            f"(PrimeKG's kg.csv has {', '.join(COLUMNS)})"
        )
    return {c: names.index(c) for c in COLUMNS} | {"width": len(names)}


def _read_rows(path, reader, col, raw, update):
    """Integer columns of all rows: node rows of both ends and relation numbers."""
    width = col["width"]
    i_rel, i_disp = col["relation"], col["display_relation"]
    xi, yi = col["x_index"], col["y_index"]
    x_cols = tuple(col[f"x_{c}"] for c in ("index", "id", "type", "name", "source"))
    y_cols = tuple(col[f"y_{c}"] for c in ("index", "id", "type", "name", "source"))
    name_of = {i: c for c, i in col.items() if c != "width"}

    row_of: dict[str, int] = {}  # x_index as written → node row
    canonical: dict[int, int] = {}  # x_index as an integer → node row
    nodes: list[tuple[str, str, str, str]] = []  # id, name, type, source
    rel_of: dict[tuple[str, str], int] = {}  # (relation, display_relation) as written → number
    relations: list[Relation] = []
    heads, tails, rels = array("i"), array("i"), array("h")

    def new_node(row: list[str], cols: tuple[int, ...]) -> int:
        index_col, id_col, type_col, name_col, source_col = cols
        for c in (index_col, type_col):
            if not row[c].strip():
                raise _RowError(name_of[c], "is empty")
        text = row[index_col].strip()
        try:
            number = int(text)
        except ValueError:
            raise _RowError(name_of[index_col], f"is not an integer: {text!r}") from None
        n = canonical.get(number)
        if n is None:
            n = canonical[number] = len(nodes)
            name = row[name_col].strip() or row[id_col].strip() or text
            nodes.append((str(number), name, row[type_col].strip(), row[source_col].strip()))
        row_of[row[index_col]] = n
        return n

    def new_relation(row: list[str]) -> int:
        name = row[i_rel].strip()
        if not name:
            raise _RowError("relation", "is empty")
        relation = Relation(name, row[i_disp].strip() or display(name))
        r = rel_of.get(relation)
        if r is None:
            if len(relations) >= 32767:
                raise _RowError("relation", "has more than 32,767 distinct (relation, display_relation) pairs")
            r = rel_of[relation] = len(relations)
            relations.append(relation)
        rel_of[(row[i_rel], row[i_disp])] = r
        return r

    rows_before = 0
    while True:
        chunk = list(islice(reader, CHUNK_ROWS))
        if not chunk:
            break
        row: list[str] = []
        try:
            for row in chunk:
                if len(row) != width:
                    if not row:
                        continue  # a blank line
                    raise _RowError(
                        COLUMNS[min(len(row), len(COLUMNS) - 1)],
                        f"is missing: expected {width} columns, found {len(row)} "
                        "(a truncated or malformed row)",
                    )
                h = row_of.get(row[xi])
                if h is None:
                    h = new_node(row, x_cols)
                t = row_of.get(row[yi])
                if t is None:
                    t = new_node(row, y_cols)
                r = rel_of.get((row[i_rel], row[i_disp]))
                if r is None:
                    r = new_relation(row)
                heads.append(h)
                tails.append(t)
                rels.append(r)
        except _RowError as exc:
            ordinal = rows_before + next(i for i, c in enumerate(chunk) if c is row)
            line = _line_of(path, ordinal)
            raise PrimeKGFormatError(f"{path}:{line}: column {exc.column!r} {exc.problem}") from None
        rows_before += len(chunk)
        if update is not None:
            update(raw.tell())
    return nodes, heads, tails, rels, relations


class _RowError(Exception):
    def __init__(self, column: str, problem: str) -> None:
        self.column, self.problem = column, problem


def _line_of(path: Path, ordinal: int) -> int:
    """The line on which data row ``ordinal`` (0-based, after the header) ends."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        for _ in islice(reader, ordinal + 2):
            pass
        return reader.line_num


def _build(nodes, heads, tails, rels, relations: list[Relation]) -> KnowledgeGraph:
    h = np.frombuffer(heads, dtype=np.int32)
    t = np.frombuffer(tails, dtype=np.int32)
    r = np.frombuffer(rels, dtype=np.int16)
    h, t = _canonical_direction(nodes, h, t, r, relations)
    low = np.minimum(h, t).astype(np.int64)
    high = np.maximum(h, t).astype(np.int64)
    key = (low * len(nodes) + high) * len(relations) + r
    _, first = np.unique(key, return_index=True)
    first.sort()  # keep the file's order
    kg = KnowledgeGraph()
    for node_id, name, type_, source in nodes:
        kg.add_node(node_id, name, type_, source)
    kg.add_fact_columns([n[0] for n in nodes], h[first].tolist(), t[first].tolist(), relations, r[first].tolist())
    return kg


def _canonical_direction(nodes, h: np.ndarray, t: np.ndarray, r: np.ndarray, relations: list[Relation]):
    """Heads and tails with each row of a typed relation turned to start at its head type."""
    type_ids: dict[str, int] = {}
    node_type = np.array([type_ids.setdefault(n[2], len(type_ids)) for n in nodes], dtype=np.int32)
    head_type = np.array([type_ids.get(HEAD_TYPE.get(rel.name, ""), -1) for rel in relations], dtype=np.int32)
    wanted = head_type[r]
    swap = (wanted >= 0) & (node_type[h] != wanted) & (node_type[t] == wanted)
    return np.where(swap, t, h), np.where(swap, h, t)
