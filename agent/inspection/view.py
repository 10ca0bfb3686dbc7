"""``view RUN_DIR``: a run in the browser, with a human review that the export respects.

A Starlette app over one run directory (or the chat store, whose turns are its samples):
an overview of the run's records, a filtered, searchable, paged list of samples, and one page
per sample with its reasoning, mapped entities, KG paths drawn as a graph (laid out here,
drawn as SVG by the template), attempts and checkpoint timeline (read by ``agent.inspection.replay``,
the same reading ``replay`` prints). It writes two things: a review, appended to reviews.jsonl,
and an adopted fork (``agent.inspection.adoption``), which replaces the sample's row.

Safety: sample ids in URLs are keys of an in-memory index, never parts of a file path;
Jinja2 escapes every text; a review POST must carry this server session's token, which only
pages of this origin can read; requests must name this host (no DNS rebinding); scripts and
styles come only from this server (a Content-Security-Policy forbids inline ones).
"""

from __future__ import annotations

import json
import math
import re
import secrets
import shlex
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from agent.inspection import replay
from agent.inspection.adoption import AdoptionError, adopt
from agent.runs.fingerprint import FINGERPRINT, endpoint
from agent.runs.results import (RESULTS, CorruptLineError, SummaryFileError, error_kind, iter_rows, recorded_summary, rejection_kind,
                                result_row)
from agent.runs.reviews import DECISIONS, REVIEWS, ReviewError, append_review, read_reviews, review_line

ASSETS = Path(__file__).parent / "view_assets"
PAGE_SIZE = 50
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# One fill colour per node type on every graph of every page (PrimeKG's and HPO's types);
# a type not listed gets one of OTHER_COLOURS, chosen by its name, so it too is the same everywhere.
TYPE_COLOURS = {
    "effect/phenotype": "#4e79a7", "disease": "#e15759", "drug": "#59a14f", "gene/protein": "#b07aa1",
    "anatomy": "#f28e2b", "exposure": "#9c755f", "biological_process": "#76b7b2", "molecular_function": "#edc948",
    "cellular_component": "#ff9da7", "pathway": "#17becf",
}
OTHER_COLOURS = ("#bab0ac", "#8c6d31", "#637939", "#843c39", "#7b4173", "#3182bd")
REVIEWER_COOKIE = "medreason_reviewer"  # the last name a reviewer gave, prefilled on every page
# The list's sortable columns: what each sorts by (None, a missing score, always last).
SORTS = ("id", "question", "answer", "status", "grounding", "relevance", "attempts", "review")


class ViewError(Exception):
    """The run directory cannot be viewed; the message says why."""


# -- the sample index ------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """What the list needs of one sample; the full row is read from disk when opened."""

    id: str
    status: str
    reason: str
    dataset: str
    attempts: int
    degraded: tuple[str, ...]  # the nodes that fell back to a weaker behaviour ("node: why")
    offset: int  # byte offset of its line in results.jsonl (-1: a chat turn, kept in memory)
    text: str  # question and reasoning, lower-cased, for search
    question: str  # its start, as the list shows it
    answer: str  # the gold answer: option letter and text
    grounding: float | None  # the share of reasoning steps the graph backs
    relevance: float | None  # how relevant its paths are to the question, when the run recorded it
    adopted: int  # the fork its result was adopted from (0: the run's own)


QUESTION_SHOWN = 110  # characters of the question the list shows


def reason_of(row: dict) -> str:
    """The one reason a list filters by: why it was rejected, or what kind of error."""
    if row.get("status") == "rejected":
        return rejection_kind(row)
    if row.get("status") == "error":
        return error_kind(row)
    return ""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def path_relevance(path: dict) -> float | None:
    """A path's relevance score: ``{"score", "reasons"}`` as runs record it, or a bare number."""
    value = path.get("relevance")
    return _number(value.get("score") if isinstance(value, dict) else value)


def relevance_of(row: dict) -> float | None:
    """The sample's relevance: the row's own (the mean over the paths its reasoning was
    given), else that mean worked out from its paths; None when the run recorded none."""
    own = _number(row.get("relevance"))
    if own is not None:
        return own
    found = [r for r in (path_relevance(p) for p in row.get("paths") or [] if isinstance(p, dict)) if r is not None]
    return round(sum(found) / len(found), 4) if found else None


def _entry(row: dict, offset: int) -> Entry:
    question = " ".join(str(row.get("question") or "").split())
    answer = " ".join(filter(None, (f"{row['answer_idx']}." if row.get("answer_idx") else "", str(row.get("answer") or ""))))
    return Entry(
        id=str(row["id"]), status=row.get("status") or "?", reason=reason_of(row),
        dataset=row.get("dataset") or "", attempts=len(row.get("attempts") or []),
        degraded=tuple(str(d).split(":", 1)[0].strip() for d in row.get("degraded") or []), offset=offset,
        text=f"{row.get('question') or ''}\n{row.get('reasoning') or ''}".lower(),
        question=question if len(question) <= QUESTION_SHOWN else question[:QUESTION_SHOWN - 1].rstrip() + "…",
        answer=answer, grounding=_number((row.get("grounding") or {}).get("score")), relevance=relevance_of(row),
        adopted=(row.get("adopted") or {}).get("branch") or 0,
    )


@dataclass
class Filters:
    status: str = ""
    reason: str = ""
    dataset: str = ""
    attempts: str = ""
    reviewed: str = ""  # "", "yes", "no" or a decision
    q: str = ""
    sort: str = ""  # one of SORTS, "-" first for descending; "" is the run's order

    @classmethod
    def from_query(cls, params) -> Filters:
        return cls(**{name: (params.get(name) or "").strip() for name in cls.__dataclass_fields__})

    def query(self, **extra: Any) -> str:
        """The filters (and ``extra``) as a query string, empty values left out."""
        pairs = {**{k: v for k, v in vars(self).items() if v}, **{k: v for k, v in extra.items() if v}}
        return urlencode(pairs)

    def keep(self, entry: Entry, reviews: dict[str, dict]) -> bool:
        review = reviews.get(entry.id)
        if self.status and entry.status != self.status:
            return False
        if self.reason and entry.reason != self.reason:
            return False
        if self.dataset and entry.dataset != self.dataset:
            return False
        if self.attempts and str(entry.attempts) != self.attempts:
            return False
        if self.reviewed == "yes" and review is None or self.reviewed == "no" and review is not None:
            return False
        if self.reviewed in DECISIONS and (review or {}).get("decision") != self.reviewed:
            return False
        return not self.q or self.q.lower() in entry.text

    def order(self, entries: list[Entry], reviews: dict[str, dict]) -> list[Entry]:
        """The entries in the chosen order (stable: equal ones keep the run's order)."""
        column, descending = self.sort.lstrip("-"), self.sort.startswith("-")
        if column not in SORTS:
            return entries
        value = {
            "id": lambda e: e.id, "question": lambda e: e.question.lower(), "answer": lambda e: e.answer.lower(),
            "status": lambda e: (e.status, e.reason), "grounding": lambda e: e.grounding,
            "relevance": lambda e: e.relevance, "attempts": lambda e: e.attempts,
            "review": lambda e: (reviews.get(e.id) or {}).get("decision"),
        }[column]
        present = [(value(e), e) for e in entries]
        known = sorted((pair for pair in present if pair[0] is not None), key=lambda pair: pair[0], reverse=descending)
        return [e for _, e in known] + [e for v, e in present if v is None]

    def sorted_by(self, column: str) -> str:
        """The query string that sorts by ``column``: ascending first, then descending
        (scores start high-first: ``grounding`` and ``relevance`` are read best or worst first)."""
        first = f"-{column}" if column in ("grounding", "relevance") else column
        following = first[1:] if first.startswith("-") else f"-{first}"
        return Filters(**{**vars(self), "sort": following if self.sort == first else first}).query()

    def sort_mark(self, column: str) -> str:
        return "" if self.sort.lstrip("-") != column else " ▼" if self.sort.startswith("-") else " ▲"


class RunIndex:
    """The samples of a run directory (results.jsonl) or of the chat store (its checkpoint
    threads), re-read when results.jsonl or reviews.jsonl change on disk (a run still going,
    another reviewer)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.results = run_dir / RESULTS
        if not self.results.is_file() and not (run_dir / replay.CHECKPOINTS).is_file():
            raise ViewError(f"{run_dir} holds neither {RESULTS} nor {replay.CHECKPOINTS}; "
                            "pass a run directory (run --out) or the chat store")
        self.chat = not self.results.is_file()
        self._lock = threading.Lock()
        self._results_stamp: tuple | None = None
        self._reviews_stamp: tuple | None = None
        self.entries: list[Entry] = []
        self.positions: dict[str, int] = {}
        self.has_relevance = False  # whether any row carries a relevance (the list then shows it)
        self._chat_rows: dict[str, dict] = {}
        self._reviews: dict[str, dict] = {}
        self.refresh()

    @staticmethod
    def _stamp(path: Path) -> tuple | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return st.st_size, st.st_mtime_ns

    def refresh(self) -> None:
        with self._lock:
            stamp = self._stamp(self.results if not self.chat else self.run_dir / replay.CHECKPOINTS)
            if stamp != self._results_stamp:
                self._load_chat() if self.chat else self._load_results()
                self.positions = {e.id: i for i, e in enumerate(self.entries)}
                self.has_relevance = any(e.relevance is not None for e in self.entries)
                self._results_stamp = stamp
            stamp = self._stamp(self.run_dir / REVIEWS)
            if stamp != self._reviews_stamp:
                self._reviews = read_reviews(self.run_dir)
                self._reviews_stamp = stamp

    def _load_results(self) -> None:
        try:  # a torn last line (a crash) is not a sample yet
            self.entries = [_entry(row, offset) for offset, row in iter_rows(self.results)]
        except CorruptLineError as exc:
            raise ViewError(str(exc)) from None

    def _load_chat(self) -> None:
        with replay.open_run(self.run_dir) as graph:
            rows = [result_row(values.get("record", {}).get("id", thread), thread, values)
                    for thread, values in replay.latest_states(graph) if values.get("record")]
        self._chat_rows = {r["id"]: r for r in rows}
        self.entries = [_entry(r, -1) for r in rows]

    @property
    def reviews(self) -> dict[str, dict]:
        return self._reviews

    def row(self, sample_id: str) -> dict | None:
        position = self.positions.get(sample_id)
        if position is None:
            return None
        entry = self.entries[position]
        if entry.offset < 0:
            return self._chat_rows[sample_id]
        with open(self.results, "rb") as f:
            f.seek(entry.offset)
            return json.loads(f.readline())

    def select(self, filters: Filters) -> list[Entry]:
        reviews = self._reviews
        return filters.order([e for e in self.entries if filters.keep(e, reviews)], reviews)

    def facets(self) -> dict[str, list[tuple[str, int]]]:
        """The values each list filter can take, with how many samples have them."""
        count = lambda values: sorted(Counter(values).items(), key=lambda kv: (-kv[1], str(kv[0])))  # noqa: E731
        return {
            "status": count(e.status for e in self.entries),
            "reason": count(e.reason for e in self.entries if e.reason),
            "dataset": count(e.dataset for e in self.entries if e.dataset),
            "attempts": sorted(Counter(str(e.attempts) for e in self.entries).items()),
        }

    def record_review(self, sample_id: str, decision: str, note: str, who: str | None) -> dict:
        review = review_line(sample_id, decision, note, who)
        with self._lock:
            append_review(self.run_dir, review)
            self._reviews = {**self._reviews, sample_id: review}
            self._reviews_stamp = self._stamp(self.run_dir / REVIEWS)
        return review


# -- what the pages show ---------------------------------------------------------------------
def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        return {"unreadable": f"{path.name}: {exc}"}


def overview(index: RunIndex) -> dict:
    """The charts and the run's records for the overview page."""
    try:
        summary = recorded_summary(index.run_dir)
    except SummaryFileError as exc:  # shown, and the page is made from the rows
        summary = {"unreadable": str(exc)}
    statuses = Counter(e.status for e in index.entries)
    reasons = Counter(e.reason for e in index.entries if e.status == "rejected")
    errors = Counter(e.reason for e in index.entries if e.status == "error")
    degraded = Counter(node for e in index.entries for node in e.degraded)
    reviewed = Counter(r["decision"] for r in index.reviews.values() if r["id"] in index.positions)
    return {
        "total": len(index.entries),
        "reviewed": sum(reviewed.values()),
        "adopted": sum(1 for e in index.entries if e.adopted),
        "charts": [
            ("Status", bars(statuses), "status"),
            ("Rejection reasons", bars(reasons), "reason"),
            ("Error kinds", bars(errors), "reason"),
            ("Degraded nodes", bars(degraded), ""),
            ("Reviews", bars(reviewed), "reviewed"),
        ],
        "summary": summary,
        "fingerprint": read_json(index.run_dir / FINGERPRINT),
        "timing": {k: summary[k] for k in ("wall_time_s", "samples_per_minute", "mean_attempts",
                                           "with_path_share", "usage") if k in summary},
        "settings": {k: endpoint(summary[k]) if k == "base_url" else summary[k]
                     for k in ("mode", "model", "base_url", "input", "shard", "merged_from") if summary.get(k)},
        "kg": summary.get("kg"),
    }


def bars(counts: Counter) -> list[dict]:
    """A horizontal bar chart's bars: label, count and width in percent of the largest."""
    top = max(counts.values(), default=0)
    return [{"label": label, "count": n, "width": round(100 * n / top) if top else 0}
            for label, n in counts.most_common()]


def split_conclusion(reasoning: str) -> tuple[str, str]:
    """The reasoning before its last ``Conclusion:`` and the conclusion itself (highlighted)."""
    at = reasoning.rfind("Conclusion:")
    return (reasoning, "") if at < 0 else (reasoning[:at], reasoning[at:])


@dataclass
class GraphNode:
    id: str
    name: str
    type: str
    x: float
    y: float
    colour: str
    role: str  # "start", "end" or "" (inner)


@dataclass
class GraphEdge:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    lx: float
    ly: float
    bend: float  # control-point offset, so two edges between the same nodes do not overlap
    path: str = field(default="")


COLUMN_WIDTH, ROW_HEIGHT, MARGIN = 230, 76, 40


def path_graph(paths: list[dict]) -> dict:
    """KG paths merged into one graph laid out in columns by position on the path (the
    question's node left, the answer's right), with one edge per (head, tail) direction
    labelled with every relation the facts on it carry, pointing from each fact's head."""
    if not paths:
        return {"nodes": [], "edges": [], "width": 0, "height": 0, "legend": []}
    longest = max(len(p["nodes"]) for p in paths)
    column: dict[str, int] = {}
    info: dict[str, tuple[str, str]] = {}
    starts = {p["nodes"][0] for p in paths}
    ends = {p["nodes"][-1] for p in paths}
    for p in paths:
        for i, (node, name, type_) in enumerate(zip(p["nodes"], p["names"], p["types"])):
            place = longest - 1 if node in ends else 0 if node in starts else i
            column[node] = min(column.get(node, place), place)
            info.setdefault(node, (name, type_))
    by_column: dict[int, list[str]] = {}
    for node in info:  # first-seen order: the best paths come first and stay on top
        by_column.setdefault(column[node], []).append(node)
    tallest = max(len(nodes) for nodes in by_column.values())
    height = 2 * MARGIN + (tallest - 1) * ROW_HEIGHT
    nodes: dict[str, GraphNode] = {}
    for col, members in by_column.items():
        top = (height - (len(members) - 1) * ROW_HEIGHT) / 2
        for row, node in enumerate(members):
            name, type_ = info[node]
            colour = type_colour(type_)
            role = "start" if node in starts else "end" if node in ends else ""
            nodes[node] = GraphNode(node, name, type_, MARGIN + 60 + col * COLUMN_WIDTH, top + row * ROW_HEIGHT, colour, role)
    labels: dict[tuple[str, str], list[str]] = {}
    for p in paths:
        for u, v, facts in zip(p["nodes"], p["nodes"][1:], p["hops"]):
            for fact in facts:
                head, tail = (u, v) if fact["forward"] else (v, u)
                found = labels.setdefault((head, tail), [])
                if fact["label"] not in found:
                    found.append(fact["label"])
    edges = []
    for (head, tail), names in labels.items():
        a, b = nodes[head], nodes[tail]
        bend = 18.0 if (tail, head) in labels else 0.0
        edges.append(_edge(a, b, ", ".join(names), bend))
    return {
        "nodes": list(nodes.values()), "edges": edges,
        "width": 2 * MARGIN + 120 + (max(column.values()) * COLUMN_WIDTH), "height": height,
        "legend": legend(n.type for n in nodes.values()),
    }


def type_colour(node_type: str) -> str:
    """The fill of a node of this type, the same on every graph of every page."""
    return TYPE_COLOURS.get(node_type) or OTHER_COLOURS[zlib.crc32(node_type.encode("utf-8")) % len(OTHER_COLOURS)]


def legend(types) -> list[tuple[str, str]]:
    """(type, colour) of each node type shown, in first-seen order."""
    return [(t, type_colour(t)) for t in dict.fromkeys(types)]


def _edge(a: GraphNode, b: GraphNode, label: str, bend: float) -> GraphEdge:
    """A quadratic curve from ``a`` to ``b`` (straight when ``bend`` is 0), shortened so its
    arrowhead stops at the node's circle; the label sits at the curve's middle."""
    dx, dy = b.x - a.x, b.y - a.y
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    radius = 14
    x1, y1, x2, y2 = a.x + ux * radius, a.y + uy * radius, b.x - ux * (radius + 4), b.y - uy * (radius + 4)
    cx, cy = (x1 + x2) / 2 - uy * bend * 2, (y1 + y2) / 2 + ux * bend * 2
    lx, ly = (x1 + 2 * cx + x2) / 4, (y1 + 2 * cy + y2) / 4 - 4
    edge = GraphEdge(x1, y1, x2, y2, label, lx, ly, bend)
    edge.path = f"M{x1:.1f},{y1:.1f} Q{cx:.1f},{cy:.1f} {x2:.1f},{y2:.1f}"
    return edge


@dataclass
class TimelineBranch:
    number: int
    steps: list[dict]
    status: str  # the status its last checkpoint holds
    finished: bool  # whether it ran to its end (only a finished fork can be adopted)


def checkpoint_view(run_dir: Path, sample_id: str, thread: str | None) -> dict:
    """The sample's branches with each step, what it changed and the command that forks it,
    and the candidate paths of its last checkpoint; or why there are none."""
    if not thread:
        return {"branches": [], "candidates": [], "missing": "this sample never ran (its record was rejected before the graph started)"}
    try:
        with replay.open_run(run_dir) as graph:
            chains = replay.branches(graph, thread)
            found = [TimelineBranch(number, [
                {"step": s.step, "node": s.node, "changes": s.changes, "time": s.created_at[11:23],
                 "fork": fork_command(run_dir, sample_id, s.step, number)
                 if replay.fork_refusal(s.snapshot, s.step) is None else ""}
                for s in replay.timeline(chain)], chain[-1].values.get("status") or "?", not chain[-1].next)
                for number, chain in enumerate(chains)]
            candidates = chains[0][-1].values.get("paths") or []
    except replay.ReplayError as exc:
        return {"branches": [], "candidates": [], "missing": str(exc)}
    return {"branches": found, "candidates": candidates, "missing": ""}


def fork_command(run_dir: Path, sample_id: str, step: int, branch: int) -> str:
    """The ``replay --fork`` command for one step, shell-quoted, ready to copy."""
    words = ["python", "run_agent.py", "replay", str(run_dir), "--sample", sample_id, "--fork", str(step)]
    if branch:
        words += ["--branch", str(branch)]
    return shlex.join(words) + " --set KEY=VALUE"


# -- the web app -----------------------------------------------------------------------------
def templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(ASSETS / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=1, ensure_ascii=False, default=str)
    return Jinja2Templates(env=env)


def create_app(run_dir: Path, token: str | None = None, hosts: tuple[str, ...] = LOOPBACK_HOSTS) -> Starlette:
    """The viewer of ``run_dir``; ``token`` (made here when not given) guards review POSTs;
    ``hosts`` are the Host header values the app answers."""
    index = RunIndex(run_dir)
    token = token or secrets.token_urlsafe(24)
    pages = templates()
    pages.env.globals.update(quote=_quote, type_colour=type_colour, path_relevance=path_relevance)

    def render(request: Request, name: str, status_code: int = 200, **context) -> Response:
        context.update(run_dir=str(run_dir), chat=index.chat, token=token)
        return pages.TemplateResponse(request, name, context, status_code=status_code, headers=SECURITY_HEADERS)

    def home(request: Request) -> Response:
        index.refresh()
        return render(request, "overview.html", **overview(index))

    def samples(request: Request) -> Response:
        index.refresh()
        filters = Filters.from_query(request.query_params)
        chosen = index.select(filters)
        pages_total = max(1, math.ceil(len(chosen) / PAGE_SIZE))
        page = min(max(_int(request.query_params.get("page"), 1), 1), pages_total)
        shown = chosen[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        reviews = index.reviews
        return render(request, "samples.html", filters=filters, facets=index.facets(), shown=shown,
                      matching=len(chosen), page=page, pages=pages_total, reviews=reviews,
                      back=filters.query(), total=len(index.entries), relevance=index.has_relevance,
                      reviewed_in_list=sum(1 for e in chosen if e.id in reviews))

    def sample(request: Request) -> Response:
        index.refresh()
        sample_id = request.path_params["sample_id"]
        row = index.row(sample_id)
        if row is None:
            raise HTTPException(404, f"no sample {sample_id!r} in this run")
        filters = Filters.from_query(request.query_params)
        listed = index.select(filters)
        position, previous, following = _neighbours(listed, sample_id)
        checkpoints = checkpoint_view(run_dir, sample_id, row.get("thread_id"))
        verification = row.get("verification") or {}
        body, conclusion = split_conclusion(row.get("reasoning") or "")
        pruned, candidates = path_graph(row.get("paths") or []), path_graph(checkpoints["candidates"])
        saved_id = request.query_params.get("saved")
        return render(
            request, "sample.html", row=row, review=index.reviews.get(sample_id), body=body, conclusion=conclusion,
            verification=verification, pruned=pruned, candidates=candidates,
            legend=legend(n.type for g in (pruned, candidates) for n in g["nodes"]), checkpoints=checkpoints,
            back=filters.query(), previous=previous, next=following, decisions=DECISIONS,
            position=position, listed=len(listed), reviewed_in_list=sum(1 for e in listed if e.id in index.reviews),
            saved=(saved_id, index.reviews.get(saved_id)) if saved_id in index.reviews else None,
            who=unquote(request.cookies.get(REVIEWER_COOKIE, "")), adopted=row.get("adopted"),
        )

    async def posted(request: Request) -> tuple[Any, str, str]:
        """The form of a review or adoption, its sample and reviewer: refused without this
        viewer session's token (a page of another site cannot read it), 404 for an unknown sample."""
        form = await request.form()
        if not secrets.compare_digest(str(form.get("token") or ""), token):
            raise HTTPException(403, "This review was refused: it does not carry this viewer session's token. "
                                     "Review from the viewer's own page.")
        sample_id = request.path_params["sample_id"]
        if sample_id not in index.positions:
            raise HTTPException(404, f"no sample {sample_id!r} in this run")
        return form, sample_id, str(form.get("who") or "").strip()

    async def review(request: Request) -> Response:
        form, sample_id, who = await posted(request)
        try:
            index.record_review(sample_id, str(form.get("decision") or ""), str(form.get("note") or "").strip(), who or None)
        except ReviewError as exc:
            return HTMLResponse(f"Review refused: {escape(str(exc))}", status_code=400, headers=SECURITY_HEADERS)
        return _saved(form, sample_id, who)

    async def adopt_fork(request: Request) -> Response:
        form, sample_id, who = await posted(request)
        try:
            adopt(run_dir, sample_id, _int(str(form.get("branch") or ""), -1), who, str(form.get("note") or "").strip())
        except AdoptionError as exc:
            return HTMLResponse(f"Adoption refused: {escape(str(exc))}", status_code=400, headers=SECURITY_HEADERS)
        index.refresh()
        return _saved(form, sample_id, who)

    def _saved(form, sample_id: str, who: str) -> Response:
        """On to the page the form names (only a page of this viewer, never another site),
        saying what was saved, with the reviewer's name remembered for the next form."""
        target = str(form.get("next") or "")
        if not target.startswith("/sample/"):
            target = f"/sample/{_quote(sample_id)}"
        target += ("&" if "?" in target else "?") + urlencode({"saved": sample_id})
        response = RedirectResponse(target, status_code=303)
        if who:
            response.set_cookie(REVIEWER_COOKIE, quote(who, safe=""), max_age=365 * 24 * 3600, path="/",
                                httponly=True, samesite="strict")
        return response

    async def not_found(request: Request, exc: HTTPException) -> Response:
        return render(request, "error.html", status_code=exc.status_code, message=exc.detail, code=exc.status_code)

    async def unreadable(request: Request, exc: ViewError) -> Response:  # results.jsonl damaged while viewing
        return render(request, "error.html", status_code=500, message=str(exc))

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/samples", samples),
            _any_id_route("/review/", review, methods=["POST"]),
            _any_id_route("/adopt/", adopt_fork, methods=["POST"]),
            _any_id_route("/sample/", sample),
            Mount("/static", StaticFiles(directory=ASSETS / "static"), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))],
        exception_handlers={HTTPException: not_found, ViewError: unreadable},
    )
    return app


def _any_id_route(prefix: str, endpoint, **options) -> Route:
    """A route ending in a sample id, whatever it holds: Starlette's ``path`` convertor (``.*``)
    stops at a newline, so the link of an id holding one would 404."""
    route = Route(f"{prefix}{{sample_id:path}}", endpoint, **options)
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


def _neighbours(entries: list[Entry], sample_id: str) -> tuple[int, str | None, str | None]:
    """The sample's position (1-based; 0: not in the current list) and the samples before
    and after it in the current list."""
    at = next((i for i, e in enumerate(entries) if e.id == sample_id), None)
    if at is None:
        return 0, None, None
    return at + 1, (entries[at - 1].id if at else None), (entries[at + 1].id if at + 1 < len(entries) else None)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def _quote(sample_id: str) -> str:
    """A sample id as one URL path segment (ids may hold '/', '?', '#')."""
    return quote(sample_id, safe="")


def serve(run_dir: Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the viewer until interrupted."""
    import uvicorn

    hosts = tuple(dict.fromkeys((*LOOPBACK_HOSTS, host))) if host not in ("0.0.0.0", "::") else ("*",)
    uvicorn.run(create_app(run_dir, hosts=hosts), host=host, port=port, log_level="warning")
