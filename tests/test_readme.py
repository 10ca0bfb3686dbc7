"""The README's user guide, run the way a newcomer runs it.

Every ```bash block of README.md carries a marker on the line before it: ``<!-- tested -->``
(this test runs its commands) or ``<!-- not tested: REASON -->`` (installs, the test suite,
a download, an LLM endpoint). A block without one fails the test, so the guide cannot drift
out of the test's sight. The tested blocks run in their order, each command as written, in a
fresh directory holding what a clone holds (``run_agent.py``, ``examples/``), with an empty
cache directory and no LLM configured. Two commands cannot run as written in a test: `view`
serves until Ctrl-C, so it is started on a free port, read and reviewed over HTTP the way the
browser does (accept example-01, reject example-02), then stopped with SIGINT; `chat` reads
the ``> `` lines of the transcript shown under it as its input.

The graph is HPO as the default one is built, from HPO's own files, cut to the examples'
neighbourhood (tests/fixtures/hpo_slice, made by make_hpo_slice.py) so that it builds in
seconds; ``MEDREASON_README_GRAPH=default`` runs the guide on the real default graph instead,
built into the empty cache as on a fresh machine (minutes).

Beside the guide: docs/commands.md must list every option of every command exactly once (read
from the CLI itself), and every relative link of the README and docs/ must reach a file and,
when it names one, a heading.
"""

from __future__ import annotations

import html.parser
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HPO_SLICE = ROOT / "tests" / "fixtures" / "hpo_slice"
MARKER = re.compile(r"<!-- (tested|not tested: (?P<reason>.*\S)) -->")
# What a newcomer's path through the guide needs: each must be in a tested block.
GUIDE_COMMANDS = {"run", "view", "export", "replay", "chat", "kg"}
COMMAND_TIMEOUT = 900  # s: a first run on the real default graph builds it


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    marker: str | None  # "tested", "not tested: …" or None
    commands: list[str]
    transcript: list[str]  # the "> " lines of the ```text block right after it


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```bash":
            i += 1
            continue
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        match = MARKER.fullmatch(previous.strip())
        end = lines.index("```", i + 1)
        source = "\n".join(lines[i + 1:end]).replace("\\\n", " ")
        commands = [c for c in source.splitlines() if shlex.split(c, comments=True)]
        after = end + 1
        while after < len(lines) and not lines[after].strip():
            after += 1
        transcript: list[str] = []
        if after < len(lines) and lines[after].strip() == "```text":
            close = lines.index("```", after + 1)
            transcript = [line[2:] for line in lines[after + 1:close] if line.startswith("> ")]
        blocks.append(Block(i + 1, match.group(1) if match else None, commands, transcript))
        i = end + 1
    return blocks


def subcommand(command: str) -> str:
    words = shlex.split(command, comments=True)
    return words[2] if words[:2] == ["python", "run_agent.py"] and len(words) > 2 else words[0]


def test_every_bash_block_says_whether_it_is_tested_and_the_guide_is():
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    unmarked = [b.line for b in blocks if b.marker is None]
    assert not unmarked, f"README.md: ```bash blocks at lines {unmarked} need <!-- tested --> or <!-- not tested: REASON --> before them"
    tested = {subcommand(c) for b in blocks if b.marker == "tested" for c in b.commands}
    assert GUIDE_COMMANDS <= tested, f"the guide's {sorted(GUIDE_COMMANDS - tested)} are in no tested block"
    for block in blocks:
        if block.marker == "tested":
            assert all(c.startswith("python run_agent.py ") for c in block.commands), \
                f"README.md:{block.line}: a tested block runs only `python run_agent.py …` commands"
        if block.commands and subcommand(block.commands[0]) == "chat":
            assert block.transcript, f"README.md:{block.line}: `chat` needs a ```text transcript after it (its input)"


LINK = re.compile(r"\]\((?!https?:|mailto:)([^)#\s]*)(?:#([^)\s]+))?\)")


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_every_link_of_the_readme_and_docs_reaches_a_file_and_heading():
    broken = []
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target, anchor in LINK.findall(page.read_text(encoding="utf-8")):
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} does not exist")
            elif anchor and path.suffix == ".md" and anchor not in heading_anchors(path.read_text(encoding="utf-8")):
                broken.append(f"{page.relative_to(ROOT)}: {target or page.name}#{anchor} names no heading")
    assert not broken, "\n".join(broken)


def cli_commands() -> dict[str, set[str]]:
    """Every command of the CLI (``kg path`` …) with its options, read from the CLI itself."""
    import typer

    from run_agent import app

    found: dict[str, set[str]] = {}

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
            return
        found[" ".join(path)] = {o for p in command.params if p.param_type_name == "option"
                                 for o in (*p.opts, *p.secondary_opts) if o != "--help"}

    walk(typer.main.get_command(app), [])
    return found


def test_commands_page_lists_every_option_of_every_command_once():
    page = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^#{2,3} ([^\n]+)\n(.*?)(?=^#{2,3} |\Z)", page, re.M | re.S))
    problems = []
    cli_commands_cache = cli_commands()
    for command, options in cli_commands_cache.items():
        if command not in sections:
            problems.append(f"no section `## {command}`")
            continue
        rows = [re.findall(r"--[\w-]+", row.split("|")[1]) for row in re.findall(r"^\| `.*$", sections[command], re.M)]
        listed = [o for row in rows for o in row]
        inherited = re.search(r"every option of `([a-z ]+)`", sections[command])  # `estimate` takes run's, listed there
        inherited_options = cli_commands_cache[inherited.group(1)] if inherited else set()
        options = options - inherited_options
        twice = sorted({o for o in listed if listed.count(o) > 1})
        if set(listed) != options or twice:
            problems.append(f"{command}: missing {sorted(options - set(listed))}, not an option {sorted(set(listed) - options)}, "
                            f"listed twice {twice}")
    assert not problems, "docs/commands.md:\n" + "\n".join(problems)


def test_readme_parser_sees_markers_commands_and_transcripts():
    text = "\n".join([
        "<!-- tested -->", "```bash", "python run_agent.py run a.jsonl \\", "  --out runs/x   # comment", "# only a comment", "```",
        "", "```text", "> hello", "answer", "> /quit", "```",
        "```bash", "pip install x", "```",
        "<!-- not tested: needs the network -->", "", "```bash", "python run_agent.py kg download primekg", "```",
    ])
    first, second, third = readme_blocks(text)
    assert first.marker == "tested" and first.transcript == ["hello", "/quit"]
    assert [shlex.split(c, comments=True) for c in first.commands] == [["python", "run_agent.py", "run", "a.jsonl", "--out", "runs/x"]]
    assert second.marker is None and second.commands == ["pip install x"]
    assert third.marker == "not tested: needs the network"


class _ReviewForm(html.parser.HTMLParser):
    """The review form of a sample page, read as a browser reads it: its action, fields, buttons."""

    def __init__(self):
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.decisions: list[str] = []
        self._inside = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("action") or "").startswith("/review/"):
            self.action, self._inside = attrs["action"], True
        elif self._inside and tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif self._inside and tag == "button" and attrs.get("name") == "decision":
            self.decisions.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False


def review_in_browser(base: str, sample_id: str, decision: str) -> None:
    page = httpx.get(f"{base}/sample/{sample_id}", timeout=60)
    assert page.status_code == 200, page.text[:500]
    form = _ReviewForm()
    form.feed(page.text)
    assert form.action and decision in form.decisions, f"no review form with {decision!r} on {sample_id}'s page"
    data = {**form.fields, "note": f"{decision}ed in the README test", "who": "readme test", "decision": decision}
    posted = httpx.post(base + form.action, data=data, timeout=60)
    assert posted.status_code in (200, 303), posted.text[:500]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_review(argv: list[str], cwd: Path, env: dict) -> None:
    port = free_port()
    server = subprocess.Popen([*argv, "--port", str(port)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"`view` exited with {server.returncode}: {server.stdout.read()[-2000:]}"
            try:
                if httpx.get(base + "/", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "`view` did not answer within 180 s"
            time.sleep(0.5)
        assert httpx.get(base + "/samples", timeout=60).status_code == 200
        review_in_browser(base, "example-01", "accept")
        review_in_browser(base, "example-02", "reject")
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C, as the guide says
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, f"`view` stopped with {server.returncode}: {output[-2000:]}"


@pytest.fixture(scope="module")
def guide_env(tmp_path_factory) -> dict:
    """A newcomer's environment: an empty cache, no LLM configured, no network models."""
    cache = tmp_path_factory.mktemp("cache")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEDREASON_", "OPENAI_")) and k != "XDG_CACHE_HOME"}
    env.update(XDG_CACHE_HOME=str(cache), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), COLUMNS="120")
    if os.environ.get("MEDREASON_README_GRAPH") != "default":
        kg_dir = tmp_path_factory.mktemp("hpo-slice")
        built = subprocess.run([sys.executable, str(ROOT / "run_agent.py"), "kg", "build", "--source", "hpo",
                                "--input", str(HPO_SLICE), "--kg-dir", str(kg_dir)],
                               env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        assert built.returncode == 0, built.stderr[-2000:]
        env["MEDREASON_KG_DIR"] = str(kg_dir)
    return env


def test_the_readme_guide_runs_from_first_run_to_a_reviewed_export(tmp_path, guide_env):
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("run_agent.py", "examples"):
        (clone / name).symlink_to(ROOT / name)
    ran = []
    for block in readme_blocks(README.read_text(encoding="utf-8")):
        if block.marker != "tested":
            continue
        for command in block.commands:
            argv = [sys.executable, *shlex.split(command, comments=True)[1:]]
            where = f"README.md:{block.line}: `{command.split('#')[0].strip()}`"
            if subcommand(command) == "view":
                serve_and_review(argv, clone, guide_env)
            else:
                stdin = "\n".join(block.transcript) + "\n" if subcommand(command) == "chat" else None
                done = subprocess.run(argv, cwd=clone, env=guide_env, input=stdin, capture_output=True, text=True,
                                      timeout=COMMAND_TIMEOUT)
                assert done.returncode == 0, f"{where} exited with {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
                assert "Traceback" not in done.stdout + done.stderr, f"{where}:\n{done.stderr[-3000:]}"
                if subcommand(command) == "chat":
                    assert "Answer: A. Marfan syndrome" in done.stdout, f"{where}:\n{done.stdout[-3000:]}"
            ran.append(subcommand(command))
    assert GUIDE_COMMANDS <= set(ran)

    # What the guide promises a newcomer ends with: a run, its reviews, the reviewed exports.
    demo = clone / "runs" / "demo"
    assert len((demo / "results.jsonl").read_text().splitlines()) == len((ROOT / "examples" / "medqa_sample.jsonl").read_text().splitlines())
    assert len((demo / "reviews.jsonl").read_text().splitlines()) == 2
    assert len((clone / "demo_sft.jsonl").read_text().splitlines()) == 1  # --only-reviewed: the one accepted
    exported = (clone / "demo_dataset" / "data" / "train.jsonl").read_text()
    assert '"id": "example-01"' in exported and '"id": "example-02"' not in exported  # --reviewed: the rejected one left out
