"""`dlterms serve`: the static site plus what a static page cannot do.

    GET  /api/search?q=...&limit=N   terms ranked by meaning (keywords, with a notice, without the model)
    GET  /api/status                 the current or last experiment job
    POST /api/run  {"term": "<id>"}  run one registered experiment; 202 started, 409 one is running,
                                     400 not a registered experiment
    POST /api/run  {"term": "<id>", "config": {"p": 0.2, ...}}
                                     the same with declared parameters changed (the page's form):
                                     validated here (400 with a message naming the parameter and the
                                     value), saved under results/custom/, never over the default;
                                     the finished job carries the run's checks and figure URLs

One job at a time, in a separate worker process (a crashing experiment cannot take the server
down). When it finishes, the site is rebuilt so the term's page shows the new result. The server
binds to loopback unless another host is asked for explicitly.

Only the server's own pages can drive it:
- every request must name the server in its `Host` header: the bound address, or `localhost` when
  bound to a loopback address (a page on another site that rebinds its DNS name to 127.0.0.1 sends
  its own name, and gets 403);
- a request carrying an `Origin` header must come from the server's own origin (403 otherwise);
- `POST /api/run` accepts only `Content-Type: application/json` (415 otherwise), which a cross-site
  form or a "simple" cross-site fetch cannot send without a CORS preflight, and this server answers no
  preflight.
Responses never carry a traceback or a path of this machine: those go to the server's stderr.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import re
import sys
import threading
import time
import traceback
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlparse

MAX_BODY = 4096
_LOOPBACK_NAMES = ("localhost",)


class JobRunner:
    """Runs at most one experiment at a time and remembers the last job's state."""

    def __init__(self, results: Path, site: Path):
        self.results, self.site = Path(results), Path(site)
        self._lock = threading.Lock()
        self.job: dict | None = None

    def snapshot(self) -> dict | None:
        with self._lock:
            return dict(self.job) if self.job else None

    def start(self, term: str, config: dict | None = None, changed: str = "") -> tuple[bool, dict]:
        """Start `term` (with parameter overrides `config`, already validated; `changed` says them)
        if nothing runs; (started?, job or the running job)."""
        with self._lock:
            if self.job and self.job["state"] == "running":
                return False, dict(self.job)
            self.job = {
                "term": term,
                "state": "running",
                "fraction": 0.0,
                "message": "starting",
                "started": time.time(),
                "changed": changed,
            }
            job = dict(self.job)
        extra = {"config": config} if config else {}
        threading.Thread(target=self._run, args=(term,), kwargs=extra, daemon=True).start()
        return True, job

    def _update(self, **fields) -> None:
        with self._lock:
            if self.job:
                self.job.update(fields)

    def _run(self, term: str, config: dict | None = None) -> None:
        from dlterms import params
        from dlterms.run import config_class, run_many
        from dlterms.site.build import build_site

        try:
            (result,) = run_many(
                [term],
                jobs=1,
                out=self.results,
                isolate=True,
                progress=lambda t, f, m: self._update(fraction=f, message=m),
                config=config,
            )
            self._update(fraction=1.0, message="rebuilding the site")
            build_site(self.site, self.results)
            figures = [f"figures/{f.path}" for f in result.figures]
            if not result.default:
                tag = params.config_tag(params.build_config(config_class(term), result.config, term=term))
                figures = [f"figures/custom/{term}/{tag}/{f.path}" for f in result.figures]
            self._update(
                state="done",
                status=result.status,
                default=result.default,
                checks=[c.to_dict() for c in result.checks],
                figures=figures,
                message=f"{result.status}: {result.n_passed}/{len(result.checks)} checks in {result.seconds:.1f} s",
            )
        except Exception as exc:  # noqa: BLE001 - reported to the page, the server keeps serving
            traceback.print_exc()  # the details (paths, traceback) go to the server's stderr only
            self._update(state="error", message=f"the run failed on the server ({type(exc).__name__}); see its log")


class Handler(http.server.SimpleHTTPRequestHandler):
    runner: JobRunner

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _json(self, code: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def list_directory(self, path):  # a folder without index.html is not listed
        self.send_error(404, "File not found")
        return None

    def _refused(self) -> bool:
        """Answer 403 (and return True) unless Host and Origin name this server."""
        host = self.headers.get("Host")
        if host is None or not self.server.allows_host(host):
            self._json(403, {"error": "this server answers only requests addressed to it by its own address"})
            return True
        origin = self.headers.get("Origin")
        if origin is not None and origin.rstrip("/").lower() != f"http://{host}".lower():
            self._json(403, {"error": "requests from other sites are refused"})
            return True
        return False

    def _guarded(self, handle) -> None:
        """Run `handle` after the Host/Origin checks; an unexpected error is a 500 with no details."""
        try:
            if not self._refused():
                handle()
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:  # noqa: BLE001 - the page gets a plain message, stderr the traceback
            traceback.print_exc()
            with contextlib.suppress(Exception):
                self._json(500, {"error": "internal server error (see the server's log)"})

    def do_GET(self):  # noqa: N802 - http.server's name
        self._guarded(self._get)

    def do_HEAD(self):  # noqa: N802
        self._guarded(super().do_HEAD)

    def do_POST(self):  # noqa: N802
        self._guarded(self._post)

    def _get(self) -> None:
        url = urlparse(self.path)
        if url.path == "/api/status":
            return self._json(200, {"job": self.server.runner.snapshot()})
        if url.path == "/api/search":
            return self._search(parse_qs(url.query))
        if url.path.startswith("/api/"):
            return self._json(404, {"error": f"no such endpoint {url.path}"})
        return super().do_GET()

    def _search(self, qs: dict) -> None:
        from dlterms.glossary.search import keyword_search

        query = (qs.get("q") or [""])[0]
        try:
            limit = int((qs.get("limit") or ["10"])[0])
        except ValueError:
            return self._json(400, {"error": f"limit must be an integer, got {qs.get('limit')[0]!r}"})
        if not query.strip():
            return self._json(400, {"error": "q must be a non-empty query"})
        if not 1 <= limit <= 100:
            return self._json(400, {"error": f"limit must be in 1..100, got {limit}"})
        try:
            from dlterms.site import semantic

            hits, mode, notice = semantic.search(query, limit=limit), "semantic", None
        except Exception as exc:  # noqa: BLE001 - any model failure falls back to keywords, with a notice
            print(f"dlterms serve: language model unavailable: {exc!r}", file=sys.stderr)
            hits, mode = keyword_search(query, limit), "keywords"
            notice = f"language model unavailable ({type(exc).__name__})"
        return self._json(200, {"query": query, "mode": mode, "notice": notice, "hits": [h.to_dict() for h in hits]})

    def _post(self) -> None:
        url = urlparse(self.path)
        if url.path != "/api/run":
            return self._json(404, {"error": f"no such endpoint {url.path}"})
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return self._json(415, {"error": f"send Content-Type: application/json, got {ctype or 'none'!r}"})
        raw_length = self.headers.get("Content-Length")
        try:
            length = int(raw_length)
        except (TypeError, ValueError):
            return self._json(411, {"error": f"Content-Length must be a whole number, got {raw_length!r}"})
        if length < 0:
            return self._json(400, {"error": f"Content-Length must be >= 0, got {length}"})
        if length > MAX_BODY:
            return self._json(413, {"error": "request body too large"})
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            term = body["term"]
            config = body.get("config") or {}
            if not isinstance(term, str) or not isinstance(config, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._json(400, {"error": 'send JSON like {"term": "dropout", "config": {"p": 0.2}}'})
        from dlterms import glossary

        try:
            entry = glossary.get(term)
        except glossary.UnknownTermError as exc:
            return self._json(400, {"error": str(exc)})
        if entry.id != term or not entry.experiment:
            return self._json(400, {"error": f"{term!r} is not the id of a registered experiment"})
        changed = ""
        if config:
            from dlterms import params
            from dlterms.run import config_class

            try:
                cls = config_class(entry.id)
                if cls is None:
                    raise ValueError(f"experiment {entry.id!r} declares no parameters")
                cfg = params.build_config(cls, config, term=entry.id)
            except ValueError as exc:
                return self._json(400, {"error": str(exc)})
            changed = params.describe(cfg)
            config = {k: list(v) if isinstance(v, tuple) else v for k, v in params.changed(cfg).items()}
        started, job = self.server.runner.start(entry.id, config, changed)
        if not started:
            return self._json(409, {"error": f"an experiment is already running: {job['term']}", "job": job})
        return self._json(202, {"job": job})


def _split_host(value: str) -> tuple[str, int | None] | None:
    """'name:port', '[v6]:port', 'name' -> (lower-case name, port or None); None when malformed."""
    value = value.strip()
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?|([^\s:\[\]/@]+)(?::(\d{1,5}))?", value)
    if m is None:
        return None
    name = (m.group(1) or m.group(3)).lower()
    port = m.group(2) or m.group(4)
    return name, int(port) if port else None


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, runner: JobRunner, verbose: bool = False):
        super().__init__(address, handler)
        self.runner = runner
        self.verbose = verbose
        self.asked_host = str(address[0]).strip("[]").lower()

    def allows_host(self, header: str) -> bool:
        """Whether a request's `Host` header names this server: the bound address (or the name it was
        asked to bind), with the bound port, or `localhost` when bound to loopback. On a wildcard bind
        (0.0.0.0, ::) any IP literal is accepted, never a DNS name other than localhost."""
        parsed = _split_host(header)
        if parsed is None:
            return False
        name, port = parsed
        if (port or 80) != self.server_address[1]:
            return False
        bound = str(self.server_address[0]).lower()
        if name in (bound, self.asked_host):
            return True
        wildcard = bound in ("0.0.0.0", "::")
        if name in _LOOPBACK_NAMES:
            return wildcard or _is_loopback(bound)
        if wildcard:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False


def make_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    results: Path = Path("results"),
    site: Path = Path("site-build"),
    verbose: bool = False,
) -> Server:
    """A ready server (not yet serving). Builds the site first if it does not exist. Port 0 picks a free port."""
    from dlterms.site.build import build_site

    site, results = Path(site).resolve(), Path(results).resolve()
    handler = partial(Handler, directory=str(site))
    server = Server((host, port), handler, JobRunner(results, site), verbose=verbose)  # OSError: cannot listen
    try:
        if not (site / "index.html").exists():
            build_site(site, results)
    except BaseException:
        server.server_close()
        raise
    return server


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = "127.0.0.1", port: int = 8000, results: Path = Path("results"), site: Path = Path("site-build")
) -> int:
    server = make_server(host, port, results, site, verbose=True)
    if not _is_loopback(host):
        print(
            f"warning: serving on {host}, reachable from other machines; experiments can be started "
            "by anyone who can reach it",
            file=sys.stderr,
        )
    print(f"serving {site} on http://{host}:{server.server_address[1]}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
