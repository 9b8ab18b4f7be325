"""storage.mount against the kernel: tmpfs sizes with every suffix are "already mounted as wanted".

storage.mount compares the wanted options with findmnt's in the normal form the
storage controller uses too (contract.vocab.fsoptions.normal_mount_option).
It used to read only k/m/g, so `size=1t` (findmnt: `size=1073741824k`) never
matched and every apply remounted; p and e were not read at all. tmpfs
reserves nothing up front, so a 1 TiB or 1 PiB limit costs no memory. Runs in
test_storage_tools' private mount namespace (`ns`), never in the host's.
"""

from __future__ import annotations

import pytest

from tests.system.test_storage_tools import Namespace
from tests.system.test_storage_tools import ns as ns  # the fixture

SIZES = ["size=1t", "size=2T", "size=1p", "size=64M"]


@pytest.mark.parametrize("size", SIZES)
def test_a_second_mount_with_the_same_size_changes_nothing(ns: Namespace, size: str) -> None:
    args = {"target": "/run/big", "source": "tmpfs", "type": "tmpfs", "options": [size]}
    first = ns.ok("storage.mount", args)
    assert first["output"]["changed"] is True
    seen = ns.mounted("/run/big")
    assert seen is not None and any(o.startswith("size=") for o in seen["options"].split(","))
    again = ns.ok("storage.mount", args)
    assert again["output"]["changed"] is False, (size, seen["options"])
    ns.restore(first)
    assert ns.mounted("/run/big") is None
