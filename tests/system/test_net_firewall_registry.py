"""net and firewall tools end to end through a real registry server (`--netns`).

Calls go through RegistryClient over a unix socket to registry.server.grpc with
`netns` set to the test namespace: schema rejection with the JSON path,
output validated by the pipeline, and Rollback(execution_id) restoring the
touched network objects and firewall tables. Read back with ip/nft directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_support import running_registry

from reconciler.client import RegistryClient
from reconciler.sdk.errors import ToolFailed, ToolRejected
from tests.system.netdriver import ip_json, link_names, net_dump, nft, same_net

TABLE = {
    "family": "inet",
    "name": "edge",
    "chains": [
        {
            "name": "input",
            "type": "filter",
            "hook": "input",
            "priority": 0,
            "policy": "accept",
            "rules": ["tcp dport 22 accept"],
        }
    ],
}


async def test_net_calls_and_rollback_through_the_server(tmp_path: Path, netns: str) -> None:
    async with (
        running_registry(tmp_path, netns=netns) as (_s, address),
        RegistryClient(address) as client,
    ):
        setup = await client.call(
            "net.apply",
            {
                "commands": [
                    {"op": "link_add", "args": {"name": "i0", "kind": "ifb", "state": "up"}},
                    {"op": "addr_add", "args": {"dev": "i0", "address": "10.0.0.1/24"}},
                ]
            },
            reason="setup",
        )
        assert setup.output["executed"] == 2
        before = net_dump(netns)
        change = await client.call(
            "net.apply",
            {
                "commands": [
                    {"op": "link_set", "args": {"name": "i0", "mtu": 1280}},
                    {
                        "op": "link_add",
                        "args": {"name": "v0", "kind": "veth", "veth": {"peer": "v1"}},
                    },
                    {"op": "route_replace", "args": {"to": "10.7.0.0/16", "via": "10.0.0.2"}},
                ]
            },
            reason="change",
        )
        assert change.backup_id
        assert {"v0", "v1"} <= link_names(netns)
        state = await client.call("net.state", {"sysctls": ["net.ipv4.ip_forward"]}, reason="read")
        assert {x["name"]: x["mtu"] for x in state.output["links"]}["i0"] == 1280
        await client.rollback(change.execution_id, "undo")
        same_net(netns, before)

        with pytest.raises(ToolRejected, match=r"\$\.commands\[1\]\.args\.mtu"):
            await client.call(
                "net.apply",
                {
                    "commands": [
                        {"op": "link_set", "args": {"name": "i0", "mtu": 1400}},
                        {"op": "link_set", "args": {"name": "i0", "mtu": 1}},
                    ]
                },
                reason="bad",
            )
        with pytest.raises(
            ToolFailed, match=r"^net.apply: command 1 \(link_set: `link set dev nosuch mtu 1400`\)"
        ):
            await client.call(
                "net.apply",
                {
                    "commands": [
                        {"op": "link_set", "args": {"name": "i0", "mtu": 1400}},
                        {"op": "link_set", "args": {"name": "nosuch", "mtu": 1400}},
                    ]
                },
                reason="fails",
            )
        same_net(netns, before)
        assert ip_json(netns, "link", "show", "dev", "i0")[0]["mtu"] == 1500


async def test_firewall_apply_and_rollback_through_the_server(tmp_path: Path, netns: str) -> None:
    async with (
        running_registry(tmp_path, netns=netns) as (_s, address),
        RegistryClient(address) as client,
    ):
        first = await client.call("firewall.apply", {"tables": [TABLE]}, reason="first")
        assert first.output["applied"] == [{"family": "inet", "name": "edge", "rules": 1}]
        v1 = nft(netns, "list", "table", "inet", "edge")
        changed = {**TABLE, "chains": [{**TABLE["chains"][0], "rules": ["tcp dport 80 accept"]}]}
        second = await client.call("firewall.apply", {"tables": [changed]}, reason="second")
        assert "tcp dport 80 accept" in nft(netns, "list", "table", "inet", "edge")
        await client.rollback(second.execution_id, "undo second")
        assert nft(netns, "list", "table", "inet", "edge") == v1
        await client.rollback(first.execution_id, "undo first")
        assert nft(netns, "list", "ruleset") == ""
        canon = await client.call("firewall.canonicalize", {"tables": [TABLE]}, reason="canon")
        assert "tcp dport 22 accept" in canon.output["tables"][0]["text"]
        with pytest.raises(ToolRejected, match=r"\$\.tables\[0\]\.chains\[0\]\.priority"):
            await client.call(
                "firewall.apply",
                {"tables": [{**TABLE, "chains": [{**TABLE["chains"][0], "priority": "firstish"}]}]},
                reason="bad",
            )
