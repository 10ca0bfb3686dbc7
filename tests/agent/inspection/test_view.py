"""The viewer over HTTP (Starlette's test client): list filters and search, the sample page,
reviews and their token, escaping, ids that are not files, the chat store, fork commands."""

import json
import shlex
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from agent.inspection.view import create_app, fork_command, path_graph
from agent.runs.reviews import REVIEWS

TOKEN = "test-token"


@pytest.fixture
def client(reviewable_run):
    return TestClient(create_app(reviewable_run, token=TOKEN), base_url="http://127.0.0.1")


def listed_ids(html: str) -> list[str]:
    import re
    from html import unescape

    return [unescape(m) for m in re.findall(r'class="sample-link" href="[^"]*">([^<]*)</a>', html)]


def test_list_filters_and_search(client):
    assert sorted(listed_ids(client.get("/samples").text)) == sorted(["malaria", "scurvy", "hostile/<b>id</b>", "broken"])
    assert listed_ids(client.get("/samples?status=rejected").text) == ["scurvy"]
    assert listed_ids(client.get("/samples?status=error").text) == ["broken"]
    assert listed_ids(client.get("/samples", params={"reason": "invalid record"}).text) == ["broken"]
    assert listed_ids(client.get("/samples?attempts=3").text) == ["scurvy"]
    assert listed_ids(client.get("/samples?q=SPLENOMEGALY").text) == ["malaria", "hostile/<b>id</b>"]
    assert listed_ids(client.get("/samples?q=gingival&status=accepted").text) == []
    # the reasoning is searched too, not only the question
    assert "malaria" in listed_ids(client.get("/samples?q=conclusion:").text)


def test_review_is_appended_and_filters_the_list(client, reviewable_run):
    results = (reviewable_run / "results.jsonl").read_bytes()
    response = client.post("/review/malaria", data={"token": TOKEN, "decision": "reject", "note": "wrong <drug>", "who": "dr a"},
                           follow_redirects=False)
    assert response.status_code == 303
    client.post("/review/scurvy", data={"token": TOKEN, "decision": "flag"})
    client.post("/review/malaria", data={"token": TOKEN, "decision": "accept"})
    lines = [json.loads(line) for line in (reviewable_run / REVIEWS).read_text().splitlines()]
    assert [(r["id"], r["decision"]) for r in lines] == [("malaria", "reject"), ("scurvy", "flag"), ("malaria", "accept")]
    assert lines[0]["note"] == "wrong <drug>" and lines[0]["who"] == "dr a" and lines[0]["time"]
    assert (reviewable_run / "results.jsonl").read_bytes() == results  # reviews never touch results
    assert listed_ids(client.get("/samples?reviewed=accept").text) == ["malaria"]  # the latest review counts
    assert listed_ids(client.get("/samples?reviewed=flag").text) == ["scurvy"]
    assert sorted(listed_ids(client.get("/samples?reviewed=no").text)) == ["broken", "hostile/<b>id</b>"]
    assert "wrong &lt;drug&gt;" not in client.get("/sample/malaria").text  # only the latest review is shown
    assert client.post("/review/malaria", data={"token": TOKEN, "decision": "maybe"}).status_code == 400


def test_review_without_the_token_is_refused(client, reviewable_run):
    for data in ({"decision": "accept"}, {"decision": "accept", "token": "guessed"}):
        assert client.post("/review/malaria", data=data).status_code == 403
    assert not (reviewable_run / REVIEWS).exists()


def test_review_redirects_only_within_the_viewer(client):
    response = client.post("/review/malaria", data={"token": TOKEN, "decision": "accept", "next": "https://evil.example/"},
                           follow_redirects=False)
    assert response.headers["location"] == "/sample/malaria"


def test_text_from_the_data_is_escaped(client):
    page = client.get("/sample/" + quote("hostile/<b>id</b>", safe="")).text
    assert "<script>alert" not in page and "<b>id</b>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Fever &amp; splenomegaly for &lt; 2 weeks" in page
    assert "hostile/&lt;b&gt;id&lt;/b&gt;" in page
    assert "script-src 'self'" in client.get("/").headers["content-security-policy"]


def test_ids_in_urls_reach_no_file(client, reviewable_run):
    (reviewable_run.parent / "secret.jsonl").write_text('{"id": "secret"}\n')
    for path in ("/sample/..%2Fsecret.jsonl", "/sample/../secret.jsonl", "/sample/%2Fetc%2Fpasswd",
                 "/sample/results.jsonl", "/sample/..%2F..%2F..%2Fetc%2Fpasswd"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "root:" not in response.text and "secret" not in response.text.replace("secret.jsonl", "")
    assert client.post("/review/..%2Fsecret", data={"token": TOKEN, "decision": "accept"}).status_code == 404
    assert client.get("/static/..%2F..%2Fview.py").status_code == 404


def test_other_hosts_are_refused(reviewable_run):
    rebound = TestClient(create_app(reviewable_run, token=TOKEN), base_url="http://attacker.example")
    assert rebound.get("/").status_code == 400


def test_sample_page_shows_every_part(client, view_run):
    row = next(json.loads(line) for line in (view_run / "results.jsonl").read_text().splitlines()
               if json.loads(line)["id"] == "malaria")
    page = client.get("/sample/malaria").text
    assert '<mark class="conclusion">Conclusion:' in page
    assert "prune: the model&#39;s answer was malformed twice" in page  # degraded
    assert "fever with splenomegaly suggests malaria" in page  # thinking
    assert 'class="mark-unsupported"' in page and "Anemia rules out every other option." in page  # grounding
    assert row["mappings"][0]["name"] in page and row["mappings"][0]["method"] in page
    assert page.count('<g class="node') >= len(set(n for p in row["paths"] for n in p["nodes"]))
    labels = {f["label"] for p in row["paths"] for hop in p["hops"] for f in hop}
    assert all(f'text-anchor="middle">{label}' in page or label in page for label in labels)
    assert "python run_agent.py replay" in page and "--fork 2 --set KEY=VALUE" in page
    overview = client.get("/").text
    assert "3f9a1c2e" in overview  # fingerprint
    assert ">prune</span>" in overview  # degraded nodes chart


def test_chat_store_turns_are_samples(view_run):
    chat = TestClient(create_app(view_run.parent / "chat", token=TOKEN), base_url="http://127.0.0.1")
    listed = listed_ids(chat.get("/samples").text)
    assert sorted(listed) == sorted(["malaria", "scurvy", "hostile/<b>id</b>"])  # threads; the malformed record never ran
    page = chat.get("/sample/scurvy").text
    assert "Gingival bleeding in a sailor" in page and "Branch 0" in page


def test_fork_command_is_shell_quoted(tmp_path):
    reviewable_run = tmp_path / "my runs"
    command = fork_command(reviewable_run, "a'b; rm -rf ~", 3, 1)
    words = shlex.split(command)
    assert words[:8] == ["python", "run_agent.py", "replay", str(reviewable_run), "--sample", "a'b; rm -rf ~", "--fork", "3"]
    assert words[8:10] == ["--branch", "1"]


def test_path_graph_merges_paths_and_keeps_direction():
    hop = lambda label, forward: [{"relation": label, "label": label, "forward": forward}]  # noqa: E731
    paths = [
        {"nodes": ["f", "d", "a"], "names": ["fever", "malaria", "chloroquine"], "types": ["phenotype", "disease", "drug"],
         "hops": [hop("has phenotype", False), hop("treated by", True)]},
        {"nodes": ["s", "d", "a"], "names": ["splenomegaly", "malaria", "chloroquine"], "types": ["phenotype", "disease", "drug"],
         "hops": [hop("has phenotype", False), hop("treated by", True)]},
    ]
    graph = path_graph(paths)
    assert sorted(n.name for n in graph["nodes"]) == ["chloroquine", "fever", "malaria", "splenomegaly"]
    assert len(graph["edges"]) == 3  # the shared malaria → chloroquine edge is drawn once
    by = {n.id: n for n in graph["nodes"]}
    treated = next(e for e in graph["edges"] if e.label == "treated by")
    assert treated.x1 < treated.x2  # malaria (head) → chloroquine (tail)
    phenotype = next(e for e in graph["edges"] if e.label == "has phenotype" and abs(e.y2 - by["f"].y) < 20)
    assert phenotype.x1 > phenotype.x2  # the fact's head is malaria: the arrow points back to fever
    assert by["f"].colour == by["s"].colour != by["d"].colour
    assert by["f"].x < by["d"].x < by["a"].x


def test_an_id_holding_a_newline_has_a_working_link_and_review(tmp_path, fixture_kg_dir):
    import re
    import subprocess
    import sys
    from html import unescape
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    records = tmp_path / "in.jsonl"
    records.write_text(json.dumps({"id": "two\nlines", "question": "Fever and splenomegaly?", "options": {"A": "malaria"},
                                   "answer": "malaria"}) + "\n")
    done = subprocess.run([sys.executable, str(root / "run_agent.py"), "run", str(records), "--out", str(tmp_path / "run"),
                           "--kg-dir", str(fixture_kg_dir)], capture_output=True, text=True, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr
    client = TestClient(create_app(tmp_path / "run", token=TOKEN), base_url="http://127.0.0.1")
    link = unescape(re.search(r'class="sample-link" href="([^"]*)"', client.get("/samples").text).group(1))
    assert link == "/sample/two%0Alines"
    page = client.get(link)
    assert page.status_code == 200 and "two\nlines" in unescape(page.text)
    reviewed = client.post("/review/two%0Alines", data={"token": TOKEN, "decision": "accept"}, follow_redirects=False)
    assert reviewed.status_code == 303
    assert json.loads((tmp_path / "run" / REVIEWS).read_text())["id"] == "two\nlines"

    # results.jsonl damaged while the viewer runs: the page names the line, as the command does
    results = tmp_path / "run" / "results.jsonl"
    results.write_text("{not json\n" + results.read_text())
    damaged = client.get("/samples")
    assert damaged.status_code == 500 and f"{results} line 1 is not a row of this run" in unescape(damaged.text)
