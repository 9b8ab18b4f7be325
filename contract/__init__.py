"""The contract: what both sides of the registry's wire agree on, as data.

The bottom layer. The reconciler (specs, controllers, reconciler) and the
registry (registry, sandbox) both import it; it imports none of them, and no
pydantic (grpc only inside `_gen`), so `aios validate` and the registry stay
cheap to import. Nothing it defines is redefined elsewhere.

- `tooldef`: `ToolSpec` (aiOS's ToolDefinition as a frozen dataclass), risk
  levels, `is_write`, and `define`, the one constructor of a built-in tool.
- `catalogue`: every built-in tool's definition by namespace (net, firewall,
  pkg, storage, model, fs, meta) and the schema parts they share;
  `contract.catalogue.catalogue()` is the whole catalogue as data.
- `vocab`: vocabularies both layers check with — link kinds, network values,
  nft words and rule text, mkfs and mount option allow-lists.
- `schemacheck`: JSON Schema validators whose `pattern` means the whole string.
- `_gen`: the gRPC stubs generated from proto/aios/*.proto
  (scripts/gen_protos.py); imported only by reconciler.client and the
  registry.

Layer rules (pyproject.toml [tool.importlinter], tests/unit/test_import_graph.py)
and the picture: ARCHITECTURE.md.
"""
