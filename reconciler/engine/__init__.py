"""The reconcile engine: merge a spec set into a target's, plan, verify, apply, record.

- `reconcile`: `Engine` — merge (generations, prune, replace), plan every
  involved domain concurrently, check a saved plan, apply domain by domain
  in dependency order, record generation, inventory and statuses.
- `planning`: plan one domain (observe, diff, rules plan, verify) and blame
  the resource at fault when it fails.
- `verify`: the gate every plan passes (catalogue, JSON Schemas, risk policy,
  simulation with the domain's effect model).
- `apply`: run one planned domain (re-check, execute, re-observe, report)
  and return its frozen DomainOutcome, which `reconcile` folds.
- `execute`: calls through the registry client, journaled, undone on failure
  (and, through `undo`, when drift remains after them).
- `reader`: the read-only registry view observe gets.
- `order`: which domain waits for which (the declared defaults plus dependsOn).
- `status`: conditions per resource; `store`: the sqlite state directory.

It is handed its controllers and registry client and never imports
controllers or the CLI; reconciler.cli.common wires them. Used by the CLI's
plan, diff, apply, rollback, status and export commands.
"""
