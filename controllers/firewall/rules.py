"""Read one nft rule (as nft prints it) into matches and a verdict, for the lockout guard.

`read_rule("ip saddr 10.0.0.0/8 tcp dport { 22, 9090 } counter accept")` gives
the matches (`ip saddr` == `10.0.0.0/8`, `tcp dport` == `{ 22, 9090 }`) and
the verdict (`accept`); counters, comments and log statements are dropped,
`limit` becomes a match that holds for some packets. A rule it cannot read
(an unknown selector, a mangling statement, a bitmask expression) comes back
with `understood=False`; the guard then treats it as possibly dropping what
it protects. `contains(value, item, sets)` answers whether a match value
(`22`, `8000-8080`, `{ … }`, `@set`, `established,related`) covers an item:
True, False, or None (cannot tell). Pure; used by controllers.firewall.guard.
MUST NOT import specs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from controllers.firewall.parse import split_elements, split_top_level

TWO_WORD = frozenset(
    [
        "tcp",
        "udp",
        "th",
        "ct",
        "ip",
        "ip6",
        "meta",
        "icmp",
        "icmpv6",
        "sctp",
        "udplite",
        "dccp",
        "ether",
        "ah",
        "esp",
        "comp",
        "vlan",
        "arp",
        "rt",
        "socket",
        "ipsec",
        "osf",
        "tunnel",
    ]
)
ONE_WORD = frozenset(
    [
        "iif",
        "iifname",
        "oif",
        "oifname",
        "iiftype",
        "oiftype",
        "iifgroup",
        "oifgroup",
        "mark",
        "l4proto",
        "nfproto",
        "protocol",
        "skuid",
        "skgid",
        "pkttype",
        "cpu",
    ]
)
OPS = frozenset(("==", "!=", "<", ">", "<=", ">="))
VERDICTS = frozenset(("accept", "drop", "continue", "return", "queue"))
LOG_OPTIONS = frozenset(("prefix", "level", "group", "snaplen", "queue-threshold", "flags"))
NAT = frozenset(("dnat", "snat", "masquerade", "redirect", "notrack", "tproxy", "dup", "fwd"))


@dataclass(frozen=True)
class Match:
    selector: str  # "tcp dport", "ct state", "iifname", "limit", …
    op: str  # "==" unless printed otherwise
    value: str


@dataclass(frozen=True)
class Rule:
    text: str
    matches: tuple[Match, ...] = ()
    verdict: str | None = None  # accept, drop, reject, jump, goto, return, continue, queue, vmap
    target: str = ""  # chain of jump/goto
    vmap: Match | None = None  # selector and map of a verdict map
    understood: bool = True


def tokens(text: str) -> list[str]:
    """Words, with quoted strings and `{ … }` / `( … )` groups kept whole."""
    if not any(c in text for c in '"{('):
        return text.split()
    return split_top_level(text, str.isspace)


@lru_cache(maxsize=65536)  # the guard reads each chain once per flow, in diff and in verify
def read_rule(text: str) -> Rule:
    words = tokens(text)
    matches: list[Match] = []
    i = 0
    try:
        while i < len(words):
            word = words[i]
            if word in VERDICTS:
                return _finish(text, matches, words, i + 1, verdict=word)
            if word in ("jump", "goto"):
                return _finish(text, matches, words, i + 2, verdict=word, target=words[i + 1])
            if word == "reject":
                return _finish(text, matches, words, _skip_reject(words, i + 1), verdict="reject")
            skipped = _skip_statement(words, i)
            if skipped is not None:
                i = skipped
                continue
            if word == "limit":
                i = _skip_limit(words, i)
                matches.append(Match("limit", "==", "rate"))
                continue
            if word in NAT:
                return Rule(text, tuple(matches), understood=False)
            i, match, is_vmap = _read_match(words, i)
            if is_vmap:
                return _finish(text, matches, words, i, verdict="vmap", vmap=match)
            matches.append(match)
    except (IndexError, ValueError):
        return Rule(text, tuple(matches), understood=False)
    return Rule(text, tuple(matches))


def _finish(
    text: str,
    matches: list[Match],
    words: list[str],
    end: int,
    *,
    verdict: str,
    target: str = "",
    vmap: Match | None = None,
) -> Rule:
    rest = words[end:]
    while rest:  # only statements that change nothing may follow a verdict
        skipped = _skip_statement(rest, 0)
        if skipped is None:
            return Rule(text, tuple(matches), verdict, target, vmap, understood=False)
        rest = rest[skipped:]
    return Rule(text, tuple(matches), verdict, target, vmap)


def _skip_statement(words: list[str], i: int) -> int | None:
    """Index after a counter / comment / log statement at `i`, or None."""
    word = words[i]
    if word == "counter":
        return i + 5 if i + 1 < len(words) and words[i + 1] == "packets" else i + 1
    if word == "comment":
        return i + 2
    if word == "log":
        i += 1
        while i < len(words) and words[i] in LOG_OPTIONS:
            i += 2
        return i
    return None


def _skip_reject(words: list[str], i: int) -> int:
    if i < len(words) and words[i] == "with":
        i += 1
        while i < len(words) and words[i] not in ("comment", "counter"):
            i += 1
    return i


def _skip_limit(words: list[str], i: int) -> int:
    i += 2  # limit rate
    if words[i] == "over":
        i += 1
    i += 2 if not words[i].count("/") else 1  # "10/second" or "10 mbytes/second"
    if i < len(words) and words[i] == "burst":
        i += 3
    return i


def _read_match(words: list[str], i: int) -> tuple[int, Match, bool]:
    word = words[i]
    if word == "fib":
        j = i + 1
        while words[j] not in ("type", "oif", "oifname"):
            j += 1
        selector, i = " ".join(words[i : j + 1]), j + 1
    elif word in TWO_WORD:
        selector, i = f"{word} {words[i + 1]}", i + 2
    elif word in ONE_WORD:
        selector, i = word, i + 1
    else:
        raise ValueError(f"unknown selector {word}")
    if selector.split()[-1] in ("set",) or words[i] == "set":
        raise ValueError("a mangling statement")
    op = "=="
    if words[i] in OPS:
        op, i = words[i], i + 1
    if words[i] == "vmap":
        return i + 2, Match(selector, op, words[i + 1]), True
    value = words[i]
    if value.startswith("&") or value in ("&", "|", "^", "and", "or", "xor", "map"):
        raise ValueError("an expression the guard does not read")
    return i + 1, Match(selector, op, value), False


def _items(value: str) -> list[str]:
    if value.startswith("{") and value.endswith("}"):
        return split_elements(value[1:-1])
    return [v for v in value.split(",") if v]


def contains(value: str, item: str, sets: Mapping[str, tuple[str, ...]]) -> bool | None:
    """Whether the match value covers `item` (a port number, a state, a protocol)."""
    if value.startswith("@"):
        elements = sets.get(value[1:])
        return None if elements is None else _covers(list(elements), item)
    return _covers(_items(value), item)


def _covers(values: list[str], item: str) -> bool | None:
    unsure = False
    for raw in values:
        value = raw.strip().strip('"')
        if value == item:
            return True
        low, dash, high = value.partition("-")
        if dash and low.isdigit() and high.isdigit() and item.isdigit():
            if int(low) <= int(item) <= int(high):
                return True
        elif item.isdigit() and not value.isdigit():
            unsure = True  # a service name or an expression
    return None if unsure else False


def vmap_verdict(value: str, item: str) -> tuple[str, str] | None:
    """(verdict, jump target) of `item` in a verdict map `{ k : v, … }`, None if absent."""
    for entry in _items(value):
        key, sep, verdict = entry.partition(" : ")
        if not sep:
            continue
        if _covers(_items(key.strip()), item):
            word, _, target = verdict.strip().partition(" ")
            return word, target.strip()
    return None


def vmap_verdicts(value: str) -> set[str]:
    return {e.partition(" : ")[2].strip().split(" ")[0] for e in _items(value)}
