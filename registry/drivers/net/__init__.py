"""Network drivers: read (state, system), build commands (commands, revert), run them
(run), take and restore before-images (snapshot), and aiOS's probes (probe);
the change feed's network watcher (monitor: rtnetlink, resolver files, sysctls).

Value checks shared with the spec language come from contract.vocab. Used by the
`net.*` handlers (registry.handlers.net).
"""
