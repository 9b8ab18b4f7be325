"""Before-images of paths (image): what a file tool saves before it changes a path, and
how it is put back.

Below the other driver domains (any of them may use it): the `fs.*` handlers
(registry.handlers.fs_base, fs_write) and registry.server (execution's before-image of
aiOS's file writes, rollback's one-shot file Rollback on the aios profile) use it.
"""
