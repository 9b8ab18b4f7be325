"""The `aios` command line, and the composition root of the reconciler.

`launch` is the console script (hands the command to the warm helper, `warm`,
or runs it here); `main` is the click group whose command groups load
lazily, one module each: `validate` (validate, schema), `plan_cmds` (plan,
diff, apply, rollback), `inspect_cmds` (status, get, export, history),
`registry` (registry serve, audit, tools) and `sandbox` (sandbox up, down,
list). `common` is where the parts meet: it resolves the target, opens the
store and the registry client, and hands the engine its controllers — the
only place that imports controllers, engine, client and sandbox together.
"""
