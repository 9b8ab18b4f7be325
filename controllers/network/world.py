"""A mutable working copy of a NetState for the effect model (plain dicts, then frozen again).

`World.of(state)` thaws, the effect functions (controllers.network.effects,
effects_ip) change it in place, `freeze()` sorts everything back into a
NetState. Must not import specs (used by the effect model).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from controllers.network.state import (
    DnsState,
    LinkState,
    NetState,
    RouteState,
    RuleState,
    interface_of_sysctl,
    route_order,
    rule_order,
)


@dataclass
class World:
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    sysctls: dict[str, str | None] = field(default_factory=dict)
    dns: dict[str, Any] | None = None

    @classmethod
    def of(cls, state: NetState) -> World:
        return cls(
            links={x.name: x.model_dump(mode="json") for x in state.links},
            routes=[r.model_dump(mode="json") for r in state.routes],
            rules=[r.model_dump(mode="json") for r in state.rules],
            sysctls=dict(state.sysctls),
            dns=state.dns.model_dump(mode="json") if state.dns is not None else None,
        )

    def need_link(self, name: str) -> dict[str, Any]:
        link = self.links.get(name)
        if link is None:
            raise ValueError(f"link {name} does not exist")
        return link

    def blank_sysctls(self, names: Iterable[str]) -> None:
        """Per-interface keys of deleted links read as missing."""
        gone = set(names)
        for key in self.sysctls:
            if interface_of_sysctl(key) in gone:
                self.sysctls[key] = None

    def freeze(self) -> NetState:
        links = []
        for raw in sorted(self.links.values(), key=lambda x: str(x["name"])):
            links.append(
                LinkState.model_validate(
                    {
                        **raw,
                        "addresses": tuple(sorted(raw["addresses"])),
                        "secondaries": tuple(sorted(raw["secondaries"])),
                    }
                )
            )
        routes = sorted((RouteState.model_validate(r) for r in self.routes), key=route_order)
        rules = sorted((RuleState.model_validate(r) for r in self.rules), key=rule_order)
        return NetState(
            links=tuple(links),
            routes=tuple(routes),
            rules=tuple(rules),
            sysctls=dict(sorted(self.sysctls.items())),
            dns=DnsState.model_validate(self.dns) if self.dns is not None else None,
        )
