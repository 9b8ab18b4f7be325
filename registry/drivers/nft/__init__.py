"""nftables drivers: render, list, load and canonicalise rulesets (ruleset) and read
listings in process through libnftables (libnft); the change feed's firewall watcher (monitor:
`nft monitor`).

Identifier and rule-text checks come from contract.vocab.nft. Used by the `firewall.*`
handlers (registry.handlers.firewall).
"""
