"""What benches compare against: the real data in ``shared/data`` beside the checkout, and
the code of an earlier commit (today's method, run side by side with this checkout's).

A git worktree sits deeper than the main checkout (``/work/wt/NAME`` beside ``/work/main``),
so every parent directory is tried; the first candidate is named when none exists.
"""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

# The code before the round that set the current targets: the default baseline of every bench.
BASELINE = "36fe28b"

ROOT = Path(__file__).resolve().parents[1]


def shared_file(*parts: str) -> Path:
    candidates = [base / "shared" / "data" / Path(*parts) for base in ROOT.parents]
    return next((path for path in candidates if path.exists()), candidates[0])


def code_at(ref: str, into: Path) -> Path:
    """The tree of ``ref`` written to ``into`` (no worktree touched), to run its code as it was."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


ROOMS = ("reasoning", "runs", "inspection")


def agent_module(name: str):
    """The module ``name`` of the agent being measured: ``agent.<room>.<name>``, or, in a tree
    from before the package was grouped into rooms (a --baseline), ``agent.<name>``."""
    import importlib

    import agent

    # Asked of the measured tree's files: an editable install of another checkout could answer
    # an import that the measured tree cannot.
    for room in ROOMS:
        if (Path(agent.__file__).parent / room / f"{name}.py").exists():
            return importlib.import_module(f"agent.{room}.{name}")
    return importlib.import_module(f"agent.{name}")


def run_context(settings):
    """What ``run_dataset`` is given in the code being measured: the settings themselves, which
    ``agent.reasoning.resources`` opens, or, in code from before that loader (a --baseline), the graph,
    index and model built by hand as that code's CLI did."""
    import agent

    # Asked of the measured tree itself: an editable install of a newer checkout can answer
    # ``import agent.reasoning.resources`` for code that has no such module.
    base = Path(agent.__file__).parent
    if not any((base / room / "resources.py").exists() for room in ("", *ROOMS)):
        from agent.config import default_kg_dir
        from graphs.embedding import Embedder
        from graphs.kg_dir import Source, open_kg
        from graphs.progress import Silent

        default = Source("hpo") if settings.kg_dir == default_kg_dir() else None
        loaded = open_kg(settings.kg_dir, Embedder(settings.embedding_model), Silent(), default_source=default)
        return agent_module("context").AgentContext(loaded.kg, loaded.index, loaded.index.embedder, settings,
                                                    agent_module("llm").make_llm(settings))
    return settings
