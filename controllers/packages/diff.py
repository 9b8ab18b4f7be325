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
from controllers.packages.removals import ToRemove, undeclared
from controllers.packages.state import PackagesState, Pkg, removal_closure
from controllers.packages.versions import Constraint, compare, parse_constraint, resolve, satisfies
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.diffing import Collector
from reconciler.sdk.errors import PermanentError

REPO_FIELDS = ("url", "suite", "components", "trusted", "signed_by")


def diff(desired: Desired, state: PackagesState) -> Diff:
    wanted = Wanted.of(desired)
    wanted.check_backend(state.backend)
    out = Collector()  # sorted: by resource, object, field (no-ops: one per item)
    removals: list[ToRemove] = []
    for repo in wanted.repos:
        repo_changes(repo, state, out)
    for item in wanted.packages:
        if item.absent:
            if state.package(item.name) is None:
                out.noop(item.resource, item.key, _gone(item))
            else:
                removals.append(ToRemove(item.resource, item.key, item.force))
            continue
        package_changes(item, state, out)
    removals.extend(undeclared(desired, wanted, state))
    check_cascade(removals, wanted, state)
    removal_changes(removals, state, out)
    return out.result()


def _gone(item: WantedPackage) -> str:
    return f"{item.name} is not installed, as declared (state: absent)"


def package_changes(item: WantedPackage, state: PackagesState, out: Collector) -> None:
    """Changes for a declared-present package, or the reason it needs none."""
    res, obj = item.resource, item.key
    current = state.package(item.name)
    constraint = _constraint(item)
    if current is None:
        version = target_version(item, constraint, state)
        new: dict[str, object] = {"version": version}
        if item.hold:
            new["hold"] = True
        detail = _add_detail(constraint, version) + (", held" if item.hold else "")
        out.change(res, obj, "add", new=new, detail=detail)
        return
    changed = False
    if constraint is not None and not satisfies(state.backend, current.version, constraint):
        target = target_version(item, constraint, state)
        way = "downgrade" if compare(state.backend, target, current.version) < 0 else "upgrade"
        detail = f"{way}: {current.version} does not satisfy {constraint.text}"
        out.change(res, obj, "change", "version", old=current.version, new=target, detail=detail)
        changed = True
    if item.hold is not None and current.hold != item.hold:
        out.change(res, obj, "change", "hold", old=current.hold, new=item.hold)
        changed = True
    if not changed:
        out.noop(res, obj, _installed(item, current))


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


def repo_changes(item: WantedRepo, state: PackagesState, out: Collector) -> None:
    """Changes for a declared repository, or the reason it needs none."""
    res, obj = item.resource, item.key
    current = state.repository(item.name)
    if item.absent:
        if current is None:
            reason = f"repository {item.name} is not configured, as declared (state: absent)"
            out.noop(res, obj, reason)
        else:
            out.change(res, obj, "remove", old=current.describe())
        return
    want = item.reported(state.backend)
    if current is None:
        fields = want.model_dump(mode="json", exclude={"name"})
        out.change(res, obj, "add", new=fields, detail=want.describe())
        return
    found = [f for f in REPO_FIELDS if getattr(current, f) != getattr(want, f)]
    for f in found:
        out.change(
            res, obj, "change", f, old=_json(getattr(current, f)), new=_json(getattr(want, f))
        )
    if not found:
        out.noop(
            res, obj, f"repository {item.name} is configured as declared: {current.describe()}"
        )


def _json(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def removal_changes(removals: list[ToRemove], state: PackagesState, out: Collector) -> None:
    """`remove` changes; a package others still depend on is destructive."""
    removed = frozenset(
        r.object.split(":", 1)[1] for r in removals if r.object.startswith("package:")
    )
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
        out.change(
            removal.resource,
            removal.object,
            "remove",
            old=old,
            destructive=destructive,
            forced=removal.forced,
            detail=detail,
        )


def check_cascade(removals: list[ToRemove], wanted: Wanted, state: PackagesState) -> None:
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
