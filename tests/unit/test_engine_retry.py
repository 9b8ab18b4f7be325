"""The engine honours TemporaryError's retryable/delay/before_run, under an injected sleep.

A scripted registry double (test_engine's in-memory FakeRegistry plus a script
of errors to raise per tool) and a sleep that records the waits instead of
sleeping: reads are retried after max(delay, backoff), a write only when the
registry refused it before running it, a PermanentError never, and a status
says how often it was retried when retrying did not help.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from controllers import DEFAULT_DOMAINS
from reconciler.engine.reconcile import Engine, Target
from reconciler.engine.store import Store
from reconciler.sdk.controller import Controller
from reconciler.sdk.errors import (
    AiosError,
    RateLimited,
    RegistryUnavailable,
    TemporaryError,
    ToolFailed,
)
from reconciler.sdk.retry import Retry
from tests.unit.test_engine import FakeRegistry, Result, Sleeps, ToyController, network, specset


class ScriptedRegistry(FakeRegistry):
    """A double of the registry client: raises the scripted errors for a tool, in order,
    before answering as FakeRegistry does. `sent` counts what reached the tool."""

    def __init__(self) -> None:
        super().__init__()
        self.script: dict[str, list[AiosError]] = {}
        self.attempts: dict[str, int] = {}

    async def call(
        self,
        tool: str,
        args: Mapping[str, Any],
        *,
        reason: str,
        on_progress: Callable[[int, int, str], None] | None = None,
    ) -> Result:
        self.attempts[tool] = self.attempts.get(tool, 0) + 1
        errors = self.script.get(tool, [])
        if errors:
            raise errors.pop(0)
        return await super().call(tool, args, reason=reason, on_progress=on_progress)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def engine(tmp_path: Path, sleeps: Sleeps) -> Engine:
    controllers: dict[str, Controller[Any]] = {"network": ToyController("network", "Network")}
    target = Target(name="toy", address="memory", state_dir=tmp_path / "state")
    return Engine(
        target,
        Store(target.state_dir),
        ScriptedRegistry(),
        controllers,
        DEFAULT_DOMAINS,
        sleep=sleeps,
    )


def registry(engine: Engine) -> ScriptedRegistry:
    assert isinstance(engine.client, ScriptedRegistry)
    return engine.client


async def apply(engine: Engine, *docs: str) -> Any:
    planned = await engine.plan(engine.merge(specset(*docs)))
    return await engine.apply(planned, assume_yes=True)


LAN = network("lan", {"net.a": "1"})


async def test_an_observe_is_retried_after_the_delay_the_error_asks_for(
    engine: Engine, sleeps: Sleeps
) -> None:
    registry(engine).script["toy.state"] = [
        RateLimited("Rate limit exceeded", delay=5.0),
        RegistryUnavailable("registry unavailable (UNAVAILABLE): restarting", delay=0.1),
    ]
    result = await apply(engine, LAN)
    assert result.all_ready, result.reports
    assert sleeps.waits == [5.0, 0.4], "max(delay, backoff 0.2 * 2**(n-1)) per retry"
    assert registry(engine).data["network"] == {"net.a": "1"}


async def test_an_observe_that_keeps_failing_is_degraded_and_says_it_was_retried(
    engine: Engine, sleeps: Sleeps
) -> None:
    registry(engine).script["toy.state"] = [RegistryUnavailable("gone", delay=1.0)] * 4
    result = await apply(engine, LAN)
    [report] = result.reports
    assert report.outcome == "degraded" and report.reason == "RegistryUnavailable"
    assert report.message == "gone (retried 3 times)"
    assert sleeps.waits == [1.0, 1.0, 1.0] and registry(engine).attempts["toy.state"] == 4
    status = engine.store.status("toy", "Network/lan")
    assert status is not None and status.condition("Degraded")["status"] == "True"  # type: ignore[index]
    assert "retried 3 times" in status.condition("Degraded")["message"]  # type: ignore[index]


async def test_a_permanent_error_is_not_retried(engine: Engine, sleeps: Sleeps) -> None:
    registry(engine).script["toy.state"] = [ToolFailed("toy.state: broken")]
    result = await apply(engine, LAN)
    assert [r.reason for r in result.reports] == ["ToolFailed"]
    assert sleeps.waits == [] and registry(engine).attempts["toy.state"] == 1
    assert "retried" not in result.reports[0].message


async def test_a_write_refused_before_running_is_sent_again(engine: Engine, sleeps: Sleeps) -> None:
    registry(engine).script["toy.set"] = [RateLimited("Rate limit exceeded", delay=0.2)] * 2
    result = await apply(engine, LAN)
    assert result.all_ready, result.reports
    assert sleeps.waits == [0.2, 0.4]
    assert registry(engine).attempts["toy.set"] == 3 and registry(engine).writes == 1


async def test_a_write_that_may_have_run_is_never_sent_twice(
    engine: Engine, sleeps: Sleeps
) -> None:
    registry(engine).script["toy.set"] = [
        RegistryUnavailable("registry unavailable (DEADLINE_EXCEEDED): slow", delay=0.1)
    ]
    result = await apply(engine, LAN)
    [report] = result.reports
    assert report.outcome == "degraded" and report.reason == "StepFailed"
    assert "DEADLINE_EXCEEDED" in report.message and "retried" not in report.message
    assert sleeps.waits == [] and registry(engine).attempts["toy.set"] == 1


async def test_a_write_refused_every_time_is_degraded_after_the_last_attempt(
    engine: Engine, sleeps: Sleeps
) -> None:
    never_sent = RegistryUnavailable("failed to connect", delay=0.5, before_run=True)
    registry(engine).script["toy.set"] = [never_sent] * 4
    result = await apply(engine, LAN)
    [report] = result.reports
    assert report.outcome == "degraded" and report.reason == "StepFailed"
    assert "failed to connect (retried 3 times)" in report.message
    assert sleeps.waits == [0.5, 0.5, 0.8] and registry(engine).attempts["toy.set"] == 4
    assert registry(engine).writes == 0


async def test_the_retry_count_is_configurable_on_the_engine(
    tmp_path: Path, sleeps: Sleeps
) -> None:
    target = Target(name="toy", address="memory", state_dir=tmp_path / "state")
    client = ScriptedRegistry()
    client.script["toy.state"] = [RegistryUnavailable("gone", delay=0.0)] * 9
    engine = Engine(
        target,
        Store(target.state_dir),
        client,
        {"network": ToyController("network", "Network")},
        DEFAULT_DOMAINS,
        retries=1,
        backoff_s=0.05,
        sleep=sleeps,
    )
    result = await apply(engine, LAN)
    assert result.reports[0].message == "gone (retried 1 times)"
    assert sleeps.waits == [0.05] and client.attempts["toy.state"] == 2


async def test_retry_run_is_bounded_and_says_nothing_when_asked_not_to() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        raise TemporaryError("blip", delay=0.0)

    with pytest.raises(TemporaryError) as caught:
        await Retry(retries=2, backoff_s=0.1, sleep=sleep).run(flaky, say=False)
    assert calls == 3 and waits == [0.1, 0.2] and str(caught.value) == "blip"
