"""Terminal output shared by the commands: progress bars and messages on stderr."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

err = Console(stderr=True, soft_wrap=True, emoji=False)


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
    """The live bar of a dataset run: done / total, accepted / rejected / error, rate, ETA."""

    def __init__(self, total: int, done: dict[str, int] | None = None, console: Console = err) -> None:
        from rich.progress import TaskProgressColumn

        self.counts = {s: (done or {}).get(s, 0) for s in ("accepted", "rejected", "error")}
        self.bar = Progress(
            TextColumn("Samples"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("[green]✓ {task.fields[accepted]}[/] [yellow]✗ {task.fields[rejected]}[/] [red]! {task.fields[error]}[/]"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self.task = self.bar.add_task("run", total=total, completed=sum(self.counts.values()), rate="", **self.counts)
        self._started, self._new = None, 0

    def __enter__(self) -> RunProgress:
        import time

        self._started = time.monotonic()
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def __call__(self, row: dict) -> None:
        import time

        self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
        self._new += 1
        minutes = max(time.monotonic() - (self._started or time.monotonic()), 1e-6) / 60
        self.bar.update(self.task, advance=1, rate=f"{self._new / minutes:,.1f}/min", **self.counts)
