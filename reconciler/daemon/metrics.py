"""The daemon's Prometheus metrics, and the small HTTP endpoint that serves them.

`Metrics` owns its own `CollectorRegistry` — never prometheus_client's global
one, so two daemons (or a test and a daemon) in one process never share or
double-register a series, and nothing the libraries we import register
globally (process or platform collectors) is served. The daemon records through
the typed methods below (reconciler.daemon.core.MetricsSink is the part it
calls); `render()` is the text exposition; `serve()` publishes it on `--metrics
HOST:PORT`.

Series (a `_total` counter, `_seconds` histograms, plain gauges):

- aios_reconciles_total{domain,result}, aios_reconcile_duration_seconds{domain}
- aios_step_duration_seconds{tool}, aios_tool_calls_total{tool,result}
- aios_drift_detected_total{domain}, aios_drift_healed_total{domain}
- aios_queue_depth, aios_events_dropped_total, aios_fighting_objects,
  aios_generation, aios_feed_connected (1: kernel events, 0: polling),
  aios_spec_errors (errors of the last load of the specs directories).

Why a small http.server handler rather than prometheus_client.start_http_server:
that server answers every path with the metrics and has no place for a
readiness answer, so `/healthz` would need a second port; here one listener
serves `GET /metrics` (content negotiated with prometheus_client's own
`choose_encoder`, so OpenMetrics scrapers get OpenMetrics), `GET /healthz`
(200 "ok" or 503 and the reason, from the daemon's `health` callable) and 404
for anything else, and `close()` shuts it down and frees the port
deterministically.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder, generate_latest

Health = Callable[[], tuple[bool, str]]

# Reconciles and steps run from ~1 ms (nothing to do) to minutes (a package
# install, a model download): the default buckets stop at 10 s.
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    float("inf"),
)


class Metrics:
    """Every metric of one daemon, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._reconciles = Counter(
            "aios_reconciles",
            "Reconciles of one domain, by result (e.g. converged, changed, failed).",
            ["domain", "result"],
            registry=r,
        )
        self._reconcile_seconds = Histogram(
            "aios_reconcile_duration_seconds",
            "Wall time of one domain's reconcile: observe, plan, verify, apply.",
            ["domain"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._step_seconds = Histogram(
            "aios_step_duration_seconds",
            "Wall time of one plan step (one tool call), by tool.",
            ["tool"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._tool_calls = Counter(
            "aios_tool_calls",
            "Tool registry calls, by tool and result (ok or the error kind).",
            ["tool", "result"],
            registry=r,
        )
        self._drift_detected = Counter(
            "aios_drift_detected",
            "Times a domain was found to differ from its specs without a spec change.",
            ["domain"],
            registry=r,
        )
        self._drift_healed = Counter(
            "aios_drift_healed",
            "Drift a reconcile put back (enforce mode).",
            ["domain"],
            registry=r,
        )
        self._queue_depth = Gauge(
            "aios_queue_depth", "Work waiting in the daemon's queue.", registry=r
        )
        self._events_dropped = Counter(
            "aios_events_dropped",
            "Events dropped from the event buffer (a watcher too slow) or the change feed.",
            registry=r,
        )
        self._fighting = Gauge(
            "aios_fighting_objects",
            "Objects another writer keeps changing back (the Fighting condition).",
            registry=r,
        )
        self._generation = Gauge("aios_generation", "The spec generation applied last.", registry=r)
        self._feed_connected = Gauge(
            "aios_feed_connected",
            "1 while drift comes from the registry's change feed, 0 while polling.",
            registry=r,
        )
        self._spec_errors = Gauge(
            "aios_spec_errors",
            "Errors of the last load of the specs directories (0: the set is valid).",
            registry=r,
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- recording ------------------------------------------------------------------------

    def reconciled(self, domain: str, result: str, seconds: float) -> None:
        """One domain reconciled with `result` in `seconds`."""
        self._reconciles.labels(domain=domain, result=result).inc()
        self._reconcile_seconds.labels(domain=domain).observe(max(0.0, seconds))

    def step(self, tool: str, seconds: float) -> None:
        """One plan step (a call of `tool`) took `seconds`."""
        self._step_seconds.labels(tool=tool).observe(max(0.0, seconds))

    def tool_call(self, tool: str, result: str) -> None:
        """One registry call of `tool` ended with `result` ("ok" or an error kind)."""
        self._tool_calls.labels(tool=tool, result=result).inc()

    def drift_detected(self, domain: str) -> None:
        self._drift_detected.labels(domain=domain).inc()

    def drift_healed(self, domain: str) -> None:
        self._drift_healed.labels(domain=domain).inc()

    def events_dropped(self, count: int = 1) -> None:
        if count > 0:
            self._events_dropped.inc(count)

    def set_queue_depth(self, depth: int) -> None:
        self._queue_depth.set(depth)

    def set_fighting(self, count: int) -> None:
        self._fighting.set(count)

    def set_generation(self, generation: int) -> None:
        self._generation.set(generation)

    def set_feed_connected(self, connected: bool) -> None:
        self._feed_connected.set(1 if connected else 0)

    def set_spec_errors(self, count: int) -> None:
        self._spec_errors.set(count)

    # -- exposition -----------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4) of every series."""
        return generate_latest(self.registry)

    def serve(self, host: str, port: int, health: Health) -> tuple[str, int]:
        """Serve /metrics and /healthz on HOST:PORT from a daemon thread; the bound address.

        Port 0 picks a free port (the returned address says which). `health` is
        called on the server's thread for every /healthz request: it must be
        thread-safe and quick (read a flag; never wait on the event loop).
        Raises OSError when the address cannot be bound, RuntimeError when
        already serving.
        """
        if self._server is not None:
            raise RuntimeError("metrics are already being served")
        server = _Server((host, port), _make_handler(self, health))
        bound = server.server_address
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="aios-metrics",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return str(bound[0]), int(bound[1])

    @property
    def address(self) -> tuple[str, int] | None:
        """Where metrics are served, None when they are not."""
        if self._server is None:
            return None
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop serving and free the port (idempotent); the series stay."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck scrape never holds the daemon's exit
    allow_reuse_address = True  # a restarted daemon rebinds at once (no TIME_WAIT wait)

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        host = address[0]
        if ":" in host:  # an IPv6 literal, e.g. ::1 from [::1]:9464
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


def _make_handler(metrics: Metrics, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.metrics = metrics
    Handler.health = staticmethod(health)
    return Handler


class _Handler(BaseHTTPRequestHandler):
    metrics: ClassVar[Metrics]
    health: ClassVar[Health]
    server_version = "aios-metrics"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, content_type, encoder(self.metrics.registry), body)
        elif path == "/healthz":
            try:
                ok, message = type(self).health()
            except Exception as exc:  # a broken health check is unhealthy, not a crash
                ok, message = False, f"health check failed: {exc}"
            text = "ok" if ok and not message else message or ("ok" if ok else "not ready")
            self._send(
                200 if ok else 503, "text/plain; charset=utf-8", (text + "\n").encode(), body
            )
        else:
            self._send(
                404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n", body
            )

    def _send(self, status: int, content_type: str, payload: bytes, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not logged: one line every few seconds would drown the daemon's log."""
