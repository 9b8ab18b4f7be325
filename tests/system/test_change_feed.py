"""The registry's change feed (aios.changes.ChangeFeed, registry.server.changefeed).

Against one real sandbox for the module (`feed_box`: `aios sandbox up`, torn down
afterwards whatever happens): a Watch through RegistryClient.changes gets one resync
per domain first, then the changes made inside the sandbox — an MTU change and an
address added in its netns (network), an nft table, chain and rule added and deleted
there (firewall), a tmpfs mounted and unmounted in the registry's own mount namespace
(`nsenter -t <registry pid> -n -m`, storage), the dpkg status file replaced under the
sandbox root (packages), a file written and removed in the models directory (models)
— and nothing while nothing changes. Every change made is undone in a `finally`;
the sandbox's netns and root go with it.

Without a sandbox: the `aios` profile answers UNIMPLEMENTED, which the client turns
into FeedUnavailable; a feed whose server stops is FeedUnavailable too; the hub
(`Feed`) driven with fake watchers — coalescing, overflow into one resync, a dying
watcher restarted with a resync, one that never arms, everything stopped on cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from reconciler.client import RegistryClient
from reconciler.sdk.errors import FeedUnavailable, ToolRejected
from reconciler.sdk.ports import Change
from registry.server import changefeed
from registry.server.changefeed import (
    DOMAINS,
    ChangeFeedServicer,
    Feed,
    Watcher,
)
from registry.server.changefeed import (
    FeedUnavailable as HubUnavailable,
)
from registry.server.grpc import RegistryServer, ServeOptions
from tests.system.engine_support import Box, sandbox_box

WAIT_S = 5.0  # a change must arrive within this (it takes milliseconds)


@pytest.fixture(scope="module")
def feed_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    with sandbox_box(tmp_path_factory.mktemp("feed") / "sandboxes", "f") as created:
        yield created


class Subscription:
    """RegistryClient.changes(domains) read by a task into a queue."""

    def __init__(self, client: RegistryClient, domains: list[str]) -> None:
        self.queue: asyncio.Queue[Change | BaseException] = asyncio.Queue()
        self.task = asyncio.create_task(self._pump(client, domains))

    async def _pump(self, client: RegistryClient, domains: list[str]) -> None:
        try:
            async for change in client.changes(domains):
                await self.queue.put(change)
        except Exception as exc:
            await self.queue.put(exc)

    async def get(self, timeout: float = WAIT_S) -> Change:  # noqa: ASYNC109
        item = await asyncio.wait_for(self.queue.get(), timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    async def resyncs(self, domains: list[str]) -> list[Change]:
        got = [await self.get(timeout=20) for _ in domains]
        assert [c.domain for c in got] == domains, got
        assert all(c.resync and c.source == "feed" for c in got), got
        return got

    async def expect(self, domain: str, contains: str = "") -> Change:
        """The next change of `domain` (whose detail holds `contains`); others are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        seen: list[Change] = []
        while True:
            left = deadline - loop.time()
            try:
                change = await self.get(timeout=max(left, 0.01))
            except TimeoutError:
                raise AssertionError(
                    f"no {domain} change with {contains!r} within {WAIT_S} s; saw {seen}"
                ) from None
            seen.append(change)
            if change.domain == domain and contains in change.detail:
                assert not change.resync, change
                assert len(change.detail) <= 200
                return change

    async def quiet(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            change = await self.get(timeout=seconds)
            raise AssertionError(f"a change arrived while nothing changed: {change}")

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


@contextlib.asynccontextmanager
async def subscribed(box: Box, domains: list[str]) -> AsyncIterator[Subscription]:
    client = RegistryClient(box.record.address)
    sub = Subscription(client, domains)
    try:
        await sub.resyncs(domains or list(DOMAINS))
        yield sub
    finally:
        await sub.close()
        await client.close()


async def sh(box: Box, *argv: str, check: bool = True) -> str:
    return await asyncio.to_thread(box.sh, *argv, check=check)


def monitors_in(box: Box) -> list[str]:
    """`ip monitor` / `nft monitor` processes in the sandbox's netns (the feed's children)."""
    pid = box.record.pid
    assert pid is not None
    netns = os.readlink(f"/proc/{pid}/ns/net")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns/net") != netns:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = " ".join(a.decode(errors="replace") for a in argv if a)
        if b"monitor" in argv and argv[0].rsplit(b"/", 1)[-1] in (b"ip", b"nft"):
            found.append(text)
    return found


# -- against the sandbox --


async def test_resyncs_first_then_network_changes(feed_box: Box) -> None:
    client = RegistryClient(feed_box.record.address)
    sub = Subscription(client, [])
    try:
        first = await sub.resyncs(list(DOMAINS))
        seqs_ok = [c.detail for c in first]
        assert all("observe everything" in d for d in seqs_ok)
        await sh(feed_box, "ip", "link", "set", "lo", "mtu", "9000")
        change = await sub.expect("network", "mtu 9000")
        assert change.source == "rtnetlink"
        await sh(feed_box, "ip", "addr", "add", "192.0.2.77/32", "dev", "lo")
        await sub.expect("network", "192.0.2.77")
    finally:
        await sh(feed_box, "ip", "addr", "del", "192.0.2.77/32", "dev", "lo", check=False)
        await sh(feed_box, "ip", "link", "set", "lo", "mtu", "65536", check=False)
        await sub.close()
        await client.close()


async def test_sysctl_change_is_a_network_change(feed_box: Box) -> None:
    before = (await sh(feed_box, "sysctl", "-n", "net.ipv4.ip_forward")).strip()
    flipped = "0" if before == "1" else "1"
    try:
        async with subscribed(feed_box, ["network"]) as sub:
            await sh(feed_box, "sysctl", "-qw", f"net.ipv4.ip_forward={flipped}")
            # ip_forward flips conf.*.forwarding and accept_redirects too: the detail
            # names the first key that changed, `(+N more)` the others
            change = await sub.expect("network", " -> ")
            assert "more)" in change.detail
            assert change.source == "sysctl"  # polled every 2 s: the one polled source
    finally:
        await sh(feed_box, "sysctl", "-qw", f"net.ipv4.ip_forward={before}", check=False)


async def test_resolver_files_are_network_changes(feed_box: Box) -> None:
    resolv = feed_box.root / "etc/resolv.conf"
    before = resolv.read_bytes() if resolv.exists() else None
    unbound = feed_box.root / "etc/unbound"
    made_unbound = not unbound.exists()
    try:
        async with subscribed(feed_box, ["network"]) as sub:
            resolv.write_text("nameserver 192.0.2.53\n")
            change = await sub.expect("network", "/etc/resolv.conf")
            assert change.source == "inotify:/etc/resolv.conf"
            # a directory that did not exist when the watch started is seen once made
            forward = unbound / "unbound.conf.d"
            forward.mkdir(parents=True, exist_ok=True)
            await sub.expect("network", "/etc/unbound")
            await sub.quiet(0.3)
            (forward / "aios-forward.conf").write_text("forward-zone:\n")
            change = await sub.expect("network", "aios-forward.conf")
            assert change.source == "inotify:/etc/unbound/unbound.conf.d/aios-forward.conf"
    finally:
        if before is None:
            resolv.unlink(missing_ok=True)
        else:
            resolv.write_bytes(before)
        if made_unbound:
            (unbound / "unbound.conf.d/aios-forward.conf").unlink(missing_ok=True)
            for d in (unbound / "unbound.conf.d", unbound):
                with contextlib.suppress(OSError):
                    d.rmdir()


async def test_firewall_changes(feed_box: Box) -> None:
    try:
        async with subscribed(feed_box, ["firewall"]) as sub:
            await sh(feed_box, "nft", "add", "table", "inet", "feedtest")
            await sub.expect("firewall", "add table inet feedtest")
            await sh(feed_box, "nft", "add", "chain", "inet", "feedtest", "c")
            await sub.expect("firewall", "add chain inet feedtest c")
            await sh(feed_box, "nft", "add", "rule", "inet", "feedtest", "c", "tcp dport 4242 drop")
            await sub.expect("firewall", "4242")
            await sh(feed_box, "nft", "flush", "chain", "inet", "feedtest", "c")
            await sub.expect("firewall", "delete rule")
            await sh(feed_box, "nft", "delete", "table", "inet", "feedtest")
            await sub.expect("firewall", "delete")
    finally:
        await sh(feed_box, "nft", "delete", "table", "inet", "feedtest", check=False)


async def test_storage_changes_in_the_registry_mount_namespace(feed_box: Box) -> None:
    target = feed_box.root / "mnt" / "feedtmp"
    outside = feed_box.record.dir / "feed-outside"  # not under the root: not the target's
    mounted = False
    try:
        async with subscribed(feed_box, ["storage"]) as sub:
            await sh(feed_box, "mkdir", "-p", str(outside))
            await sh(feed_box, "mount", "-t", "tmpfs", "-o", "size=1m", "feedout", str(outside))
            await sub.quiet(0.5)
            await sh(feed_box, "umount", str(outside))
            await sh(feed_box, "mkdir", "-p", str(target))
            await sh(feed_box, "mount", "-t", "tmpfs", "-o", "size=1m", "feedtmp", str(target))
            mounted = True
            change = await sub.expect("storage", "+/mnt/feedtmp tmpfs")
            assert change.source == "mountinfo"
            await sh(feed_box, "mount", "-o", "remount,ro", str(target))
            await sub.expect("storage", "~/mnt/feedtmp")
            await sh(feed_box, "umount", str(target))
            mounted = False
            await sub.expect("storage", "-/mnt/feedtmp")
    finally:
        if mounted:
            await sh(feed_box, "umount", str(target), check=False)
        await sh(feed_box, "rmdir", str(target), check=False)
        await sh(feed_box, "umount", str(outside), check=False)
        await sh(feed_box, "rmdir", str(outside), check=False)


async def test_packages_changes(feed_box: Box) -> None:
    dpkg = feed_box.root / "var/lib/dpkg"
    existed = dpkg.exists()
    status = dpkg / "status"
    before = status.read_bytes() if status.exists() else None
    try:
        async with subscribed(feed_box, ["packages"]) as sub:
            dpkg.mkdir(parents=True, exist_ok=True)
            new = dpkg / "status-new"
            new.write_text("Package: feedtest\nStatus: install ok installed\n\n")
            new.replace(status)  # as dpkg writes it
            await sub.expect("packages", "/var/lib/dpkg")
            # the lock and dpkg's temporary files are no change of the database
            (dpkg / "lock").write_text("")
            (dpkg / "status-old").write_text("")
            await sub.quiet(0.5)
            status.write_text("Package: feedtest\nStatus: deinstall ok config-files\n\n")
            change = await sub.expect("packages", "/var/lib/dpkg/status")
            assert change.source == "inotify:/var/lib/dpkg/status"
    finally:
        for name in ("lock", "status-old", "status-new"):
            (dpkg / name).unlink(missing_ok=True)
        if before is not None:
            status.write_bytes(before)
        elif not existed:
            status.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                dpkg.rmdir()


async def test_models_changes(feed_box: Box) -> None:
    models = feed_box.root / "var/lib/aios/models"
    sub_dir = models / "feedsub"
    model = models / "feedtest.gguf"
    try:
        async with subscribed(feed_box, ["models"]) as sub:
            model.write_bytes(b"GGUF" + b"\0" * 60)
            change = await sub.expect("models", "/var/lib/aios/models/feedtest.gguf")
            assert change.source == "inotify:/var/lib/aios/models"
            (models / "feedtest2.gguf.part").write_bytes(b"partial")  # a download: not a change
            await sub.quiet(0.5)
            sub_dir.mkdir()
            await sub.expect("models", "feedsub")
            (sub_dir / "nested.gguf").write_bytes(b"GGUF")  # recursive
            await sub.expect("models", "nested.gguf")
            model.unlink()
            await sub.expect("models", "feedtest.gguf deleted")
    finally:
        model.unlink(missing_ok=True)
        (models / "feedtest2.gguf.part").unlink(missing_ok=True)
        (sub_dir / "nested.gguf").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            sub_dir.rmdir()


async def test_a_mount_over_the_models_directory_is_followed(feed_box: Box) -> None:
    models = feed_box.root / "var/lib/aios/models"
    mounted = False
    try:
        async with subscribed(feed_box, ["storage", "models"]) as sub:
            await sh(feed_box, "mount", "-t", "tmpfs", "-o", "size=1m", "feedmodels", str(models))
            mounted = True
            await sub.expect("storage", "+/var/lib/aios/models tmpfs")
            change = await sub.get()
            assert (change.domain, change.resync) == ("models", True), change
            assert "mounted over" in change.detail
            # the new filesystem is watched: a file written there (in the registry's mount
            # namespace only) is a models change
            await sh(feed_box, "sh", "-c", f"echo x > {models}/onmount.gguf")
            await sub.expect("models", "onmount.gguf")
    finally:
        if mounted:
            await sh(feed_box, "umount", str(models), check=False)


async def test_idle_is_silent_and_domains_filter(feed_box: Box) -> None:
    try:
        async with subscribed(feed_box, []) as sub:
            await sub.quiet(1.0)
        async with subscribed(feed_box, ["firewall", "storage"]) as sub:
            await sh(feed_box, "ip", "link", "set", "lo", "mtu", "9001")  # not watched here
            await sub.quiet(1.0)
    finally:
        await sh(feed_box, "ip", "link", "set", "lo", "mtu", "65536", check=False)


async def test_monitor_children_stop_with_the_stream(feed_box: Box) -> None:
    assert monitors_in(feed_box) == []
    async with subscribed(feed_box, ["network", "firewall"]):
        running = monitors_in(feed_box)
        assert any(m.startswith("ip ") for m in running), running
        assert any(m.startswith("nft ") for m in running), running
    for _ in range(int(WAIT_S / 0.05)):  # killed with their process groups, then reaped
        if not monitors_in(feed_box):
            break
        await asyncio.sleep(0.05)
    assert monitors_in(feed_box) == []


async def test_unknown_domain_is_refused(feed_box: Box) -> None:
    async with RegistryClient(feed_box.record.address) as client:
        with pytest.raises(ToolRejected, match="unknown domain 'kernel'"):
            async for _ in client.changes(["kernel"]):
                pass


# -- without a sandbox --


async def test_aios_profile_has_no_feed(tmp_path: Path) -> None:
    sock_dir = tmp_path / "run"
    sock_dir.mkdir(mode=0o700)
    server = RegistryServer(
        ServeOptions(
            listen=f"unix://{sock_dir}/tools.sock",
            root=tmp_path,
            state_dir=tmp_path / "state",
            profile="aios",
        )
    )
    address = await server.start()
    try:
        async with RegistryClient(address) as client:
            with pytest.raises(FeedUnavailable, match="has no change feed") as raised:
                async for _ in client.changes([]):
                    pass
            assert raised.value.unimplemented
            assert await client.list_tools()  # aiOS's ToolRegistry is there as ever
    finally:
        await server.stop(grace=0)


async def test_feed_ends_when_the_registry_stops_and_when_the_connection_goes() -> None:
    stopped = asyncio.Event()

    async def idle(emit: changefeed.Emit, armed: asyncio.Event) -> None:
        armed.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async def serve() -> tuple[grpc.aio.Server, ChangeFeedServicer, int]:
        server = grpc.aio.server()
        servicer = ChangeFeedServicer(lambda: {d: Watcher(idle) for d in DOMAINS})
        changefeed.changes_pb2_grpc.add_ChangeFeedServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, servicer, port

    # the registry shutting down (RegistryServer.stop closes the servicer first): the
    # stream ends at once with UNAVAILABLE, not after the grace period
    server, servicer, port = await serve()
    try:
        async with RegistryClient(f"127.0.0.1:{port}") as client:
            sub = Subscription(client, ["storage"])
            await sub.resyncs(["storage"])
            loop = asyncio.get_running_loop()
            began = loop.time()
            servicer.close()
            await server.stop(grace=5)
            assert loop.time() - began < 2
            with pytest.raises(FeedUnavailable, match="registry is shutting down"):
                await sub.get()
            await asyncio.wait_for(stopped.wait(), WAIT_S)  # the watcher was stopped
            await sub.close()
    finally:
        await server.stop(grace=0)

    # the server gone without a word: the connection is lost
    stopped.clear()
    server, servicer, port = await serve()
    try:
        async with RegistryClient(f"127.0.0.1:{port}") as client:
            sub = Subscription(client, [])
            await sub.resyncs(list(DOMAINS))
            await server.stop(grace=0)
            with pytest.raises(FeedUnavailable, match="lost"):
                await sub.get()
            await asyncio.wait_for(stopped.wait(), WAIT_S)
            await sub.close()
    finally:
        await server.stop(grace=0)


# -- the hub with fake watchers --


class Fake:
    """A watcher the test drives: `emit` once armed; `fail` makes its run raise."""

    def __init__(self) -> None:
        self.emit: changefeed.Emit | None = None
        self.runs = 0
        self.running = 0
        self.fail: asyncio.Event = asyncio.Event()
        self.arm = True

    async def run(self, emit: changefeed.Emit, armed: asyncio.Event) -> None:
        self.runs += 1
        self.running += 1
        self.fail = asyncio.Event()
        try:
            if self.arm:
                self.emit = emit
                armed.set()
            await self.fail.wait()
            raise RuntimeError(f"fake watcher died (run {self.runs})")
        finally:
            self.running -= 1


def fake_feed(
    fakes: dict[str, Fake],
    *,
    limit: int = 1000,
    coalesce_s: float = 0.0,
    arm_timeout_s: float = 2.0,
) -> Feed:
    return Feed(
        list(fakes),
        {d: Watcher(f.run) for d, f in fakes.items()},
        limit=limit,
        coalesce_s=coalesce_s,
        arm_timeout_s=arm_timeout_s,
        backoff_min_s=0.01,
    )


async def take(stream: AsyncIterator[changefeed.Change], n: int) -> list[changefeed.Change]:
    return [await asyncio.wait_for(anext(stream), WAIT_S) for _ in range(n)]


async def test_hub_resyncs_first_seq_gapless_and_coalesces() -> None:
    fakes = {"network": Fake(), "firewall": Fake()}
    async with fake_feed(fakes, coalesce_s=0.05) as feed:
        stream = feed.changes()
        first = await take(stream, 2)
        assert [(c.seq, c.domain, c.resync) for c in first] == [
            (1, "network", True),
            (2, "firewall", True),
        ]
        emit = fakes["network"].emit
        assert emit is not None
        for i in range(50):  # a burst from one source: one change
            emit("rtnetlink", f"link {i} " + "x" * 300, False)
        fw = fakes["firewall"].emit
        assert fw is not None
        fw("nft-monitor", "add rule inet t c", False)
        got = await take(stream, 2)
        assert [(c.seq, c.domain, c.resync) for c in got] == [
            (3, "network", False),
            (4, "firewall", False),
        ]
        assert got[0].detail.startswith("link 0 ")
        assert len(got[0].detail) <= 200
        assert feed.pending == {}
        await stream.aclose()


async def test_hub_overflow_becomes_one_resync() -> None:
    fakes = {"network": Fake(), "models": Fake()}
    async with fake_feed(fakes, limit=1000) as feed:
        stream = feed.changes()
        await take(stream, 2)
        net, models = fakes["network"].emit, fakes["models"].emit
        assert net is not None and models is not None
        models("inotify:/m", "one model change", False)
        for i in range(1500):  # distinct sources: nothing merges
            net(f"src{i}", f"change {i}", False)
        assert len(feed.pending) <= 1001
        assert feed.dropped > 0
        got = await take(stream, len(feed.pending))
        assert got[0].domain == "models" and not got[0].resync
        net_changes = [c for c in got if c.domain == "network"]
        resyncs = [c for c in net_changes if c.resync]
        assert len(resyncs) == 1, resyncs
        assert "overflow" in resyncs[0].detail
        assert [c.seq for c in got] == list(range(3, 3 + len(got)))
        await stream.aclose()


async def test_hub_restarts_a_dead_watcher_with_a_resync() -> None:
    fakes = {"storage": Fake()}
    async with fake_feed(fakes) as feed:
        stream = feed.changes()
        await take(stream, 1)
        fakes["storage"].fail.set()
        (change,) = await take(stream, 1)
        assert change.resync and change.domain == "storage"
        assert "watcher restarted: RuntimeError: fake watcher died (run 1)" in change.detail
        assert fakes["storage"].runs == 2
        emit = fakes["storage"].emit
        assert emit is not None
        emit("mountinfo", "+/mnt x", False)
        (after,) = await take(stream, 1)
        assert after.detail == "+/mnt x" and after.seq == 3
        await stream.aclose()
    assert fakes["storage"].running == 0  # stopped with the feed


async def test_hub_remount_of_a_watched_directory_restarts_its_watcher() -> None:
    identity = {"value": 1}
    models, storage = Fake(), Fake()
    feed = Feed(
        ["storage", "models"],
        {
            "storage": Watcher(storage.run),
            "models": Watcher(models.run, identity=lambda: identity["value"]),
        },
        coalesce_s=0.0,
        backoff_min_s=0.01,
    )
    async with feed:
        stream = feed.changes()
        await take(stream, 2)
        emit = storage.emit
        assert emit is not None
        emit("mountinfo", "+/mnt/other tmpfs", False)  # identity unchanged: no restart
        (change,) = await take(stream, 1)
        assert change.domain == "storage" and models.runs == 1
        identity["value"] = 2
        emit("mountinfo", "+/var/lib/aios/models ext4 /dev/loop0", False)
        got = await take(stream, 2)
        assert [(c.domain, c.resync) for c in got] == [("storage", False), ("models", True)]
        assert "mounted over" in got[1].detail and models.runs == 2
        await stream.aclose()


async def test_hub_watcher_that_never_arms_is_unavailable() -> None:
    fakes = {"firewall": Fake()}
    fakes["firewall"].arm = False
    async with fake_feed(fakes, arm_timeout_s=0.2) as feed:
        with pytest.raises(HubUnavailable, match="firewall"):
            await anext(feed.changes())
    assert fakes["firewall"].running == 0
