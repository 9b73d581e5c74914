"""The HTTP exporter: `GET /probe?scenario=NAME[&sbc=NODE][&debug=true]` runs one probe and answers
its registry; `GET /metrics` the exporter's own; `GET /` lists the probes.

The standard library's ThreadingHTTPServer (a thread per request): a probe blocks for up to its
timeout while its own event loop runs the call, and /metrics must answer meanwhile. Exposition is
prometheus_client's (text or OpenMetrics, as the scraper's Accept header asks). A scrape's own timeout
(X-Prometheus-Scrape-Timeout-Seconds, less a margin) caps the probe's, as blackbox_exporter does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest

from harness.probes.metrics import ExporterMetrics, probe_registry
from harness.probes.probe import ProbeRefused
from harness.probes.service import ProbeService
from harness.probes.text import explain
from harness.targets.redact import redact

log = logging.getLogger("harness.probes")
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
SCRAPE_MARGIN = 0.5  # seconds kept for the answer itself (blackbox_exporter's timeout_offset)
MIN_BUDGET = 0.1


class ProbeExporter:
    """The exporter over one ProbeService; ``serve_forever`` in the calling thread, or ``running()``."""

    def __init__(self, service: ProbeService, host: str = "127.0.0.1", port: int = 9588) -> None:
        self.service = service
        self.secrets = tuple(service.target.secrets)
        self.metrics = ExporterMetrics(service.slots, self.secrets)
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.1)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @contextmanager
    def running(self) -> Iterator[ProbeExporter]:
        """Serve from a background thread for the block (tests, embedding)."""
        thread = threading.Thread(target=self.serve_forever, name="probe-exporter", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.close()
            thread.join(timeout=5)

    # -- the answers --------------------------------------------------------------------------------

    def probe(self, query: dict[str, list[str]], headers: Any) -> tuple[int, str, bytes]:
        started = time.monotonic()
        name = _one(query, "scenario")
        shown = redact(name, self.secrets)
        try:
            request = self.service.request(name, _one(query, "sbc"), cap=_scrape_budget(headers))
            result = self.service.run(request, started)
        except ProbeRefused as exc:
            self.metrics.refused()
            reason = redact(str(exc), self.secrets)
            log.warning("probe %s refused: %s", shown, reason)
            return HTTPStatus.BAD_REQUEST, "text/plain; charset=utf-8", (reason + "\n").encode()
        self.metrics.observe(result)
        log.info(
            "probe %s%s: %s%s in %.3f s",
            shown,
            f" sbc={redact(result.node, self.secrets)}" if result.node else "",
            result.status,
            f" ({result.reason})" if result.reason else "",
            result.duration,
        )
        registry = probe_registry(result, self.secrets)
        if _one(query, "debug").lower() in ("true", "1", "yes"):
            text = explain(result) + "\n\nmetrics:\n" + generate_latest(registry).decode()
            return HTTPStatus.OK, "text/plain; charset=utf-8", redact(text, self.secrets).encode()
        encoder, content_type = choose_encoder(headers.get("Accept", ""))
        return HTTPStatus.OK, content_type, encoder(registry)

    def own_metrics(self, headers: Any) -> tuple[int, str, bytes]:
        encoder, content_type = choose_encoder(headers.get("Accept", ""))
        return HTTPStatus.OK, content_type, encoder(self.metrics.registry)

    def index(self) -> tuple[int, str, bytes]:
        service = self.service
        lines = [
            "kazoo-harness probe exporter",
            f"target: {service.target.name} (profile {service.target.profile.name})",
            "GET /probe?scenario=NAME[&sbc=NODE][&debug=true]   GET /metrics",
            "",
            f"probes of the config ({len(service.probes)}):",
            *(f"  {name}" for name in service.probes),
            f"catalog scenarios ({len(service.catalog.cases)}):",
            *(f"  {name}" for name in service.catalog.cases),
        ]
        if service.target.sbc_nodes:
            lines += ["SBC nodes (sbc=NODE):", *(f"  {n}" for n in service.target.sbc_nodes)]
        text = redact("\n".join(lines) + "\n", self.secrets)
        return HTTPStatus.OK, "text/plain; charset=utf-8", text.encode()


def _one(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[-1].strip()


def _scrape_budget(headers: Any) -> float | None:
    value = headers.get(SCRAPE_TIMEOUT_HEADER)
    try:
        return max(MIN_BUDGET, float(value) - SCRAPE_MARGIN) if value else None
    except ValueError:
        return None


def _handler(exporter: ProbeExporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kazoo-harness-probe"

        def do_GET(self) -> None:  # http.server calls it by this name
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            try:
                if url.path == "/probe":
                    answer = exporter.probe(query, self.headers)
                elif url.path == "/metrics":
                    answer = exporter.own_metrics(self.headers)
                elif url.path in ("/", ""):
                    answer = exporter.index()
                elif url.path in ("/-/healthy", "/-/ready"):
                    answer = HTTPStatus.OK, "text/plain; charset=utf-8", b"OK\n"
                else:
                    answer = HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n"
            except Exception:  # a bug of the exporter: say so, keep serving
                exporter.metrics.internal_error()
                log.exception("internal error answering %s", redact(self.path, exporter.secrets))
                answer = (
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    CONTENT_TYPE_PLAIN_0_0_4,
                    b"internal error: see the exporter's log\n",
                )
            status, content_type, body = answer
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the scraper gave up (its own timeout)
                log.info("the client of %s left before the answer", redact(url.path, exporter.secrets))

        def log_message(self, format: str, *args: Any) -> None:  # http.server names the argument
            log.debug(redact(format % args, exporter.secrets))

    return Handler
