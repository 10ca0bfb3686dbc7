"""Terminal output shared by the commands: progress bars and messages on stderr."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

err = Console(stderr=True, soft_wrap=True)


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
