"""Exports leave nothing behind and take nothing from the run: names the run owns, a SIGKILL
mid-write, file permissions, and training files without an empty chain of thought."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_run_agent import RECORDS, llm_env

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, umask=None):
    return subprocess.run([sys.executable, str(ROOT / "run_agent.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=llm_env(), timeout=300, preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


@pytest.fixture(scope="module")
def kg_only_run(tmp_path_factory, fixture_kg_dir):
    tmp = tmp_path_factory.mktemp("export-safety")
    (tmp / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    done = cli("run", tmp / "in.jsonl", "--out", tmp / "run", "--kg-dir", fixture_kg_dir)
    assert done.returncode == 0, done.stderr
    return tmp / "run"


@pytest.mark.parametrize("name", ["checkpoints.sqlite-wal", "checkpoints.sqlite-shm", "fingerprint.json", "crash.log",
                                  "reviews.jsonl", "summary.json.tmp", "started.jsonl"])
def test_export_onto_a_name_the_run_owns_is_refused_even_when_absent(kg_only_run, name):
    before = (kg_only_run / name).read_bytes() if (kg_only_run / name).exists() else None
    assert before is None or name in ("fingerprint.json", "started.jsonl")
    refused = cli("export", kg_only_run, "--format", "sft", "--out", kg_only_run / name, "--force")
    assert refused.returncode == 2 and f"owns ({name})" in " ".join(refused.stderr.split())
    assert ((kg_only_run / name).read_bytes() if (kg_only_run / name).exists() else None) == before


def test_exports_get_the_permissions_of_a_normal_file_under_umask_022(kg_only_run, tmp_path):
    out = tmp_path / "sft.jsonl"
    assert cli("export", kg_only_run, "--format", "sft", "--out", out, umask=0o022).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    out.chmod(0o644)
    assert cli("export", kg_only_run, "--format", "sft", "--out", out, "--force", umask=0o022).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert cli("export", kg_only_run, "--format", "hf", "--out", tmp_path / "hf", umask=0o027).returncode == 0
    assert stat.S_IMODE((tmp_path / "hf" / "data" / "train.jsonl").stat().st_mode) == 0o640


def test_a_training_export_with_all_leaves_out_samples_without_reasoning_and_says_how_many(kg_only_run, tmp_path):
    rows = [json.loads(line) for line in (kg_only_run / "results.jsonl").read_text().splitlines()]
    empty = [r["id"] for r in rows if r.get("question") and not (r["reasoning"] or "").strip()]
    assert empty == ["scurvy"]  # no path: it never reached generation
    for fmt, out in (("sft", "sft.jsonl"), ("huatuo", "huatuo.json"), ("medreason", "medreason_ours.jsonl")):
        done = cli("export", kg_only_run, "--format", fmt, "--out", tmp_path / out, "--all")
        assert done.returncode == 0, done.stderr
        said = " ".join(done.stderr.split())
        assert "Wrote 2 samples" in said and "Left out 1 rows:" in said
        assert "1 no reasoning (they never reached generation)" in said
    assert all("## Thinking" in json.loads(line)["messages"][-1]["content"]
               for line in (tmp_path / "sft.jsonl").read_text().splitlines())
    assert all(item["Complex_CoT"].strip() for item in json.loads((tmp_path / "huatuo.json").read_text()))


@pytest.mark.parametrize("format, out_name, written", [("sft", "out.jsonl", "out.jsonl"), ("hf", "hf", "hf/data/train.jsonl")])
def test_sigkill_during_export_then_export_again_leaves_nothing_half_written(kg_only_run, tmp_path, format, out_name, written):
    big = tmp_path / "big"
    big.mkdir()
    row = next(json.loads(line) for line in (kg_only_run / "results.jsonl").read_text().splitlines())
    with open(big / "results.jsonl", "w") as f:
        for n in range(40_000):
            f.write(json.dumps({**row, "id": f"s{n}", "position": n}) + "\n")
    (big / "summary.json").write_text((kg_only_run / "summary.json").read_text())
    out, target = tmp_path / out_name, tmp_path / written
    partials = f".{target.name}.partial-*.tmp"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_agent.py"), "export", str(big), "--format", format, "--out", str(out)],
                            cwd=ROOT, env=llm_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(target.parent.glob(partials)):
        assert proc.poll() is None and time.monotonic() < deadline, "the export finished before it could be killed"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(target.parent.glob(partials)) and not target.exists()  # what a kill leaves
    again = cli("export", big, "--format", format, "--out", out)  # the same command again, no --force needed
    assert again.returncode == 0, again.stderr
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and "big" not in p.parts) == \
        sorted([written, *(["hf/README.md"] if format == "hf" else [])])
    assert len(target.read_text().splitlines()) == 40_000
