"""A run's fingerprint: ``RUN_DIR/fingerprint.json``, what the run's rows were made with.

Written when a run first starts (``make`` then ``write``) and never silently changed: it holds
the run's id, the KG (source, its hash, size, embedding model), the mode, the model and its
endpoint (never a key), a hash of the prompt set, every setting that changes results, the
input (path, name, content hash) with the way it is read, and the tool's version.

``--resume`` compares the fingerprint it would write with the stored one (``differences``)
and refuses a change unless told to go on (``--allow-changed``), which is then recorded in
``changes`` with the ids of the rows made before it, so no row is ever relabelled. ``merge``
compares the runs' ``identity`` the same way.

Checkpoint threads are scoped by run (``thread_id``): ``<run_id>:<sample id>``, so runs can
share a checkpoint store. Runs made before fingerprints existed keep plain sample ids
(``PLAIN_THREADS``), so they still resume from their checkpoints. ``read_fingerprint``
returns None for a run directory without one (such older runs, merged directories).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from importlib import metadata
from importlib import resources as package_files
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.redaction import public_url
from graphs.atomic import write_text

FINGERPRINT = "fingerprint.json"
PLAIN_THREADS = "plain_thread_ids"  # set on runs adopted from before fingerprints: threads are sample ids
# Settings that never change a sample's result: where things are, how a request is sent, the
# key. Every other setting is recorded, so a setting added later is compared without anyone
# having to remember it here. Model, endpoint and KG are recorded on their own.
NOT_RESULT_SETTINGS = frozenset({
    "kg_dir", "chroma_url", "vector_cache", "offline", "model", "base_url", "api_key",
    "llm_timeout", "llm_max_retries", "requests_per_second",
})
# What a resume or merge compares, as (section, key) pairs of the fingerprint; key None: the whole section.
COMPARED = (("kg", "source"), ("kg", "sha256"), ("kg", "embedding_model"), ("mode", None), ("model", None),
            ("endpoint", None), ("prompts", None), ("settings", None), ("input", "sha256"), ("reading", None))
# What makes rows from two runs different in kind: merge refuses to mix these unless told to.
IDENTITY = (("kg", "source"), ("kg", "sha256"), ("mode", None), ("model", None))


def read_fingerprint(run_dir: Path) -> dict | None:
    path = Path(run_dir) / FINGERPRINT
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_fingerprint(run_dir: Path, fingerprint: dict) -> None:
    """Atomically (a crash leaves the old file or the new one) and durably."""
    write_text(Path(run_dir) / FINGERPRINT, json.dumps(fingerprint, indent=2, ensure_ascii=False) + "\n")


def make(settings: Settings, kg: dict, input_path: Path, reading: dict, selection: dict) -> dict:
    """A new run's fingerprint. ``kg``: source, sha256, nodes, edges, embedding_model, dir (from
    the KG's manifest); ``reading``: what decides how records are read and named (fields,
    encoding, id stem); ``selection``: offset, limit and shard (recorded, not compared)."""
    llm = settings.llm_configured
    return {
        "run_id": uuid.uuid4().hex[:12],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tool": {"name": "medreason-agent", "version": tool_version()},
        "kg": kg,
        "mode": settings.mode,
        "model": settings.model if llm else None,
        "endpoint": endpoint(settings.base_url) if llm else None,
        "prompts": prompt_set_hash(),
        "settings": result_settings(settings),
        "input": {"path": str(Path(input_path).resolve()), "name": Path(input_path).name,
                  "sha256": file_sha256(input_path)},
        "reading": reading,
        "selection": selection,
    }


def kg_identity(manifest, kg_dir: Path) -> dict:
    """The KG as runs record it, from its manifest (``graphs.cache.Manifest``)."""
    return {"dir": str(kg_dir), "source": manifest.source.kind, "sha256": manifest.source.sha256,
            "nodes": manifest.nodes, "edges": manifest.edges, "embedding_model": manifest.embedding_model}


def result_settings(settings: Settings) -> dict[str, Any]:
    return {k: v for k, v in settings.model_dump(mode="json").items() if k not in NOT_RESULT_SETTINGS}


def endpoint(base_url: str | None) -> str:
    """The endpoint as it may be recorded or shown (``redaction.public_url``: no user,
    password or query string); every place that writes or prints the endpoint uses this."""
    return public_url(base_url) if base_url else "the OpenAI API"


def prompt_set_hash() -> str:
    """SHA-256 over every prompt file's name and text: any edited prompt changes it."""
    digest = hashlib.sha256()
    files = sorted((f for f in package_files.files("prompts").iterdir() if f.name.endswith(".txt")), key=lambda f: f.name)
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tool_version() -> str:
    try:
        return metadata.version("medreason-agent")
    except metadata.PackageNotFoundError:
        return "unknown"


def thread_id(fingerprint: dict | None, sample_id: str) -> str:
    """The checkpoint thread of a sample: scoped by the run, or the plain id for older runs."""
    if fingerprint is None or fingerprint.get(PLAIN_THREADS):
        return sample_id
    return f"{fingerprint['run_id']}:{sample_id}"


def with_change(stored: dict, new: dict, changed: list[str], made_before: list[str]) -> dict:
    """``stored`` going on with ``new``'s compared values, the change recorded in ``changes``
    with the values it replaced and the ids of the rows made before it."""
    sections = dict.fromkeys(section for section, _ in COMPARED)
    change = {"at": new["created"], "changed": changed, "before": {k: stored.get(k) for k in sections},
              "rows_before": made_before}
    return {**stored, **{k: new.get(k) for k in sections}, "changes": [*stored.get("changes", []), change]}


def identity_of_rows(fingerprint: dict, ids: list[str]) -> dict[str, dict]:
    """Each row's ``identity`` (KG, mode, model, run id): the run's, or for rows made before a
    recorded change (``--allow-changed``), the one in force when they were made."""
    current = identity(fingerprint)
    found = {}
    for change in fingerprint.get("changes", []):
        before = identity({**fingerprint, **change["before"]})
        for row_id in change["rows_before"]:
            found.setdefault(row_id, before)
    return {row_id: found.get(row_id, current) for row_id in ids}


def identity(fingerprint: dict) -> dict:
    """What rows from different runs must share to be merged without --allow-mixed, and the
    run they come from."""
    kg = fingerprint.get("kg") or {}
    return {"run_id": fingerprint.get("run_id"), "mode": fingerprint.get("mode"), "model": fingerprint.get("model"),
            "kg": {k: kg.get(k) for k in ("source", "sha256", "nodes", "edges", "embedding_model")}}


def _value(fingerprint: dict, section: str, key: str | None) -> Any:
    value = fingerprint.get(section)
    return value.get(key) if key is not None and isinstance(value, dict) else value


def differences(old: dict, new: dict, compared=COMPARED) -> list[str]:
    """What differs between two fingerprints, one phrase each (``model: 'a' → 'b'``)."""
    found = []
    for section, key in compared:
        before, after = _value(old, section, key), _value(new, section, key)
        if before == after:
            continue
        name = f"{section}.{key}" if key else section
        if isinstance(before, dict) and isinstance(after, dict):
            for k in sorted(set(before) | set(after)):
                if before.get(k) != after.get(k):
                    found.append(f"{name}.{k}: {_shown(before.get(k))} → {_shown(after.get(k))}")
        else:
            found.append(f"{name}: {_shown(before)} → {_shown(after)}")
    return found


def _shown(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"  # a hash
    return json.dumps(value, ensure_ascii=False)
