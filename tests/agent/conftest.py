import shutil

import pytest

from tests.agent.view_run import context_for, make_view_run


@pytest.fixture(scope="session")
def view_run(tmp_path_factory, loaded):
    """The viewer's fixture run (tests/agent/view_run.py), made once; tests that write
    reviews copy it first."""
    return make_view_run(tmp_path_factory.mktemp("view"), context_for(loaded))


@pytest.fixture
def reviewable_run(view_run, tmp_path):
    """A copy of the viewer's fixture run that a test may write reviews into."""
    copy = tmp_path / "run"
    shutil.copytree(view_run, copy)
    return copy
