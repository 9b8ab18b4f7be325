"""Handlers of the `pkg.*` tools (definitions in contract.catalogue.pkg).

Each handler picks the target's backend (registry.drivers.pkg.selection.select_backend:
apt/dpkg or apk under `ctx.root`) and delegates: reads to the backend,
transactions to registry.drivers.pkg.transaction (one transaction, restored inside `run` on
failure; the pipeline's snapshot serves Rollback). aiOS-named tools keep
aiOS's outputs and error strings (`apt-get install <name> failed: <stderr>`).
Collected by registry.handlers.index through TOOLS.
"""

from __future__ import annotations

from contract.catalogue import pkg as pkg_defs
from contract.tooldef import JSON
from registry.core.atomicfile import read_or_none, restore_content, write_atomic
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext
from registry.drivers.pkg import transaction
from registry.drivers.pkg.backend import (
    Backend,
    Repository,
    Transaction,
    TransactionError,
)
from registry.drivers.pkg.selection import select_backend

SEARCH_LIMIT = 50


def _pm(backend: Backend) -> str:
    return "apt-get" if backend.name == "apt" else "apk"


class PkgState(Tool):
    spec = pkg_defs.PKG_STATE

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        backend = select_backend(ctx)
        names = list(args.get("names", ()))
        every = bool(args.get("all_packages", False))
        repos = _repositories("pkg.state", args)
        packages = await backend.installed(None if every or not names else names)
        return {
            "backend": backend.name,
            "packages": [p.to_json() for p in packages],
            "available": await backend.available(names, repos or None),
            "repositories": [r.to_json() for r in backend.repositories()],
        }


def _repositories(tool: str, args: JSON) -> list[Repository]:
    repos = [Repository.from_json(r) for r in args.get("repositories", ())]
    names = [r.name for r in repos]
    if len(names) != len(set(names)):
        raise ToolError(f"{tool}: a repository is named twice")
    return repos


class _Transactional(Tool):
    """Snapshot/restore through registry.drivers.pkg.transaction for tools that run a
    transaction."""

    def transaction(self, args: JSON) -> tuple[Transaction, list[str]]:
        raise NotImplementedError

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        tx, names = self.transaction(args)
        return await transaction.before_image(select_backend(ctx), tx, names)

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        await transaction.restore(select_backend(ctx), snapshot)


class PkgEnsure(_Transactional):
    spec = pkg_defs.PKG_ENSURE

    def transaction(self, args: JSON) -> tuple[Transaction, list[str]]:
        request = transaction.EnsureRequest.from_args(args)
        return request.tx, request.names()

    def touches(self, args: JSON) -> tuple[str, ...]:
        try:
            return tuple(f"pkg:{n}" for n in transaction.EnsureRequest.from_args(args).names())
        except ToolError:
            return ()

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        return await transaction.ensure(
            select_backend(ctx), transaction.EnsureRequest.from_args(args)
        )


def _split_pin(name: str) -> tuple[str, str | None]:
    base, sep, version = name.partition("=")
    return base, (version if sep else None)


class PkgInstall(_Transactional):
    spec = pkg_defs.PKG_INSTALL

    def transaction(self, args: JSON) -> tuple[Transaction, list[str]]:
        name, version = _split_pin(args["name"])
        return Transaction(install=((name, version),)), [name]

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"pkg:{_split_pin(str(args.get('name', '')))[0]}",)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        backend = select_backend(ctx)
        tx, (name,) = self.transaction(args)
        try:
            await backend.transact(tx)
        except TransactionError as exc:
            raise ToolError(f"{_pm(backend)} install {args['name']} failed: {exc.stderr}") from None
        return {"installed": True, "version": await backend.version_of(name)}


class PkgRemove(_Transactional):
    spec = pkg_defs.PKG_REMOVE

    def transaction(self, args: JSON) -> tuple[Transaction, list[str]]:
        return Transaction(remove=(args["name"],)), [args["name"]]

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"pkg:{args.get('name', '')}",)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        backend = select_backend(ctx)
        tx, _names = self.transaction(args)
        try:
            await backend.transact(tx)
        except TransactionError as exc:
            raise ToolError(f"{_pm(backend)} remove {args['name']} failed: {exc.stderr}") from None
        return {"removed": True}


class PkgRepos(Tool):
    spec = pkg_defs.PKG_REPOS

    def touches(self, args: JSON) -> tuple[str, ...]:
        return tuple(f"repo:{r.get('name', '')}" for r in args.get("repositories", ()))

    @staticmethod
    def _files(ctx: ToolContext, args: JSON) -> tuple[Backend, dict[str, str | None]]:
        backend = select_backend(ctx)
        return backend, backend.repo_files(_repositories("pkg.repos", args)).files

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        _backend, files = self._files(ctx, args)
        before = {t: read_or_none(ctx.path(t)) for t in files}
        return {"files": {t: None if c is None else c.decode() for t, c in before.items()}}

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        changed = False
        for target, content in snapshot["files"].items():
            path = ctx.path(target)
            data = None if content is None else content.encode()
            if read_or_none(path) != data:
                restore_content(path, data)
                changed = True
        if changed:
            await select_backend(ctx).update_index()

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        backend, files = self._files(ctx, args)
        before = {r.name: r for r in backend.repositories()}
        changed = False
        for target, content in files.items():
            path = ctx.path(target)
            data = None if content is None else content.encode()
            if read_or_none(path) != data:
                changed = True
                if data is None:
                    restore_content(path, None)
                else:
                    write_atomic(path, data, mode=0o644)
        after = {r.name: r for r in backend.repositories()}
        names = [r["name"] for r in args["repositories"]]
        written = [n for n in names if n in after and before.get(n) != after[n]]
        removed = [n for n in names if n in before and n not in after]
        updated = changed and bool(args.get("update_index", True))
        if updated:
            await backend.update_index()
        return {
            "backend": backend.name,
            "written": sorted(written),
            "removed": sorted(removed),
            "unchanged": sorted(set(names) - set(written) - set(removed)),
            "index_updated": updated,
        }


class PkgSearch(Tool):
    spec = pkg_defs.PKG_SEARCH

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        backend = select_backend(ctx)
        return {"packages": await backend.search(args["query"], SEARCH_LIMIT)}


class PkgUpdate(Tool):
    spec = pkg_defs.PKG_UPDATE

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        return {"updated": await select_backend(ctx).upgrade_all()}


class PkgListInstalled(Tool):
    spec = pkg_defs.PKG_LIST_INSTALLED

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        return {"packages": await select_backend(ctx).list_installed()}


TOOLS: tuple[type[Tool], ...] = (
    PkgState,
    PkgEnsure,
    PkgRepos,
    PkgInstall,
    PkgRemove,
    PkgSearch,
    PkgUpdate,
    PkgListInstalled,
)
