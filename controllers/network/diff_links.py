"""Diff of declared links and their exact address lists (part of controllers.network.diff).

A declared link that exists with another kind, other immutable kind options
(veth peer, macvlan parent/mode, vxlan, vlan, bond, tun options) or — for
an ifb, which cannot change it — another MAC, must be created again: a
`recreate` change, and the rest of the diff runs against the state without
it (what vanishes with it — veth peer, children, routes — too), so its
creation, addresses and routes are planned like new ones. `kind: ethernet`
means an existing device of any kind: never created, deleted or recreated.
Fields the spec leaves out are not compared; `master` is compared when the
spec writes it (`master: null` detaches). Pure.
"""

from __future__ import annotations

from typing import Any

from controllers.network.desired import (
    MUTABLE_OPTIONS,
    Wanted,
    WantLink,
    addresses_view,
    options_view,
)
from controllers.network.effects import vanishing, without_links
from controllers.network.state import LinkState, NetState, address_key, link_key
from reconciler.sdk.diffing import Collector
from specs.network import Link


def recreations(want: Wanted, state: NetState) -> dict[str, tuple[Any, Any, str]]:
    """Declared links that exist but must be created again: name -> (old, new, why)."""
    out: dict[str, tuple[Any, Any, str]] = {}
    for name, item in want.links.items():
        link, actual = item.link, state.link(name)
        if actual is None or link.kind == "ethernet" or link.state == "absent":
            continue
        why = recreate_reason(link, actual)
        if why:
            old = {"kind": actual.kind, **actual.options}
            new = {"kind": link.kind, **options_view(link)}
            if link.kind == "ifb":
                old["mac"], new["mac"] = actual.mac, link.mac
            out[name] = (old, new, why)
    return out


def recreate_reason(link: Link, actual: LinkState) -> str:
    if actual.kind != link.kind:
        return f"{link.name} is of kind {actual.kind}, declared {link.kind}"
    mutable = MUTABLE_OPTIONS.get(link.kind, ())
    for key, value in options_view(link).items():
        if key in mutable or key not in actual.options:
            continue
        if actual.options[key] != value:
            return f"{link.kind} option {key} cannot change in place"
    if link.kind == "ifb" and link.mac is not None and actual.mac != link.mac:
        return "an ifb link cannot change its MAC address"
    return ""


def view_without(state: NetState, names: list[str]) -> NetState:
    """The state as the rest of the diff sees it: links to recreate already gone."""
    return without_links(state, names)[0] if names else state


def link_changes(want: Wanted, view: NetState, out: Collector) -> None:
    """Changes and no-ops of every declared link, in declaration order."""
    for name, item in want.links.items():
        _one_link(item, view.link(name), view, out)


def _one_link(item: WantLink, actual: LinkState | None, view: NetState, out: Collector) -> None:
    link, res = item.link, item.resource
    obj = link_key(link.name)
    if link.state == "absent":
        if actual is None:
            out.noop(res, obj, f"link {link.name} is absent as declared")
        else:
            out.change(res, obj, "remove", old=summary(actual), detail=takes_along(view, link.name))
        return
    if actual is None:
        out.change(res, obj, "add", new=declared_summary(link))
        for a in addresses_view(link) or ():
            out.change(res, address_key(link.name, a), "add", new=a)
        return
    before = len(out.changes)
    _field_changes(item, actual, out)
    _address_changes(item, actual, out)
    if len(out.changes) == before:
        out.noop(res, obj, noop_reason(link, actual))


def _field_changes(item: WantLink, actual: LinkState, out: Collector) -> None:
    link, res = item.link, item.resource
    obj = link_key(link.name)
    pairs: list[tuple[str, Any, Any]] = [("state", actual.state, link.state)]
    if link.mtu is not None:
        pairs.append(("mtu", actual.mtu, link.mtu))
    if link.mac is not None:
        pairs.append(("mac", actual.mac, link.mac))
    if "master" in link.model_fields_set:
        pairs.append(("master", actual.master, link.master))
    options = options_view(link)
    for key in MUTABLE_OPTIONS.get(link.kind, ()):
        if key in options:
            pairs.append((f"{link.kind}.{key}", actual.options.get(key), options[key]))
    for f, old, new in pairs:
        if old != new:
            out.change(res, obj, "change", f, old=old, new=new)


def _address_changes(item: WantLink, actual: LinkState, out: Collector) -> None:
    declared = addresses_view(item.link)
    if declared is None:
        return
    name, res = item.link.name, item.resource
    for a in declared:
        if a not in actual.addresses:
            out.change(res, address_key(name, a), "add", new=a)
    for a in actual.addresses:
        if a not in declared:
            out.change(res, address_key(name, a), "remove", old=a)


def summary(link: LinkState) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": link.kind, "state": link.state}
    if link.master:
        out["master"] = link.master
    return out


def declared_summary(link: Link) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": link.kind, "state": link.state}
    for name in ("mtu", "mac", "master"):
        value = getattr(link, name)
        if value is not None:
            out[name] = value
    out.update(options_view(link))
    return out


def noop_reason(link: Link, actual: LinkState) -> str:
    parts = [f"link {link.name} ({actual.kind}) is {actual.state}"]
    if link.mtu is not None:
        parts.append(f"mtu {actual.mtu}")
    if link.mac is not None:
        parts.append(f"mac {actual.mac}")
    if "master" in link.model_fields_set:
        parts.append(f"port of {actual.master}" if actual.master else "no master")
    if link.addresses is not None:
        count = len(actual.addresses)
        parts.append(f"{count} address{'es' if count != 1 else ''}")
    return ", ".join(parts) + " as declared"


def takes_along(state: NetState, name: str) -> str:
    """What else deleting `name` deletes (veth peer, children), as a note."""
    extra = [x for x in vanishing(state.link_dicts, [name], state.children) if x != name]
    return f"takes {', '.join(extra)} along" if extra else ""


def recreate_changes(
    want: Wanted, recreate: dict[str, tuple[Any, Any, str]], state: NetState, out: Collector
) -> None:
    for name, (old, new, why) in recreate.items():
        extra = takes_along(state, name)
        detail = why + (f"; {extra}" if extra else "")
        res = want.links[name].resource
        out.change(res, link_key(name), "change", "recreate", old=old, new=new, detail=detail)
