"""Helpers for the net and firewall system tests: drive a tool in a namespace, read back.

`Driver(netns, root)` calls tools directly (a ToolContext with a real
ProcessRunner and `netns`), the way the pipeline does: `run`, or
`snapshot` + `run` (`run_reversible`), and `restore`; every output is
validated against the tool's output schema. The read-back helpers
use `ip -n NS -j` and `ip netns exec NS nft` — never the tools under test —
and `net_dump` normalises an `ip -j` dump (no ifindex, counters or timers;
sorted) so two states can be compared for equality.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from contract.tooldef import JSON
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.handlers.index import tool_classes
from tests.system.helpers import run


@dataclass
class Driver:
    netns: str
    root: Path

    def ctx(self) -> ToolContext:
        return ToolContext(
            runner=ProcessRunner(),
            root=self.root,
            state_dir=self.root,
            work=self.root,
            execution_id="test",
            netns=self.netns,
        )

    def run(self, tool: str, args: JSON) -> JSON:
        """Run the tool; its output must validate against the tool's output schema."""
        cls = tool_classes()[tool]
        output = asyncio.run(cls().run(self.ctx(), args))
        Draft202012Validator(cls.spec.output_schema).validate(output)
        return output

    def run_reversible(self, tool: str, args: JSON) -> tuple[JSON, JSON]:
        """(snapshot, output), the pipeline's order for a reversible tool."""

        async def both() -> tuple[JSON, JSON]:
            instance = tool_classes()[tool]()
            ctx = self.ctx()
            snap = await instance.snapshot(ctx, args)
            json.dumps(snap)  # a before-image must be storable as JSON
            output = await instance.run(ctx, args)
            Draft202012Validator(instance.spec.output_schema).validate(output)
            return snap, output

        return asyncio.run(both())

    def restore(self, tool: str, snapshot: JSON) -> None:
        asyncio.run(tool_classes()[tool]().restore(self.ctx(), snapshot))


def ip_json(ns: str, *args: str) -> Any:
    return json.loads(run(["ip", "-n", ns, "-j", *args]) or "[]")


def link(ns: str, name: str) -> dict[str, Any]:
    (found,) = ip_json(ns, "-d", "link", "show", "dev", name)
    return dict(found)


def link_names(ns: str) -> set[str]:
    return {x["ifname"] for x in ip_json(ns, "link", "show")}


def addresses(ns: str, name: str) -> list[str]:
    (found,) = ip_json(ns, "addr", "show", "dev", name)
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in found["addr_info"])


# Identity numbers, counters, timers, carrier and offload limits a bridge derives from
# its ports (and STP ids it derives from its address): kernel bookkeeping, not configuration.
_VOLATILE = {
    "ifindex",
    "link_index",
    "stats",
    "stats64",
    "valid_life_time",
    "preferred_life_time",
    "operstate",
    "topology_change_detected",
    "tso_max_size",
    "tso_max_segs",
    "bridge_id",
    "root_id",
    "tentative",
}
_CARRIER_FLAGS = {"NO-CARRIER", "LOWER_UP", "M-DOWN", "linkdown"}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {
            k: _clean(v)
            for k, v in sorted(value.items())
            if k not in _VOLATILE and "timer" not in k
        }
        if isinstance(cleaned.get("flags"), list):
            cleaned["flags"] = [f for f in cleaned["flags"] if f not in _CARRIER_FLAGS]
        return cleaned
    if isinstance(value, list):
        return sorted((_clean(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def net_dump(ns: str) -> dict[str, Any]:
    """Links (with details and addresses), routes and rules of both families, normalised."""
    return _clean(
        {
            "links": ip_json(ns, "-d", "addr", "show"),
            "routes4": ip_json(ns, "-4", "route", "show", "table", "all"),
            "routes6": ip_json(ns, "-6", "route", "show", "table", "all"),
            "rules4": ip_json(ns, "-4", "rule", "show"),
            "rules6": ip_json(ns, "-6", "rule", "show"),
            "forward": run(["ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"]),
        }
    )


def nft(ns: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    return run(["ip", "netns", "exec", ns, "nft", *args], input=stdin, check=check)


def same_net(ns: str, before: dict[str, Any]) -> None:
    """Assert the namespace's normalised state equals `before`, showing a diff if not."""
    after = net_dump(ns)
    if after != before:
        import difflib

        diff = difflib.unified_diff(
            json.dumps(before, indent=1, sort_keys=True).splitlines(),
            json.dumps(after, indent=1, sort_keys=True).splitlines(),
            "before",
            "after",
            lineterm="",
            n=8,
        )
        raise AssertionError("namespace state differs:\n" + "\n".join(diff))
