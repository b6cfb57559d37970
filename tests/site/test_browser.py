"""The website in a real browser: Debian's Chromium driven by Playwright (no browser download).

Type in the search box, follow a result to the term page, see its figure load and its checks
table, with no console errors; crawl the served site for broken links; ask the served question
search; run an experiment from its page. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from dlterms import glossary
from dlterms.run import load_results
from dlterms.site.build import build_site, internal_links

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory, suite_results):
    """A built site from the full run, served by `dlterms serve`'s server on a free loopback port."""
    from dlterms.site.server import make_server

    root = tmp_path_factory.mktemp("served")
    results = root / "results"
    shutil.copytree(suite_results, results)
    site = root / "site"
    build_site(site, results)
    server = make_server("127.0.0.1", 0, results=results, site=site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/", "site": site, "results": results, "server": server}
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "Debian's chromium is not installed: `apt-get install chromium` (make test does it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.errors = []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()


def _term_with_figure(results_dir: Path):
    results = load_results(results_dir)
    for r in sorted(results.values(), key=lambda r: r.number):
        if r.figures and r.checks:
            return r
    pytest.fail("no saved result with a figure to show")


def _images_loaded(page) -> list[str]:
    return page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")


@pytest.mark.parametrize("how", ["file", "http"])
def test_search_then_follow_result_to_term_page(page, served, how):
    r = _term_with_figure(served["results"])
    title = glossary.get(r.term).title
    base = served["site"].as_uri() + "/" if how == "file" else served["url"]
    page.goto(urljoin(base, "index.html"))
    page.fill("#search", title)
    first = page.locator(".result-link").first
    first.wait_for(timeout=10_000)
    assert first.inner_text() == title
    if how == "http":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "index.png"))
    first.click()
    page.wait_for_url(f"**/terms/{r.term}.html")
    page.locator("table.checks").wait_for()
    rows = page.locator("table.checks tbody tr")
    assert rows.count() == len(r.checks)
    page.locator("figure img").first.scroll_into_view_if_needed()
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    assert not _images_loaded(page), "a figure did not load"
    assert page.locator("figure img").count() == len(r.figures)
    assert page.locator("figure img").first.get_attribute("alt")
    if how == "http":
        page.screenshot(path=str(SCREENSHOTS / "term.png"), full_page=True)
    assert page.errors == []


def test_served_site_has_no_broken_link(served):
    """Crawl every page reachable from the index over HTTP; every internal link answers 200."""
    base = served["url"]
    seen, queue, broken = set(), deque([urljoin(base, "index.html")]), []
    while queue:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = resp.read()
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            exc.close()
            broken.append(f"{url}: {exc.code}")
            continue
        if "html" in ctype:
            for link in internal_links(body.decode("utf-8")):
                target = urljoin(url, link).split("#")[0]
                if urlparse(target).netloc == urlparse(base).netloc:
                    queue.append(target)
    assert not broken, broken[:20]
    assert len([u for u in seen if "/terms/" in u]) == 100


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=120) as resp:
        return json.loads(resp.read())


def _post(url: str, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_served_question_search_finds_the_term(served):
    from dlterms.site.semantic import load_questions

    sample = load_questions()[::9]  # 12 questions spread over the set
    found = 0
    for question, term in sample:
        data = _get_json(served["url"] + "api/search?q=" + urllib.request.quote(question) + "&limit=3")
        assert data["mode"] == "semantic", data.get("notice")
        found += term in [h["id"] for h in data["hits"]]
    assert found >= 0.8 * len(sample), f"{found}/{len(sample)}"


def test_question_search_in_the_browser(page, served):
    page.goto(served["url"] + "index.html")
    page.fill("#search", "why do my gradients shrink to almost nothing in the early layers of a deep net?")
    page.wait_for_function("document.getElementById('search-note').textContent.includes('meaning')", timeout=60_000)
    top3 = page.locator(".result-link").all_inner_texts()[:3]
    assert "Vanishing Gradient Problem" in top3
    assert page.errors == []


def test_api_rejects_bad_requests(served):
    base = served["url"]
    assert _post(base + "api/run", {"term": "no-such-term"})[0] == 400
    assert _post(base + "api/run", {"nope": 1})[0] == 400
    unregistered = next((e.id for e in glossary.entries() if not e.experiment), None)
    if unregistered:
        code, data = _post(base + "api/run", {"term": unregistered})
        assert code == 400 and "not the id of a registered experiment" in data["error"]
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(base + "api/search?q=", timeout=10)
    assert exc.value.code == 400
    exc.value.close()
    assert served["server"].server_address[0] == "127.0.0.1"


def test_run_from_the_term_page(page, served):
    """Click "Run this experiment": a second request while it runs is refused, the page updates."""
    results = load_results(served["results"])
    fast = min((r for r in results.values() if r.status == "passed"), key=lambda r: r.seconds)
    before = fast.started
    page.goto(served["url"] + f"terms/{fast.term}.html")
    button = page.locator("#run-button")
    button.wait_for(state="visible")
    time.sleep(1.1)  # a new run gets a later "started" stamp (second resolution)
    button.click()
    page.wait_for_function("document.getElementById('run-status').textContent.length > 0")
    code, data = _post(served["url"] + "api/run", {"term": fast.term})
    job = _get_json(served["url"] + "api/status")["job"]
    if job["state"] == "running":
        assert code == 409 and "already running" in data["error"]
    page.wait_for_load_state()
    deadline = time.time() + 240
    while _get_json(served["url"] + "api/status")["job"]["state"] == "running" and time.time() < deadline:
        time.sleep(0.5)
    assert _get_json(served["url"] + "api/status")["job"]["state"] == "done"
    page.wait_for_function(f"!document.body.textContent.includes({json.dumps(before)})", timeout=30_000)
    assert load_results(served["results"])[fast.term].started != before
    assert page.errors == []


def test_corrections_page_from_the_index(page, served):
    """A reader coming from the article finds "Where the source is wrong" from the index, sees every
    correction, follows one to its entry and one to the experiment that measures it, and comes back."""
    every = [(e, c) for e in glossary.entries() for c in e.corrections]
    page.goto(served["url"] + "index.html")
    page.locator("p.source-link a", has_text="where the source is wrong").click()
    page.wait_for_url("**/corrections.html")
    assert page.locator("h1").inner_text() == "Where the source is wrong"
    assert page.locator(".correction").count() == len(every)
    entries_shown = page.locator("li.correction-entry").count()
    assert entries_shown == len({e.id for e, _ in every})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "corrections.png"), full_page=True)

    rl = page.locator("#reinforcement-learning")
    assert "gamification" in rl.inner_text()
    rl.locator("a.entry-link").click()
    page.wait_for_url("**/terms/reinforcement-learning.html")
    assert "gamification" in page.locator(".definition").inner_text()
    page.go_back()
    page.wait_for_url("**/corrections.html")

    page.locator("#pooling a.experiment-link").first.click()
    page.wait_for_url("**/terms/pooling.html#experiment")
    assert page.locator("section#experiment").is_visible()
    page.locator("p.source-note a").click()
    page.wait_for_url("**/corrections.html#pooling")
    assert page.locator("#pooling").is_visible()
    assert page.errors == []
