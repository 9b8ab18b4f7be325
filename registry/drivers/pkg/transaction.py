"""Package transactions with before-images: pkg.ensure's logic, snapshot and restore.

`ensure` runs one transaction (unhold → one backend install/remove command
→ hold) and reports what changed by diffing the whole package database
before and after. It is all-or-nothing inside `run`, like net.apply: when the
transaction fails, `ensure` restores the database to its before-image itself
and the error says so; the pipeline's separate snapshot (`before_image`,
taken over the names the transaction may touch: the requested ones plus what
a dry run says) stays available for Rollback(execution_id), which calls the
same `restore`. `restore` reinstalls previous versions (`name=version`, apt's
--reinstall, so a package a failed script left half-installed at the same
version is unpacked again), purges packages that were not there, removes the
ones that were only config-files, puts hold and auto flags back, and then
checks the database: a package it could not bring back (e.g. its postrm keeps
failing) is a ToolError naming it, never a silent "rolled back".

Called by registry.handlers.pkg.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from contract.tooldef import JSON
from registry.core.errors import ToolError
from registry.drivers.pkg.backend import Backend, Installed, Transaction


@dataclass(frozen=True)
class EnsureRequest:
    install: tuple[tuple[str, str | None], ...] = ()
    remove: tuple[str, ...] = ()
    purge: bool = False
    hold: tuple[str, ...] = ()
    unhold: tuple[str, ...] = ()
    update_index: bool = False

    @classmethod
    def from_args(cls, args: JSON) -> EnsureRequest:
        request = cls(
            install=tuple((i["name"], i.get("version")) for i in args.get("install", ())),
            remove=tuple(args.get("remove", ())),
            purge=bool(args.get("purge", False)),
            hold=tuple(args.get("hold", ())),
            unhold=tuple(args.get("unhold", ())),
            update_index=bool(args.get("update_index", False)),
        )
        request.check()
        return request

    @property
    def tx(self) -> Transaction:
        return Transaction(self.install, self.remove, self.purge)

    def names(self) -> list[str]:
        named = [n for n, _ in self.install] + [*self.remove, *self.hold, *self.unhold]
        return sorted(set(named))

    def check(self) -> None:
        installs = [n for n, _ in self.install]
        for label, left, right in (
            ("install and remove", installs, self.remove),
            ("hold and unhold", self.hold, self.unhold),
            ("hold and remove", self.hold, self.remove),
        ):
            both = sorted(set(left) & set(right))
            if both:
                raise ToolError(f"pkg.ensure: {', '.join(both)} in both {label}")
        if len(installs) != len(set(installs)):
            raise ToolError("pkg.ensure: a package is named twice in install")


def _entry(pkg: Installed | None) -> JSON:
    if pkg is None:
        return {"version": None, "status": None, "hold": False, "auto": False}
    return {
        "version": pkg.version if pkg.present else None,
        "status": pkg.status,
        "hold": pkg.hold,
        "auto": pkg.auto,
    }


def image_of(packages: dict[str, Installed | None]) -> JSON:
    return {"packages": {name: _entry(pkg) for name, pkg in sorted(packages.items())}}


async def before_image(backend: Backend, tx: Transaction, names: Iterable[str]) -> JSON:
    """Versions, holds and auto flags of every package `tx` may touch."""
    touched = set(names)
    # When the dry run fails, the transaction will fail too and change nothing.
    with contextlib.suppress(ToolError):
        touched |= await backend.simulate(tx)
    rows = {p.name: p for p in await backend.installed(sorted(touched))} if touched else {}
    image = image_of({name: rows.get(name) for name in touched})
    image["backend"] = backend.name
    return image


async def restore(backend: Backend, image: JSON) -> None:
    """Bring every package in `image` back to its recorded version, hold and auto flag."""
    wanted: dict[str, JSON] = image.get("packages", {})
    if not wanted:
        return
    now = {p.name: p for p in await backend.installed(sorted(wanted))}
    reinstall: list[tuple[str, str | None]] = []
    purge: list[str] = []
    remove: list[str] = []
    for name, before in sorted(wanted.items()):
        current = now.get(name)
        if before["version"]:
            if current is None or not current.present or current.version != before["version"]:
                reinstall.append((name, before["version"]))
        elif current is not None and current.status != "config-files":
            (remove if before["status"] == "config-files" else purge).append(name)
    changing = {n for n, _ in reinstall} | set(purge) | set(remove)
    release = sorted(n for n in changing if now.get(n) is not None and now[n].hold)
    await backend.set_holds([], release)
    if reinstall or purge:
        await backend.transact(
            Transaction(tuple(reinstall), tuple(purge), purge=True, reinstall=True)
        )
    if remove:
        await backend.transact(Transaction((), tuple(remove), purge=False))
    after = {p.name: p for p in await backend.installed(sorted(wanted))}
    _check_restored(wanted, after)
    present = {n: p for n, p in after.items() if p.present}
    hold = sorted(n for n, p in present.items() if wanted[n]["hold"] and not p.hold)
    unhold = sorted(n for n, p in present.items() if not wanted[n]["hold"] and p.hold)
    await backend.set_holds(hold, unhold)
    auto = sorted(n for n, p in present.items() if wanted[n]["auto"] and not p.auto)
    manual = sorted(n for n, p in present.items() if not wanted[n]["auto"] and p.auto)
    await backend.set_auto(auto, manual)


def _check_restored(wanted: dict[str, JSON], after: dict[str, Installed]) -> None:
    """ToolError naming every package the restore did not bring back to its version."""
    wrong = []
    for name, before in sorted(wanted.items()):
        now = after.get(name)
        if before["version"] and (
            now is None or not now.present or now.version != before["version"]
        ):
            state = "absent" if now is None else f"{now.status} {now.version}"
            wrong.append(f"{name} is {state}, not {before['version']}")
        elif not before["version"] and now is not None and now.present:
            wrong.append(f"{name} is still installed ({now.version})")
    if wrong:
        raise ToolError(f"the restore left {'; '.join(wrong)}")


def _changes(
    before: dict[str, Installed], after: dict[str, Installed]
) -> tuple[list[JSON], list[str]]:
    """(packages newly installed or at another version, packages no longer installed)."""

    def was(name: str) -> str | None:
        pkg = before.get(name)
        return pkg.version if pkg is not None and pkg.present else None

    installed = [
        {"name": n, "version": p.version}
        for n, p in sorted(after.items())
        if p.present and was(n) != p.version
    ]
    removed = [n for n in sorted(before) if was(n) and not (n in after and after[n].present)]
    return installed, removed


async def _database(backend: Backend) -> dict[str, Installed]:
    return {p.name: p for p in await backend.installed()}


async def ensure(backend: Backend, request: EnsureRequest) -> JSON:
    """Run `request` as one transaction; on failure restore and raise (see module docstring)."""
    if request.update_index:
        await backend.update_index()
    before = await _database(backend)
    try:
        return await _apply(backend, request, before)
    except ToolError as exc:
        now = await _database(backend)
        names = set(before) | set(now)
        image = image_of({n: before.get(n) for n in names})
        try:
            await restore(backend, image)
        except ToolError as again:
            raise ToolError(
                f"pkg.ensure: {exc}; restoring the previous state failed too: {again}"
            ) from None
        raise ToolError(
            f"pkg.ensure: {exc}; the transaction was rolled back "
            "(previous versions, removals and holds restored)"
        ) from None


async def _apply(backend: Backend, request: EnsureRequest, before: dict[str, Installed]) -> JSON:
    changing = {n for n, _ in request.install} | set(request.remove)
    held = {n for n, p in before.items() if p.hold}
    release = sorted(held & (changing | set(request.unhold)))
    await backend.set_holds([], release)
    await backend.transact(request.tx)
    after = await _database(backend)
    present = {n for n, p in after.items() if p.present}
    rehold = set(release) - set(request.unhold) - set(request.remove)
    hold = sorted((set(request.hold) | rehold) & present)
    missing = sorted(set(request.hold) - present)
    if missing:
        raise ToolError(f"cannot hold {', '.join(missing)}: not installed")
    await backend.set_holds([n for n in hold if not after[n].hold], [])
    installed, removed = _changes(before, after)
    return {
        "backend": backend.name,
        "installed": installed,
        "removed": removed,
        "held": sorted(request.hold),
        "unheld": sorted(request.unhold),
    }
