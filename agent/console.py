"""Terminal output shared by the commands: progress bars and messages on stderr."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:  # the replay module loads LangGraph: not for every command's start
    from agent.inspection.replay import Step
    from agent.runs.cost import Meter

err = Console(stderr=True, soft_wrap=True, emoji=False)
out = Console(emoji=False)  # data (ids, names, reasons) is printed as text: escaped, never markup or :emoji:


class RichProgress:
    """graphs.progress.Progress drawn with rich on stderr."""

    def __init__(self, console: Console = err) -> None:
        self.console = console

    def note(self, message: str) -> None:
        self.console.print(f"[dim]•[/] {message}", highlight=False)

    def task(self, description: str, total: int | None = None) -> Callable[[int], None]:
        bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
        )
        task = bar.add_task(description, total=total)
        bar.start()

        def update(done: int) -> None:
            bar.update(task, completed=done)
            if total is not None and done >= total:
                bar.stop()

        return update


class RunProgress:
    """The progress of a dataset run: done / total, accepted / rejected / error, rate, ETA.

    On a terminal it is a live bar. When stderr is not a terminal (nohup, CI, a cluster
    job's log) a bar is never drawn, so a plain line is printed every ``interval`` seconds
    instead, and once at the end.
    """

    def __init__(self, total: int, done: dict[str, int] | None = None, console: Console = err,
                 interval: float = 30.0, meter: Meter | None = None) -> None:
        from rich.progress import TaskProgressColumn

        self.console, self.total, self.interval, self.meter = console, total, interval, meter
        self.counts = {**dict.fromkeys(("accepted", "rejected", "error"), 0), **(done or {})}
        self.bar = Progress(
            TextColumn("Samples"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("[green]✓ {task.fields[accepted]}[/] [yellow]✗ {task.fields[rejected]}[/] [red]! {task.fields[error]}[/]"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[spend]}"), console=console, transient=False,
        ) if console.is_terminal else None
        self.task = self.bar.add_task("run", total=total, completed=sum(self.counts.values()), rate="", spend="",
                                      **self.counts) if self.bar else None
        self._started, self._new = None, 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> RunProgress:
        self._started = time.monotonic()
        if self.bar:
            self.bar.start()
        else:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.stop()
            return
        self._stop.set()
        if self._ticker:
            self._ticker.join()
        self.console.print(self.line(), highlight=False, markup=False)

    def __call__(self, row: dict) -> None:
        self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
        self._new += 1
        if self.bar:
            self.bar.update(self.task, advance=1, rate=f"{self._rate():,.1f}/min", spend=self._spend(), **self.counts)

    def _rate(self) -> float:
        """Samples per minute finished in this session."""
        return self._new / (max(time.monotonic() - (self._started or time.monotonic()), 1e-6) / 60)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self.console.print(self.line(), highlight=False, markup=False)

    def line(self) -> str:
        """One plain progress line: done, accepted, rejected, errors, rate and ETA."""
        done = sum(self.counts.values())
        rate = self._rate()
        left = self.total - done
        if not left and not self._new:  # a finished run resumed: no rate to give, nothing to wait for
            return (f"Samples {done}/{self.total}: {self.counts['accepted']} accepted, {self.counts['rejected']} "
                    f"rejected, {self.counts['error']} errors; all done before, nothing left to run")
        seconds = round(60 * left / rate) if rate > 0 else None
        eta = f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds is not None else "unknown"
        share = f" ({100 * done / self.total:.0f}%)" if self.total else ""
        spend = self._spend()
        return (f"Samples {done}/{self.total}{share}: {self.counts['accepted']} accepted, "
                f"{self.counts['rejected']} rejected, {self.counts['error']} errors; "
                f"{rate:,.1f}/min, ETA {eta}" + (f"; {spend}" if spend else ""))

    def _spend(self) -> str:
        """Tokens and cost so far, and the projection for the records left (``cost.Meter``)."""
        if self.meter is None:
            return ""
        spent = self.meter.so_far(self.total - sum(self.counts.values()))
        text = f"{spent['tokens']:,} tokens{_usd(spent['cost_usd'])} so far"
        rest = spent.get("rest")
        if rest and rest["records"]:
            text += f", ~{rest['tokens']['point']:,.0f}{_usd(rest['cost_usd'])} for the rest"
        return text


def _usd(cost: float | None) -> str:
    return f" (${cost:,.4f})" if cost else ""


def timeline_table(steps: list[Step], title: str) -> Table:
    """A branch's checkpoints as a table (shared by chat's /trace and ``replay --sample``)."""
    table = Table(title=title, title_justify="left")
    for column in ("step", "node", "changed", "time"):
        table.add_column(column)
    for s in steps:
        table.add_row(str(s.step), s.node, escape("; ".join(s.changes)) or "—", s.created_at[11:23])
    return table


# -- what the commands print of runs and replays ------------------------------------------------
def print_summary(summary: dict, out_dir: Path) -> None:
    counts = summary["counts"]
    usage = summary.get("usage", {})
    # One metric per row: readable in an 80-column terminal.
    table = Table(title=f"{summary['records']} records ({summary['mode']})", title_justify="left", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in (
        ("accepted", str(counts["accepted"])),
        ("rejected", str(counts["rejected"])),
        ("error", str(counts["error"])),
        *([("excluded (evaluation overlap)", str(counts["excluded"]))] if counts.get("excluded") else []),
        ("with a path", f"{summary['with_path_share']:.0%}"),
        ("mean attempts", f"{summary['mean_attempts']:.2f}"),
        ("LLM calls", f"{usage.get('llm_calls', 0):,}"),
        ("tokens in / out", f"{usage.get('input_tokens', 0):,} / {usage.get('output_tokens', 0):,}"),
        *spend_rows(summary),
        *grounding_rows(summary.get("grounding")),
        *relevance_rows(summary.get("relevance")),
        ("wall time", f"{summary['wall_time_s']:.1f} s"),
        ("samples per minute", f"{summary.get('samples_per_minute', 0):,.1f}"),
    ):
        table.add_row(metric, value)
    out.print(table)
    for title, reasons in (("Rejected", summary["rejection_reasons"]), ("Errors", summary.get("error_kinds", {}))):
        for reason, n in reasons.items():
            out.print(f"  {title}: {reason} × {n}", highlight=False, markup=False)
    for reason, n in list(summary["error_reasons"].items())[:5]:
        out.print(f"    {reason} × {n}", highlight=False, markup=False)
    if summary.get("error_kinds", {}).get("LLM error"):
        out.print("  (samples that failed on the LLM can be run again: --resume --retry-errors)")
    from agent.runs.results import (  # loads the reasoning package: only when a run has ended
        RESULTS,
        SUMMARY,
    )

    out.print(f"Results: {out_dir / RESULTS}\nSummary: {out_dir / SUMMARY}", markup=False)
    print_next_steps(out_dir)


def print_next_steps(run_dir: Path) -> None:
    """The commands a user goes on with after a run: see and review it, then export it."""
    import shlex
    import sys

    program = "python run_agent.py" if Path(sys.argv[0]).name == "run_agent.py" else "medreason"
    where = shlex.quote(str(run_dir))
    out.print(f"Next: {program} view {where}   (browse and review the samples in the browser)\n"
              f"      {program} export {where} --format sft --out train.jsonl   (a training file; "
              "--format medreason, huatuo or hf for the others)", markup=False, highlight=False)


def grounding_rows(grounding: dict | None) -> list[tuple[str, str]]:
    """The report's lines on grounding: mean score and adherence, then steps by label."""
    if not grounding or not grounding["samples"]:
        return []
    mean = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
    steps = " / ".join(str(n) for n in grounding["steps"].values())
    rows = [("grounding (mean score)", mean(grounding["mean_score"])),
            ("path adherence (mean)", mean(grounding["mean_adherence"])),
            ("steps grounded / contradicted / unsupported / unlinked", steps)]
    if grounding.get("ungraded_steps"):
        from agent.reasoning.grounding import MAX_GRADED_STEPS

        rows.append((f"steps not graded (past a record's first {MAX_GRADED_STEPS:,})", f"{grounding['ungraded_steps']:,}"))
    return rows


def relevance_rows(relevance: dict | None) -> list[tuple[str, str]]:
    """The report's lines on path relevance: its mean over accepted samples and over all."""
    if not relevance or not relevance["samples"]:
        return []
    mean = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
    return [("relevance (mean, accepted)", mean(relevance["accepted_mean"])),
            ("relevance (mean, with paths)", mean(relevance["mean"]))]


def samples_table(samples: list[dict]) -> Table:
    """A run's samples as ``replay`` lists them: id, status, attempts, reason."""
    table = Table(title=f"{len(samples)} samples", title_justify="left")
    for column in ("id", "status", "attempts", "reason"):
        table.add_column(column)
    for s in samples:
        table.add_row(escape(s["id"]), escape(s["status"] or "?"), str(s["attempts"]), escape(s["reason"] or ""))
    return table


def outcome_table(rows, left: str, right: str) -> Table:
    """Two outcomes of a sample side by side (``replay.compare`` rows), differences in yellow."""
    table = Table(title_justify="left")
    for column in ("", left, right):
        table.add_column(column)
    for name, a, b, differs in rows:
        style = "bold yellow" if differs else ""
        table.add_row(name, escape(str(a)), escape(str(b)), style=style)
    return table


def print_overlap_report(summary: dict, report: Path) -> None:
    """``decontaminate``'s report: per evaluation set, the records matched, by method, with
    examples; then the pairs for review, duplicates and unreadable records."""
    against = ", ".join(f"{a['name']} ({a['questions']:,} questions)" for a in summary["against"])
    out.print(f"{summary['records']:,} records checked against {against}", highlight=False, markup=False)
    table = Table(title_justify="left")
    for column in ("evaluation set", "records matched", "by method (a record may match by several)"):
        table.add_column(column)
    for name, found in summary["by_eval"].items():
        methods = ", ".join(f"{method} {n:,}" for method, n in found["methods"].items()) or "—"
        table.add_row(escape(name), f"{found['records']:,}", escape(methods))
    out.print(table)
    for name, found in summary["by_eval"].items():
        for example in found["examples"]:
            out.print(f"  {example['id']} = {name} {example['eval_id']} ({example['method']} {example['score']}): "
                      f"“{example['span'][:100]}”", highlight=False, markup=False)
    duplicates = summary["duplicates"]
    for line in (
        f"Matched: {summary['matched']:,} of {summary['records']:,} records",
        f"For review (close but below the match thresholds, or the same text with another answer): {summary['for_review']:,}",
        f"Duplicates of other input records: {duplicates['records']:,}"
        + (f" ({', '.join(f'{m} {n:,}' for m, n in duplicates['by_method'].items())})" if duplicates["records"] else ""),
        *([f"Unreadable records (their lines say why): {summary['unreadable']:,}"] if summary["unreadable"] else []),
        f"Report: {report}",
    ):
        out.print(line, highlight=False, markup=False)


def spend_rows(summary: dict) -> list[tuple[str, str]]:
    """The report's lines on what the run spent (every session) and its budget."""
    spent, budget = summary.get("spent"), summary.get("budget")
    if not spent:
        return []
    rows = [("tokens spent, every session", f"{spent['tokens']:,}")]
    if spent.get("cost_usd") is not None:
        rows.append(("cost, every session", f"${spent['cost_usd']:,.4f}"))
    if budget:
        caps = " and ".join(c for c in (f"${budget['max_cost_usd']:,}" if budget["max_cost_usd"] is not None else "",
                                        f"{budget['max_tokens']:,} tokens" if budget["max_tokens"] is not None else "") if c)
        rows.append(("budget", f"{caps}: {'reached' if budget['reached'] else 'not reached'}"))
    return rows


def estimate_table(found: dict) -> Table:
    """``estimate``'s projection of the whole input: each measure with its 90% range."""
    table = Table(title=f"Projection for {found['records']:,} records from a pilot of {found['pilot']:,} "
                        f"(90% range)", title_justify="left")
    for column, justify in (("measure", "left"), ("estimate", "right"), ("range", "right")):
        table.add_column(column, justify=justify)

    def add(name: str, key: str, shown) -> None:
        if found.get(key) is None:
            table.add_row(name, "unknown", "")
            return
        table.add_row(name, shown(found[key]), f"{shown(found[key + '_low'])} – {shown(found[key + '_high'])}")

    count = lambda v: f"{v:,.0f}"  # noqa: E731
    add("LLM calls", "llm_calls", count)
    add("input tokens", "input_tokens", count)
    add("output tokens", "output_tokens", count)
    add("tokens", "tokens", count)
    add(f"wall time at concurrency {found['concurrency']}", "wall_time_s", lambda v: f"{v / 60:,.1f} min")
    add("accepted share", "accepted_share", lambda v: f"{v:.0%}")
    add("cost", "cost_usd", lambda v: f"${v:,.4f}")
    add("cost per accepted sample", "cost_per_accepted_usd", lambda v: f"${v:,.5f}")
    return table
