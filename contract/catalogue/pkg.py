"""Definitions (ToolSpecs) of the `pkg.*` tools: JSON Schemas, risk, flags, capabilities.

Declarative tools (`pkg.state`, `pkg.ensure`, `pkg.repos`) beside aiOS's own
five (`pkg.install`, `pkg.remove`, `pkg.search`, `pkg.update`,
`pkg.list_installed`, docs/aios-contract.md §3.3), which keep aiOS's input and
output shapes and error strings. All of them act on the registry's root
(`--root`): on a scratch root apt runs through a generated APT_CONFIG and dpkg
with `--root`/`--admindir`, maintainer scripts run confined to the root
(registry.drivers.pkg.jail), and a `file:` repository names a path under the root
(`file:/srv/repo` is <root>/srv/repo; registry.drivers.pkg.apt); the backend (apt/dpkg or
apk) is chosen by what the target has. Every value that reaches a sources
line or a command line has a whole-string allow-list pattern (see
PKG_NAME_RE ... below). Every ToolSpec is made by
contract.tooldef.define. Read by registry.handlers.pkg (handlers) and
contract.catalogue (ALL).
"""

from __future__ import annotations

from contract.catalogue.parts import (
    BOOL,
    NON_NEGATIVE,
    STR,
    TRUE,
    anchored,
    array,
    nullable,
    schema,
)
from contract.tooldef import JSON, ToolSpec, define, obj_schema

# Values that reach apt/dpkg/apk command lines and sources lines. Every pattern is
# whole-string (`anchored`: jsonschema's re.search lets '$' match before a final
# newline), so no value can carry a line break, start a comment ('#'), open or close a
# bracket group ('[', ']'), quote, or read as an option (a leading '-'). The bodies are
# specs.packages' (REPO_URL_RE ...): tests keep the two layers equal.
PKG_NAME_RE = r"[a-z0-9][a-z0-9+.\-]{0,127}"
PKG_VERSION_RE = r"[A-Za-z0-9][A-Za-z0-9.+~:_\-]{0,127}"
_PATH_PART = r"(?!\.\.?(?:/|$))[A-Za-z0-9._~+,=@:\-]+"
REPO_URL_RE = (
    r"https?://(?:\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?|[A-Za-z0-9\-._~%!$&'()*+,;=:@]+)"
    r"(?:/[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*)?"
    rf"|file:(?://)?(?:/{_PATH_PART})+/?"
)
SUITE_RE = r"(?!/)(?!(?:.*/)?\.\.(?:/|$))[A-Za-z0-9._/\-]+"
COMPONENT_RE = r"(?!\.\.$)[A-Za-z0-9._\-]+"
SIGNED_BY_RE = r"/(?!.*(?:^|/)\.\.?(?:/|$))[A-Za-z0-9._/\-]+"

PKG_NAME: JSON = {"type": "string", "pattern": anchored(PKG_NAME_RE)}
PKG_NAMES: JSON = {"type": "array", "items": PKG_NAME, "maxItems": 2000, "uniqueItems": True}
PKG_VERSION: JSON = {
    "type": "string",
    "pattern": anchored(PKG_VERSION_RE),
    "description": "An exact version as the backend spells it (e.g. '1.2-1', '2:1.0~rc1').",
}
REPO_URL: JSON = {
    "type": "string",
    "pattern": anchored(REPO_URL_RE),
    "maxLength": 4096,
    "description": "http(s)://HOST[/PATH] or file:/PATH (under the registry's root: "
    "file:/srv/repo is <root>/srv/repo); one word without '#', quotes, brackets outside an "
    "IPv6 host, '\\' or '?', no '.' or '..' in a file: path.",
}

READ = ("pkg_read",)
WRITE = ("pkg_manage",)
BACKEND = {"enum": ["apt", "apk"], "description": "Package backend the target has."}

NAME_VERSION = obj_schema({"name": PKG_NAME, "version": PKG_VERSION}, ("name", "version"))

_STATE_PACKAGE = obj_schema(
    {
        "name": PKG_NAME,
        "version": STR,
        "status": {
            "type": "string",
            "description": "dpkg's status word (installed, config-files, half-configured, "
            "unpacked, half-installed, triggers-awaited, triggers-pending, not-installed); "
            "apk reports installed. Anything but 'installed' counts as not installed.",
        },
        "hold": BOOL,
        "auto": {"type": "boolean", "description": "Installed automatically as a dependency."},
        "depends": array(PKG_NAME, description="Names this package depends on (no versions)."),
    },
    ("name", "version", "status", "hold", "auto", "depends"),
)

REPOSITORY = obj_schema(
    {
        "name": {
            "type": "string",
            "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            "maxLength": 63,
            "description": "apt: file /etc/apt/sources.list.d/aios-<name>.list; "
            "apk: a tagged line in the managed block of /etc/apk/repositories.",
        },
        "url": REPO_URL,
        "suite": {
            "type": "string",
            "pattern": anchored(SUITE_RE),
            "maxLength": 256,
            "default": "./",
            "description": "Suite, or a path ending in '/' for a flat repository (below the "
            "URL: no leading '/', no '..').",
        },
        "components": array(
            {"type": "string", "pattern": anchored(COMPONENT_RE), "maxLength": 128}, maxItems=32
        ),
        "trusted": {"type": "boolean", "default": False, "description": "[trusted=yes]"},
        "signed_by": nullable(
            {"type": "string", "pattern": anchored(SIGNED_BY_RE), "maxLength": 4096}
        ),
        "state": {"enum": ["present", "absent"], "default": "present"},
    },
    ("name", "url"),
)

PKG_STATE = define(
    name="pkg.state",
    description=(
        "Packages known to the target's package database, with status, hold, auto and "
        "dependencies; the versions the repositories offer for the requested names (newest "
        "first, so a planner can resolve constraints like '>=1.0'); and the repositories this "
        "registry manages. Without `names` (or with `all_packages`), every package in the "
        "database; entries that are not fully installed (e.g. dpkg 'rc' = config-files) are "
        "reported with their status, never dropped. Requested names the database does not know "
        "are simply absent from `packages`. With `repositories` (the repository list a "
        "pkg.repos call would receive) that differs from what is configured, `available` comes "
        "from a temporary index built from the configuration as it would be after that call "
        "(apt: `apt-get update` into a temporary lists directory; apk: `apk update` with a "
        "temporary repositories file and cache): the target is not changed, and a planner can "
        "resolve versions before the repository is added. `repositories` in the output are "
        "still the ones configured now."
    ),
    input_schema=schema(
        {
            "names": PKG_NAMES,
            "all_packages": {
                "type": "boolean",
                "default": False,
                "description": "List every package of the database even when `names` is given "
                "(`available` stays limited to `names`), e.g. to find reverse dependencies.",
            },
            "repositories": array(REPOSITORY, maxItems=256),
        }
    ),
    output_schema=schema(
        {
            "backend": BACKEND,
            "packages": array(_STATE_PACKAGE),
            "available": {
                "type": "object",
                "additionalProperties": array(STR),
                "description": "name -> versions in the repositories, newest first "
                "(only for requested names).",
            },
            "repositories": array(REPOSITORY),
        },
        ("backend", "packages", "available", "repositories"),
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=60_000,
    capabilities=READ,
)

PKG_ENSURE = define(
    name="pkg.ensure",
    description=(
        "One package transaction: install (a version pins exactly, downgrades allowed), "
        "remove (purge with `purge`), hold and unhold. apt: unhold, then ONE `apt-get install` "
        "command line with `name=version` and `name-`, then hold (via dpkg selections under "
        "the root). A package named in `install` or `remove` may change even when held (it is "
        "released for the transaction and held again unless in `unhold`); any other held "
        "package stays put (apt refuses to change it). All-or-nothing: when the transaction "
        "fails (e.g. a postinst exits 1) `run` itself restores the before-image (previous "
        "versions reinstalled, newly installed packages purged, holds restored) and the error "
        "says what failed (package and dpkg's message) and whether the restore worked; the "
        "pipeline's snapshot stays available for Rollback(execution_id), which does the same "
        "restore. Restoring a previous version needs it to be still offered by a configured "
        "repository (or apt's archive cache). The package index refresh (`update_index`) is "
        "not undone. `installed` lists every package whose version changed or that was newly "
        "installed (dependencies included), with its new version."
    ),
    input_schema=schema(
        {
            "install": array(
                obj_schema({"name": PKG_NAME, "version": PKG_VERSION}, ("name",)),
                maxItems=2000,
            ),
            "remove": PKG_NAMES,
            "purge": {"type": "boolean", "default": False, "description": "Purge removals."},
            "hold": PKG_NAMES,
            "unhold": PKG_NAMES,
            "update_index": {
                "type": "boolean",
                "default": False,
                "description": "Refresh the package index first (apt-get update).",
            },
        }
    ),
    output_schema=schema(
        {
            "backend": BACKEND,
            "installed": array(NAME_VERSION),
            "removed": PKG_NAMES,
            "held": PKG_NAMES,
            "unheld": PKG_NAMES,
        },
        ("backend", "installed", "removed", "held", "unheld"),
    ),
    risk="high",
    idempotent=True,
    reversible=True,
    timeout_ms=600_000,
    capabilities=WRITE,
)

PKG_REPOS = define(
    name="pkg.repos",
    description=(
        "Manage package repositories: apt writes /etc/apt/sources.list.d/aios-<name>.list "
        "under the root (atomic replace; 'absent' deletes it; repositories not named are left "
        "alone); apk keeps them in a managed block of /etc/apk/repositories. A file: URL is a "
        "path as the target sees it: under a scratch root apt reads <root>/PATH, never the "
        "registry host's PATH (apk refuses file: there). Then refreshes "
        "the index when `update_index` (default true). Reversible: the files' previous "
        "contents are restored (the index refresh is not undone)."
    ),
    input_schema=schema(
        {
            "repositories": array(REPOSITORY, maxItems=256),
            "update_index": {"type": "boolean", "default": True},
        },
        ("repositories",),
    ),
    output_schema=schema(
        {
            "backend": BACKEND,
            "written": PKG_NAMES,
            "removed": PKG_NAMES,
            "unchanged": PKG_NAMES,
            "index_updated": BOOL,
        },
        ("backend", "written", "removed", "unchanged", "index_updated"),
    ),
    risk="medium",
    idempotent=True,
    reversible=True,
    timeout_ms=600_000,
    capabilities=WRITE,
)

NAME_INPUT = schema({"name": PKG_NAME}, ("name",))
NAME_PIN_INPUT = schema(
    {
        "name": {
            "type": "string",
            "pattern": anchored(f"{PKG_NAME_RE}(?:={PKG_VERSION_RE})?"),
            "description": "A package name, or `name=version` (passed to apt-get as aiOS does).",
        }
    },
    ("name",),
)

PKG_INSTALL = define(
    name="pkg.install",
    description=(
        "aiOS's pkg.install: install one package (`apt-get install -y <name>`; like aiOS, "
        "a `name=version` pin is passed through). Error: "
        "`apt-get install <name> failed: <stderr>`. Reversible: Rollback restores the "
        "previous state of the package and of what it pulled in."
    ),
    input_schema=NAME_PIN_INPUT,
    output_schema=schema({"installed": TRUE, "version": STR}, ("installed", "version")),
    risk="high",
    idempotent=False,
    reversible=True,
    timeout_ms=120_000,
    capabilities=WRITE,
)

PKG_REMOVE = define(
    name="pkg.remove",
    description=(
        "aiOS's pkg.remove: remove one package (apt-get remove -y; no purge). Error: "
        "`apt-get remove <name> failed: <stderr>`. Reversible here (aiOS's is not): Rollback "
        "reinstalls the previous version when a repository still offers it."
    ),
    input_schema=NAME_INPUT,
    output_schema=schema({"removed": TRUE}, ("removed",)),
    risk="high",
    idempotent=False,
    reversible=True,
    timeout_ms=60_000,
    capabilities=WRITE,
)

PKG_SEARCH = define(
    name="pkg.search",
    description=(
        "aiOS's pkg.search: `apt-cache search <query>` (first 50 results) with each "
        "result's candidate version."
    ),
    input_schema=schema(
        {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "pattern": anchored(r"[^\-\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*"),
            }
        },
        ("query",),
    ),
    output_schema=schema(
        {
            "packages": array(
                obj_schema(
                    {"name": STR, "version": STR, "description": STR},
                    ("name", "version", "description"),
                )
            )
        },
        ("packages",),
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=30_000,
    capabilities=READ,
)

PKG_UPDATE = define(
    name="pkg.update",
    description=(
        "aiOS's pkg.update: refresh the index and upgrade every package; `updated` counts the "
        "upgraded packages. Irreversible: the versions it replaces are usually gone from the "
        "repositories, so no before-image is kept."
    ),
    input_schema=schema({}),
    output_schema=schema({"updated": NON_NEGATIVE}, ("updated",)),
    risk="high",
    idempotent=False,
    reversible=False,
    timeout_ms=300_000,
    capabilities=WRITE,
)

PKG_LIST_INSTALLED = define(
    name="pkg.list_installed",
    description=(
        "aiOS's pkg.list_installed: `dpkg-query -W` under the root (like aiOS, this includes "
        "removed-but-not-purged 'rc' packages; pkg.state tells them apart)."
    ),
    input_schema=schema({}),
    output_schema=schema(
        {"packages": array(obj_schema({"name": STR, "version": STR}, ("name", "version")))},
        ("packages",),
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=15_000,
    capabilities=READ,
)

ALL: tuple[ToolSpec, ...] = (
    PKG_STATE,
    PKG_ENSURE,
    PKG_REPOS,
    PKG_INSTALL,
    PKG_REMOVE,
    PKG_SEARCH,
    PKG_UPDATE,
    PKG_LIST_INSTALLED,
)
