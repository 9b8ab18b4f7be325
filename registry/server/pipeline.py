"""The Execute pipeline and Rollback, independent of gRPC.

Execute on `full`: lookup (unknown -> UnknownTool, NOT_FOUND) -> parse the
input JSON (`Invalid input: not a JSON object: …`; empty bytes mean {}) ->
validate against input_schema (`Invalid input: <json path>: <message>`) ->
capabilities (`Capability denied: missing [...]`) -> run (registry.server.execution:
namespace lock for writes, before-image, timeout `Timed out after …`) ->
validate output (`Invalid output from <tool>: <path>: <message>`) -> audit.
Every outcome after lookup is audited.

Execute on `aios` follows docs/aios-contract.md §2.2: lookup (UnknownTool, gRPC
INTERNAL) -> capabilities (denials audited) -> rate limit (`Rate limit
exceeded`, not audited) -> parse as aiOS's handlers do -> run -> audit.

Rollback: registry.server.rollback. Nothing here raises except UnknownTool; any
other failure becomes success=false with a message. Every execution runs in
its own task, shielded from the caller. When the caller goes away (the gRPC
client cancels, disconnects or dies), a tool that can stop safely is
cancelled — a built-in read, or on `full` a reversible built-in (the runner
kills its process groups and its before-image is restored, as after a
timeout) — and audited with outcome `caller gone: cancelled; <restored or
why not>`; any other tool (a non-reversible write, a plugin, an external
handler, aiOS's writes) finishes, audited with outcome `caller gone:
finished (...)`. `close` cancels what is still running the same way (outcome
`registry shutdown: cancelled; ...`). A Rollback always runs to its end.

Called by registry.server.grpc.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from contract import schemacheck
from contract.tooldef import JSON
from registry.core.errors import ToolError
from registry.server.audit import AuditEntry, AuditLog, input_digest
from registry.server.backups import BackupStore
from registry.server.capabilities import Capabilities, denial
from registry.server.execution import Executor, Settings
from registry.server.external import Channels
from registry.server.profiles import Entry, aios_input
from registry.server.ratelimit import RATE_LIMITED, RateLimiter
from registry.server.rollback import Rollbacks
from registry.server.toolset import ToolSet

log = logging.getLogger(__name__)


class UnknownTool(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class Request:
    tool: str
    agent_id: str
    task_id: str
    input_json: bytes
    reason: str


@dataclass(frozen=True)
class Outcome:
    success: bool
    output_json: bytes
    error: str
    execution_id: str
    duration_ms: int
    backup_id: str = ""


def _json_path(error: jsonschema.ValidationError) -> str:
    return error.json_path


_VALIDATORS: dict[int, tuple[Mapping[str, Any], jsonschema.Draft202012Validator]] = {}
# Documents already found valid, per schema: a steady-state observation returns
# the same output every time, and re-applying a desired table sends the same
# input; checking the digest costs far less than walking the document again.
_VALID: OrderedDict[tuple[int, str], None] = OrderedDict()
_VALID_LIMIT = 1024


def first_error(schema: Mapping[str, Any], instance: Any) -> str | None:
    """`<json path>: <message>` of the most relevant violation, or None.

    Validators are cached per schema object (ToolSpecs are frozen and live as
    long as the registry; the cache holds the schema so its id stays unique).
    """
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _VALIDATORS[id(schema)] = (schema, schemacheck.validator(schema))
    key = (id(schema), _digest(instance))
    if key in _VALID:
        _VALID.move_to_end(key)
        return None
    validator = cached[1]
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        return f"{_json_path(error)}: {error.message}"
    _VALID[key] = None
    if len(_VALID) > _VALID_LIMIT:
        _VALID.popitem(last=False)
    return None


def _digest(instance: Any) -> str:
    text = json.dumps(instance, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Call:
    """What happened to one execution's caller (set by `execute`, read by `_execute`)."""

    gone: bool = False  # the caller cancelled or disconnected
    stopped: bool = False  # ... and the tool was cancelled because it can stop safely


class Pipeline:
    def __init__(
        self,
        *,
        toolset: ToolSet,
        capabilities: Capabilities,
        audit: AuditLog,
        backups: BackupStore,
        settings: Settings,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.toolset = toolset
        self.profile = toolset.profile
        self.capabilities = capabilities
        self.audit = audit
        self.backups = backups
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.channels = Channels()
        aios = self.profile.name == "aios"
        options = {**settings.options, "channels": self.channels}
        settings = Settings(settings.root, settings.state_dir, settings.netns, options)
        self.executor = Executor(settings, backups, aios=aios)
        self._restorer = Rollbacks(toolset, backups, audit, self.executor)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rollbacks: set[asyncio.Task[Any]] = set()

    # -- Execute --

    async def execute(self, request: Request) -> Outcome:
        """Run in a task of its own; a caller that goes away stops only a tool that can stop.

        The gRPC server cancels this coroutine when the client cancels, hits its
        deadline or disconnects: then the tool is cancelled if `stops_safely`,
        and finishes (audited as such) otherwise.
        """
        entry = self.toolset.get(request.tool)
        if entry is None:
            raise UnknownTool(request.tool)
        call = _Call()
        task = asyncio.create_task(self._execute(entry, request, call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                call.gone = True
                if self.stops_safely(entry):
                    call.stopped = True
                    task.cancel()
                    log.info("caller of %s went away: cancelling it", request.tool)
                else:
                    log.warning(
                        "caller of %s went away: letting it finish (it cannot stop safely)",
                        request.tool,
                    )
            raise

    def stops_safely(self, entry: Entry) -> bool:
        """Whether cancelling `entry` midway leaves the target as it was (or unchanged).

        Built-in reads do; so do reversible built-ins on `full` (their before-image
        is restored). Plugins and external handlers do unknown things, aiOS's
        one-shot file backup is no full before-image, and other writes would be
        left half-done.
        """
        if entry.kind != "builtin":
            return False
        if not entry.writes:
            return True
        return entry.spec.reversible and not self.profile.aios_rollback

    def _cancel_note(self, entry: Entry, eid: str) -> str:
        """What a cancellation left behind, from the execution's backup record."""
        if not entry.writes:
            return "nothing to restore (read-only)"
        backup = self.backups.get(eid)
        if backup is None:
            return "nothing was changed (cancelled before the run started)"
        if backup.state == "rolled_back":
            return "restored"
        return "not restored (see the registry log)"

    async def _execute(self, entry: Entry, request: Request, call: _Call) -> Outcome:
        eid = str(uuid.uuid4())
        start = time.monotonic()
        digest = input_digest(request.input_json)

        def done(
            success: bool,
            error: str = "",
            output: bytes = b"",
            backup_id: str = "",
        ) -> Outcome:
            ms = int((time.monotonic() - start) * 1000)
            return Outcome(success, output, error, eid, ms, backup_id)

        async def finish(outcome: Outcome) -> Outcome:
            note = ""
            if call.gone and call.stopped:  # it ended before the cancellation reached it
                note = "caller gone: finished"
            elif call.gone:
                what = "a plugin or external handler" if entry.kind != "builtin" else "a write"
                note = f"caller gone: finished ({what} that cannot stop safely)"
            await self._audit(request, outcome, digest, note)
            return outcome

        if self.profile.name == "aios":
            if entry.enforced is None:
                return await finish(done(False, denial([])))
            missing = self.capabilities.missing(request.agent_id, entry.enforced)
            if missing:
                return await finish(done(False, denial(missing)))
            if not self.limiter.allow(request.agent_id, request.tool):
                return done(False, RATE_LIMITED)  # not audited (§2.2)
            try:
                args = aios_input(entry, request.input_json)
            except ToolError as exc:
                return await finish(done(False, str(exc)))
        else:
            parsed = self._parse(entry, request.input_json)
            if isinstance(parsed, str):
                return await finish(done(False, parsed))
            args = parsed
            missing = self.capabilities.missing(request.agent_id, entry.enforced or ())
            if missing:
                return await finish(done(False, denial(missing)))
        if entry.handler is None:
            return await finish(done(False, f"No handler registered for tool: {request.tool}"))
        meta = {"agent_id": request.agent_id, "task_id": request.task_id, "reason": request.reason}
        try:
            result = await self.executor.run(
                entry, args, execution_id=eid, request=meta, digest=digest
            )
        except asyncio.CancelledError:
            why = "caller gone" if call.stopped else "registry shutdown"
            note = f"{why}: cancelled; {self._cancel_note(entry, eid)}"
            outcome = done(False, f"Cancelled ({note})")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._audit(request, outcome, digest, note))
            raise
        if result.output is None:
            raw = result.raw_output or b""
            return await finish(done(False, result.error, raw, result.backup_id))
        return await finish(self._output(entry, result.output, done, result.backup_id))

    def _parse(self, entry: Entry, raw: bytes) -> JSON | str:
        """Parsed, schema-valid input, or the `Invalid input: …` message."""
        try:
            args = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            return f"Invalid input: not a JSON object: {exc}"
        if not isinstance(args, dict):
            return f"Invalid input: not a JSON object: got {type(args).__name__}"
        if entry.spec.input_schema:
            problem = first_error(entry.spec.input_schema, args)
            if problem is not None:
                return f"Invalid input: {problem}"
        return args

    def _output(
        self, entry: Entry, output: JSON, done: Callable[..., Outcome], backup_id: str
    ) -> Outcome:
        name = entry.spec.name
        if self.profile.validates_schemas and entry.spec.output_schema:
            problem = first_error(entry.spec.output_schema, output)
            if problem is not None:
                log.error("tool %s produced invalid output: %s", name, problem)
                return done(False, f"Invalid output from {name}: {problem}", b"", backup_id)
        try:
            data = json.dumps(output, ensure_ascii=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            return done(False, f"Internal error in {name}: {type(exc).__name__}: {exc}")
        return done(True, "", data, backup_id)

    async def _audit(self, request: Request, outcome: Outcome, digest: str, note: str = "") -> None:
        entry = AuditEntry(
            execution_id=outcome.execution_id,
            tool=request.tool,
            agent=request.agent_id,
            task=request.task_id,
            reason=request.reason,
            input_sha256=digest,
            success=outcome.success,
            duration_ms=outcome.duration_ms,
            outcome=note,
        )
        try:
            await self.audit.append(entry)
        except Exception:  # never lose the answer over the log; say so loudly
            log.exception("audit append failed for execution %s", outcome.execution_id)

    # -- Rollback --

    async def rollback(self, execution_id: str, reason: str) -> tuple[bool, str]:
        """(success, error); raises RollbackIOError only on aios (gRPC INTERNAL).

        A restore half done is worse than either end, so it runs in a task of its
        own that a caller who goes away does not cancel, and `close` waits for it.
        """
        task = asyncio.create_task(self._restorer.rollback(execution_id, reason))
        self._rollbacks.add(task)
        task.add_done_callback(self._rollbacks.discard)
        return await asyncio.shield(task)

    # -- lifecycle --

    async def close(self) -> None:
        """Cancel what still runs (groups killed, before-images restored), let rollbacks
        finish, then close."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks or self._rollbacks:
            await asyncio.gather(*self._tasks, *self._rollbacks, return_exceptions=True)
        await self.channels.close()
        self.audit.close()
