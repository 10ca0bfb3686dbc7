"""Where the real data for measuring lives: ``shared/data`` beside the checkout.

A git worktree sits deeper than the main checkout (``/work/wt/NAME`` beside ``/work/main``),
so every parent directory is tried; the first candidate is named when none exists.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shared_file(*parts: str) -> Path:
    candidates = [base / "shared" / "data" / Path(*parts) for base in ROOT.parents]
    return next((path for path in candidates if path.exists()), candidates[0])
