"""What a run's LLM calls cost, and the budget that stops a run before it passes a cap.

Prices come from one of three places, always recorded with their source and date:
``--price-input/--price-output`` (USD per million tokens, as the user's contract says); a local
server (127.0.0.1, a private address, ``.local``), which costs nothing; else the dated price
table that ships with the ``genai-prices`` package (pydantic's, read offline from the installed
package: it is never updated over the network here), looked up by model and endpoint. A model
that table does not know has no price: the cost is then ``None``, never a guess.

A budget (``--max-cost`` / ``--max-tokens``) is kept by ``Meter``, which the runner asks before
it starts each sample (``admit``) and tells when one finishes (``finished``). A sample starts only
if what is spent plus what every sample in flight may still take, itself included, stays within
the cap; otherwise it waits for a sample in flight to finish (its spend is then known) and the
run stops starting samples when none is left in flight. Samples in flight always finish. What a
sample in flight "may still take" is its reservation: before ``MEASURED_AFTER`` samples have
finished, one attempt's requests at their prompt (estimated from the record and the prompt
files, 4 characters a token) plus each node's full ``max_tokens``; after that, the most any
finished sample of the run took. So the spend passes the cap only when a sample in flight takes
more than its reservation, by that excess; each sample is bounded by ``sample_ceiling``, so the
overshoot is at most ``concurrency × (sample_ceiling − reservation)``, recorded in summary.json
as ``overshoot_bound``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from functools import cache
from importlib import resources as package_files
from typing import Any
from urllib.parse import urlsplit

from agent.config import Settings

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers
MILLION = 1_000_000
# Finished samples needed before the reservation is the most a finished sample took.
MEASURED_AFTER = 10
# Nodes a first attempt asks: the calls the architecture counts ("at most 5 calls plus repairs").
FIRST_ATTEMPT = ("extract", "map", "prune", "generate", "verify")
# Prompt files each node's request is built from (prompts/), for the prompt estimate.
NODE_PROMPTS = {"extract": ("extract.txt", "json_instruction.txt"), "map": ("select_entity.txt", "json_instruction.txt"),
                "path": ("explore.txt",), "prune": ("prune.txt", "json_instruction.txt"),
                "generate": ("generate.txt", "grounding_feedback.txt"),
                "verify": ("answer_from_reasoning.txt", "judge.txt", "json_instruction.txt")}
# What a request's prompt carries beyond the record and its template: the paths listed (prune,
# generate, verify see at most ``max_pruned_paths`` pruned ones, prune the candidates of each
# group), about this many tokens a path, and the reasoning verify is shown (generate's output).
PATH_TOKENS = 40
TOOL_RESULT_TOKENS = 400  # one exploration round's tool results, as the transcript grows


class PriceError(ValueError):
    """A budget or price that cannot be used (--max-cost without any known price)."""


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens, with where the figures come from."""

    input_per_million: float | None
    output_per_million: float | None
    source: str
    dated: str | None = None  # the table's date (its newest price's start date), or None

    @property
    def known(self) -> bool:
        return self.input_per_million is not None and self.output_per_million is not None

    def cost(self, input_tokens: float, output_tokens: float) -> float | None:
        if not self.known:
            return None
        return (input_tokens * self.input_per_million + output_tokens * self.output_per_million) / MILLION

    def describe(self) -> str:
        if not self.known:
            return f"no price known ({self.source})"
        if self.input_per_million == self.output_per_million == 0:
            return f"free ({self.source})"
        dated = f", dated {self.dated}" if self.dated else ""
        return (f"${self.input_per_million:g} / ${self.output_per_million:g} per million input / output tokens "
                f"({self.source}{dated})")

    def as_dict(self) -> dict[str, Any]:
        return {"input_per_million": self.input_per_million, "output_per_million": self.output_per_million,
                "source": self.source, "dated": self.dated}


def is_local(base_url: str | None) -> bool:
    """Whether the endpoint is a server on this machine or the local network (it costs nothing)."""
    if not base_url:
        return False
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".local") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def find_price(model: str | None, base_url: str | None, price_input: float | None = None,
               price_output: float | None = None) -> Price:
    """The price of ``model`` at ``base_url``: the user's figures, a local server's nothing, or
    the shipped table's (``genai-prices``), or an unknown price; ``model`` None: a KG-only run,
    which calls nothing."""
    if (price_input is None) != (price_output is None):
        raise PriceError("--price-input and --price-output go together: pass both (USD per million tokens)")
    if price_input is not None:
        if price_input < 0 or price_output < 0:
            raise PriceError("--price-input and --price-output must be ≥ 0 (USD per million tokens)")
        return Price(price_input, price_output, "--price-input/--price-output")
    if is_local(base_url):
        return Price(0.0, 0.0, f"a local server ({urlsplit(base_url).hostname}) costs nothing")
    if not model:
        return Price(0.0, 0.0, "KG-only: no LLM calls")
    return _table_price(model, base_url)


def _table_price(model: str, base_url: str | None) -> Price:
    from importlib import metadata

    from genai_prices import Usage, calc_price

    # The endpoint URL only tells the table which provider's price to read (no base URL: the
    # provider is found from the model name); nothing is fetched.
    version = metadata.version("genai-prices")
    source = f"genai-prices {version} price table, offline"
    try:
        # Per million at the size of one request: tiered prices (long-context surcharges) apply
        # per request, so a million tokens in one go would price the wrong tier.
        one_in = calc_price(Usage(input_tokens=1000, output_tokens=0), model_ref=model, provider_api_url=base_url)
        one_out = calc_price(Usage(input_tokens=0, output_tokens=1000), model_ref=model, provider_api_url=base_url)
    except LookupError as exc:
        return Price(None, None, f"{source}: {exc}; pass --price-input/--price-output")
    return Price(float(one_in.total_price) * 1000, float(one_out.total_price) * 1000,
                 f"{source}: {one_in.provider.name} {one_in.model.id}", _table_date())


def _table_date() -> str | None:
    """The newest start date of a price in the installed table that is in force today (the
    table also lists announced future prices): the table is at least that recent."""
    import datetime

    from genai_prices import data

    today = datetime.date.today()
    dates = [getattr(price.constraint, "start_date", None) for provider in data.providers
             for model in provider.models if isinstance(model.prices, list) for price in model.prices]
    dates = [d for d in dates if d is not None and (d.date() if isinstance(d, datetime.datetime) else d) <= today]
    return max(dates).isoformat() if dates else None


# -- tokens a sample may take --------------------------------------------------------------------
@dataclass(frozen=True)
class Tokens:
    input: float = 0
    output: float = 0

    @property
    def total(self) -> float:
        return self.input + self.output

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.input + other.input, self.output + other.output)

    def __mul__(self, k: float) -> Tokens:
        return Tokens(self.input * k, self.output * k)

    @staticmethod
    def of(usage: dict | None) -> Tokens:
        usage = usage or {}
        return Tokens(usage.get("input_tokens", 0), usage.get("output_tokens", 0))


def record_tokens(record: dict | None) -> int:
    """A record's question, options and answer, in tokens (estimated)."""
    if not record:
        return 0
    text = (record.get("question") or "") + " ".join(str(v) for v in (record.get("options") or {}).values())
    return (len(text) + len(str(record.get("answer") or ""))) // CHARS_PER_TOKEN


@cache
def _template_tokens(node: str) -> int:
    files = package_files.files("prompts")
    return sum(len(files.joinpath(name).read_text(encoding="utf-8")) for name in NODE_PROMPTS[node]) // CHARS_PER_TOKEN


def request_ceiling(node: str, settings: Settings, record: dict | None) -> Tokens:
    """One request of ``node``: its prompt (template, record, the paths and reasoning it is shown)
    and its full ``max_tokens``."""
    context = {"prune": settings.max_pruned_paths * settings.paths_per_pair // 2 * PATH_TOKENS,
               "generate": settings.max_pruned_paths * PATH_TOKENS,
               "verify": settings.max_pruned_paths * PATH_TOKENS + settings.max_tokens_generate,
               "path": settings.max_tool_calls * TOOL_RESULT_TOKENS}.get(node, 0)
    return Tokens(_template_tokens(node) + record_tokens(record) + context, settings.max_tokens[node])


def first_attempt_ceiling(settings: Settings, record: dict | None) -> Tokens:
    """A first attempt's requests, each at its prompt and full ``max_tokens`` (no repair)."""
    total = Tokens()
    for node in FIRST_ATTEMPT:
        total += request_ceiling(node, settings, record)
    return total


def sample_ceiling(settings: Settings, record: dict | None) -> Tokens:
    """The most one sample can take: every attempt (``max_attempts``), each request repaired once
    (the agent repairs an unusable answer once), a retry's exploration at its full number of
    rounds (``max_tool_calls``) plus one, and the verifier's judge."""
    first = first_attempt_ceiling(settings, record) + request_ceiling("verify", settings, record)
    retry = (request_ceiling("path", settings, record) * (settings.max_tool_calls + 1)
             + request_ceiling("map", settings, record) + request_ceiling("prune", settings, record)
             + request_ceiling("generate", settings, record) + request_ceiling("verify", settings, record) * 2)
    return (first + retry * (settings.max_attempts - 1)) * 2


# -- spend and budget --------------------------------------------------------------------------
@dataclass(frozen=True)
class Caps:
    max_cost: float | None = None  # USD
    max_tokens: int | None = None  # input + output

    @property
    def any(self) -> bool:
        return self.max_cost is not None or self.max_tokens is not None


@dataclass
class Meter:
    """Spend as samples finish, each sample's wall time, and the budget's admission of samples.

    ``earlier``: what earlier sessions of the run spent (``--resume`` goes on counting it).
    The runner calls ``admit`` before a sample starts (False: the budget is reached, start no
    more), and ``finished`` with its row and seconds when it ends."""

    price: Price
    caps: Caps
    settings: Settings
    concurrency: int = 1
    earlier: Tokens = Tokens()
    earlier_calls: int = 0
    spent: Tokens = Tokens()  # this session
    calls: int = 0
    durations: dict[str, float] = field(default_factory=dict)  # sample id → seconds
    first_start: float | None = None  # time.monotonic() when the first sample started
    reached: bool = False
    largest: Tokens = Tokens()  # the most one finished sample took
    per_sample: list[Tokens] = field(default_factory=list)  # each finished sample's spend, earlier sessions' too
    finished_samples: int = 0
    _reserved: dict[str, Tokens] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _changed: asyncio.Condition | None = None
    _ceiling: Tokens = Tokens()

    def __post_init__(self) -> None:
        if self.caps.max_cost is not None and not self.price.known:
            raise PriceError(f"--max-cost needs a price, and there is none: {self.price.source}")

    def resume_from(self, rows: list[dict], recorded: dict | None) -> None:
        """Go on counting what earlier sessions spent: their rows' usage, or what the last
        summary recorded as spent when that is more (rows that ``--retry-errors`` dropped, whose
        calls were paid all the same)."""
        from_rows = Tokens()
        for row in rows:
            from_rows += Tokens.of(row.get("usage"))
            if row.get("thread_id"):
                used = Tokens.of(row.get("usage"))
                self.per_sample.append(used)
                self.finished_samples += 1
                self.largest = max(self.largest, used, key=lambda t: t.total)
        calls = sum((r.get("usage") or {}).get("llm_calls", 0) for r in rows)
        recorded = recorded or {}
        from_summary = Tokens(recorded.get("input_tokens", 0), recorded.get("output_tokens", 0))
        if from_summary.total > from_rows.total:
            self.earlier, self.earlier_calls = from_summary, max(calls, recorded.get("llm_calls", 0))
        else:
            self.earlier, self.earlier_calls = from_rows, calls

    @property
    def total(self) -> Tokens:
        return self.earlier + self.spent

    def cost(self, tokens: Tokens) -> float | None:
        return self.price.cost(tokens.input, tokens.output)

    def reservation(self, record: dict | None) -> Tokens:
        """What a sample about to start may take (see the module's docstring)."""
        if self.finished_samples >= MEASURED_AFTER:
            return self.largest
        return first_attempt_ceiling(self.settings, record)

    def _fits(self, extra: Tokens) -> bool:
        committed = self.total + extra
        for reserved in self._reserved.values():
            committed += reserved
        if self.caps.max_tokens is not None and committed.total > self.caps.max_tokens:
            return False
        cost = self.cost(committed)
        return not (self.caps.max_cost is not None and cost is not None and cost > self.caps.max_cost)

    async def admit(self, sample_id: str, record: dict | None) -> bool:
        """Whether the sample may start now; waits while samples in flight hold the room it
        needs. False once the budget is reached: the run starts no more samples."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            while True:
                if self.reached:
                    return False
                need = self.reservation(record) if self.caps.any and record is not None else Tokens()
                if self._fits(need):
                    self._reserved[sample_id] = need
                    self._ceiling = max(self._ceiling, sample_ceiling(self.settings, record), key=lambda t: t.total)
                    self._started[sample_id] = time.monotonic()
                    self.first_start = self.first_start or self._started[sample_id]
                    return True
                if not self._reserved:
                    self.reached = True
                    self._changed.notify_all()
                    return False
                await self._changed.wait()

    async def finished(self, row: dict) -> None:
        used = Tokens.of(row.get("usage"))
        self.spent += used
        self.calls += (row.get("usage") or {}).get("llm_calls", 0)
        started = self._started.pop(row["id"], None)
        if started is not None:
            self.durations[row["id"]] = time.monotonic() - started
        if row.get("thread_id"):  # a sample that ran (a malformed record costs nothing)
            self.finished_samples += 1
            self.largest = max(self.largest, used, key=lambda t: t.total)
            self.per_sample.append(used)
        if self._changed is None:
            self._reserved.pop(row["id"], None)
            return
        async with self._changed:
            self._reserved.pop(row["id"], None)
            self._changed.notify_all()

    def so_far(self, unfinished: int, rows: list[dict] | None = None) -> dict[str, Any]:
        """Tokens and cost spent (every session), and the projection for the ``unfinished``
        records from the finished samples' spread (``rows``: all of the run's, else those
        finished in this process)."""
        from agent.runs.estimate import rest_of_run

        if rows is not None:
            per_sample = [Tokens.of(r.get("usage")) for r in rows if r.get("thread_id")]
        else:
            per_sample = self.per_sample
        total = self.total
        rest_in = rest_of_run([t.input for t in per_sample], unfinished)
        rest_out = rest_of_run([t.output for t in per_sample], unfinished)
        rest = rest_of_run([t.total for t in per_sample], unfinished)
        found: dict[str, Any] = {
            "input_tokens": int(total.input), "output_tokens": int(total.output), "tokens": int(total.total),
            "llm_calls": self.earlier_calls + self.calls, "cost_usd": _rounded(self.cost(total)),
        }
        if rest is not None:
            found["rest"] = {"records": unfinished, "tokens": rest.rounded(),
                             "cost_usd": _rounded(self.cost(Tokens(rest_in.point, rest_out.point)))}
        return found

    def report(self, rows: list[dict], unfinished: int) -> dict[str, Any]:
        """What summary.json records: the price, the spend of all sessions with the projection
        for the records left, and the budget."""
        report: dict[str, Any] = {"price": self.price.as_dict(), "spent": self.so_far(unfinished, rows)}
        if self.caps.any:
            reserve = self.largest if self.finished_samples >= MEASURED_AFTER else Tokens()
            bound = Tokens(max(self._ceiling.input - reserve.input, 0), max(self._ceiling.output - reserve.output, 0))
            bound = bound * self.concurrency
            report["budget"] = {
                "max_cost_usd": self.caps.max_cost, "max_tokens": self.caps.max_tokens, "reached": self.reached,
                "overshoot_bound": {"tokens": int(bound.total), "cost_usd": _rounded(self.cost(bound))},
            }
        return report


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
