"""The viewer over HTTP (Starlette's test client): list filters, search, columns and sorting, the
sample page, reviews and their token, the reviewer remembered, adopting a fork, escaping, ids
that are not files, the chat store, fork commands, node colours."""

import json
import shlex
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from agent.config import Settings
from agent.inspection.view import REVIEWER_COOKIE, create_app, fork_command, path_graph
from agent.runs.reviews import REVIEWS, read_reviews
from tests.agent.inspection.view_run import fork_fixing_scurvy

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
    assert listed_ids(client.get("/samples?attempts=2").text) == ["scurvy"]
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
    assert response.headers["location"] == "/sample/malaria?saved=malaria"  # back to the sample, saying it was saved


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


def list_rows(html: str) -> list[dict[str, str]]:
    """The list's rows as a reader sees them: each column's text by its class."""
    import re
    from html import unescape

    rows = []
    for body in re.findall(r'<tr class="status-[^"]*">(.*?)</tr>', html, re.S):
        cells = dict(re.findall(r'<td class="col-([a-z]+)[^"]*"[^>]*>(.*?)</td>', body, re.S))
        rows.append({k: " ".join(unescape(re.sub(r"<[^>]+>", " ", v)).split()) for k, v in cells.items()})
    return rows


def test_list_shows_question_answer_status_and_scores_and_sorts_by_them(client, reviewable_run):
    rows = list_rows(client.get("/samples").text)
    malaria = next(r for r in rows if r["id"].startswith("malaria"))
    assert malaria["question"].startswith("A traveller returns with fever, splenomegaly")
    assert malaria["answer"] == "A. chloroquine" and malaria["status"] == "accepted" and malaria["grounding"] == "0.50"
    hostile = next(r for r in rows if r["id"].startswith("hostile"))
    assert hostile["question"].startswith("<script>alert('x')</script> Fever & splenomegaly")  # shown as text
    results = reviewable_run / "results.jsonl"
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    for row in lines:  # as a run made before relevance was recorded
        row.pop("relevance", None)
        for path in row["paths"]:
            path.pop("relevance", None)
    results.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert "relevance" not in client.get("/samples").text  # no row carries one: no column

    by_grounding = [r["id"].split()[0] for r in list_rows(client.get("/samples?sort=-grounding").text)]
    assert by_grounding[0] == "hostile/<b>id</b>" and by_grounding[1] == "malaria"  # 1.00 then 0.50, then the unscored
    by_answer = [r["answer"] for r in list_rows(client.get("/samples?sort=-answer").text)]
    assert by_answer == sorted(by_answer, key=str.lower, reverse=True) and by_answer[0] != by_answer[-1]
    assert listed_ids(client.get("/samples?sort=-nonsense").text) == listed_ids(client.get("/samples").text)
    page = client.get("/samples?status=rejected&sort=grounding").text
    assert "sort=-grounding" in page and "status=rejected" in page  # a header keeps the filters and turns the order

    # relevance, as runs record it (each path's with its reasons, the sample's the mean), is a column of its own
    for row in lines:
        base = {"malaria": 0.9, "scurvy": 0.2}.get(row["id"], 0.5)
        for n, path in enumerate(row["paths"]):
            path["relevance"] = {"score": base - n * 0.02, "reasons": ["specificity 0.90", "from the <presenting> problem"]}
        row["relevance"] = base if row["id"] != "malaria" else None  # a row without its own: the mean of its paths'
    results.write_text("".join(json.dumps(r) + "\n" for r in lines))
    rows = list_rows(client.get("/samples?sort=-relevance").text)
    mean = sum(0.9 - n * 0.02 for n in range(len(lines[0]["paths"]))) / len(lines[0]["paths"])
    assert [r["id"].split()[0] for r in rows][0] == "malaria" and rows[0]["relevance"] == f"{mean:.2f}"
    assert "relevance 0.90: specificity 0.90; from the &lt;presenting&gt; problem" in client.get("/sample/malaria").text


def test_the_sample_page_follows_the_sorted_list_and_says_where_the_reviewer_is(client):
    page = client.get("/sample/malaria?sort=-grounding").text
    assert "2 of 4 in this list" in page and "0 of 4 reviewed" in page
    assert 'id="previous" rel="prev" href="/sample/hostile%2F%3Cb%3Eid%3C%2Fb%3E?sort=-grounding"' in page
    last = client.get("/sample/broken?sort=-grounding").text
    assert "4 of 4 in this list (the last)" in last and 'id="next"' not in last


def test_grounding_steps_read_as_text_not_python(client):
    page = client.get("/sample/malaria").text
    steps = page[page.index('id="grounded-steps"'):page.index('id="reasoning"')]
    assert "{" not in steps and "node_id" not in steps  # no dict printed
    assert '<span class="entity" title="x&lt;y&gt;">option → x &lt;y&gt;</span>' in steps
    assert "<span>anemia is joined to x &lt;y&gt; only by phenotype phenotype</span>" in steps
    assert 'class="mark-unlinked"' in steps and "Grounding: score <b>0.50</b>, path adherence 1.00" in page


def test_each_node_type_has_one_colour_on_every_graph_with_a_legend(client):
    import re

    colours = {}
    for path in ("/sample/malaria", "/sample/" + quote("hostile/<b>id</b>", safe=""), "/sample/scurvy"):
        page = client.get(path).text
        for node_type, fill in re.findall(r'<g class="node[^"]*" data-type="([^"]*)">\s*<title>.*?</title>\s*<circle [^>]*fill="([^"]*)"', page, re.S):
            colours.setdefault(node_type, set()).add(fill)
        legend = dict((t, c) for c, t in re.findall(r'<circle cx="6" cy="6" r="5" fill="([^"]*)"/></svg> ([^<]+)</span>', page))
        assert all(legend[t] in colours[t] for t in legend)
    assert len(colours) >= 2 and all(len(fills) == 1 for fills in colours.values()), colours
    assert len({next(iter(f)) for f in colours.values()}) == len(colours)  # and no two types share one


def test_a_review_says_it_was_saved_and_the_reviewer_is_remembered(client):
    page = client.get("/sample/malaria").text
    assert 'id="review-who" value=""' in page
    response = client.post("/review/malaria", data={"token": TOKEN, "decision": "flag", "note": "check <dose>",
                                                     "who": "dr <i>a</i>", "next": "/sample/scurvy"})
    assert response.status_code == 200 and str(response.url).endswith("/sample/scurvy?saved=malaria")
    assert "✓ Saved: <b>flag</b> of <a href=\"/sample/malaria\">malaria</a> by dr &lt;i&gt;a&lt;/i&gt;" in response.text
    assert "check &lt;dose&gt;" in response.text
    assert 'id="review-who" value="dr &lt;i&gt;a&lt;/i&gt;"' in response.text  # prefilled from the cookie
    assert client.cookies.get(REVIEWER_COOKIE) == quote("dr <i>a</i>", safe="")
    assert 'id="review-who" value="dr &lt;i&gt;a&lt;/i&gt;"' in client.get("/sample/broken").text  # on every page
    assert "Saved" not in client.get("/sample/broken?saved=nobody").text


def test_a_fork_is_adopted_from_the_viewer_and_the_original_restored(client, reviewable_run, fixture_kg_dir):
    branch = fork_fixing_scurvy(reviewable_run, Settings(kg_dir=fixture_kg_dir))
    page = client.get("/sample/scurvy").text
    assert f'id="adopt-{branch}"' in page and 'id="adopt-0"' not in page  # branch 0 is already the result
    assert client.post("/adopt/scurvy", data={"branch": branch, "who": "dr b"}).status_code == 403
    refused = client.post("/adopt/scurvy", data={"token": TOKEN, "branch": branch, "who": ""})
    assert refused.status_code == 400 and "say who adopts the fork" in refused.text

    adopted = client.post("/adopt/scurvy", data={"token": TOKEN, "branch": branch, "who": "dr b", "note": "question fixed",
                                                 "next": "/sample/scurvy?status=rejected"})
    assert adopted.status_code == 200
    assert 'id="adopted-badge">fork 1 adopted' in adopted.text and "adopted by dr b" in adopted.text
    assert "the run had it rejected" in adopted.text and 'id="adopt-0"' in adopted.text
    assert "✓ Saved: <b>accept</b>" in adopted.text
    assert read_reviews(reviewable_run)["scurvy"]["decision"] == "accept"
    rows = list_rows(client.get("/samples").text)
    assert next(r for r in rows if r["id"].startswith("scurvy"))["status"] == "accepted fork 1"
    assert "· 1 reviewed · 1 adopted from a fork" in client.get("/").text

    restored = client.post("/adopt/scurvy", data={"token": TOKEN, "branch": 0, "who": "dr b"})
    assert 'id="adopted-badge"' not in restored.text and "✓ Saved: <b>flag</b>" in restored.text
    assert client.post("/adopt/broken", data={"token": TOKEN, "branch": 1, "who": "dr b"}).status_code == 400


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
