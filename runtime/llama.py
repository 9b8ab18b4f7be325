"""The HTTP client of one llama-server child on 127.0.0.1:<port>.

- `health(port)`: GET /health is 200 (llama-server answers 503 while it loads);
- `props(port)`: GET /props (what llama-server says it runs with, e.g.
  `default_generation_settings.n_ctx`);
- `chat(port, …)`: one POST /v1/chat/completions (the system prompt, when not empty,
  and the prompt as messages; `response_format: {"type": "json_object"}` when asked,
  as aiOS's Infer does) → the answer's text and `usage.total_tokens`;
- `stream_chat(port, …)`: the same with `stream: true`; the server-sent events are
  parsed line by line as httpx receives them and each `choices[0].delta.content` is
  yielded as soon as its event has arrived — nothing is buffered until the end.

Callers pass the values to send (aiOS's defaults for max_tokens and temperature are
applied by runtime.server). One httpx.AsyncClient per event loop is shared by every
call (creating one costs tens of milliseconds: an SSL context), kept alive between
calls; `aclose()` closes the running loop's client (runtime.supervisor.Supervisor.close
calls it). Failures raise `LlamaError` (HTTP status and llama-server's message) or
httpx's own errors.

Called by runtime.supervisor (health) and runtime.server (chat, stream_chat).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

import httpx

HOST = "127.0.0.1"
HEALTH_TIMEOUT_S = 2.0
# Generation may take minutes on one CPU thread; connecting must not.
CHAT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


class LlamaError(Exception):
    """llama-server answered, but not with what was asked for."""


def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            trust_env=False,  # never a proxy for 127.0.0.1
            limits=httpx.Limits(max_keepalive_connections=32, keepalive_expiry=30.0),
        )
        _clients[loop] = client
    return client


async def aclose() -> None:
    """Close the running loop's shared client (a later call opens a new one)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def _url(port: int, path: str) -> str:
    return f"http://{HOST}:{port}{path}"


async def health(port: int, *, wait_s: float = HEALTH_TIMEOUT_S) -> bool:
    """Whether llama-server on `port` answers GET /health with 200."""
    try:
        reply = await _client().get(_url(port, "/health"), timeout=wait_s)
    except httpx.HTTPError:
        return False
    return reply.status_code == 200


async def props(port: int) -> dict[str, Any]:
    reply = await _client().get(_url(port, "/props"), timeout=HEALTH_TIMEOUT_S)
    _raise_for(reply)
    body = reply.json()
    if not isinstance(body, dict):
        raise LlamaError(f"/props answered {type(body).__name__}, not an object")
    return body


def _messages(system: str, prompt: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


def _raise_for(reply: httpx.Response) -> None:
    if reply.status_code != 200:
        raise LlamaError(f"llama-server answered HTTP {reply.status_code}: {reply.text[:500]}")


async def chat(
    port: int, *, system: str, prompt: str, max_tokens: int, temperature: float, json_object: bool
) -> tuple[str, int]:
    """One completion: (the answer's text, usage.total_tokens)."""
    body: dict[str, Any] = {
        "messages": _messages(system, prompt),
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    if json_object:
        body["response_format"] = {"type": "json_object"}
    reply = await _client().post(
        _url(port, "/v1/chat/completions"), json=body, timeout=CHAT_TIMEOUT
    )
    _raise_for(reply)
    try:
        answer = reply.json()
        text = answer["choices"][0]["message"]["content"] or ""
        tokens = int((answer.get("usage") or {}).get("total_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LlamaError(f"unexpected completion from llama-server: {reply.text[:500]}") from exc
    return str(text), tokens


def _delta(data: str) -> str:
    """The content of one SSE `data:` payload ('' for role-only and final events)."""
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise LlamaError(f"malformed event from llama-server: {data[:200]}") from exc
    if not isinstance(event, dict):
        raise LlamaError(f"malformed event from llama-server: {data[:200]}")
    if "error" in event:
        raise LlamaError(f"llama-server: {event['error']}")
    choices = event.get("choices") or [{}]
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) else ""


async def stream_chat(
    port: int, *, system: str, prompt: str, max_tokens: int, temperature: float
) -> AsyncIterator[str]:
    """The answer's token deltas, each as soon as llama-server has sent it."""
    body: dict[str, Any] = {
        "messages": _messages(system, prompt),
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": True,
    }
    async with _client().stream(
        "POST", _url(port, "/v1/chat/completions"), json=body, timeout=CHAT_TIMEOUT
    ) as reply:
        if reply.status_code != 200:
            await reply.aread()
            _raise_for(reply)
        async for line in reply.aiter_lines():
            if line.startswith("error:"):
                raise LlamaError(f"llama-server: {line[6:].strip()}")
            if not line.startswith("data:"):
                continue  # blank separators, comments, event names
            data = line[5:].strip()
            if data == "[DONE]":
                return
            if text := _delta(data):
                yield text
