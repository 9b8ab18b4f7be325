"""Vocabularies written once, checked alike by the spec language and the registry.

Plain data and pure checks (`re`, `ipaddress`; no pydantic, jsonschema or
grpc): specs validates a spec with them and the registry's drivers re-check
every tool input with the same functions, so a value one layer accepts the
other accepts too, and a list of words cannot drift apart between layers.

- `links`: every link kind once, with which can be created, declared in a
  spec, be a child of a parent or a master, and each kind's option block.
- `netvalues`: interface names, WireGuard endpoints and public keys, net.*
  sysctl keys and values, resolver files, ports, MAC addresses, packet marks
  and policy-rule fwmarks.
- `nft`: nftables families, hooks, chain and set words, identifiers, chain
  priority names, rule text (with the fast path), comments and set elements.
- `fsoptions`: the mkfs argument and mount option allow-lists per filesystem
  type, and the normal form mount options are compared in.
- `sizes`: sizes with binary suffixes ('512M') and the kernel's memparse
  suffixes of mount options.

Where two layers accept different sets on purpose (link kinds, set flags,
priority names), the vocabulary holds both and says why.
tests/unit/test_vocab.py fails when a copy of one appears anywhere else.
"""
