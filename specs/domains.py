"""Domain declarations: the one source of truth for which kinds a domain owns.

Each controller package declares itself once, in a light module
(controllers/<domain>/domain.py, pydantic-free):

    DOMAIN = Domain(
        name="packages",
        kinds={"Packages": "specs.packages:Packages"},
        controller="controllers.packages:CONTROLLER",
        after=frozenset({"storage"}),
        observes_changes_of=frozenset({"storage"}),
    )

and `Domains` (a list of them, in run order) derives every table the rest of
aios needs: the kind -> domain map, the domain order and default dependencies
the engine schedules by (reconciler.engine.order), the kind table the loader,
validation and schema export use (`kinds`, a specs.kinds.KindTable), and the
controllers the composition root loads (reconciler.cli.common, by the
`controller` path; nothing here imports a controller).

The list's order is the run order: a domain may only run `after` domains
declared before it (so the order is a valid schedule and the defaults have no
cycle); independent domains still run concurrently. `observes_changes_of` is
the part of `after` whose changes can alter what this domain observes: when
one of them changed something, the engine observes and plans this domain
again before executing it.

Lives in specs (pydantic-free, importing only specs.kinds) because both
sides use it: the controllers' declarations and the engine, which is given a
`Domains` and never imports controllers. controllers.DEFAULT_DOMAINS is the
built-in list; a test fixture adds its own (tests/fixtures/toydomain).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from specs.kinds import DEFAULT_KINDS, KindTable

_NAME = re.compile(r"[a-z][a-z0-9]*")
_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclass(frozen=True)
class Domain:
    """One domain: its name, its spec kinds, its controller, what it runs after."""

    name: str  # "network"; also the controller's `domain`
    kinds: Mapping[str, str]  # kind -> "module:Class" of its pydantic model
    controller: str  # "module:attr": its Controller instance, or a class made without arguments
    after: frozenset[str] = frozenset()  # default dependencies: domains it runs after
    observes_changes_of: frozenset[str] = frozenset()  # a subset of `after`

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"domain name {self.name!r} must be lowercase letters and digits")
        if not self.kinds:
            raise ValueError(f"domain {self.name} declares no kinds")
        if not _PATH.fullmatch(self.controller):
            message = f"controller {self.controller!r} is not 'module:attr'"
            raise ValueError(f"domain {self.name}: {message}")
        if self.name in self.after:
            raise ValueError(f"domain {self.name} cannot run after itself")
        if not self.observes_changes_of <= self.after:
            extra = ", ".join(sorted(self.observes_changes_of - self.after))
            raise ValueError(
                f"domain {self.name} observes changes of {extra}, which it does not run after"
            )
        KindTable(self.kinds)  # checks the model paths
        object.__setattr__(self, "kinds", MappingProxyType(dict(self.kinds)))


class Domains:
    """Domain declarations in run order, and the tables derived from them.

    Iterating yields the `Domain`s in order; `domains[name]` is one of them;
    `name in domains` asks whether it is declared.
    """

    __slots__ = ("_by_name", "_kind_domain", "_kinds", "_order")

    def __init__(self, domains: Iterable[Domain]) -> None:
        order = tuple(domains)
        by_name: dict[str, Domain] = {}
        kind_domain: dict[str, str] = {}
        for domain in order:
            if domain.name in by_name:
                raise ValueError(f"domain {domain.name} is declared twice")
            later = sorted(domain.after - set(by_name))
            if later:
                raise ValueError(
                    f"domain {domain.name} runs after {', '.join(later)}, which must be "
                    "declared before it"
                )
            for kind in domain.kinds:
                if kind in kind_domain:
                    raise ValueError(
                        f"kind {kind} is declared by domains {kind_domain[kind]} and {domain.name}"
                    )
                kind_domain[kind] = domain.name
            by_name[domain.name] = domain
        self._order = order
        self._by_name = by_name
        self._kind_domain = MappingProxyType(kind_domain)
        # The spec language's own kinds keep its listing order (messages, schema);
        # other kinds follow in declaration order.
        paths = {kind: path for d in order for kind, path in d.kinds.items()}
        listed = [k for k in DEFAULT_KINDS if k in paths]
        listed += [k for k in paths if k not in DEFAULT_KINDS]
        self._kinds = KindTable({k: paths[k] for k in listed})

    def __iter__(self) -> Iterator[Domain]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Domain:
        return self._by_name[name]

    def __repr__(self) -> str:
        return f"Domains({', '.join(self.names)})"

    @property
    def names(self) -> tuple[str, ...]:
        """Domain names in run order."""
        return tuple(d.name for d in self._order)

    @property
    def kinds(self) -> KindTable:
        """Kind -> model path for the loader, validation and schema export."""
        return self._kinds

    @property
    def kind_domain(self) -> Mapping[str, str]:
        """Kind -> the domain that reconciles it."""
        return self._kind_domain

    @property
    def dependencies(self) -> Mapping[str, frozenset[str]]:
        """Domain -> the domains it runs after by default."""
        return MappingProxyType({d.name: d.after for d in self._order})

    def domain_of(self, resource_key: str) -> str:
        """The domain of a resource key `Kind/name`; KeyError for an undeclared kind."""
        return self._kind_domain[resource_key.split("/", 1)[0]]


__all__ = ["Domain", "Domains"]
