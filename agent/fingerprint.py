"""A run's fingerprint, as issue 17's contract gives it: ``RUN_DIR/fingerprint.json``, written
when a run first starts (run id, KG, mode, model, prompts, settings, input, tool version).

Only the reader lives here until the module that writes it lands; it returns None for a run
directory without one (runs made before fingerprints existed, merged directories).
"""

from __future__ import annotations

import json
from pathlib import Path

FINGERPRINT = "fingerprint.json"


def read_fingerprint(run_dir: Path) -> dict | None:
    path = Path(run_dir) / FINGERPRINT
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
