"""The spec language: what operators write, validated with positions.

One pydantic model per kind (network, firewall, packages, storage, models)
on the shared envelope (base: apiVersion, kind, metadata with dependsOn,
spec with mode and prune), the value types (types), and the loader that
turns files into one immutable, digested `SpecSet` (specset) or one
`SpecError` carrying every issue as `path:line:col: Kind/name: field:
message`: parsing (YAML 1.2 with safety caps) -> positions -> validation
(one document) -> crosscheck (owners, duplicates, dependsOn) -> loader.
schema exports JSON Schema for editors (`aios schema`); kinds is the kind ->
model table.

Imports only contract (its vocabularies and tool schemas), never the engine,
controllers or registry. Used by `aios validate`, the engine (merging and
stored generations) and the controllers (their desired views).
"""
