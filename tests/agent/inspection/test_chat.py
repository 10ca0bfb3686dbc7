"""The chat session driven by scripted input, on the fixture KG."""

import sqlite3

from langgraph.checkpoint.sqlite import SqliteSaver
from rich.console import Console
from typer.testing import CliRunner

from agent.inspection import replay
from agent.inspection.chat import DISCLAIMER, ChatSession
from agent.reasoning import nodes
from agent.reasoning.graph import compile_graph
from run_agent import app as cli

QUESTION = "A traveller returns with fever, splenomegaly and anemia. Which drug? A) chloroquine B) metformin"


def scripted(lines):
    items = iter(lines)

    def read(prompt):
        item = next(items, EOFError)
        if isinstance(item, type) and issubclass(item, BaseException) or isinstance(item, BaseException):
            raise item
        return item

    return read


def chat(ctx, tmp_path, lines):
    conn = sqlite3.connect(str(tmp_path / replay.CHECKPOINTS), check_same_thread=False)
    console = Console(record=True, width=120)
    session = ChatSession(ctx, compile_graph(SqliteSaver(conn)), scripted(lines), console, "t", tmp_path)
    session.run()
    conn.close()
    return session, " ".join(console.export_text().split())


def test_a_question_with_options_then_commands(make_context, tmp_path):
    session, text = chat(make_context(), tmp_path, [QUESTION, "/expand malaria", "/path fever -> chloroquine", "/trace", "/quit"])
    assert "Entities question: fever, splenomegaly, anemia" in text
    assert "Mapped nodes" in text and "exact" in text
    assert "fever ←phenotype present— malaria ←indication— chloroquine" in text  # a path with its relation arrows
    assert "Reasoning Process:" in text and "The answer is A. chloroquine." in text
    assert "Answer: A. chloroquine — the KG's best-supported option (chosen by KG evidence, not independently verified)." in text
    assert "✓" not in text  # the score that chose the answer does not certify it
    assert DISCLAIMER in text
    assert "Neighbours of malaria" in text and "malaria ←indication— chloroquine" in text  # /expand
    # /trace: an answer the KG evidence chose is not verified by that evidence, so not "accepted"
    assert "verify" in text and "running→unverified" in text and "correct=None, answer chosen by KG evidence" in text
    assert "accepted" not in text and "correct=True" not in text
    assert f"replay {tmp_path}" in text
    assert session.last["state"]["status"] == "unverified"
    with replay.open_run(tmp_path) as graph:
        assert replay.thread_ids(graph) == ["chat-t-1"]
        assert replay.list_samples(tmp_path, graph)[0]["status"] == "unverified"


def test_a_question_without_answer_or_options_and_save(make_context, tmp_path):
    saved = tmp_path / "turns.jsonl"
    session, text = chat(make_context(), tmp_path, [
        "A traveller returns with fever, splenomegaly and anemia. What is the most likely diagnosis?",
        "/entities", "/paths", f"/save {saved}",
    ])
    assert "Candidate answers by KG evidence" in text
    assert "Answer: malaria — the KG's best-supported option" in text and DISCLAIMER in text
    assert "* fever ←phenotype present— malaria" in text
    import json

    row = json.loads(saved.read_text())
    assert row["id"] == row["thread_id"] == "chat-t-1" and row["status"] == "unverified" and row["answer"] == "malaria"
    assert row["verification"]["correct"] is None


def test_a_known_answer_is_checked_not_chosen(make_context, tmp_path):
    _, text = chat(make_context(), tmp_path, [QUESTION + " \\", "Answer: B", "/quit"])
    assert "Known answer B. metformin: not reached" in text and "Candidate answers" not in text


def test_ctrl_c_stops_the_turn_not_the_session(make_context, tmp_path, monkeypatch):
    def interrupted(state, runtime):
        raise KeyboardInterrupt

    monkeypatch.setattr(nodes, "generate", interrupted)
    session, text = chat(make_context(), tmp_path, [QUESTION, KeyboardInterrupt(), "/expand malaria", "/quit"])
    assert "Interrupted." in text and "chat-t-1" in text
    assert "(Ctrl-C: type /quit" in text
    assert "Neighbours of malaria" in text  # the session went on


def test_chat_command_reads_stdin(fixture_kg_dir, tmp_path):
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["chat", "--kg-dir", str(fixture_kg_dir), "--offline", "--store", str(store)],
                                input=QUESTION + "\n/path fever -> chloroquine\n/quit\n")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "KG-only" in text and "Answer: A. chloroquine" in text and f"replay {store}" in text
    listed = CliRunner().invoke(cli, ["replay", str(store)])
    assert listed.exit_code == 0 and "unverified" in listed.output and "accepted" not in listed.output


def test_a_chosen_answer_shows_as_not_verified_in_the_viewer(make_context, tmp_path):
    from starlette.testclient import TestClient

    from agent.inspection.view import create_app

    chat(make_context(), tmp_path, [QUESTION, "/quit"])
    page = TestClient(create_app(tmp_path, token="t"), base_url="http://127.0.0.1").get("/sample/chat-t-1").text
    assert "status-unverified" in page and "not verified" in page
    assert "status-accepted" not in page and ", correct" not in page


def test_a_known_answer_reached_is_still_accepted(make_context, tmp_path):
    session, text = chat(make_context(), tmp_path, [QUESTION + " \\", "Answer: A", "/quit"])
    assert "Known answer A. chloroquine: reached" in text and session.last["state"]["status"] == "accepted"
