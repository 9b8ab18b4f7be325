"""Package drivers: the backend interface and records (backend), apt/dpkg (apt, with its
pure parsers in aptparse) and apk (apk), the choice between them (selection),
transactions with before-images (transaction) and the maintainer-script jail (jail);
the change feed's packages watcher (monitor: the status files, inotify).

Import order, one way: backend <- aptparse <- apt, backend <- apk, both <- selection;
transaction uses only backend. Used by the `pkg.*` handlers (registry.handlers.pkg) and
sandbox.content (the sandbox's dpkg database and apt configuration).
"""
