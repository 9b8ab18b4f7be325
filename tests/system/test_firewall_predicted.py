"""After a patch, the listing the registry predicts (and serves from memory) is nft's own.

firewall.apply with a patch remembers the patched table's `nft -a list table`
text, built from the listing it checked and nft's echo, when its commit was the
only one since (generation id + 1; nft 1.0.6 echoes no generation line, so the
id is read after the commit). The verify's observe is then answered from
memory: this test compares that answer, text and handles, with a raw listing.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from reconciler.cli.common import open_engine, resolve_target
from specs.loader import load_documents
from tests.system.daemon_support import firewall
from tests.system.engine_support import Box, box

__all__ = ["box"]


def test_the_remembered_listing_after_a_patch_is_byte_equal_to_nfts(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOS_SANDBOX_DIR", str(box.base))
    rules = [f"tcp dport {2000 + i} accept" for i in range(60)]

    async def go() -> None:
        target = resolve_target(None, box.name, None)
        async with open_engine(target) as engine:
            applied: list[dict[str, object]] = []
            call = engine.client.call

            async def spy(tool: str, args: dict[str, object], **kw: object) -> object:
                result = await call(tool, args, **kw)  # type: ignore[arg-type]
                if tool == "firewall.apply":
                    applied.append(result.output)
                return result

            engine.client.call = spy  # type: ignore[method-assign,assignment]
            for step in range(3):
                if step:  # 1: one rule changed in place (delete + insert), 2: and one added
                    rules[10 * step] = f"tcp dport {9000 + step} drop"
                if step == 2:
                    rules.insert(5, "udp dport 7000 accept")
                text = firewall("pred", "pred", rules).encode()
                specset = load_documents([("fw.yaml", text)], engine.domains.kinds)
                planned = await engine.plan(engine.merge(specset, replace=True))
                result = await engine.apply(planned, assume_yes=True)
                assert result.all_ready, result.reports
                out = await engine.client.call(
                    "firewall.ruleset",
                    {
                        "format": "text",
                        "handles": True,
                        "tables": [{"family": "inet", "name": "pred"}],
                    },
                    reason="test",
                )
                table = out.output["tables"][0]
                raw = await asyncio.to_thread(box.sh, "nft", "list", "table", "inet", "pred")
                with_handles = await asyncio.to_thread(
                    box.sh, "nft", "-a", "list", "table", "inet", "pred"
                )
                handles = re.findall(r"# handle (\d+)", with_handles.split("policy accept;")[1])
                assert table["text"].strip() == raw.strip(), f"step {step}: text differs"
                assert table["handles"]["input"] == " ".join(handles), f"step {step}: handles"
                if step:  # a patch, and its listing predicted (not listed again)
                    assert applied[-1]["patched"][0]["predicted"] is True, applied[-1]  # type: ignore[index]

    asyncio.run(go())
