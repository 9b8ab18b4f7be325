"""Tools of the `net` namespace: aiOS's reads and probes, net.state, the writes and net.apply.

Reads parse `ip -j` (registry.drivers.net.state). Every write builds `ip -batch` lines
(registry.drivers.net.commands) and runs them in one process per batch (registry.drivers.net.run);
writes are reversible through registry.drivers.net.snapshot, whose before-image the
pipeline keeps for Rollback. A write that runs several commands, and every
`net.apply`, is all-or-nothing: it snapshots the touched objects first and
restores them when a command fails. Probes run inside the target namespace
(registry.drivers.net.probe). Specs: contract.catalogue.net. Collected by registry.handlers.index.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import sys
from typing import ClassVar

from contract.catalogue import net as net_defs
from contract.tooldef import JSON
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext
from registry.drivers.net import commands, probe, snapshot, system
from registry.drivers.net.commands import Cmd, Known
from registry.drivers.net.revert import Snapshot
from registry.drivers.net.run import CommandFailed, execute
from registry.drivers.net.state import interfaces, ip_json, read_state

Op = tuple[str, JSON]


class NetInterfaces(Tool):
    spec = net_defs.NET_INTERFACES

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        return {"interfaces": interfaces(await ip_json(ctx, "addr", "show"))}


class NetState(Tool):
    spec = net_defs.NET_STATE

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        keys = args.get("sysctls")
        if keys is not None:
            keys = [system.sysctl_key(k) for k in keys]
        return await read_state(ctx, sysctls=keys, dns_path=args.get("dns_path"))


# --- writes ------------------------------------------------------------------


def _check_wireguard_key(ctx: ToolContext, op: str, args: JSON) -> None:
    """The key file must hold a WireGuard key; its content is never echoed."""
    if op != "link_add" or args.get("kind") != "wireguard":
        return
    path = args["wireguard"]["private_key_file"]
    try:
        text = ctx.path(path).read_text().strip()
        ok = len(base64.b64decode(text, validate=True)) == 32
    except (OSError, UnicodeDecodeError, binascii.Error, ValueError):
        ok = False
    if not ok:
        raise ToolError(
            f"wireguard.private_key_file {path}: missing or not a WireGuard private key "
            "(32 bytes, base64)"
        )


def _refused(label: str, ops: list[Op], i: int, exc: ToolError) -> ToolError:
    where = f"commands[{i}] ({ops[i][0]})" if len(ops) > 1 else ops[i][0]
    return ToolError(f"{label}: {where}: {exc}; nothing was changed")


def touched(ops: list[Op], label: str) -> list[str]:
    """Touch keys of the operations (each checked first: registry.drivers.net.commands.touches)."""
    keys: list[str] = []
    for i, (op, args) in enumerate(ops):
        try:
            keys += commands.touches(op, args)
        except ToolError as exc:
            raise _refused(label, ops, i, exc) from None
    return list(dict.fromkeys(keys))


async def run_ops(
    ctx: ToolContext, ops: list[Op], label: str, before: Snapshot | None = None
) -> list[Cmd]:
    """Build and run the operations in order; all-or-nothing when they can half-succeed
    (anything but a single one-line operation). Every operation is built, and so
    checked, before anything is read or run.

    `before`: the before-image the pipeline just took for this execution, if any.
    """
    known = Known(path=lambda p: str(ctx.path(p)))
    cmds: list[Cmd] = []
    owner: list[int] = []
    for i, (op, args) in enumerate(ops):
        try:
            built = commands.build(op, args, known)
            _check_wireguard_key(ctx, op, args)
        except ToolError as exc:
            raise _refused(label, ops, i, exc) from None
        cmds += built
        owner += [i] * len(built)
    snap = before
    if snap is None and (len(ops) != 1 or len(cmds) > 1):
        snap = await snapshot.take(ctx, touched(ops, label))
    try:
        await execute(ctx, cmds)
    except CommandFailed as exc:
        i = owner[exc.index]
        where = (
            f"command {i} ({ops[i][0]}: `{exc.cmd.text}`)" if len(ops) > 1 else f"`{exc.cmd.text}`"
        )
        outcome = await _undo(ctx, snap)
        raise ToolError(f"{label}: {where} failed: {exc.message}; {outcome}") from None
    return cmds


async def _undo(ctx: ToolContext, snap: Snapshot | None) -> str:
    """What the undo did, saying exactly what it compared
    (registry.drivers.net.snapshot.Restored)."""
    if snap is None:
        return "nothing was changed"
    try:
        restored = await snapshot.restore(ctx, snap)
    except ToolError as exc:
        return f"RESTORE FAILED: {exc}"
    return restored.describe()


class _NetWrite(Tool):
    """A net write. The pipeline uses a fresh instance per execution and calls
    `snapshot` right before `run`; `run` reuses that before-image for its own
    all-or-nothing restore instead of reading the same objects again."""

    op: ClassVar[str]

    def __init__(self) -> None:
        self._before: tuple[str, Snapshot] | None = None

    def _taken(self, ctx: ToolContext) -> Snapshot | None:
        if self._before is not None and self._before[0] == ctx.execution_id:
            return self._before[1]
        return None

    def touches(self, args: JSON) -> tuple[str, ...]:
        return tuple(touched([(self.op, args)], self.spec.name))

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        snap = await snapshot.take(ctx, self.touches(args))
        self._before = (ctx.execution_id, snap)
        return snapshot.as_json(snap)

    async def restore(self, ctx: ToolContext, before: JSON) -> None:
        await snapshot.restore(ctx, snapshot.from_json(before))

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        cmds = await run_ops(ctx, [(self.op, args)], self.spec.name, self._taken(ctx))
        return {"commands": [c.text for c in cmds]}


def _write_tool(op: str) -> type[Tool]:
    name = "Net" + "".join(part.title() for part in op.split("_"))
    return type(name, (_NetWrite,), {"op": op, "spec": net_defs.WRITE_SPECS[op]})


WRITE_TOOLS = tuple(_write_tool(op) for op in net_defs.WRITE_SPECS)


class NetApply(_NetWrite):
    spec = net_defs.NET_APPLY

    @staticmethod
    def _ops(args: JSON) -> list[Op]:
        return [(str(c["op"]), dict(c["args"])) for c in args["commands"]]

    def touches(self, args: JSON) -> tuple[str, ...]:
        return tuple(touched(self._ops(args), "net.apply"))

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        ops = self._ops(args)
        cmds = await run_ops(ctx, ops, "net.apply", self._taken(ctx))
        return {"executed": len(ops), "commands": [c.text for c in cmds]}


# --- probes ------------------------------------------------------------------


async def run_probe(ctx: ToolContext, op: str, args: JSON) -> JSON:
    """Run a registry.drivers.net.probe function inside the target namespace."""
    if ctx.netns is None:
        try:
            return await asyncio.to_thread(probe.dispatch, op, args)
        except probe.ProbeError as exc:
            raise ToolError(str(exc)) from None
    argv = ctx.in_netns([sys.executable, "-m", "registry.drivers.net.probe"])
    request = json.dumps({"op": op, "args": args}).encode()
    result = await ctx.runner.run(argv, stdin=request, check=False)
    try:
        reply = json.loads(result.text)
    except json.JSONDecodeError:
        raise ToolError(f"{op} probe failed: {result.err or result.text}"[:2000]) from None
    if "error" in reply:
        raise ToolError(str(reply["error"]))
    return dict(reply["result"])


class NetPing(Tool):
    spec = net_defs.NET_PING

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        return await run_probe(ctx, "ping", args)


class NetDns(Tool):
    spec = net_defs.NET_DNS

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        return await run_probe(ctx, "dns", args)


class NetHttpGet(Tool):
    spec = net_defs.NET_HTTP_GET

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        return await run_probe(ctx, "http_get", args)


class NetPortScan(Tool):
    spec = net_defs.NET_PORT_SCAN

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        return await run_probe(ctx, "port_scan", args)


TOOLS: tuple[type[Tool], ...] = (
    NetInterfaces,
    NetState,
    *WRITE_TOOLS,
    NetApply,
    NetPing,
    NetDns,
    NetHttpGet,
    NetPortScan,
)
