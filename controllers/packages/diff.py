"""Diff the packages domain: declared packages and repositories against the observed state.

Pure. Per declared package (`package:<name>`):
- present, not installed: `add` (new: the version to install — the newest
  available one satisfying the constraint, or simply the newest — and hold);
- present, installed: `change version` when the installed version does not
  satisfy the constraint (to the newest available one that does: an exact
  version may be a downgrade), `change hold` when `hold` is set and differs;
  nothing else is compared (no version: any version will do);
- absent and installed: `remove`, destructive when installed packages that
  are not removed in the same transaction depend on it (`forced` from the
  item's `force: true`);
- no version satisfies a constraint, or nothing offers an unversioned
  package: PermanentError naming the package, the constraint and the
  available versions; so is a removal that would take a declared-present
  package along (apt removes what depends on a removed package).
Per declared repository (`repository:<name>`): `add`, `change <field>`
(the managed file is owned whole: url, suite, components, trusted,
signed_by, with the spec's defaults) or `remove` (state: absent).
Removals of undeclared objects (inventory, pruned resources, prune: true)
come from controllers.packages.removals. Every declared item that needs
nothing gets a NoOp with the reason. Changes are sorted by resource, object
and field. Used by the controller (and so by the verifier on predicted
states).
"""

from __future__ import annotations

from controllers.packages.desired import Wanted, WantedPackage, WantedRepo
from controllers.packages.removals import Removal, undeclared
from controllers.packages.state import PackagesState, Pkg, removal_closure
from controllers.packages.versions import Constraint, compare, parse_constraint, resolve, satisfies
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.errors import PermanentError
from reconciler.sdk.plan import Change, NoOp

REPO_FIELDS = ("url", "suite", "components", "trusted", "signed_by")


def diff(desired: Desired, state: PackagesState) -> Diff:
    wanted = Wanted.of(desired)
    wanted.check_backend(state.backend)
    changes: list[Change] = []
    noops: list[NoOp] = []
    removals: list[Removal] = []
    for repo in wanted.repos:
        found, noop = repo_changes(repo, state)
        changes.extend(found)
        noops.extend([noop] if noop else [])
    for item in wanted.packages:
        if item.absent:
            if state.package(item.name) is None:
                noops.append(NoOp(resource=item.resource, object=item.key, reason=_gone(item)))
            else:
                removals.append(Removal(item.resource, item.key, item.force))
            continue
        found, noop = package_changes(item, state)
        changes.extend(found)
        noops.extend([noop] if noop else [])
    removals.extend(undeclared(desired, wanted, state))
    check_cascade(removals, wanted, state)
    changes.extend(removal_changes(removals, state))
    changes.sort(key=lambda c: (c.resource, c.object, c.field))
    noops.sort(key=lambda n: (n.resource, n.object))
    return Diff(tuple(changes), tuple(noops))


def _gone(item: WantedPackage) -> str:
    return f"{item.name} is not installed, as declared (state: absent)"


def package_changes(item: WantedPackage, state: PackagesState) -> tuple[list[Change], NoOp | None]:
    """Changes for a declared-present package, or the reason it needs none."""
    current = state.package(item.name)
    constraint = _constraint(item)
    if current is None:
        version = target_version(item, constraint, state)
        new: dict[str, object] = {"version": version}
        if item.hold:
            new["hold"] = True
        detail = _add_detail(constraint, version) + (", held" if item.hold else "")
        return [_change(item, "add", new=new, detail=detail)], None
    changes: list[Change] = []
    if constraint is not None and not satisfies(state.backend, current.version, constraint):
        target = target_version(item, constraint, state)
        way = "downgrade" if compare(state.backend, target, current.version) < 0 else "upgrade"
        detail = f"{way}: {current.version} does not satisfy {constraint.text}"
        changes.append(
            _change(item, "change", "version", old=current.version, new=target, detail=detail)
        )
    if item.hold is not None and current.hold != item.hold:
        changes.append(_change(item, "change", "hold", old=current.hold, new=item.hold))
    if changes:
        return changes, None
    return [], NoOp(resource=item.resource, object=item.key, reason=_installed(item, current))


def _change(item: WantedPackage, op: str, field: str = "", **values: object) -> Change:
    return Change(
        id=Change.make_id(item.resource, item.key, field),
        resource=item.resource,
        object=item.key,
        op=op,
        field=field,
        **values,
    )


def _constraint(item: WantedPackage) -> Constraint | None:
    if item.version is None:
        return None
    try:
        return parse_constraint(item.version)
    except ValueError as exc:
        raise PermanentError(f"{item.resource}: package {item.name}: {exc}") from None


def target_version(item: WantedPackage, constraint: Constraint | None, state: PackagesState) -> str:
    """The version a plan installs: the newest available one satisfying the constraint."""
    offered = state.available.get(item.name, ())
    if constraint is None:
        if not offered:
            raise PermanentError(
                f"{item.resource}: package {item.name} is not offered by any configured or "
                "declared repository"
            )
        return offered[0]
    found = resolve(state.backend, constraint, offered)
    if found is None:
        raise PermanentError(
            f"{item.resource}: no available version of package {item.name} satisfies "
            f"{constraint.text!r} (available: {', '.join(offered) or 'none'})"
        )
    return found


def _add_detail(constraint: Constraint | None, version: str) -> str:
    if constraint is None:
        return f"{version}, the newest available"
    if constraint.exact:
        return f"{version} as declared"
    return f"{version}, the newest available satisfying {constraint.text}"


def _installed(item: WantedPackage, current: Pkg) -> str:
    if item.version is None:
        text = f"{item.name} is installed ({current.version}); any version will do"
    elif parse_constraint(item.version).exact:
        text = f"{item.name} {current.version} is installed as declared"
    else:
        text = f"{item.name} {current.version} satisfies {item.version}"
    if item.hold is True:
        text += ", held as declared"
    elif item.hold is False:
        text += ", not held as declared"
    return text


def repo_changes(item: WantedRepo, state: PackagesState) -> tuple[list[Change], NoOp | None]:
    """Changes for a declared repository, or the reason it needs none."""
    current = state.repository(item.name)

    def change(op: str, field: str = "", **values: object) -> Change:
        return Change(
            id=Change.make_id(item.resource, item.key, field),
            resource=item.resource,
            object=item.key,
            op=op,
            field=field,
            **values,
        )

    if item.absent:
        if current is None:
            reason = f"repository {item.name} is not configured, as declared (state: absent)"
            return [], NoOp(resource=item.resource, object=item.key, reason=reason)
        return [change("remove", old=current.describe())], None
    want = item.reported(state.backend)
    if current is None:
        fields = want.model_dump(mode="json", exclude={"name"})
        return [change("add", new=fields, detail=want.describe())], None
    found = [
        change("change", field, old=_json(getattr(current, field)), new=_json(getattr(want, field)))
        for field in REPO_FIELDS
        if getattr(current, field) != getattr(want, field)
    ]
    if found:
        return found, None
    reason = f"repository {item.name} is configured as declared: {current.describe()}"
    return [], NoOp(resource=item.resource, object=item.key, reason=reason)


def _json(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def removal_changes(removals: list[Removal], state: PackagesState) -> list[Change]:
    """`remove` changes; a package others still depend on is destructive."""
    removed = frozenset(
        r.object.split(":", 1)[1] for r in removals if r.object.startswith("package:")
    )
    out = []
    for removal in removals:
        kind, name = removal.object.split(":", 1)
        if kind == "repository":
            repo = state.repository(name)
            old = repo.describe() if repo else None
            destructive, detail = False, removal.why
        else:
            pkg = state.package(name)
            old = pkg.version if pkg else None
            dependents = state.dependents(name, removed)
            destructive = bool(dependents)
            detail = removal.why
            if dependents:
                detail = (
                    f"{', '.join(dependents)} depend{'s' if len(dependents) == 1 else ''} on it "
                    "(apt would remove them too)" + (f"; {removal.why}" if removal.why else "")
                )
        out.append(
            Change(
                id=Change.make_id(removal.resource, removal.object),
                resource=removal.resource,
                object=removal.object,
                op="remove",
                old=old,
                destructive=destructive,
                forced=removal.forced,
                detail=detail,
            )
        )
    return out


def check_cascade(removals: list[Removal], wanted: Wanted, state: PackagesState) -> None:
    """Refuse removals that would take a declared-present package with them."""
    names = {r.object.split(":", 1)[1] for r in removals if r.object.startswith("package:")}
    if not names:
        return
    swept = removal_closure(state.packages, names) - names
    for item in wanted.packages:
        if item.name in swept and not item.absent:
            culprits = sorted(n for n in names if n in _needs(state, item.name))
            raise PermanentError(
                f"{item.resource}: removing {', '.join(culprits)} would also remove "
                f"{item.name}, which depends on it (apt removes what depends on a removed "
                f"package), but {item.name} is declared present"
            )


def _needs(state: PackagesState, name: str) -> set[str]:
    """Everything `name` depends on among the installed packages, transitively."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        pkg = state.package(todo.pop())
        for dep in pkg.depends if pkg else ():
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen
