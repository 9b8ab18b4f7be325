"""The envelope every spec document shares: apiVersion, kind, metadata, spec.

`SpecModel` is the frozen, strict base of every model in the spec language
(unknown fields are errors; YAML keys are camelCase, Python attributes
snake_case). `Resource` is the base of the five kinds; each kind module
subclasses it with its own `kind` literal and `spec` model and implements
`claims()`, the objects the resource takes ownership of, so the loader can
report two resources claiming the same interface, table, package, mount,
model name or path. Used by the kind modules and the loader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from specs.kinds import DEFAULT_KINDS
from specs.types import Dns1123, FieldError, LabelKey, Mode

API_VERSION = "aios.dev/v1"
KINDS = DEFAULT_KINDS.names  # the spec language's kinds, in listing order (specs.kinds)

# A path inside a document, in YAML key names: ("spec", "links", 0, "name").
Loc = tuple[str | int, ...]


class SpecModel(BaseModel):
    """Frozen, strict base: unknown keys are errors, keys are camelCase in YAML."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
        str_strip_whitespace=False,
        hide_input_in_errors=True,
        defer_build=True,
    )


class Claim(BaseModel):
    """An object a resource takes ownership of, and where the spec names it."""

    model_config = ConfigDict(frozen=True)

    key: str  # e.g. "interface:br0", "nft-table:inet/filter", "package:curl"
    loc: Loc  # path to the field naming it, from the document root


# dependsOn names the spec language's own kinds (a kind a fixture domain adds is not
# referable: the pattern is part of the published JSON Schema).
_DEPENDS_ON = rf"^({'|'.join(KINDS)})/[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _depends_on_ref(value: str) -> str:
    if len(value) > 80 or not re.match(_DEPENDS_ON, value):
        raise ValueError(
            f"{value!r} must be Kind/name, e.g. Network/lan, with a kind of "
            f"{', '.join(KINDS)} and a DNS-1123 name"
        )
    return value


DependsOnRef = Annotated[
    str,
    AfterValidator(_depends_on_ref),
    Field(json_schema_extra={"pattern": _DEPENDS_ON, "maxLength": 80}),
]


class Metadata(SpecModel):
    """Name and bookkeeping of a resource."""

    name: Dns1123
    labels: dict[LabelKey, Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=dict
    )
    annotations: dict[LabelKey, Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=dict
    )
    depends_on: tuple[DependsOnRef, ...] = Field(
        default=(),
        description="Resources that must be Ready before this one reconciles, as Kind/name.",
    )

    @model_validator(mode="after")
    def _unique_depends_on(self) -> Metadata:
        for i, ref in enumerate(self.depends_on):
            if ref in self.depends_on[:i]:
                raise FieldError(("dependsOn", i), f"dependsOn lists {ref} twice")
        return self


class ResourceSpec(SpecModel):
    """Fields every kind's `spec` has."""

    mode: Mode = Field(
        default="enforce",
        description="enforce: run verified plans; propose: plan and verify, show the plan, "
        "run nothing (status AwaitingApproval; approve by switching to enforce; an "
        "`aios approve` command comes with the daemon); "
        "audit: only report drift.",
    )
    prune: bool = Field(
        default=False,
        description="Also remove objects of this resource's kind that no spec declares, "
        "not only those aios created.",
    )


class Resource(SpecModel):
    """A spec document. Subclasses fix `kind` and the type of `spec`."""

    KIND: ClassVar[str]

    api_version: Literal["aios.dev/v1"]
    kind: str
    metadata: Metadata
    spec: ResourceSpec

    @property
    def key(self) -> str:
        """Kind/name: the resource's identity in a SpecSet, status and the queue."""
        return f"{self.kind}/{self.metadata.name}"

    def claims(self) -> Iterator[Claim]:
        """Objects this resource owns; two resources may not claim the same key."""
        return iter(())
