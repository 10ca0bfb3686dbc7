"""The viewer in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium), served by the real command: ``python run_agent.py view RUN_DIR --port N``."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from agent.runs.reviews import REVIEWS
from tests.agent.inspection.view_run import HOSTILE_QUESTION

pytestmark = pytest.mark.browser
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[3]
# Flags that keep Chromium off the network (it is closed here) and out of any profile.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1300,1000")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def viewer(reviewable_run):
    """The base URL of ``view RUN_DIR`` started as a user starts it, stopped afterwards."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "run_agent.py", "view", str(reviewable_run), "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the viewer did not start: {server.stderr.read().decode()}") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def navigate(browser, action) -> None:
    """Run ``action`` (a click or submit that loads a page) and wait until the new page has
    replaced the old one, so nothing is read from the page being left."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = browser.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(old))
    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return document.readyState") == "complete")


def shown_ids(browser) -> list[str]:
    from selenium.webdriver.common.by import By

    return [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#sample-list a.sample-link")]


def test_list_filters(browser, viewer):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(viewer + "/samples")
    assert sorted(shown_ids(browser)) == sorted(["malaria", "scurvy", "hostile/<b>id</b>", "broken"])
    Select(browser.find_element(By.NAME, "status")).select_by_value("rejected")
    navigate(browser, browser.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click)
    assert shown_ids(browser) == ["scurvy"]
    assert browser.find_element(By.ID, "matching").text.startswith("1 of 4")

    browser.get(viewer + "/samples")
    search = browser.find_element(By.NAME, "q")
    search.send_keys("splenomegaly")
    navigate(browser, search.submit)
    assert shown_ids(browser) == ["malaria", "hostile/<b>id</b>"]
    navigate(browser, browser.find_element(By.LINK_TEXT, "malaria").click)  # the list's filters go along: next is the other match
    assert browser.find_element(By.ID, "next").get_attribute("href").endswith(
        "/sample/" + quote("hostile/<b>id</b>", safe="") + "?q=splenomegaly")


def test_sample_page_draws_the_path_graph(browser, viewer, view_run):
    from selenium.webdriver.common.by import By

    row = next(r for r in map(json.loads, (view_run / "results.jsonl").read_text().splitlines()) if r["id"] == "malaria")
    browser.get(viewer + "/sample/malaria")
    graph = browser.find_element(By.CSS_SELECTOR, "#graph-pruned svg.graph")
    assert graph.is_displayed() and graph.size["width"] > 200
    node_labels = {t.get_attribute("textContent") for t in graph.find_elements(By.CSS_SELECTOR, ".node-label")}
    assert node_labels == {name for p in row["paths"] for name in p["names"]}
    edge_labels = {t.get_attribute("textContent") for t in graph.find_elements(By.CSS_SELECTOR, ".edge-label")}
    relations = {f["label"] for p in row["paths"] for hop in p["hops"] for f in hop}
    assert relations == {label for text in edge_labels for label in text.split(", ")}
    lines = graph.find_elements(By.CSS_SELECTOR, "path.edge-line")
    assert lines and all(line.get_attribute("marker-end") for line in lines)  # each edge has its direction
    fills = {c.get_attribute("fill") for c in graph.find_elements(By.CSS_SELECTOR, ".node circle")}
    assert len(fills) == len({t for p in row["paths"] for t in p["types"]})  # one colour per node type
    legend = browser.find_element(By.ID, "legend").text
    assert all(t in legend for p in row["paths"] for t in p["types"])

    everything = browser.find_element(By.ID, "graph-all")
    assert not everything.is_displayed()
    browser.find_element(By.ID, "show-all-paths").click()
    assert everything.is_displayed() and not graph.is_displayed()
    assert len(everything.find_elements(By.CSS_SELECTOR, ".node")) >= len(graph.find_elements(By.CSS_SELECTOR, ".node"))


def export_ids(reviewable_run: Path, tmp_path: Path, *flags: str) -> list[str]:
    out = tmp_path / f"export{len(list(tmp_path.glob('export*')))}.jsonl"
    done = subprocess.run([sys.executable, "run_agent.py", "export", str(reviewable_run), "--format", "medreason", "--all",
                           "--out", str(out), *flags], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["question"] for line in out.read_text().splitlines()]


def test_review_is_saved_and_changes_the_export(browser, viewer, reviewable_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    before = export_ids(reviewable_run, tmp_path)
    browser.get(viewer + "/samples?status=accepted")
    navigate(browser, browser.find_element(By.LINK_TEXT, "malaria").click)
    browser.find_element(By.ID, "review-note").send_keys("anemia is not evidence", Keys.TAB)  # leave the field
    navigate(browser, lambda: browser.find_element(By.TAG_NAME, "body").send_keys("r"))  # the reject shortcut
    assert browser.find_element(By.ID, "sample-id").text != "malaria"  # on to the next
    reviews = [json.loads(line) for line in (reviewable_run / REVIEWS).read_text().splitlines()]
    assert [(r["id"], r["decision"], r["note"]) for r in reviews] == [("malaria", "reject", "anemia is not evidence")]

    after = export_ids(reviewable_run, tmp_path, "--reviewed")
    assert len(after) == len(before) - 1 and not any(q.startswith("A traveller returns") for q in after)
    question = browser.find_element(By.ID, "question").text
    browser.find_element(By.ID, "review-accept").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "review-badge"))
    assert export_ids(reviewable_run, tmp_path, "--only-reviewed") == [question]


def test_forged_review_from_another_page_is_refused(browser, viewer, reviewable_run, tmp_path):
    """A page of another origin in the same browser posts a review form to the viewer: it
    cannot read the session's token, so the viewer refuses it and writes nothing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "attacker").mkdir()
    (tmp_path / "attacker" / "index.html").write_text(
        f'<form id="f" method="post" action="{viewer}/review/malaria">'
        '<input name="decision" value="accept"><input name="token" value="guess"></form>'
        '<script>document.getElementById("f").submit()</script>')
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "attacker"))  # noqa: E731
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{attacker.server_address[1]}/index.html")  # the page posts itself
        WebDriverWait(browser, 10).until(lambda b: b.current_url.startswith(viewer))
        assert "refused" in browser.find_element(By.TAG_NAME, "body").text
    finally:
        attacker.shutdown()
    assert not (reviewable_run / REVIEWS).exists()


def test_a_question_holding_script_is_shown_as_text(browser, viewer):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    browser.get(viewer + "/samples?q=" + quote("<script>"))
    assert shown_ids(browser) == ["hostile/<b>id</b>"]
    navigate(browser, browser.find_element(By.CSS_SELECTOR, "#sample-list a.sample-link").click)
    assert browser.find_element(By.ID, "question").text == HOSTILE_QUESTION
    assert browser.find_element(By.ID, "sample-id").text == "hostile/<b>id</b>"
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main b#id") == []
    assert [s.get_attribute("src") for s in browser.find_elements(By.TAG_NAME, "script")] == [browser.current_url.split("/sample/")[0] + "/static/view.js"]
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text


def test_a_reviewer_sorts_the_list_sees_each_review_saved_and_is_remembered(browser, viewer, reviewable_run):
    """Going through a list as a reviewer does: sort by a score by clicking its header, open
    the first, type a note (Enter does not decide), reject with the key, see it saved on the
    next sample with the name prefilled; the name is still there on a new visit."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(viewer + "/samples")
    navigate(browser, browser.find_element(By.LINK_TEXT, "grounding").click)
    assert shown_ids(browser)[:2] == ["hostile/<b>id</b>", "malaria"]  # best grounded first
    cells = browser.find_elements(By.CSS_SELECTOR, "#sample-list tbody tr:nth-child(2) td")
    assert [c.text.split("\n")[0] for c in cells][1:5] == [
        "A traveller returns with fever, splenomegaly and anemia. Which drug treats the most likely disease?",
        "A. chloroquine", "accepted", "0.50"]
    navigate(browser, browser.find_element(By.LINK_TEXT, "malaria").click)
    assert browser.find_element(By.ID, "position").text.startswith("2 of 4 in this list")

    note = browser.find_element(By.ID, "review-note")
    note.send_keys("check the dose", Keys.ENTER)  # Enter in a field decides nothing
    assert not (reviewable_run / REVIEWS).exists() and browser.find_element(By.ID, "sample-id").text == "malaria"
    browser.find_element(By.ID, "review-who").send_keys("dr a", Keys.ESCAPE)  # Esc: back to the keys
    navigate(browser, lambda: browser.find_element(By.TAG_NAME, "body").send_keys("r"))
    assert browser.find_element(By.ID, "sample-id").text == "scurvy"  # the next in the sorted list
    assert browser.find_element(By.ID, "saved").text.startswith("✓ Saved: reject of malaria by dr a")
    assert browser.find_element(By.ID, "review-who").get_attribute("value") == "dr a"
    assert "1 of 4 reviewed" in browser.find_element(By.ID, "position").text
    [review] = [json.loads(line) for line in (reviewable_run / REVIEWS).read_text().splitlines()]
    assert (review["id"], review["decision"], review["note"], review["who"]) == ("malaria", "reject", "check the dose", "dr a")

    browser.get(viewer + "/sample/broken")
    assert browser.find_element(By.ID, "review-who").get_attribute("value") == "dr a"
    assert not browser.find_elements(By.ID, "saved")


def test_nothing_overflows_its_card(browser, viewer, reviewable_run):
    """Long ids, questions, fork commands and relation labels wrap or scroll inside their own
    card; the page never grows wider than the window."""
    from selenium.webdriver.common.by import By

    results = reviewable_run / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    for row in rows:
        if row["id"] == "malaria":
            row["question"] = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 6 + " " + row["question"]
            row["mappings"][0]["mention"] = "x" * 300
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for path in ("/samples", "/sample/malaria", "/"):
        browser.get(viewer + path)
        width = browser.execute_script("return document.documentElement.clientWidth")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width, path
        spilled = browser.execute_script("""
            return [...document.querySelectorAll('section, .chart')].filter(card => {
              const box = card.getBoundingClientRect();
              return [...card.querySelectorAll('td, th, label, p, li, span, code')].some(el => {
                const r = el.getBoundingClientRect();
                const scroller = el.closest('.table-wrap, .path-graph');
                return !scroller && r.width > 0 && (r.right > box.right + 1 || r.left < box.left - 1);
              });
            }).map(card => card.querySelector('h2, figcaption')?.textContent || card.className);""")
        assert spilled == [], (path, spilled)
