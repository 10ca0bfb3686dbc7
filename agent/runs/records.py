"""Reading QA records: one bad record becomes an error row, only an unusable file stops a run.

Files: JSONL, a JSON array of objects, a JSON object of id → record (PubMedQA's original
release), or CSV with a header row. The schema is detected per record:

| schema | fields |
| --- | --- |
| ``medqa`` (MedQA, MedBullets) | ``question``, ``options`` {letter: text}, ``answer``, ``answer_idx``, ``id`` |
| ``medmcqa`` | ``question``, ``opa``..``opd``, ``cop`` (the correct option), ``id``, ``exp`` |
| ``pubmedqa`` | ``QUESTION``/``question``, ``CONTEXTS``/``context``, ``final_decision`` (yes/no/maybe), ``LONG_ANSWER``/``long_answer``, ``pubid`` |
| ``huatuogpt-o1`` (SFT) | ``Question``, ``Response`` (free-text answer), ``Complex_CoT`` |

MedMCQA's ``cop`` is 0-based in the Hugging Face release (openlifescienceai/medmcqa, a class
label a–d) and 1-based in the original JSON release. A letter (``"a"``..``"d"``) is read as
it is; for numbers the whole input decides (``detect_cop_base``): any 0 means 0-based, any 4
means 1-based, and a file with only 1–3 is read as 1-based. ``FieldMap.cop_base`` overrides.

PubMedQA records become multiple choice {A: yes, B: no, C: maybe} with the decision as the
gold letter; the contexts and the long answer are kept in ``extra``. HuatuoGPT-o1 records are
free text; ``Complex_CoT`` is kept in ``extra``. Other schemas are read through ``FieldMap``
(``--id-field``, ``--question-field``, ``--answer-field``, ``--options-field``). Every field a
schema does not read (MedQA's ``meta_info``, a dataset's own tags) is kept in ``extra`` under
its own name, so no source data is dropped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.reasoning.state import OPTION_LABEL, Record


class InputError(Exception):
    """The input cannot be read at all; the run cannot proceed."""


class RecordError(ValueError):
    """One record is malformed; the message names where and which field."""


@dataclass(frozen=True)
class RawRecord:
    where: str  # "data.jsonl:3", for messages
    default_id: str  # used when the record carries no id of its own
    data: Any = None
    error: str | None = None  # set when the text could not even be parsed
    position: int = 0  # 0-based index of the record in its file (for --offset and --shard)


@dataclass(frozen=True)
class FieldMap:
    """Source field names for schemas that are not detected automatically."""

    id: str | None = None
    question: str | None = None
    answer: str | None = None
    options: str | None = None
    cop_base: int | None = None  # MedMCQA: 0 or 1; None detects it from the input
    id_from: str = "file"  # records without an id: "file" (<stem>-<line>) or "content" (content_id)

    @property
    def custom(self) -> bool:
        return any((self.question, self.answer, self.options))


DEFAULT_FIELDS = FieldMap()
PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
MEDMCQA_OPTIONS = ("opa", "opb", "opc", "opd")


def read_raw(path: Path, encoding: str | None = None, stem: str | None = None) -> list[RawRecord]:
    """Every record of the file, in order; raises InputError when there is nothing to run.
    The file is decoded strictly (UTF-8 unless ``encoding`` names another codec): a byte that
    does not decode is refused with its line, never replaced with U+FFFD. Records without an
    id of their own are named ``<stem>-<line or number>``, the stem the file's unless given
    (a resumed run's recorded one, so a renamed file keeps its ids)."""
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    if path.is_dir():
        raise InputError(f"input {path} is a directory, not a file")
    text = _decoded(path, encoding)
    if not text.strip():
        raise InputError(f"input file {path} is empty")
    suffix = path.suffix.lower()
    stem = stem or path.stem
    if suffix == ".json":
        raws = list(_json_document(path, text, stem))
    elif suffix in (".csv", ".tsv"):
        raws = list(_csv_rows(path, text, "\t" if suffix == ".tsv" else ",", stem))
    else:
        raws = list(_json_lines(path, text, stem))
    if not raws:
        raise InputError(f"input file {path} holds no records")
    return raws


def _decoded(path: Path, encoding: str | None) -> str:
    codec = encoding or "utf-8-sig"  # a UTF-8 byte-order mark is dropped
    refused = InputError(f"unknown --encoding {encoding!r}: not a text encoding (e.g. utf-8, latin-1, cp1252)")
    try:
        b"_".decode(codec)  # before reading: unknown codecs, and those that are not text encodings (rot13, base64)
    except LookupError:
        raise refused from None
    except UnicodeDecodeError:
        pass  # a text encoding (utf-16, say) in which "_" alone is not text
    data = path.read_bytes()
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        hint = ("; name the file's encoding with --encoding, e.g. --encoding latin-1" if encoding is None
                else "; is --encoding right?")
        raise InputError(f"{path.name}:{line}: not valid {encoding or 'UTF-8'} "
                         f"(byte 0x{data[exc.start]:02x} at column {column}){hint}") from None


def _json_lines(path: Path, text: str, stem: str) -> Iterator[RawRecord]:
    position = 0
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{line_no}"
        try:
            yield RawRecord(where, f"{stem}-{line_no}", json.loads(line), position=position)
        except json.JSONDecodeError as exc:
            yield RawRecord(where, f"{stem}-{line_no}", error=f"{where}: not valid JSON ({exc.msg}, column {exc.colno})", position=position)
        position += 1


def _json_document(path: Path, text: str, stem: str) -> Iterator[RawRecord]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from exc
    if isinstance(items, dict) and all(isinstance(v, dict) for v in items.values()):
        # {id: record}, as PubMedQA's ori_pqal.json: the key is the record's id
        for n, (key, item) in enumerate(items.items()):
            yield RawRecord(f"{path.name}[{key!r}]", str(key), item, position=n)
        return
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a JSON array of records, found {type(items).__name__}")
    for n, item in enumerate(items, start=1):
        yield RawRecord(f"{path.name}[{n}]", f"{stem}-{n}", item, position=n - 1)


def _csv_rows(path: Path, text: str, delimiter: str, stem: str) -> Iterator[RawRecord]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        if not reader.fieldnames:
            raise InputError(f"{path}: no header row")
        position, line_no = 0, reader.line_num + 1
        for row in reader:
            where = f"{path.name}:{line_no}"
            line_no = reader.line_num + 1
            if None in row:  # more cells than header columns
                yield RawRecord(where, f"{stem}-{position + 1}", error=f"{where}: more cells than header columns", position=position)
            else:
                yield RawRecord(where, f"{stem}-{position + 1}", {k: v for k, v in row.items() if v not in (None, "")}, position=position)
            position += 1


def detect_schema(data: dict, fields: FieldMap = DEFAULT_FIELDS) -> str:
    if fields.custom:
        return "custom"
    if "Question" in data and ("Response" in data or "Complex_CoT" in data):
        return "huatuogpt-o1"
    if "final_decision" in data:
        return "pubmedqa"
    if "opa" in data and "cop" in data:
        return "medmcqa"
    return "medqa"


def detect_cop_base(raws: Iterable[RawRecord]) -> int:
    """0 when any MedMCQA ``cop`` is 0, else 1 (see the module docstring)."""
    seen: set[int] = set()
    for raw in raws:
        if isinstance(raw.data, dict) and "opa" in raw.data:
            try:
                seen.add(int(raw.data.get("cop")))
            except (TypeError, ValueError):
                continue
    return 0 if 0 in seen else 1


def parse_record(raw: RawRecord, fields: FieldMap = DEFAULT_FIELDS) -> Record:
    """A validated record, or RecordError naming the record and the field at fault."""
    if raw.error:
        raise RecordError(raw.error)
    data = raw.data
    if not isinstance(data, dict):
        raise RecordError(f"{raw.where}: a record must be a JSON object, found {type(data).__name__}")
    problem = lone_surrogate(data)
    if problem:
        raise RecordError(f"{raw.where}: {problem}")
    schema = detect_schema(data, fields)
    parse = {"medqa": _medqa, "custom": _custom, "medmcqa": _medmcqa, "pubmedqa": _pubmedqa, "huatuogpt-o1": _huatuo}[schema]
    record_id = own_id(raw, fields)
    if fields.id and record_id is None:
        raise RecordError(f"{raw.where}: field {fields.id!r} (--id-field) is missing or empty")
    record = parse(raw.where, data, fields)
    kept = {k: v for k, v in data.items() if k not in _read_fields(schema, fields) and v not in (None, "", [])}
    if kept:  # fields the schema does not read (MedQA's meta_info, a source's own tags) travel with the row
        record["extra"] = {**kept, **record.get("extra", {})}
    record["id"] = record_id or (content_id(record) if fields.id_from == "content" else raw.default_id)
    record["dataset"] = schema
    record["position"] = raw.position
    return record


# The source fields each schema reads itself; every other field of a record is kept in ``extra``.
_SCHEMA_FIELDS = {
    "medqa": {"id", "question", "options", "answer", "answer_idx"},
    "medmcqa": {"id", "question", *MEDMCQA_OPTIONS, "cop", "exp", "subject_name", "topic_name"},
    "pubmedqa": {"id", "pubid", "QUESTION", "question", "final_decision", "CONTEXTS", "context", "LONG_ANSWER",
                 "long_answer"},
    "huatuogpt-o1": {"id", "Question", "Response", "Complex_CoT"},
}


def _read_fields(schema: str, fields: FieldMap) -> set[str]:
    if schema != "custom":
        return _SCHEMA_FIELDS[schema]
    return {"id", "answer_idx", fields.id or "id", fields.question or "question", fields.answer or "answer",
            fields.options or "options"}


ID_SOURCES = ("file", "content")
_WORD = re.compile(r"\w+")


def normalised(text: str) -> str:
    """Text as copies of a question differ least: Unicode compatibility forms folded (NFKC:
    full-width letters, ligatures, non-breaking spaces), case folded, punctuation and spacing
    reduced to single spaces between words."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def question_key(record: Record) -> str:
    """What makes two records the same question: the normalised question followed by its
    normalised options in sorted order, so neither spacing, case, punctuation nor the order
    and lettering of the options tells copies apart."""
    parts = [normalised(record["question"]), *sorted(normalised(o) for o in (record.get("options") or {}).values())]
    return " ".join(p for p in parts if p)


def content_id(record: Record) -> str:
    """An id made of the record's content (``--id-from content``): the same question read from
    two files, re-lettered or re-spaced, gets the same id, so ``merge`` sees it twice."""
    return "q-" + hashlib.sha256(question_key(record).encode()).hexdigest()[:16]


_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(value: Any, field: str = "") -> str | None:
    """Where ``value`` holds a lone surrogate (JSON's ``"\\ud800"``, which Python's json
    accepts): such text cannot be written as UTF-8 or tokenized, and is never silently
    replaced. None when there is none."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found:
            return (f"field {field or 'value'!r} holds a lone surrogate (U+{ord(found.group()):04X}) at character "
                    f"{found.start() + 1}, which is not text; fix the record's escape sequence")
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = f"{field}.{key}" if field else str(key)
        problem = lone_surrogate(key, name) if isinstance(key, str) else None
        problem = problem or lone_surrogate(item, name)
        if problem:
            return problem
    return None


def own_id(raw: RawRecord, fields: FieldMap = DEFAULT_FIELDS) -> str | None:
    """The id the record carries itself (also for a malformed record, so that its error row
    keeps it), or None."""
    data = raw.data
    if not isinstance(data, dict):
        return None
    id_field = fields.id or ("pubid" if detect_schema(data, fields) == "pubmedqa" else "id")
    value = data.get(id_field, data.get("id"))
    if value in (None, "") or isinstance(value, (dict, list)) or lone_surrogate(value):
        return None
    return str(value)


def _new(question: str, options: dict[str, str], answer: str, answer_idx: str | None, **extra) -> Record:
    record = Record(id="", question=question, options=options, answer=answer, answer_idx=answer_idx)
    extra = {k: v for k, v in extra.items() if v not in (None, "", [])}
    if extra:
        record["extra"] = extra
    return record


def _text(where: str, data: dict, name: str, flag: str = "") -> str:
    value = data.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{where}: field {name!r}{flag} is missing or empty")
    return value.strip()


def _medqa(where: str, data: dict, fields: FieldMap) -> Record:
    question = _text(where, data, "question")
    options = _options(where, "options", data.get("options"))
    answer, answer_idx = _answer(where, data.get("answer"), data.get("answer_idx"), options)
    return _new(question, options, answer, answer_idx)


def _custom(where: str, data: dict, fields: FieldMap) -> Record:
    q, a, o = fields.question or "question", fields.answer or "answer", fields.options or "options"
    question = _text(where, data, q, " (--question-field)" if fields.question else "")
    options = _options(where, o, data.get(o), allow_list=bool(fields.options))
    answer = data.get(a)
    if isinstance(answer, int) and not isinstance(answer, bool) and options:
        letters = list(options)  # an index into a list of options
        if not 0 <= answer < len(letters):
            raise RecordError(f"{where}: field {a!r} is {answer}, which is not an option index")
        return _new(question, options, options[letters[answer]], letters[answer])
    letter = option_label(answer) if isinstance(answer, str) else None
    if letter in options and answer.strip() not in options.values():  # a letter, not an option's text
        return _new(question, options, options[letter], letter)
    answer_idx = data.get("answer_idx") if not fields.answer else None
    text, idx = _answer(where, answer, answer_idx, options, answer_name=a)
    return _new(question, options, text, idx)


def _medmcqa(where: str, data: dict, fields: FieldMap) -> Record:
    question = _text(where, data, "question")
    options = {letter: _text(where, data, name) for letter, name in zip("ABCD", MEDMCQA_OPTIONS) if name in data or letter != "D"}
    cop = data.get("cop")
    if isinstance(cop, str) and cop.strip().lower() in ("a", "b", "c", "d"):
        letter = cop.strip().upper()
    else:
        try:
            number = int(cop)
        except (TypeError, ValueError):
            raise RecordError(f"{where}: field 'cop' must be the correct option (0–3, 1–4 or a–d), found {cop!r}") from None
        base = fields.cop_base if fields.cop_base is not None else (0 if number == 0 else 1)
        index = number - base
        if not 0 <= index < len(options):
            raise RecordError(f"{where}: field 'cop' is {cop!r}, which is not an option ({base}-based)")
        letter = "ABCD"[index]
    if letter not in options:
        raise RecordError(f"{where}: field 'cop' is {cop!r}, which is not one of the options")
    return _new(question, options, options[letter], letter, explanation=data.get("exp"),
                subject=data.get("subject_name"), topic=data.get("topic_name"))


def _pubmedqa(where: str, data: dict, fields: FieldMap) -> Record:
    question = _text(where, data, "QUESTION" if "QUESTION" in data else "question")
    decision = data.get("final_decision")
    letter = {v: k for k, v in PUBMEDQA_OPTIONS.items()}.get(str(decision).strip().lower())
    if letter is None:
        raise RecordError(f"{where}: field 'final_decision' must be yes, no or maybe, found {decision!r}")
    contexts = data.get("CONTEXTS", data.get("context"))
    if isinstance(contexts, dict):  # Hugging Face pubmed_qa: {"contexts": [...], "labels": [...], ...}
        contexts = contexts.get("contexts")
    if isinstance(contexts, list):
        contexts = "\n".join(str(c) for c in contexts)
    long_answer = data.get("LONG_ANSWER", data.get("long_answer"))
    return _new(question, dict(PUBMEDQA_OPTIONS), PUBMEDQA_OPTIONS[letter], letter,
                context=contexts if isinstance(contexts, str) else None, long_answer=long_answer)


def _huatuo(where: str, data: dict, fields: FieldMap) -> Record:
    question = _text(where, data, "Question")
    answer = _text(where, data, "Response")
    return _new(question, {}, answer, None, complex_cot=data.get("Complex_CoT"))


def _options(where: str, name: str, options: Any, allow_list: bool = False) -> dict[str, str]:
    if isinstance(options, str) and options.strip().startswith(("{", "[")):  # CSV cell holding JSON
        try:
            options = json.loads(options)
        except json.JSONDecodeError:
            raise RecordError(f"{where}: field {name!r} holds text that is not valid JSON") from None
    if options is None or options == {} or options == "":
        return {}
    if isinstance(options, list) and allow_list:
        options = {_list_label(i): v for i, v in enumerate(options)}
    if isinstance(options, list):
        raise RecordError(
            f"{where}: field {name!r} must be an object mapping letters to texts "
            '(e.g. {"A": "...", "B": "..."}), found a list'
        )
    if not isinstance(options, dict):
        raise RecordError(f"{where}: field {name!r} must be an object, found {type(options).__name__}")
    bad = [k for k, v in options.items() if not isinstance(v, (str, int, float)) or not str(v).strip()]
    if bad:
        raise RecordError(f"{where}: field {name!r} has an empty or non-text option {bad[0]!r}")
    normalised: dict[str, str] = {}
    for key, value in options.items():
        label = option_label(key)
        if label is None:
            raise RecordError(f"{where}: field {name!r} has the option key {key!r}, which is not an option letter "
                              "(A–Z, AA–ZZ, a number, or such a label as 'a', '(B)', 'opc', 'option D')")
        if label in normalised:
            raise RecordError(f"{where}: field {name!r} has two options labelled {label!r} (keys are case-insensitive)")
        normalised[label] = str(value).strip()
    return normalised


_LABEL = re.compile(rf"^(?:op(?:t(?:ion)?)?|choice)?[\s_-]*\(?({OPTION_LABEL})[).:]?$", re.I)


def _list_label(index: int) -> str:
    """A, B, …, Z, then AA, AB, … as spreadsheets number columns (lists longer than 26)."""
    return chr(ord("A") + index) if index < 26 else _list_label(index // 26 - 1) + chr(ord("A") + index % 26)


def option_label(key: object) -> str | None:
    """An option key as the canonical label: ``a``, ``(a)``, ``A.``, ``opa``, ``option_a`` → ``A``;
    two letters (``ab`` → ``AB``, for lists beyond Z) and numbers are kept; None when the key
    is no label at all."""
    match = _LABEL.match(str(key).strip())
    return match.group(1).upper() if match else None


def _answer(where: str, answer: Any, idx: Any, options: dict[str, str], answer_name: str = "answer") -> tuple[str, str | None]:
    if idx is not None and not isinstance(idx, str):
        raise RecordError(f"{where}: field 'answer_idx' must be an option letter, found {idx!r}")
    if idx and idx.strip():
        idx = option_label(idx) or idx  # "b" names option B; what is no label is refused below
    if idx and idx not in options:
        raise RecordError(f"{where}: field 'answer_idx' is {idx!r}, which is not one of the options")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip():
        if idx:
            return options[idx], idx
        raise RecordError(f"{where}: field {answer_name!r} is missing or empty")
    answer = answer.strip()
    if not idx and options:
        idx = next((letter for letter, text in options.items() if text == answer), None)
    return answer, idx


HF_PREFIX = "hf:"


def is_hf_name(spec: str) -> bool:
    """Whether a command-line INPUT names a Hugging Face dataset (``hf:OWNER/NAME``) rather than a file."""
    return spec.startswith(HF_PREFIX)


def read_hf(spec: str) -> list[RawRecord]:
    """The records of a Hugging Face dataset, ``hf:OWNER/NAME[:CONFIG][@SPLIT]`` (every split
    when none is named), fetched by ``datasets`` into its cache like any download (HF_HOME,
    by default under the user's cache directory) and read from there afterwards, offline too.
    Records without an id are named ``<NAME>-<split>-<n>``. Raises InputError when the
    dataset cannot be had: offline (or ``HF_HUB_OFFLINE=1``) and not cached, or no such dataset."""
    name, _, split = spec.removeprefix(HF_PREFIX).partition("@")
    name, _, config = name.partition(":")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name):
        raise InputError(f"{spec}: a Hugging Face dataset is named hf:OWNER/NAME[:CONFIG][@SPLIT], e.g. hf:openlifescienceai/medmcqa@validation")
    try:
        import datasets
        from datasets.exceptions import DatasetNotFoundError
    except ImportError:  # an optional extra: a core install reads files only
        raise InputError(f"{spec}: reading Hugging Face datasets needs the datasets package: "
                         "pip install 'medreason-agent[hf]' (or pass a JSONL, JSON or CSV file)") from None

    try:
        loaded = datasets.load_dataset(name, config or None, split=split or None)
    except ConnectionError as exc:
        raise InputError(f"{spec}: cannot fetch the dataset from the Hugging Face Hub and it is not in the local cache "
                         f"(are you offline? {exc})") from None
    except (DatasetNotFoundError, FileNotFoundError) as exc:
        raise InputError(f"{spec}: no such dataset on the Hugging Face Hub ({exc})") from None
    except ValueError as exc:  # an unknown split or config
        raise InputError(f"{spec}: {exc}") from None
    splits = {split: loaded} if split else dict(loaded)
    stem = name.rsplit("/", 1)[-1]
    raws, position = [], 0
    for split_name, rows in splits.items():
        for n, row in enumerate(rows, start=1):
            raws.append(RawRecord(f"{spec}[{split_name}:{n}]", f"{stem}-{split_name}-{n}", row, position=position))
            position += 1
    if not raws:
        raise InputError(f"{spec} holds no records")
    return raws
