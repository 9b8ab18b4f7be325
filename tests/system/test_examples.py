"""Every example in examples/ converges in its own sandbox and re-plans to nothing.

Each example is applied with the real CLI (`aios apply -f examples/X
--sandbox N --yes`) in a fresh sandbox; then `aios status` must show every
resource Ready, `aios plan` must exit 0 (no changes), a second apply must make
zero write calls, and the machine's real state is read back independently of
the registry — ip, nft, dpkg-query, findmnt, blkid, sha256sum run inside the
sandbox's namespaces — against the expectations below, written from the
example files by hand; the sandbox's AI runtime is asked what it has loaded
(ai-workstation: SmolLM2, ready; quickstart: nothing, its model is on_demand).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc
import pytest

from contract._gen import common_pb2, runtime_pb2_grpc
from sandbox.demo import SMOLLM2, gguf_sha256, model_sha256
from tests.system.engine_support import REPO, Box, box  # noqa: F401

EXAMPLES = REPO / "examples"


def addresses(b: Box, dev: str) -> set[str]:
    data = json.loads(b.sh("ip", "-j", "addr", "show", "dev", dev))
    return {f"{a['local']}/{a['prefixlen']}" for a in data[0]["addr_info"]}


def link(b: Box, dev: str) -> dict[str, object]:
    data = json.loads(b.sh("ip", "-j", "-d", "link", "show", "dev", dev))
    assert isinstance(data[0], dict)
    return data[0]


def installed(b: Box) -> dict[str, str]:
    out = b.sh(
        "dpkg-query",
        f"--admindir={b.root}/var/lib/dpkg",
        "-W",
        "-f",
        "${Package} ${Version} ${db:Status-Abbrev}\n",
    )
    versions = {}
    for line in out.splitlines():
        name, version, status = line.split(" ", 2)
        if status[1:2] == "i":  # desired install or hold, status installed
            versions[name] = version
    return versions


def held(b: Box) -> set[str]:
    out = b.sh(
        "dpkg-query",
        f"--admindir={b.root}/var/lib/dpkg",
        "-W",
        "-f",
        "${Package} ${db:Status-Want}\n",
    )
    return {line.split()[0] for line in out.splitlines() if line.endswith(" hold")}


def mount(b: Box, target: str) -> dict[str, str]:
    data = json.loads(b.sh("findmnt", "-J", "--target", f"{b.root}{target}"))
    fs = data["filesystems"][0]
    assert fs["target"] == f"{b.root}{target}", f"{target} is not a mount point: {fs}"
    return {k: str(v) for k, v in fs.items()}


def sha256(b: Box, path: str) -> str:
    return b.sh("sha256sum", f"{b.root}{path}").split()[0]


def loaded(b: Box) -> list[tuple[str, str]]:
    """The sandbox runtime's ListModels (over its unix socket) as (name, status) pairs."""
    with grpc.insecure_channel(b.record.runtime_address) as channel:
        reply = runtime_pb2_grpc.AIRuntimeStub(channel).ListModels(common_pb2.Empty(), timeout=30)
    return [(m.model_name, m.status) for m in reply.models]


def check_quickstart(b: Box) -> None:
    assert {"10.42.0.1/24", "fd42::1/64"} <= addresses(b, "br-lan")
    br = link(b, "br-lan")
    assert "UP" in br["flags"] and br["mtu"] == 1500  # type: ignore[operator]
    table = b.sh("nft", "list", "table", "inet", "filter")
    assert "policy drop" in table and "tcp dport 22 accept" in table and "9090" in table
    versions = installed(b)
    assert versions.get("aios-demo-base") == "1.1-1" and "aios-demo-console" in versions
    assert mount(b, "/var/lib/aios/scratch")["fstype"] == "tmpfs"
    assert sha256(b, "/var/lib/aios/models/demo-tiny.gguf") == gguf_sha256("demo-tiny")
    assert b.record.runtime_pid is not None  # the runtime runs, and loads nothing (on_demand)
    assert loaded(b) == []


def check_edge_router(b: Box) -> None:
    assert link(b, "veth-lan0")["master"] == "br-lan"
    assert "192.168.10.1/24" in addresses(b, "br-lan")
    mv = link(b, "mv-dmz0")
    assert mv["address"] == "02:00:5e:10:00:01"
    assert mv["linkinfo"]["info_kind"] == "macvlan"  # type: ignore[index]
    main = b.sh("ip", "route", "show", "default")
    assert "via 198.51.100.1" in main and "metric 100" in main
    assert "via 203.0.113.1" in b.sh("ip", "route", "show", "table", "100")
    assert "from 192.168.10.128/25 lookup 100" in b.sh("ip", "rule", "show")
    assert b.sh("sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
    assert "set lan_services" in b.sh("nft", "list", "table", "inet", "filter")
    assert "masquerade" in b.sh("nft", "list", "table", "ip", "nat")
    versions = installed(b)
    assert versions.get("aios-demo-tools") == "1.2-1" and "aios-demo-tools" in held(b)
    assert versions.get("aios-demo-agent", "").startswith("1.")
    assert "aios-demo-extra" not in versions


def check_ai_workstation(b: Box) -> None:
    fs = mount(b, "/var/lib/aios/models")
    assert fs["fstype"] == "ext4"
    probe = b.sh("blkid", "-p", "-o", "export", f"{b.root}/var/lib/aios/images/models.img")
    assert "LABEL=aios-models" in probe and "TYPE=ext4" in probe
    for name, path in (
        (SMOLLM2, f"/var/lib/aios/models/{SMOLLM2}.gguf"),
        ("tinyllama-1.1b-demo", "/var/lib/aios/models/tinyllama-1.1b-demo.gguf"),
        ("mistral-7b-demo", "/var/lib/aios/models/strategic/mistral-7b-demo.gguf"),
    ):
        assert sha256(b, path) == model_sha256(name)
    assert loaded(b) == [(SMOLLM2, "ready")], "the operational model is loaded"
    mode = b.sh("stat", "-c", "%a %U %G", f"{b.root}/var/lib/aios/runtime").split()
    assert mode == ["750", "root", "root"]
    versions = installed(b)
    assert versions.get("aios-demo-agent") == "1.0-1" and "aios-demo-models" in versions
    assert "aios-demo-base" in held(b)


CHECKS: dict[str, Callable[[Box], None]] = {
    "quickstart": check_quickstart,
    "edge-router": check_edge_router,
    "ai-workstation": check_ai_workstation,
}


def test_every_example_has_a_check() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) == sorted(CHECKS)


@pytest.mark.parametrize("example", sorted(CHECKS))
def test_example_converges_and_replans_empty(box: Box, example: str) -> None:  # noqa: F811
    path = str(EXAMPLES / example)
    applied = box.aios("apply", "-f", path, "--sandbox", box.name, "--yes")
    assert applied.returncode == 0, f"apply failed\n{applied.stdout}\n{applied.stderr}"
    status = box.aios("status", "--sandbox", box.name, "-o", "json", check=True)
    resources = json.loads(status.stdout)["resources"]
    assert resources and all(r["ready"] for r in resources), status.stdout
    plan = box.aios("plan", "-f", path, "--sandbox", box.name)
    assert plan.returncode == 0, f"re-plan is not empty\n{plan.stdout}\n{plan.stderr}"
    writes = box.write_calls()
    assert writes > 0
    again = box.aios("apply", "-f", path, "--sandbox", box.name, "--yes")
    assert again.returncode == 0, again.stderr
    assert box.write_calls() == writes, "a converged example made write calls on re-apply"
    CHECKS[example](box)
