"""`dlterms serve` over real HTTP on a free loopback port: only the server's own pages can drive it.

The run endpoint takes only application/json, refuses a foreign Origin and a Host that is not the
bound address or `localhost` (DNS rebinding), runs one job at a time, and no response carries a
traceback or a path of this machine. The experiment itself is stood in by a job that waits on an
event, so these tests start no real run.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import pytest

from dlterms import glossary
from dlterms.site import server as srv

REGISTERED = next(e.id for e in glossary.entries() if e.experiment)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A server on 127.0.0.1, port 0, over a tiny site; `release` ends the stand-in job."""
    site = tmp_path / "site"
    (site / "terms").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>t</title>hello", encoding="utf-8")
    (site / "terms" / "a.html").write_text("<p>a</p>", encoding="utf-8")
    (site / "empty").mkdir()
    release = threading.Event()
    calls: list[str] = []

    def fake_run(self, term):
        calls.append(term)
        release.wait(20)
        self._update(state="done", status="passed", message="passed: 1/1 checks in 0.0 s")

    monkeypatch.setattr(srv.JobRunner, "_run", fake_run)
    server = srv.make_server("127.0.0.1", 0, results=tmp_path / "results", site=site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield {"port": port, "server": server, "release": release, "calls": calls, "tmp": tmp_path}
    release.set()
    server.shutdown()
    server.server_close()


def request(port, method, path, body=None, headers=None, host="default"):
    """(status, parsed JSON or text, raw body); `host=None` sends no Host header at all."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host == "default":
            host = f"127.0.0.1:{port}"
        if host is not None:
            conn.putheader("Host", host)
        data = body.encode() if isinstance(body, str) else body
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if data is not None and not any(k.lower() == "content-length" for k in headers or {}):
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return resp.status, parsed, raw
    finally:
        conn.close()


JSON = {"Content-Type": "application/json"}


def post_run(port, term=REGISTERED, headers=JSON, **kw):
    return request(port, "POST", "/api/run", json.dumps({"term": term}), headers, **kw)


def assert_no_leak(raw: bytes, tmp: Path):
    text = raw.decode("utf-8", "replace")
    assert "Traceback" not in text and 'File "' not in text
    assert str(tmp) not in text and str(Path.home()) not in text and "/src/dlterms" not in text


def test_own_page_request_starts_one_job_and_a_second_is_refused(served):
    port = served["port"]
    own = {"Content-Type": "application/json; charset=utf-8", "Origin": f"http://127.0.0.1:{port}"}
    code, data, _ = post_run(port, headers=own)
    assert code == 202 and data["job"]["term"] == REGISTERED and data["job"]["state"] == "running"
    code, data, _ = post_run(port, headers={**JSON, "Origin": f"http://localhost:{port}"}, host=f"localhost:{port}")
    assert code == 409 and "already running" in data["error"]
    code, data, _ = request(port, "GET", "/api/status")
    assert code == 200 and data["job"]["state"] == "running"
    served["release"].set()
    deadline = time.time() + 20
    while request(port, "GET", "/api/status")[1]["job"]["state"] == "running" and time.time() < deadline:
        time.sleep(0.05)
    assert request(port, "GET", "/api/status")[1]["job"]["state"] == "done"
    assert served["calls"] == [REGISTERED]


def test_concurrent_posts_start_exactly_one_job(served):
    port = served["port"]
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(post_run(port)[0])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [202] + [409] * 7
    assert len(served["calls"]) == 1


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_run_accepts_only_json_content_type(served, ctype):
    """A cross-site form or no-preflight fetch can send only these: none starts a job."""
    port = served["port"]
    headers = {} if ctype is None else {"Content-Type": ctype}
    code, data, _ = post_run(port, headers=headers)
    assert code == 415 and "application/json" in data["error"]
    assert served["calls"] == [] and request(port, "GET", "/api/status")[1]["job"] is None


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}", "http://localhost"]
)
def test_foreign_origin_is_refused(served, origin):
    port = served["port"]
    code, data, raw = post_run(port, headers={**JSON, "Origin": origin.format(port=port)})
    assert code == 403 and "other sites" in data["error"]
    assert served["calls"] == []
    # the evil page's exact request from the issue: text/plain and a foreign Origin
    code, _, _ = post_run(port, headers={"Content-Type": "text/plain", "Origin": "http://evil.example"})
    assert code == 403 and served["calls"] == []
    # a foreign Origin cannot read the API either
    assert request(port, "GET", "/api/status", headers={"Origin": "http://evil.example"})[0] == 403


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",
        "evil.example",
        "localhost.evil.example:{port}",
        "127.0.0.2:{port}",
        "127.0.0.1:{other}",
        "127.0.0.1",
        "[::1]:{port}",
        "",
        "user@127.0.0.1:{port}",
        "127.0.0.1:{port}:1",
        None,
    ],
)
def test_foreign_host_is_refused_everywhere(served, host):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends its own name."""
    port = served["port"]
    h = None if host is None else host.format(port=port, other=port + 1 if port < 65535 else port - 1)
    for method, path in (("GET", "/index.html"), ("GET", "/api/status"), ("GET", "/api/search?q=dropout")):
        code, data, _ = request(port, method, path, host=h)
        assert code == 403, (method, path, h)
    code, _, _ = post_run(port, host=h, headers={**JSON, "Origin": f"http://{h}"})
    assert code == 403 and served["calls"] == []


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_own_names_are_served(served, host):
    port = served["port"]
    code, text, _ = request(port, "GET", "/index.html", host=host.format(port=port))
    assert code == 200 and "hello" in text
    code, data, _ = request(port, "GET", "/api/status", host=host.format(port=port))
    assert code == 200 and data == {"job": None}


def test_allows_host_on_other_binds():
    """The rule for the bound address, asked on a server object without serving."""

    class Fake:
        allows_host = srv.Server.allows_host

        def __init__(self, asked, bound, port=8000):
            self.asked_host, self.server_address = asked, (bound, port)

    lo = Fake("localhost", "127.0.0.1")
    assert lo.allows_host("localhost:8000") and lo.allows_host("127.0.0.1:8000")
    assert not lo.allows_host("evil.example:8000") and not lo.allows_host("localhost:8001")
    lan = Fake("192.168.1.5", "192.168.1.5")
    assert lan.allows_host("192.168.1.5:8000")
    assert not lan.allows_host("localhost:8000") and not lan.allows_host("10.0.0.1:8000")
    anyv4 = Fake("0.0.0.0", "0.0.0.0")
    assert anyv4.allows_host("10.1.2.3:8000") and anyv4.allows_host("localhost:8000")
    assert not anyv4.allows_host("evil.example:8000")
    web80 = Fake("127.0.0.1", "127.0.0.1", port=80)
    assert web80.allows_host("127.0.0.1") and web80.allows_host("localhost")


@pytest.mark.parametrize(
    "body,headers,code",
    [
        ("not json", JSON, 400),
        ('{"term": 3}', JSON, 400),
        ('{"nope": 1}', JSON, 400),
        ("[1, 2]", JSON, 400),
        ('{"term": "no-such-term"}', JSON, 400),
        ('{"term": "' + "x" * 5000 + '"}', JSON, 413),
        ('{"term": "dropout"}', {**JSON, "Content-Length": "abc"}, 411),
        ('{"term": "dropout"}', {**JSON, "Content-Length": "-5"}, 400),
        (b'{"term": "\xff\xfe"}', JSON, 400),
    ],
)
def test_bad_run_requests_get_a_plain_error(served, body, headers, code):
    port = served["port"]
    status, data, raw = request(port, "POST", "/api/run", body, headers)
    assert status == code and isinstance(data, dict) and data["error"]
    assert_no_leak(raw, served["tmp"])
    assert served["calls"] == []


def test_unknown_endpoints_and_folders_leak_nothing(served):
    port = served["port"]
    for method, path in (
        ("GET", "/api/nope"),
        ("POST", "/api/nope"),
        ("GET", "/missing.html"),
        ("GET", "/empty/"),
        ("GET", "/../../etc/passwd"),
        ("GET", "/api/search?q=x&limit=zz"),
        ("GET", "/api/search?q=&limit=3"),
        ("DELETE", "/api/run"),
    ):
        status, _, raw = request(port, method, path, headers=JSON if method == "POST" else None)
        assert status >= 400, (method, path)
        assert_no_leak(raw, served["tmp"])
        assert b"Directory listing" not in raw


def test_an_internal_error_is_a_plain_500(served, monkeypatch, capsys):
    def boom(self):
        raise RuntimeError(f"secret path {served['tmp']}")

    monkeypatch.setattr(srv.JobRunner, "snapshot", boom)
    status, data, raw = request(served["port"], "GET", "/api/status")
    assert status == 500 and "internal server error" in data["error"]
    assert_no_leak(raw, served["tmp"])


def test_a_failed_job_reports_no_path(tmp_path, monkeypatch, capsys):
    """The real job body, with the run raising an error that names a path: the page sees only its type,
    the server's stderr gets the traceback."""
    import dlterms.run

    def failing(*a, **k):
        raise OSError(f"[Errno 28] No space left on device: '{tmp_path}/results/x.json'")

    monkeypatch.setattr(dlterms.run, "run_many", failing)
    runner = srv.JobRunner(tmp_path / "results", tmp_path / "site")
    runner.job = {"term": REGISTERED, "state": "running"}
    runner._run(REGISTERED)
    assert "Traceback" in capsys.readouterr().err
    job = runner.snapshot()
    assert job["state"] == "error" and "OSError" in job["message"] and str(tmp_path) not in job["message"]


def test_search_fallback_notice_names_no_path(served, monkeypatch):
    from dlterms.site import semantic

    def broken(*a, **k):
        raise FileNotFoundError(f"{served['tmp']}/model/weights.safetensors")

    monkeypatch.setattr(semantic, "search", broken)
    status, data, raw = request(served["port"], "GET", "/api/search?q=dropout&limit=3")
    assert status == 200 and data["mode"] == "keywords" and "FileNotFoundError" in data["notice"]
    assert_no_leak(raw, served["tmp"])
