"""runtime.llama against the llama-server double (tests/fixtures/fake_llama_server.py).

health follows the double's load delay; chat sends what aiOS's Infer sends (messages,
max_tokens, temperature, response_format json_object) and returns the text and
usage.total_tokens; stream_chat yields each token as it arrives — the first one before
the double has even written the second (its trace file has the send times).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from runtime import llama
from tests.fixtures import fake_llama_server

FAKE = Path(fake_llama_server.__file__)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def fake(tmp_path: Path, **env: str) -> Iterator[int]:
    """The double on a free port (with FAKE_LLAMA_* `env`); its process group killed after."""
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF\x03\x00\x00\x00")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(FAKE), "-m", str(model), "-c", "256", "--port", str(port)],
        env={**os.environ, **env},
        start_new_session=True,
    )
    try:
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


async def wait_healthy(port: int, limit_s: float = 10.0) -> float:
    start = time.monotonic()
    while not await llama.health(port):
        assert time.monotonic() - start < limit_s, "the double never became healthy"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture(autouse=True)
async def shared_client() -> AsyncIterator[None]:
    yield
    await llama.aclose()


def trace_lines(trace: Path, kind: str) -> list[list[str]]:
    return [line.split(" ", 2) for line in trace.read_text().splitlines() if line.startswith(kind)]


async def test_health_is_false_while_loading_and_when_nothing_listens(tmp_path: Path) -> None:
    assert not await llama.health(free_port(), wait_s=0.5)
    with fake(tmp_path, FAKE_LLAMA_LOAD_DELAY="0.6") as port:
        waited = await wait_healthy(port)
        assert waited >= 0.3  # 503 first (the double answered "Loading model")
        props = await llama.props(port)
        assert props["default_generation_settings"]["n_ctx"] == 256


async def test_chat_sends_aios_infer_request_and_reads_the_usage(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    with fake(tmp_path, FAKE_LLAMA_TRACE=str(trace)) as port:
        await wait_healthy(port)
        text, tokens = await llama.chat(
            port, system="be brief", prompt="two words", max_tokens=7, temperature=0.3,
            json_object=True,
        )  # fmt: skip
        assert json.loads(text) == {"answer": "fake"}
        assert tokens == 4 + 5  # the double: prompt words + 5
        [[_, path, body]] = trace_lines(trace, "request")
        assert path == "/v1/chat/completions"
        assert json.loads(body) == {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "two words"},
            ],
            "max_tokens": 7,
            "temperature": 0.3,
            "response_format": {"type": "json_object"},
        }


async def test_stream_chat_yields_the_first_token_before_the_second_is_sent(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "trace"
    with fake(tmp_path, FAKE_LLAMA_TRACE=str(trace), FAKE_LLAMA_TOKEN_INTERVAL="0.1") as port:
        await wait_healthy(port)
        received: list[tuple[str, float]] = []
        async for delta in llama.stream_chat(
            port, system="", prompt="hi", max_tokens=4, temperature=0.7
        ):
            received.append((delta, time.time()))
        assert [d for d, _ in received] == fake_llama_server.TOKENS[:4]
        sent = {int(i): float(at) for _, i, at in trace_lines(trace, "sent")}
        assert sorted(sent) == [0, 1, 2, 3]
        for i in range(3):  # token i was in our hands before the double wrote token i+1
            assert received[i][1] < sent[i + 1], (received, sent)
        [[_, _, body]] = trace_lines(trace, "request")
        request = json.loads(body)
        assert request["stream"] is True
        assert request["messages"] == [{"role": "user", "content": "hi"}]  # no empty system
        assert "response_format" not in request


async def test_a_failing_answer_is_a_llama_error(tmp_path: Path) -> None:
    with fake(tmp_path) as port:
        await wait_healthy(port)
        client = llama._client()
        reply = await client.get(f"http://127.0.0.1:{port}/nope")
        assert reply.status_code == 404
        with pytest.raises(llama.LlamaError, match="HTTP 404"):
            llama._raise_for(reply)


def test_sse_events_parse_to_their_content() -> None:
    assert llama._delta('{"choices":[{"delta":{"content":"x"}}]}') == "x"
    assert llama._delta('{"choices":[{"delta":{"role":"assistant"}}]}') == ""
    assert llama._delta('{"choices":[{"delta":{},"finish_reason":"stop"}]}') == ""
    with pytest.raises(llama.LlamaError, match="llama-server: "):
        llama._delta('{"error":{"message":"boom"}}')
    with pytest.raises(llama.LlamaError, match="malformed event"):
        llama._delta("{not json")
