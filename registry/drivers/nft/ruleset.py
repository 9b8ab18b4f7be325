"""nftables for the firewall tools: render structured tables, list, load, canonical text.

`render` turns Table objects (contract.catalogue.firewall) into one nft script that
replaces each table whole (`table F N` + `delete table F N` + the table) and
remembers which table/chain/rule every line came from, so an nft error can
be mapped back (`map_error`). Nothing reaches the script text unchecked,
whatever the caller validated: families, hooks, types, policies, set types
and flags are one of their words; table, chain and set names are nft
identifiers (`ref` checks every table reference, also for listings, whose
argv nft joins into one command line); a chain priority is a number or a
name with an offset; a chain's `device` is an interface
name of the allow-list (contract.vocab.netvalues.IFNAME_RE) inside "..."; set
elements are checked against their type and comments are printable ASCII
without '"' or '\\'; rules are single statements (`check_rule`). Every one of
these words and checks is contract.vocab.nft's, the spec validator's own, so
both layers judge alike. `canonical`
removes counter values; `split_ruleset` cuts `nft list ruleset` into tables;
`aios_rules` parses it the way aiOS's firewall.rules does (contract §3.2).
The async helpers run nft in the context's namespace; text listings go
through libnftables in process when the registry runs in that namespace
(registry.drivers.nft.libnft: same text, no per-token writes), and firewall.ruleset's
listings are answered from memory while the kernel's nf_tables generation id
and the namespace's interfaces have not changed. Called by
registry.handlers.firewall and the benchmark.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from contract.tooldef import JSON
from contract.vocab.netvalues import is_ifname
from contract.vocab.nft import (
    CHAIN_TYPES,
    FAMILIES,
    HOOKS,
    POLICIES,
    SET_FLAGS,
    SET_TYPES,
    check_comment,
    check_element,
    check_rule_text,
    is_nft_ident,
    named_priority,
)
from registry.core.errors import ToolError
from registry.core.process import ProcessRunner
from registry.core.tool import CommandResult, ToolContext
from registry.drivers.nft import journal, libnft, patch

Ref = tuple[str, str]  # (family, name)

_COUNTER = re.compile(r"\bcounter packets \d+ bytes \d+")
_ERROR = re.compile(r"^[^\s:]+:(\d+):[\d-]+: Error: (.*)$", re.MULTILINE)
_TABLE_HEAD = re.compile(r"^table (\S+) (\S+) \{(?: # handle \d+)?$")
_IFACE_REF = re.compile(r'\b[io]if\s+(\{[^}]*\}|"[^"]*"|\S+)')
_WORDS = {
    "family": frozenset(FAMILIES),
    "hook": frozenset(HOOKS),
    "type": frozenset(CHAIN_TYPES),
    "policy": frozenset(POLICIES),
}


def _ident(value: object, what: str) -> str:
    if not is_nft_ident(value):
        raise ToolError(
            f"{what}: invalid nft identifier {value!r} (a letter, then letters, digits, "
            "'_', '.', '-'; at most 64)"
        )
    return value


def _word(value: object, key: str, where: str) -> str:
    if value not in _WORDS[key]:
        raise ToolError(f"{where}: {key}: {value!r} is not one of {', '.join(sorted(_WORDS[key]))}")
    return str(value)


def check_rule(rule: str) -> str:
    """The rule, stripped, if it is one safe nft statement; ToolError otherwise.

    contract.vocab.nft.check_rule_text, fast path included: the spec validator's check."""
    try:
        return check_rule_text(rule)
    except ValueError as exc:
        raise ToolError(str(exc)) from None


def ref(table: JSON) -> Ref:
    """(family, name) of a table, both checked: they reach nft text and argv."""
    family = table.get("family", "inet")
    if family not in _WORDS["family"]:
        raise ToolError(f"table family {family!r} is not one of {', '.join(FAMILIES)}")
    return (str(family), _ident(table.get("name"), f"table {family}"))


def ref_text(r: Ref) -> str:
    return f"{r[0]} {r[1]}"


@dataclass
class Script:
    """An nft script and, per line, where it came from (for error messages)."""

    lines: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    rules: dict[Ref, int] = field(default_factory=dict)

    def add(self, line: str, origin: str) -> None:
        self.lines.append(line)
        self.origins.append(origin)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _element(set_type: str, value: object) -> str:
    return f'"{value}"' if set_type == "ifname" else str(value)


def _elements(origin: str, spec: JSON, set_type: str) -> str:
    interval = "interval" in spec.get("flags", ())
    for i, element in enumerate(spec["elements"]):
        if isinstance(element, bool) or not isinstance(element, (int, str)):
            raise ToolError(f"{origin}: elements[{i}]: {element!r} is not a string or number")
        try:
            check_element(set_type, element, interval=interval)
        except ValueError as exc:
            raise ToolError(f"{origin}: elements[{i}]: {exc}") from None
    return ", ".join(_element(set_type, e) for e in spec["elements"])


def _render_set(script: Script, where: str, spec: JSON) -> None:
    name = _ident(spec.get("name"), f"{where}, set")
    origin = f"{where}, set {name}"
    set_type = spec.get("type")
    if set_type not in SET_TYPES:
        raise ToolError(f"{origin}: type: {set_type!r} is not one of {', '.join(SET_TYPES)}")
    script.add(f"\tset {name} {{", origin)
    script.add(f"\t\ttype {set_type}", origin)
    if spec.get("flags"):
        flags = list(spec["flags"])
        bad = [f for f in flags if f not in SET_FLAGS]
        if bad:
            raise ToolError(f"{origin}: flags: {bad[0]!r} is not one of {', '.join(SET_FLAGS)}")
        script.add(f"\t\tflags {','.join(flags)}", origin)
    if spec.get("elements"):
        script.add(f"\t\telements = {{ {_elements(origin, spec, str(set_type))} }}", origin)
    if spec.get("comment"):
        try:
            comment = check_comment(spec["comment"])
        except (ValueError, TypeError) as exc:
            raise ToolError(f"{origin}: comment: {exc}") from None
        script.add(f'\t\tcomment "{comment}"', origin)
    script.add("\t}", origin)


def _priority(value: object, origin: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not -2147483648 <= value <= 2147483647:
            raise ToolError(f"{origin}: priority {value} is out of the 32-bit range")
        return str(value)
    if isinstance(value, str) and (named := named_priority(value)) is not None:
        return named  # contract.vocab.nft's rule for tool inputs
    raise ToolError(
        f"{origin}: priority {value!r} must be a number or a name like filter or 'filter + 10'"
    )


def _chain_head(chain: JSON, origin: str = "chain") -> str:
    head = f"type {_word(chain.get('type'), 'type', origin)} hook "
    head += _word(chain.get("hook"), "hook", origin)
    if chain.get("device"):
        device = chain["device"]
        if not is_ifname(device):
            raise ToolError(
                f"{origin}: device: invalid interface name {device!r} (1-15 of letters, "
                "digits, '_', '.', '-', not starting with '-', not '.' or '..')"
            )
        head += f' device "{device}"'
    head += f" priority {_priority(chain.get('priority'), origin)};"
    if chain.get("policy"):
        head += f" policy {_word(chain['policy'], 'policy', origin)};"
    return head


def _render_chain(script: Script, where: str, chain: JSON) -> int:
    name = _ident(chain.get("name"), f"{where}, chain")
    origin = f"{where}, chain {name}"
    script.add(f"\tchain {name} {{", origin)
    if chain.get("hook"):
        script.add(f"\t\t{_chain_head(chain, origin)}", origin)
    rules = chain.get("rules", ())
    for i, rule in enumerate(rules):
        try:
            text = check_rule(rule)
        except ToolError as exc:
            raise ToolError(f"{origin}, rule {i}: {exc}") from None
        script.add(f"\t\t{text}", f"{origin}, rule {i} (`{text}`)")
    script.add("\t}", origin)
    return len(rules)


def render(
    tables: Iterable[JSON], delete: Iterable[JSON] = (), patches: Iterable[JSON] = ()
) -> Script:
    """One transaction: each table replaced whole, each patched table patched
    (registry.drivers.nft.patch), each deleted table removed."""
    script = Script()
    seen: set[Ref] = set()
    for table in tables:
        r = ref(table)
        if r in seen:
            raise ToolError(f"table {ref_text(r)} is listed twice")
        seen.add(r)
        where = f"table {ref_text(r)}"
        script.add(f"table {ref_text(r)}", where)
        script.add(f"delete table {ref_text(r)}", where)
        script.add(f"table {ref_text(r)} {{", where)
        for spec in table.get("sets", ()):
            _render_set(script, where, spec)
        script.rules[r] = sum(_render_chain(script, where, c) for c in table.get("chains", ()))
        script.add("}", where)
    for entry in patches:
        r = ref(entry)
        if r in seen:
            raise ToolError(f"table {ref_text(r)} is listed twice")
        seen.add(r)
        for line, origin in patch.render_ops(r, entry):
            script.add(line, origin)
    for table in delete:
        r = ref(table)
        if r in seen:
            raise ToolError(f"table {ref_text(r)} is both applied and deleted")
        seen.add(r)
        script.add(f"table {ref_text(r)}", f"delete of table {ref_text(r)}")
        script.add(f"delete table {ref_text(r)}", f"delete of table {ref_text(r)}")
    return script


def replace_script(tables: dict[Ref, str | None]) -> str:
    """Put listed table texts back (None: the table must not exist), in one transaction."""
    parts = []
    for r, text in tables.items():
        ref({"family": r[0], "name": r[1]})  # both checked: they reach the script
        parts.append(f"table {ref_text(r)}\ndelete table {ref_text(r)}\n")
        if text is not None:
            parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts)


def map_error(stderr: str, origins: list[str] | None) -> str:
    """nft's errors with the table/chain/rule each failing line came from."""
    found = []
    for match in _ERROR.finditer(stderr):
        line, message = int(match.group(1)), match.group(2).strip()
        if origins and 0 < line <= len(origins):
            found.append(f"{origins[line - 1]}: {message}")
        else:
            found.append(f"line {line}: {message}")
    return "; ".join(found) if found else " ".join(stderr.split())[:2000]


def strip_handles(text: str) -> tuple[str, dict[str, list[int]]]:
    """`nft -a list table` text -> the text `nft list table` prints, and each chain's
    rule handles in listing order (rules: the lines of a chain block that carry one).
    The last few are remembered (a patch's snapshot and check read the same listing)."""
    stripped, chains = _strip_handles(text)
    return stripped, {name: list(handles) for name, handles in chains}


@lru_cache(maxsize=4)
def _strip_handles(text: str) -> tuple[str, tuple[tuple[str, tuple[int, ...]], ...]]:
    out: list[str] = []
    chains: dict[str, list[int]] = {}
    current: list[int] | None = None
    for line in text.split("\n"):
        body, sep, handle = line.rpartition(" # handle ")
        if not sep or not handle.isdigit():
            if line == "\t}":
                current = None
            out.append(line)
            continue
        if current is not None and line.startswith("\t\t"):
            current.append(int(handle))
        elif body.startswith("\tchain ") and body.endswith(" {"):
            current = chains.setdefault(body[len("\tchain ") : -2], [])
        out.append(body)
    return "\n".join(out), tuple((name, tuple(hs)) for name, hs in chains.items())


def canonical(text: str) -> str:
    """Listing text with counter values removed (`counter packets 1 bytes 2` -> `counter`)."""
    if "counter packets" not in text:  # the common case: no regex over 500 KB
        return text
    return _COUNTER.sub("counter", text)


def split_ruleset(text: str) -> dict[Ref, str]:
    """`nft list ruleset` output cut into `nft list table` texts."""
    tables: dict[Ref, str] = {}
    current: Ref | None = None
    lines: list[str] = []
    for line in text.splitlines():
        head = _TABLE_HEAD.match(line)
        if head and current is None:
            current, lines = (head.group(1), head.group(2)), [line]
        elif current is not None:
            lines.append(line)
            if line == "}":
                tables[current] = "\n".join(lines) + "\n"
                current = None
    return tables


def aios_rules(text: str) -> list[JSON]:
    """aiOS's firewall.rules parsing of `nft list ruleset`."""
    rules: list[JSON] = []
    chain: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if chain is None:
            if line.startswith("chain ") and line.endswith("{"):
                chain = line[len("chain ") : -1].strip()
            continue
        if line == "}":
            chain = None
        elif line and not line.startswith(("type ", "policy ")):
            action = next((a for a in ("accept", "drop", "reject", "log") if a in line), "other")
            rules.append({"chain": chain, "rule": line, "action": action})
    return rules


def referenced_interfaces(tables: Iterable[JSON]) -> list[str]:
    """Interface names that must exist to load the tables (iif/oif rules, chain devices)."""
    names: dict[str, None] = {}
    for table in tables:
        for chain in table.get("chains", ()):
            if chain.get("device"):
                names[chain["device"]] = None
            for rule in chain.get("rules", ()):
                for group in _IFACE_REF.findall(rule):
                    for token in group.strip("{}").split(","):
                        name = token.strip().strip('"')
                        if is_ifname(name):
                            names[name] = None
    return list(names)


# --- running nft in the namespace -------------------------------------------


def _in_process(ctx: ToolContext) -> bool:
    """List through libnftables here: the registry runs in the target namespace, for real."""
    return ctx.netns is None and isinstance(ctx.runner, ProcessRunner) and libnft.available()


# Listings served from memory while the namespace's nf_tables generation id and
# its interfaces are unchanged: command -> (generation, interfaces, output). Only
# text with no state that can change without a transaction (counters, quotas,
# sets, meters, stateful objects). `iif`/`oif` print a link's name only while
# that index exists: deleting or renaming a link changes the text and bumps no
# generation, hence the (index, name) list in the key (if_nameindex: ~30 us).
# A listing remembered at an older generation is brought forward by the journal
# of the transactions since (registry.drivers.nft.journal: rules deleted, other
# tables changed) instead of listing again.
_LISTED: dict[str, tuple[int, tuple[tuple[int, str], ...], str]] = {}
_LISTED_MAX = 16
_VOLATILE = re.compile(
    r"\b(counter|packets|quota|meter|set|map|flowtable|synproxy|last|ct (count|helper|timeout|"
    r"expectation))\b|@"
)
_VOLATILE_WORDS = (
    "counter",
    "packets",
    "quota",
    "meter",
    "set",
    "map",
    "flowtable",
    "synproxy",
    "last",
    "ct count",
    "ct helper",
    "ct timeout",
    "ct expectation",
    "@",
)


def _volatile(text: str) -> bool:
    """_VOLATILE.search, with substring checks first (C speed; a 10,000-rule listing
    usually has none of the words)."""
    return any(w in text for w in _VOLATILE_WORDS) and _VOLATILE.search(text) is not None


def _interfaces() -> tuple[tuple[int, str], ...] | None:
    """The namespace's (index, name) pairs; None when unreadable (nothing is remembered)."""
    try:
        return tuple(sorted(socket.if_nameindex()))
    except OSError:
        return None


async def _list(ctx: ToolContext, argv: list[str], *, cached: bool = False) -> CommandResult:
    """A read-only `nft` command: in process when possible (registry.drivers.nft.libnft), else the
    binary.

    `cached`: an unchanged listing (same generation id and interfaces before and
    after it was made, nothing volatile in it) is answered from memory until the
    next commit or link change.
    """
    if argv[1] == "-j" or not _in_process(ctx):
        return await ctx.runner.run(ctx.in_netns(argv), check=False)
    command = " ".join(argv[1:])
    links = _interfaces() if cached else None
    log = journal.journal() if links is not None else None  # listening before listing
    before = libnft.generation() if links is not None else None
    hit = _LISTED.get(command)
    if before is not None and hit is not None and hit[1] == links:
        text = hit[2] if hit[0] == before else await _forward(log, command, hit, before)
        if text is not None:
            if hit[0] != before:
                _LISTED[command] = (before, links, text)
            return CommandResult(tuple(argv), 0, text.encode(), b"")
    status, out, err = await asyncio.to_thread(libnft.run, command)
    stable = status == 0 and not _volatile(out)
    if (
        before is not None
        and links is not None
        and stable
        and libnft.generation() == before  # no commit meanwhile
        and _interfaces() == links  # no link came, went or was renamed meanwhile
    ):
        _LISTED.pop(command, None)
        _LISTED[command] = (before, links, out)
        while len(_LISTED) > _LISTED_MAX:
            _LISTED.pop(next(iter(_LISTED)))
    return CommandResult(tuple(argv), 0 if status == 0 else 1, out.encode(), err.encode())


async def _forward(
    log: journal.Journal | None,
    command: str,
    hit: tuple[int, tuple[tuple[int, str], ...], str],
    now: int,
) -> str | None:
    """A listing remembered at an earlier generation, as it prints at `now`, from the
    journal of the transactions between (registry.drivers.nft.journal); None: list again."""
    if log is None or journal.covers(command) is None:
        return None
    if not log.caught_up(now):  # the kernel queued them; the thread has not read them yet
        await asyncio.to_thread(log.wait_for, now, journal.CATCH_UP_S)
    txns = log.between(hit[0], now)
    return journal.advance(hit[2], command, txns) if txns is not None else None


def _table_argv(r: Ref, *, json_format: bool = False, handles: bool = False) -> list[str]:
    flags = ["-j"] if json_format else ["-a"] if handles else []
    return ["nft", *flags, "list", "table", r[0], r[1]]


async def list_table(
    ctx: ToolContext,
    r: Ref,
    *,
    json_format: bool = False,
    cached: bool = False,
    handles: bool = False,
) -> str | None:
    """`nft [-a] list table F N` text (None: no such table); `cached`: see `_list`."""
    argv = _table_argv(r, json_format=json_format, handles=handles)
    result = await _list(ctx, argv, cached=cached)
    if result.returncode == 0:
        return result.text
    if "No such file or directory" in result.err:
        return None
    raise ToolError(f"nft list table {ref_text(r)} failed: {' '.join(result.err.split())}")


async def list_tables(
    ctx: ToolContext, refs: Iterable[Ref], *, cached: bool = False, handles: bool = False
) -> dict[Ref, str | None]:
    refs = list(dict.fromkeys(refs))
    texts = await asyncio.gather(
        *(list_table(ctx, r, cached=cached, handles=handles) for r in refs)
    )
    return dict(zip(refs, texts, strict=True))


async def list_ruleset(
    ctx: ToolContext, *, json_format: bool = False, cached: bool = False, handles: bool = False
) -> str:
    flags = ["-j"] if json_format else ["-a"] if handles else []
    argv = ["nft", *flags, "list", "ruleset"]
    result = await _list(ctx, argv, cached=cached)
    if result.returncode != 0:
        raise ToolError(f"nft list ruleset failed: {' '.join(result.err.split())}")
    return result.text


async def load(
    ctx: ToolContext,
    text: str,
    *,
    origins: list[str] | None = None,
    check: bool = False,
    echo: bool = False,
) -> str:
    """`nft [-c] -f -` in the namespace; errors mapped to their table/chain/rule.

    `echo`: `nft -e -a`, which prints each added rule with its new handle and the
    new generation id; returns what nft printed."""
    flags = ["-c"] if check else ["-e", "-a"] if echo else []
    argv = ["nft", *flags, "-f", "-"]
    result = await ctx.runner.run(ctx.in_netns(argv), stdin=text.encode(), check=False)
    if result.returncode != 0:
        raise ToolError(map_error(result.err, origins))
    return result.text


# --- patches: check against the listing observe made, predict the one after ------


async def patch_listings(ctx: ToolContext, patches: Iterable[JSON]) -> dict[Ref, str]:
    """Each patched table's `nft -a list table` text, checked against the patch's `expect`
    (the digest of its canonical text): ToolError when a table is gone or changed."""
    refs = [ref(p) for p in patches]
    listed = await list_tables(ctx, refs, cached=True, handles=True)
    expect = {ref(p): str(p.get("expect", "")) for p in patches}
    for r, text in listed.items():
        if text is None:
            raise ToolError(f"patch of table {ref_text(r)}: the table does not exist")
        found = hashlib.sha256(canonical(strip_handles(text)[0]).encode()).hexdigest()
        if found != expect[r]:
            raise ToolError(
                f"patch of table {ref_text(r)}: the table changed since the patch was planned "
                f"(its text is #{found[:12]}, the patch expects #{expect[r][:12]})"
            )
    return {r: t for r, t in listed.items() if t is not None}


def current_generation(ctx: ToolContext, listings: dict[Ref, str]) -> int | None:
    """The generation id the remembered listings are all current at (None: not known)."""
    if not _in_process(ctx) or not listings:
        return None
    now = libnft.generation()
    links = _interfaces()
    for r, text in listings.items():
        hit = _LISTED.get(" ".join(_table_argv(r, handles=True)[1:]))
        if now is None or hit is None or hit[:2] != (now, links) or hit[2] != text:
            return None
    return now


def remember_patched(
    ctx: ToolContext,
    before: int | None,
    listings: dict[Ref, str],
    patches: Iterable[JSON],
    printed: str,
) -> int:
    """After a commit: remember each patched table's listing, predicted from the one it was
    checked against (registry.drivers.nft.patch.listed_after), when that commit was the one
    transaction since (generation + 1, same interfaces). Returns how many were remembered."""
    added, after = patch.echoed(printed)
    if after is None:  # nft 1.0.6 echoes no "# new generation" line: read the id now
        after = libnft.generation()  # before + 1 only when no other commit came between
    if before is None or after is None or after != (before + 1) & 0xFFFFFFFF:
        return 0
    links = _interfaces()
    if links is None or libnft.generation() != after:
        return 0
    predicted: dict[str, str] = {}
    for entry in patches:
        r = ref(entry)
        ops = list(entry.get("ops", ()))
        mine = [(rule, h) for (t, chain, rule, h) in added if t == r]
        text = patch.listed_after(listings[r], ops, mine)
        if text is None or _volatile(text):
            return 0
        predicted[" ".join(_table_argv(r, handles=True)[1:])] = text
    for command, text in predicted.items():
        _LISTED.pop(command, None)
        _LISTED[command] = (after, links, text)
    while len(_LISTED) > _LISTED_MAX:
        _LISTED.pop(next(iter(_LISTED)))
    return len(predicted)
