"""Every prompt and text template is a file in this folder, loaded by name.

Templates use ``$name`` placeholders (``string.Template``), so prompts can show JSON
examples with braces; a missing variable is an error, never a silently empty slot.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template


class PromptError(KeyError):
    pass


@cache
def load(name: str) -> str:
    path = resources.files(__package__) / f"{name}.txt"
    if not path.is_file():
        raise PromptError(f"no prompt named {name!r} in {__package__}/")
    return path.read_text(encoding="utf-8")


def render(name: str, **variables: object) -> str:
    try:
        return Template(load(name)).substitute(variables)
    except KeyError as exc:
        raise PromptError(f"prompt {name!r} needs variable {exc.args[0]!r}") from exc


def names() -> list[str]:
    files = resources.files(__package__).iterdir()
    return sorted(f.name[:-4] for f in files if f.name.endswith(".txt"))
