"""The run button's parameter form in `dlterms serve`: inputs typed from the Config, values validated
on the server (400 with a message naming the parameter and the value), the run uses them and is saved
apart from the default, and the page shows its checks and figure beside the default run.

The API tests stand a recording job in for the experiment; the browser test (Chromium through
Playwright) runs quantization for real at epochs=2, repeats=1."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

import pytest

from dlterms.site import server as srv

TERM = "quantization"  # declares a Config
JSON = {"Content-Type": "application/json"}


def _post(port: int, body) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        data = json.dumps(body).encode()
        conn.request("POST", "/api/run", data, {**JSON, "Host": f"127.0.0.1:{port}", "Content-Length": str(len(data))})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.fixture
def recording(tmp_path, monkeypatch):
    """A server over a tiny site whose jobs only record the term and config they were given."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>t</title>", encoding="utf-8")
    calls: list = []

    def fake_run(self, term, config=None):
        calls.append((term, config))
        self._update(state="done", status="passed", message="passed", default=not config)

    monkeypatch.setattr(srv.JobRunner, "_run", fake_run)
    server = srv.make_server("127.0.0.1", 0, results=tmp_path / "results", site=site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], calls
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"epoch": "2"}, ["unknown parameter 'epoch'", "did you mean 'epochs'"]),
        ({"epochs": "two"}, ["parameter 'epochs'", "'two'"]),
        ({"lr": "fast"}, ["parameter 'lr'", "'fast'"]),
        ({"epochs": "0"}, ["epochs", "0"]),
        ({"sizes": "64,x,10"}, ["parameter 'sizes'"]),
        ({"epochs": True}, ["parameter 'epochs'"]),
    ],
)
def test_bad_values_are_a_400_naming_the_parameter(recording, config, words):
    port, calls = recording
    code, data = _post(port, {"term": TERM, "config": config})
    assert code == 400
    for w in words:
        assert w in data["error"]
    assert calls == []


def test_config_must_be_an_object_and_needs_declared_parameters(recording, monkeypatch):
    from dlterms import run as runmod

    port, calls = recording
    code, data = _post(port, {"term": TERM, "config": ["epochs", 2]})
    assert code == 400 and "config" in data["error"]
    monkeypatch.setattr(runmod, "config_class", lambda term: None)  # as an experiment declaring none
    code, data = _post(port, {"term": TERM, "config": {"p": "0.2"}})
    assert code == 400 and "declares no parameters" in data["error"]
    assert calls == []


def test_valid_values_are_parsed_by_type_and_only_the_changes_are_run(recording):
    port, calls = recording
    code, data = _post(port, {"term": TERM, "config": {"epochs": "2", "repeats": "1", "lr": "0.001"}})
    assert code == 202 and data["job"]["changed"] == "epochs=2, repeats=1"
    for _ in range(100):
        if calls:
            break
        threading.Event().wait(0.05)
    assert calls == [(TERM, {"epochs": 2, "repeats": 1})]  # lr is its default: not a change


# --------------------------------------------------------------------------- in the browser

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.mark.browser
def test_change_a_value_run_and_see_the_new_result_beside_the_default(tmp_path):
    assert CHROMIUM.exists(), "Debian's chromium is not installed: `apt-get install chromium` (make test does it)"
    from playwright.sync_api import sync_playwright

    from dlterms.site.build import build_site

    results, site = tmp_path / "results", tmp_path / "site"
    results.mkdir()
    build_site(site, results, notebooks=False)
    server = srv.make_server("127.0.0.1", 0, results=results, site=site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/terms/{TERM}.html"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            form = page.locator("#run-form")
            form.wait_for(state="visible")
            assert page.locator("#run-form input[name=epochs]").get_attribute("type") == "number"
            assert page.locator("#run-form input[name=sizes]").get_attribute("type") == "text"
            # a bad value: the server's message, no run
            page.fill("#run-form input[name=epochs]", "0")
            page.click("#run-custom")
            page.wait_for_function("document.getElementById('run-status').textContent.includes('epochs')")
            # a good one
            page.fill("#run-form input[name=epochs]", "2")
            page.fill("#run-form input[name=repeats]", "1")
            page.click("#run-custom")
            shown = page.locator("#custom-result")
            shown.wait_for(state="visible", timeout=300_000)
            text = shown.inner_text()
            assert "non-default parameters" in text and "epochs=2, repeats=1" in text
            n_rows = page.locator("#custom-result table.checks tr").count()
            assert n_rows >= 1
            page.wait_for_function(
                "Array.from(document.querySelectorAll('#custom-result img'))"
                ".every(i => i.complete && i.naturalWidth > 0)"
                " && document.querySelectorAll('#custom-result img').length > 0",
                timeout=60_000,
            )
            assert errors == []
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "serve-parameter-form.png"), full_page=True)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    saved = results / "custom" / TERM / "epochs=2,repeats=1" / f"{TERM}.json"
    d = json.loads(saved.read_text(encoding="utf-8"))
    assert d["default"] is False and d["config"]["epochs"] == 2
    assert n_rows == len(d["checks"])
    assert not (results / f"{TERM}.json").exists(), "the default result is not written by a non-default run"
