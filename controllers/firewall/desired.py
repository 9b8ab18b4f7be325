"""From Firewall specs to structured tables: what firewall.apply would load.

`declared(desired)` lists every table the Firewall resources declare (ref ->
resource key and spec Table). `structured(table)` is the firewall.apply
input form of one table: family, name, sets, and chains whose rules are the
chain's explicit rules followed by its compiled `services`.

Service compilation (documented in the README's Firewall section too): each
service becomes one rule, or one per address family when `from` lists both
IPv4 and IPv6 sources, appended after the chain's explicit rules in the
order written:

    [iifname "IIF"] [ip saddr SRC | ip6 saddr SRC] PROTO dport PORTS ACTION [comment "NAME"]

SRC is the one network, or `{ a, b }` for several; PORTS is the one port
or range, or `{ 22, 8000-8080 }` for several; PROTO is tcp (default) or
udp; ACTION is accept (default), drop or reject; the comment is the
service's name when it has one. In an `ip` table only the IPv4 sources
compile (and only the IPv6 ones in an `ip6` table): a table of one family
never sees the other's packets, and nft refuses the mix. A service whose
sources are all of the other family compiles to nothing there.
Pure; used by observe (digests, canonicalize), plan and forced().
"""

from __future__ import annotations

from typing import Any

from controllers.firewall.state import Ref, table_digest
from reconciler.sdk.controller import Desired
from specs.firewall import Chain, Firewall, Service, Table


def declared(desired: Desired) -> dict[Ref, tuple[str, Table]]:
    """Every declared table (present or absent) -> (resource key, spec table)."""
    out: dict[Ref, tuple[str, Table]] = {}
    for resource in sorted(desired.resources, key=lambda r: r.key):
        if not isinstance(resource, Firewall):
            continue
        for table in resource.spec.tables:
            out.setdefault((table.family, table.name), (resource.key, table))
    return out


def pruning(desired: Desired) -> str | None:
    """Key of the first Firewall resource with prune: true, if any."""
    keys = sorted(r.key for r in desired.resources if r.spec.prune)
    return keys[0] if keys else None


_MEMO: dict[int, tuple[Table, dict[str, Any], str]] = {}
_MEMO_SIZE = 64


def compiled(table: Table) -> tuple[dict[str, Any], str]:
    """structured(table) and its digest, remembered per spec object (observe, diff and
    plan of one reconcile ask for the same tables several times)."""
    hit = _MEMO.get(id(table))
    if hit is not None and hit[0] is table:
        return hit[1], hit[2]
    form = structured(table)
    digest = table_digest(form)
    if len(_MEMO) >= _MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[id(table)] = (table, form, digest)
    return form, digest


def structured(table: Table) -> dict[str, Any]:
    """The table in firewall.apply's input form (services compiled into rules)."""
    out: dict[str, Any] = {"family": table.family, "name": table.name}
    if table.sets:
        out["sets"] = [_set(s.model_dump(exclude_defaults=True)) for s in table.sets]
    out["chains"] = [_chain(c, table.family) for c in table.chains]
    return out


def _set(values: dict[str, Any]) -> dict[str, Any]:
    for key in ("flags", "elements"):
        if key in values:
            values[key] = list(values[key])
    return values


def _chain(chain: Chain, family: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": chain.name}
    for key in ("type", "hook", "device", "priority", "policy"):
        value = getattr(chain, key)
        if value is not None:
            out[key] = value
    rules = list(chain.rules)
    for service in chain.services:
        rules.extend(compile_service(service, family))
    out["rules"] = rules
    return out


def compile_service(service: Service, family: str) -> list[str]:
    """The rule strings of one service (see the module docstring)."""
    ports = service.port_list
    port_expr = ports[0] if len(ports) == 1 else "{ " + ", ".join(ports) + " }"
    tail = f"{service.protocol} dport {port_expr} {service.action}"
    if service.name:
        tail += f' comment "{service.name}"'
    head = f'iifname "{service.iif}" ' if service.iif else ""
    if not service.from_:
        return [head + tail]
    v4 = [s for s in service.from_ if ":" not in s]
    v6 = [s for s in service.from_ if ":" in s]
    rules = []
    if v4 and family != "ip6":
        rules.append(f"{head}ip saddr {_group(v4)} {tail}")
    if v6 and family != "ip":
        rules.append(f"{head}ip6 saddr {_group(v6)} {tail}")
    return rules


def _group(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"
