"""reconciler.daemon.metrics: the series, their exposition, and /metrics + /healthz served
over a real socket (port 0), freed again by close()."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from reconciler.daemon.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics()
    yield m
    m.close()


def get(address: tuple[str, int], path: str, accept: str = "") -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=5)
    try:
        conn.request("GET", path, headers={"Accept": accept} if accept else {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def test_every_series_is_recorded_and_rendered(metrics: Metrics) -> None:
    metrics.reconciled("firewall", "converged", 0.02)
    metrics.reconciled("firewall", "converged", 0.2)
    metrics.reconciled("network", "failed", 1.5)
    metrics.step("nft.apply", 0.004)
    metrics.tool_call("nft.apply", "ok")
    metrics.tool_call("nft.apply", "ok")
    metrics.tool_call("net.link.set", "temporary")
    metrics.drift_detected("firewall")
    metrics.drift_detected("firewall")
    metrics.drift_healed("firewall")
    metrics.set_queue_depth(7)
    metrics.events_dropped(3)
    metrics.events_dropped(0)
    metrics.set_fighting(2)
    metrics.set_generation(41)
    metrics.set_feed_connected(True)
    metrics.set_spec_errors(4)
    got = samples(metrics)

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    assert value("aios_reconciles_total", domain="firewall", result="converged") == 2
    assert value("aios_reconciles_total", domain="network", result="failed") == 1
    assert value("aios_reconcile_duration_seconds_count", domain="firewall") == 2
    assert value("aios_reconcile_duration_seconds_sum", domain="firewall") == pytest.approx(0.22)
    assert value("aios_reconcile_duration_seconds_bucket", domain="firewall", le="0.025") == 1
    assert value("aios_reconcile_duration_seconds_bucket", domain="network", le="2.5") == 1
    assert value("aios_reconcile_duration_seconds_bucket", domain="network", le="300.0") == 1
    assert value("aios_step_duration_seconds_count", tool="nft.apply") == 1
    assert value("aios_tool_calls_total", tool="nft.apply", result="ok") == 2
    assert value("aios_tool_calls_total", tool="net.link.set", result="temporary") == 1
    assert value("aios_drift_detected_total", domain="firewall") == 2
    assert value("aios_drift_healed_total", domain="firewall") == 1
    assert value("aios_queue_depth") == 7
    assert value("aios_events_dropped_total") == 3
    assert value("aios_fighting_objects") == 2
    assert value("aios_generation") == 41
    assert value("aios_feed_connected") == 1
    assert value("aios_spec_errors") == 4
    metrics.set_feed_connected(False)
    assert samples(metrics)[("aios_feed_connected", ())] == 0


def test_the_unlabelled_series_exist_before_anything_is_recorded(metrics: Metrics) -> None:
    got = samples(metrics)
    for name in (
        "aios_queue_depth",
        "aios_events_dropped_total",
        "aios_fighting_objects",
        "aios_generation",
        "aios_feed_connected",
        "aios_spec_errors",
    ):
        assert got[(name, ())] == 0, name
    text = metrics.render().decode()
    for name in ("aios_reconciles_total", "aios_step_duration_seconds", "aios_tool_calls_total"):
        assert f"# TYPE {name.removesuffix('_total')}" in text  # described, no samples yet


def test_each_instance_owns_its_registry_never_the_global_one() -> None:
    first, second = Metrics(), Metrics()  # a second instance would collide on a shared one
    first.set_generation(5)
    assert samples(second)[("aios_generation", ())] == 0
    assert first.registry is not REGISTRY
    assert REGISTRY.get_sample_value("aios_generation") is None
    assert "process_" not in first.render().decode()  # the global collectors are not ours


def test_metrics_and_healthz_over_a_real_socket(metrics: Metrics) -> None:
    state = {"ok": True, "why": ""}
    address = metrics.serve("127.0.0.1", 0, lambda: (bool(state["ok"]), str(state["why"])))
    assert address[0] == "127.0.0.1" and address[1] > 0
    assert metrics.address == address
    metrics.reconciled("storage", "changed", 0.5)

    status, content_type, body = get(address, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert body == metrics.render()
    assert b'aios_reconciles_total{domain="storage",result="changed"} 1.0' in body

    status, content_type, body = get(
        address, "/metrics", accept="application/openmetrics-text; version=1.0.0"
    )
    assert status == 200 and content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")

    assert get(address, "/healthz")[::2] == (200, b"ok\n")
    state.update(ok=False, why="registry unreachable: connection refused")
    assert get(address, "/healthz")[::2] == (503, b"registry unreachable: connection refused\n")
    state.update(ok=True, why="")
    assert get(address, "/healthz?verbose=1")[::2] == (200, b"ok\n")
    assert get(address, "/")[0] == 404
    assert get(address, "/metrics/x")[0] == 404


def test_a_health_check_that_raises_is_a_503(metrics: Metrics) -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("boom")

    address = metrics.serve("127.0.0.1", 0, broken)
    status, _, body = get(address, "/healthz")
    assert status == 503 and b"boom" in body


def test_ipv6_loopback(metrics: Metrics) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        address = metrics.serve("::1", 0, lambda: (True, ""))
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    assert address[0] == "::1"
    assert get(address, "/healthz")[0] == 200


def test_close_frees_the_port_and_is_idempotent() -> None:
    metrics = Metrics()
    host, port = metrics.serve("127.0.0.1", 0, lambda: (True, ""))
    assert get((host, port), "/healthz")[0] == 200
    with pytest.raises(RuntimeError, match="already"):
        metrics.serve("127.0.0.1", 0, lambda: (True, ""))
    metrics.close()
    metrics.close()
    assert metrics.address is None
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()
    # The same port can be bound again at once, by a new server of this instance.
    again = metrics.serve("127.0.0.1", port, lambda: (True, ""))
    assert again == (host, port)
    assert get(again, "/healthz")[0] == 200
    metrics.close()
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind((host, port))  # free: nothing listens there any more
    probe.close()


def test_a_busy_port_is_an_oserror(metrics: Metrics) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(OSError):
            metrics.serve("127.0.0.1", holder.getsockname()[1], lambda: (True, ""))
        assert metrics.address is None
    finally:
        holder.close()
