"""Watch the firewall domain for changes: `nft monitor`, the kernel's nf_tables events.

`watch(emit, armed, root=…, netns=…)` runs until it is cancelled and reports
each change as `emit("nft-monitor", detail, False)`; it sets `armed` once
`nft` listens. Called by registry.server.changefeed (the change feed's hub).

`nft monitor` (in `ip netns exec NS` when the registry acts in another
namespace; the sandbox's registry runs inside its netns and needs none) is a
child in a process group of its own, killed with its group when the watch
stops (registry.core.watch.monitor_chunks). One change per chunk read: its
detail is the chunk's first event line — `# new generation N by process P`
comments are not events — and `(+N more)`, so a transaction of 10,000 rules
arrives as a few changes. Armed once `nft` sleeps in its read: it joins the
nf_tables multicast group before reading. `root` is unused (the ruleset is
the namespace's); it is taken for the shape every watcher shares.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from registry.core.watch import Emit, monitor_chunks, one_line


def monitor_argv(netns: str | None) -> list[str]:
    return [*(["ip", "netns", "exec", netns] if netns else []), "nft", "monitor"]


async def watch(
    emit: Emit, armed: asyncio.Event, *, root: Path = Path("/"), netns: str | None = None
) -> None:
    del root
    async for lines in monitor_chunks(monitor_argv(netns), "nft", armed):
        events = [line for line in lines if not line.lstrip().startswith("#")] or lines
        emit("nft-monitor", one_line(events), False)
