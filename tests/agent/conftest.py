import shutil

import pytest

from agent.config import Settings
from tests.agent.inspection.view_run import make_view_run


@pytest.fixture(scope="session")
def view_run(tmp_path_factory, fixture_kg_dir):
    """The viewer's fixture run (tests/agent/inspection/view_run.py), made once; tests that write
    reviews copy it first."""
    return make_view_run(tmp_path_factory.mktemp("view"), Settings(kg_dir=fixture_kg_dir))


@pytest.fixture
def reviewable_run(view_run, tmp_path):
    """A copy of the viewer's fixture run that a test may write reviews into."""
    copy = tmp_path / "run"
    shutil.copytree(view_run, copy)
    return copy
