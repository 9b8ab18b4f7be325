"""The daemon queue's per-key backoff: doubling from 100 ms to 5 min, the
error's own delay honoured, reset on success, permanent failures held until
the spec digest changes, keys independent."""

from __future__ import annotations

import itertools

import pytest

from reconciler.daemon.backoff import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_doubles_from_base_to_cap() -> None:
    b = Backoff(clock=Clock())
    waits = [b.temporary("Firewall/edge") for _ in range(14)]
    assert waits[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert waits[-1] == 300.0
    assert all(a <= c for a, c in itertools.pairwise(waits))


def test_error_delay_is_a_floor_and_capped() -> None:
    b = Backoff(clock=Clock())
    assert b.temporary("Package/nginx", delay=2.5) == 2.5
    assert b.temporary("Package/curl", delay=10_000) == 300.0


def test_not_ready_until_wait_passes_then_success_resets() -> None:
    clock = Clock()
    b = Backoff(clock=clock)
    b.temporary("k")
    b.temporary("k")
    assert not b.ready("k", "d1")
    assert b.remaining("k") == pytest.approx(0.2)
    assert b.ready("other", "d1")
    clock.now += 0.2
    assert b.ready("k", "d1")
    b.success("k")
    assert b.temporary("k") == pytest.approx(0.1)


def test_permanent_failure_held_until_digest_changes() -> None:
    b = Backoff(clock=Clock())
    b.permanent("Mount/data", "sha-a")
    assert not b.ready("Mount/data", "sha-a")
    assert b.ready("Mount/data", "sha-b")
