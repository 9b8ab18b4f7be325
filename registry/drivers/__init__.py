"""What acts on the system for the registry's tools, one package per domain.

net (ip links, addresses, routes, sysctls, resolver; probes), nft (rulesets through nft
and libnftables), pkg (apt/dpkg and apk backends, transactions, the maintainer-script
jail), storage (block devices, mkfs/mount, fstab), model (downloads, model files) and
fs (before-images of paths, shared by the other layers). A driver imports
registry.core and its own domain; the domains do not import each other (fs is the one
shared driver, below them). Called by registry.handlers and registry.server.
"""
