import shutil

import pytest


@pytest.fixture
def kg_copy(fixture_kg_dir, tmp_path):
    """A copy of the fixture KG directory that a test may damage."""
    target = tmp_path / "kg"
    shutil.copytree(fixture_kg_dir, target)
    return target
