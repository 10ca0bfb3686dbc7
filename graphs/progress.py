"""How long-running graph work reports progress, without graphs/ knowing about terminals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    def note(self, message: str) -> None:
        """A one-line message for the user."""

    def task(self, description: str, total: int | None = None) -> Callable[[int], None]:
        """Start a task; the returned function is called with the work done so far."""


class Silent:
    """Progress that goes nowhere (tests, library use)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    def task(self, description: str, total: int | None = None) -> Callable[[int], None]:
        return lambda done: None
