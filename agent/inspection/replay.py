"""Looking inside a finished (or interrupted) run: samples, checkpoint timelines, forks.

The one reading of checkpoints that both ``replay`` (terminal) and ``view`` (browser) show;
it returns data, never renders it (the CLI and ``agent.inspection.view`` do).

A run directory (or the chat store) holds ``checkpoints.sqlite``: one LangGraph thread per
sample, one checkpoint per step. A thread can hold several *branches*: the original run and
every fork made from one of its past checkpoints (``update_state`` on a past checkpoint
starts a new chain whose parent is that checkpoint; the original chain is never touched).

Branches are numbered by creation: a branch is the parent chain of a leaf checkpoint (one
that no other checkpoint continues), and leaves are ordered by checkpoint id, which grows
with time. Branch 0 is therefore the original run and the highest number the latest fork.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.channels.binop import BinaryOperatorAggregate
from langgraph.types import Overwrite, StateSnapshot

from agent.config import Settings
from agent.reasoning import resources
from agent.reasoning.graph import RECURSION_LIMIT, compile_graph
from agent.runs.checkpoints import CHECKPOINTS, CheckpointStoreError, delete_checkpoints, run_store
from agent.runs.checkpoints import thread_ids as store_thread_ids
from agent.runs.results import RESULTS, CorruptLineError, read_rows
from graphs.store import KnowledgeGraph


class ReplayError(Exception):
    """The run directory, sample, step or --set cannot be used; the message says why."""


@dataclass
class Step:
    """One checkpoint of a branch, as the timeline shows it."""

    step: int
    node: str
    changes: list[str]
    created_at: str
    next: tuple[str, ...]
    snapshot: StateSnapshot


@contextmanager
def open_run(run_dir: Path, checkpoints: str | None = None) -> Iterator[Any]:
    """The run's compiled graph over its checkpoints: the store the run recorded (its SQLite
    file, or a PostgreSQL database), or the ``checkpoints`` URL given."""
    try:
        store = run_store(run_dir, checkpoints)
    except CheckpointStoreError as exc:
        raise ReplayError(str(exc)) from None
    if not store.is_postgres and not store.path.is_file():
        raise ReplayError(f"{run_dir} holds no {CHECKPOINTS}; pass a run directory (run --out) or the chat store")
    try:
        with store.open_sync() as saver:
            yield compile_graph(saver)
    except CheckpointStoreError as exc:
        raise ReplayError(str(exc)) from None


def thread_ids(app) -> list[str]:
    """Every thread in the store, in the order they were first written."""
    return store_thread_ids(app.checkpointer)


# -- listing ---------------------------------------------------------------------------------
def list_samples(run_dir: Path, app) -> list[dict]:
    """id, thread, status, attempts and reason of every sample: from results.jsonl when the
    run wrote one, else from the latest checkpoint of each thread (the chat store)."""
    results = run_dir / RESULTS
    if results.is_file():
        try:
            rows = read_rows(results)
        except CorruptLineError as exc:
            raise ReplayError(str(exc)) from None
        return [_summary_of(r["id"], r.get("thread_id") or r["id"], r) for r in rows]
    return [_summary_of(values.get("record", {}).get("id", thread), thread, {
        "status": values.get("status", "running"), "attempts": values.get("attempts", []),
        "verification": values.get("verification"),
    }) for thread, values in latest_states(app)]


def latest_states(app) -> Iterator[tuple[str, dict]]:
    """(thread, latest state) of every thread: the samples of a store without results.jsonl
    (the chat store, where each turn is a thread)."""
    for thread in thread_ids(app):
        yield thread, app.get_state(_config(thread)).values


def _summary_of(sample_id: str, thread: str, row: dict) -> dict:
    verification = row.get("verification") or {}
    reason = row.get("error") or " — ".join(filter(None, (verification.get("reason"), verification.get("detail"))))
    return {"id": sample_id, "thread_id": thread, "status": row.get("status"),
            "attempts": len(row.get("attempts") or []), "reason": reason}


def thread_of(run_dir: Path, app, sample: str) -> str:
    """The thread of a sample id (results.jsonl maps ids to threads; chat threads are their own ids)."""
    for s in list_samples(run_dir, app):
        if sample in (s["id"], s["thread_id"]):
            return s["thread_id"]
    known = ", ".join(s["id"] for s in list_samples(run_dir, app)[:10])
    raise ReplayError(f"no sample {sample!r} in {run_dir} (samples: {known or 'none'})")


# -- branches and timelines ------------------------------------------------------------------
def _config(thread: str, checkpoint_id: str | None = None) -> dict:
    configurable = {"thread_id": thread, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable, "recursion_limit": RECURSION_LIMIT}


def _id(snapshot: StateSnapshot | None) -> str | None:
    if snapshot is None:
        return None
    return snapshot.config["configurable"]["checkpoint_id"]


def _parent_id(snapshot: StateSnapshot) -> str | None:
    return (snapshot.parent_config or {}).get("configurable", {}).get("checkpoint_id")


def branches(app, thread: str) -> list[list[StateSnapshot]]:
    """Every branch of a thread, oldest checkpoint first; branch 0 is the original run."""
    history = list(app.get_state_history(_config(thread)))
    if not history:
        raise ReplayError(f"thread {thread!r} has no checkpoints")
    by_id = {_id(s): s for s in history}
    parents = {_parent_id(s) for s in history}
    leaves = sorted((i for i in by_id if i not in parents))
    chains = []
    for leaf in leaves:
        chain, node = [], by_id.get(leaf)
        while node is not None:
            chain.append(node)
            node = by_id.get(_parent_id(node))
        chains.append(chain[::-1])
    return chains


def branch(app, thread: str, number: int = 0) -> list[StateSnapshot]:
    found = branches(app, thread)
    try:
        return found[number]
    except IndexError:
        raise ReplayError(f"sample has {len(found)} branch(es) (0 = original); no branch {number}") from None


def timeline(chain: list[StateSnapshot]) -> list[Step]:
    steps, previous = [], None
    for snapshot in chain:
        steps.append(Step(
            step=snapshot.metadata.get("step", -1), node=_producer(snapshot, previous),
            changes=changes(previous.values if previous else {}, snapshot.values),
            created_at=snapshot.created_at or "", next=tuple(snapshot.next), snapshot=snapshot,
        ))
        previous = snapshot
    return steps


def _producer(snapshot: StateSnapshot, previous: StateSnapshot | None) -> str:
    """Which node wrote this checkpoint: the node(s) its parent was about to run."""
    source = snapshot.metadata.get("source")
    if source == "input":
        return "input"
    if source in ("update", "fork"):
        return "fork"
    if previous is None or not previous.next:
        return source or "?"
    return "start" if previous.next == ("__start__",) else ",".join(previous.next)


def _writer(chain: list[StateSnapshot], index: int) -> str:
    """The node to write a fork "as", so that the fork's next step is the checkpoint's own.
    A fork checkpoint was itself written as its origin's writer: look past it."""
    while index > 0 and _producer(chain[index], chain[index - 1]) == "fork":
        index -= 1
    producer = _producer(chain[index], chain[index - 1] if index else None)
    return "__start__" if producer == "start" else producer.split(",")[0]


def at_step(chain: list[StateSnapshot], step: int) -> StateSnapshot:
    for snapshot in chain:
        if snapshot.metadata.get("step") == step:
            return snapshot
    steps = [s.metadata.get("step") for s in chain]
    raise ReplayError(f"no step {step} on this branch (steps {min(steps)}..{max(steps)})")


def changes(old: dict, new: dict) -> list[str]:
    """What a step changed, one condensed phrase per key: ``paths: 12 items``,
    ``status: running→retry``, ``search: attempt 1→2``."""
    found = []
    for key, value in new.items():
        if key in old and old[key] == value:
            continue
        if key not in old and value in ([], {}, None, ""):
            continue  # a reducer's empty start, not a change
        found.append(_condense(key, old.get(key), value, key in old))
    return found


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) <= 40 else f"{len(value)} chars"
    if isinstance(value, list):
        return f"{len(value)} items"
    if isinstance(value, dict):
        return f"{len(value)} keys"
    return json.dumps(value)


def _condense(key: str, old: Any, new: Any, existed: bool) -> str:
    if isinstance(new, list):
        return f"{key}: {len(old)}→{len(new)} items" if existed and isinstance(old, list) else f"{key}: {len(new)} items"
    if isinstance(new, dict) and isinstance(old, dict):
        parts = [f"{k} {_short(old.get(k))}→{_short(v)}" for k, v in new.items() if old.get(k) != v]
        return f"{key}: " + ", ".join(parts[:4]) + (", …" if len(parts) > 4 else "")
    if isinstance(new, dict):
        if key == "verification":
            return f"verification: correct={new.get('correct')}, {new.get('reason')}"
        if key == "record":
            return f"record: {new.get('id')}"
        return f"{key}: " + ", ".join(f"{k}={_short(v)}" for k, v in list(new.items())[:4])
    if existed:
        return f"{key}: {_short(old)}→{_short(new)}"
    return f"{key}: {_short(new)}"


def step_json(thread: str, snapshot: StateSnapshot, node: str) -> dict:
    return {
        "thread_id": thread, "step": snapshot.metadata.get("step"), "node": node,
        "checkpoint_id": _id(snapshot), "parent_checkpoint_id": _parent_id(snapshot),
        "created_at": snapshot.created_at, "next": list(snapshot.next), "values": snapshot.values,
    }


# -- forks -----------------------------------------------------------------------------------
FORK_SETTINGS = "fork_settings"  # checkpoint metadata: a fork's ``--set settings.…``, as shown_sets shows them

def parse_sets(pairs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``KEY=VALUE`` pairs split into state changes and ``settings.`` changes; VALUE is JSON
    when it parses, else a string."""
    state, settings = {}, {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ReplayError(f"--set {pair!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        key = key.strip()
        if key.startswith("settings."):
            settings[key.removeprefix("settings.")] = value
        else:
            state[key] = value
    return state, settings


def shown_sets(pairs: list[str]) -> list[str]:
    """``--set`` pairs as a fork's report prints them: an endpoint (``settings.base_url``)
    without its credentials (``fingerprint.endpoint``), a key (``settings.api_key``) not at all."""
    from agent.redaction import REDACTED
    from agent.runs.fingerprint import endpoint

    shown = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        name = key.strip()
        if name == "settings.api_key":
            value = REDACTED
        elif name == "settings.base_url" and value:
            value = endpoint(value)
        shown.append(f"{key}{sep}{value}")
    return shown


def changed_settings(settings: Settings, updates: dict[str, Any]) -> Settings:
    unknown = [k for k in updates if k not in Settings.model_fields]
    if unknown:
        raise ReplayError(f"unknown setting {unknown[0]!r}; settings are: {', '.join(Settings.model_fields)}")
    try:
        return Settings(**{**settings.model_dump(), **updates})
    except ValueError as exc:
        raise ReplayError(f"invalid settings: {exc}") from exc


def state_update(app, values: dict, changes_: dict[str, Any]) -> dict[str, Any]:
    """The ``update_state`` values for dotted-path changes (``mappings.0.node_id``).

    A field with a reducer (attempts, usage, …) would be appended to, so it is replaced
    with ``Overwrite``; other fields are plain last-value channels.
    """
    update: dict[str, Any] = {}
    for dotted, value in changes_.items():
        key, *rest = dotted.split(".")
        if key not in app.channels or key.startswith("__"):
            raise ReplayError(f"unknown state field {key!r}")
        current = update.get(key, copy.deepcopy(values.get(key)))
        update[key] = _set_path(current, rest, value, dotted) if rest else value
    return {
        k: Overwrite(v) if isinstance(app.channels[k], BinaryOperatorAggregate) else v for k, v in update.items()
    }


def _set_path(container: Any, path: list[str], value: Any, dotted: str) -> Any:
    target = container
    for i, part in enumerate(path):
        last = i == len(path) - 1
        try:
            if isinstance(target, list):
                index = int(part)
                if last:
                    target[index] = value
                else:
                    target = target[index]
            elif isinstance(target, dict):
                if last:
                    target[part] = value
                else:
                    target = target[part]
            else:
                raise KeyError(part)
        except (KeyError, IndexError, ValueError):
            raise ReplayError(f"--set {dotted}: no {part!r} there") from None
    return container


def fork_refusal(snapshot: StateSnapshot, step: int) -> str | None:
    """Why the checkpoint at ``step`` cannot be forked, or None when it can."""
    if not snapshot.next:
        return f"step {step} is the end of the run: nothing left to re-run; fork an earlier step"
    if snapshot.metadata.get("source") == "input":
        return f"step {step} holds only the input; fork step {step + 1} or later"
    return None


def fork(app, thread: str, step: int, settings: Settings, sets: list[str], from_branch: int = 0) -> tuple[dict, dict, int]:
    """Re-run a sample from checkpoint ``step`` of a branch with changed state and/or
    settings, as a new branch. Returns (original final state, fork final state, branch number).
    The fork runs with what its settings open: another ``model``, ``kg_dir``, ``offline`` or
    ``embedding_model`` is the one it uses. ``resources`` opens them before the fork is
    written, so a graph that cannot be opened leaves no half-made branch."""
    state_changes, setting_changes = parse_sets(sets)
    chain = branch(app, thread, from_branch)
    past = at_step(chain, step)
    refusal = fork_refusal(past, step)
    if refusal:
        raise ReplayError(refusal)
    settings = changed_settings(settings, setting_changes)
    unknown_nodes(resources.load(settings).kg, state_changes)
    update = state_update(app, past.values, state_changes)
    before = _checkpoint_ids(app, thread)
    try:
        # the settings it ran with, as a report shows them (no key, no credentials), kept on the
        # fork's first checkpoint: an adopted fork's row then says what made it (fork_origin)
        shown = [pair for pair in shown_sets(sets) if pair.strip().startswith("settings.")]
        marked = {**past.config, "metadata": {FORK_SETTINGS: json.dumps(shown)}}  # metadata holds strings, not lists
        config = app.update_state(marked, update, as_node=_writer(chain, chain.index(past)))
        final = app.invoke(None, {**config, "recursion_limit": RECURSION_LIMIT}, context=settings)
    except BaseException as exc:  # a fork that fails (an error, Ctrl-C) leaves no half-made branch behind
        delete_checkpoints(app.checkpointer, thread, _checkpoint_ids(app, thread) - before)
        if isinstance(exc, Exception):  # --set can put any value in the state: say what it did
            raise ReplayError(f"the fork failed ({type(exc).__name__}: {exc}); nothing of it was kept, "
                              f"branch {from_branch} is unchanged") from exc
        raise
    number = len(branches(app, thread)) - 1
    return chain[-1].values, final, number


def unknown_nodes(kg: KnowledgeGraph, state_changes: dict[str, Any]) -> None:
    """Refuse a ``--set`` that names a node the graph lacks (``mappings.2.node_id=HP:9999999``,
    or a node id anywhere in a value set whole), before anything is written."""
    for dotted, value in state_changes.items():
        named = [value] if dotted.split(".")[-1] == "node_id" else list(_node_ids(value))
        missing = [n for n in named if not isinstance(n, str) or n not in kg]
        if missing:
            raise ReplayError(f"--set {dotted}: {missing[0]!r} is not a node of the graph; "
                              f"find one with `kg search NAME` or `kg neighbours NODE`")


def _node_ids(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "node_id":
                yield item
            else:
                yield from _node_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _node_ids(item)


def _checkpoint_ids(app, thread: str) -> set[str]:
    return {c.config["configurable"]["checkpoint_id"] for c in app.checkpointer.list(_config(thread))}


# -- outcomes --------------------------------------------------------------------------------
def outcome(values: dict) -> dict[str, Any]:
    verification = values.get("verification") or {}
    return {
        "status": values.get("status"),
        "attempts": len(values.get("attempts") or []),
        "verification": " — ".join(filter(None, (
            f"predicted {verification.get('predicted')}" if verification else None,
            "correct" if verification.get("correct") else ("wrong" if verification else None),
            verification.get("reason"), verification.get("detail"),
        ))),
        "paths": len(values.get("paths") or []),
        "pruned paths": len(values.get("pruned") or []),
    }


def compare(a: dict, b: dict) -> list[tuple[str, Any, Any, bool]]:
    """(field, a, b, differs) for every outcome field."""
    left, right = outcome(a), outcome(b)
    return [(k, left[k], right[k], left[k] != right[k]) for k in left]


def diverge(chain_a: list[StateSnapshot], chain_b: list[StateSnapshot]) -> int:
    """The step at which two branches part: the last checkpoint they share."""
    shared = -1
    for a, b in zip(chain_a, chain_b):
        if _id(a) != _id(b):
            break
        shared = a.metadata.get("step", -1)
    return shared


def fork_origin(chains: list[list[StateSnapshot]], number: int) -> dict[str, Any]:
    """Where branch ``number`` (a fork) left the original run: the step it was forked at,
    what the fork set there (state changes, and the ``--set settings.…`` it ran with), and the
    id of its last checkpoint."""
    original = {_id(s) for s in chains[0]}
    chain = chains[number]
    first = next(i for i, s in enumerate(chain) if _id(s) not in original)
    forked_at = chain[first - 1] if first else chain[first]
    return {"checkpoint_id": _id(chain[-1]), "forked_at_step": forked_at.metadata.get("step"),
            "changes": changes(forked_at.values, chain[first].values),
            "settings": json.loads(chain[first].metadata.get(FORK_SETTINGS) or "[]")}


# -- reports: what the replay command (and anything else) shows of a fork or a diff -----------
def fork_report(app, thread: str, step: int, settings: Settings, sets: list[str], from_branch: int = 0) -> dict:
    """Fork ``thread`` at ``step`` (``fork``) and say what came of it: the outcomes side by
    side, the fields that differ, and the original branch's checkpoint count before and after
    (the same, since a fork never writes into the branch it starts from)."""
    before = len(branch(app, thread, from_branch))
    original, forked, number = fork(app, thread, step, settings, sets, from_branch)
    rows = compare(original, forked)
    return {"thread_id": thread, "from_branch": from_branch, "step": step, "branch": number, "set": shown_sets(sets),
            "original": outcome(original), "fork": outcome(forked),
            "differs": [name for name, *_, differs in rows if differs], "rows": rows,
            "original_checkpoints_before": before, "original_checkpoints": len(branch(app, thread, from_branch))}


def diff_report(app, thread: str, other: int = 0) -> dict:
    """Branch 0 beside branch ``other`` (default: the latest fork): where they part, the nodes
    each ran after that, and their outcomes."""
    chains = branches(app, thread)
    if len(chains) < 2:
        raise ReplayError(f"{thread} has only its original branch; make one with --fork N --set KEY=VALUE")
    other = other or len(chains) - 1
    original, forked = branch(app, thread, 0), branch(app, thread, other)
    split = diverge(original, forked)
    rows = compare(original[-1].values, forked[-1].values)
    after = lambda chain: [s.node for s in timeline(chain) if s.step > split]  # noqa: E731
    return {"thread_id": thread, "branches": [0, other], "diverge_after_step": split,
            "original": outcome(original[-1].values), "fork": outcome(forked[-1].values),
            "differs": [name for name, *_, differs in rows if differs], "rows": rows,
            "steps_after": {"0": after(original), str(other): after(forked)}}
