"""The lockout guard: would this table cut the management path?

A table is dangerous when one of its base chains on hook `input` (type
filter) drops by default — `policy drop`, or a rule that drops or rejects
everything — without first accepting each management flow:
  ssh        new TCP connections to port 22,
  console    new TCP connections to port 9090 (the aiOS management console),
  established packets of established connections (`ct state established`).
Each flow is walked through the chain's rules in order (read by
controllers.firewall.rules), following `jump`/`goto` into regular chains:
  - an `accept` counts for a flow when every match of the rule holds for it
    or only narrows who may connect (source address, interface, rate limit)
    and at least one match names the flow (its port — as a number, range,
    anonymous set or named set of the table — `meta l4proto tcp`, or the
    ct state), or the rule has no match at all; a rule on `iif lo` does not
    count (loopback is not the management path);
  - a `drop`/`reject` ends the walk for a flow when every match holds for
    it (unconditional, or aimed at its port or state); one narrowed to some
    sources or interfaces is targeted blocking, and ignored;
  - a rule the guard cannot read (unknown selector or statement), a
    `queue`, an unknown named set, or a verdict map it cannot evaluate
    counts as possibly dropping the flow: when in doubt, it is dangerous.
The reason names the chain, the flow and the rule. Pure; used by the
controller's `destructive()` and the diff (on nft's canonical text of the
table about to be applied). MUST NOT import specs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from controllers.firewall.parse import ParsedChain, ParsedTable, parse_table
from controllers.firewall.rules import Match, Rule, contains, read_rule, vmap_verdict, vmap_verdicts

MAX_DEPTH = 16
# `[ip saddr X] [ip6 saddr X] [iifname "X"] tcp|udp dport N [counter] accept [comment "…"]`:
# narrowed to sources at most, so it can only matter to a flow on its own port.
_SIMPLE_ACCEPT = re.compile(
    r'^(?:(?:ip6? saddr|iifname) [^\s{}"]+ |iifname "[^"]*" )*(tcp|udp) dport (\d+)'
    r'(?: counter)? accept(?: comment "[^"]*")?$'
)
SOURCE_SELECTORS = frozenset(
    (
        "ip saddr",
        "ip6 saddr",
        "ether saddr",
        "iif",
        "iifname",
        "meta iif",
        "meta iifname",
        "iiftype",
        "iifgroup",
        "meta nfproto",
        "meta pkttype",
        "tcp sport",
        "th sport",
        "limit",
        "ct status",
        "ct direction",
        "ct mark",
        "ip daddr",
        "ip6 daddr",
        "fib daddr type",
        "fib saddr . iif oif",
        "ct count",
    )
)
OTHER_PROTOCOL = ("udp ", "icmp ", "icmpv6 ", "sctp ", "udplite ", "dccp ", "ah ", "esp ")


@dataclass(frozen=True)
class Flow:
    label: str  # "ssh (tcp dport 22)"
    port: str | None  # "22"; None for established traffic
    state: str  # the ct state of its packets: "new" or "established"


FLOWS = (
    Flow("ssh (tcp dport 22)", "22", "new"),
    Flow("the management console (tcp dport 9090)", "9090", "new"),
    Flow("established connections (ct state established,related)", None, "established"),
)


@lru_cache(maxsize=16)
def lockout_of(text: str) -> str | None:
    """`lockout` of a table's canonical text (ValueError: not one table); remembered, so
    the diff, the verifier's simulation and a patch's predicted text — equal to the
    desired one — walk a 10,000-rule chain once."""
    return lockout(parse_table(text))


def lockout(table: ParsedTable) -> str | None:
    """Why applying `table` could lock the operator out (None: it cannot)."""
    reasons: list[str] = []
    for chain in table.chains:
        if chain.hook != "input" or chain.type not in (None, "filter"):
            continue
        for flow in FLOWS:
            why = _judge(table, chain, flow)
            if why:
                reasons.append(f"chain {chain.name} {why}")
    if not reasons:
        return None
    return f"table {table.family}/{table.name}: " + "; ".join(reasons)


def _judge(table: ParsedTable, chain: ParsedChain, flow: Flow) -> str | None:
    walker = _Walker(table, flow)
    outcome, rule = walker.walk(chain, (), 0)
    if outcome == "accept":
        return None
    if outcome == "drop":
        return f"drops {flow.label} at `{rule}`"
    if outcome == "maybe":
        return f"may drop {flow.label} at `{rule}` (the guard cannot read it)"
    if chain.policy == "drop":
        return f"has policy drop and accepts no {flow.label}"
    return None


Labels = tuple[str, ...]  # per match: "yes", "some", "no", "lo", "unknown"


class _Walker:
    def __init__(self, table: ParsedTable, flow: Flow) -> None:
        self.table = table
        self.flow = flow
        self.sets = table.set_elements()

    def walk(self, chain: ParsedChain, outer: Labels, depth: int) -> tuple[str | None, str]:
        """("accept" | "drop" | "maybe" | "return" | "goto-end" | None, the deciding rule)."""
        if depth > MAX_DEPTH:
            return "maybe", f"jump depth over {MAX_DEPTH} at chain {chain.name}"
        for text in chain.rules:
            simple = _SIMPLE_ACCEPT.match(text)
            if simple is not None and self._passes(simple, text):
                continue
            outcome = self._rule(read_rule(text), outer, depth)
            if outcome is not None:
                return outcome, text
        return None, ""

    def _passes(self, simple: re.Match[str], text: str) -> bool:
        """Fast path (10,000-rule chains): a plain port accept that cannot concern the flow."""
        if '"lo"' in text:
            return False
        return self.flow.port is None or (simple.group(1), simple.group(2)) != (
            "tcp",
            self.flow.port,
        )

    def _rule(self, rule: Rule, outer: Labels, depth: int) -> str | None:
        if not rule.understood:
            return "maybe"
        labels = outer
        for match in rule.matches:
            label = self._label(match)
            if label == "no":
                return None
            labels += (label,)
        verdict, target = rule.verdict, rule.target
        if verdict == "vmap" and rule.vmap is not None:
            verdict, target, unsure = self._vmap(rule.vmap)
            if unsure:
                return "maybe" if _drops(labels) else None
            labels += ("yes",)  # the map's key names the flow
        if verdict == "accept":
            return "accept" if _accepts(labels) else None
        if verdict in ("drop", "reject", "queue"):
            if not _drops(labels):
                return None
            return "maybe" if verdict == "queue" or "unknown" in labels else "drop"
        if verdict in ("jump", "goto"):
            return self._jump(target, labels, depth, goto=verdict == "goto")
        if verdict == "return":
            return "return" if _drops(labels) else None
        return None

    def _jump(self, target: str, labels: Labels, depth: int, *, goto: bool) -> str | None:
        chain = self.table.chain(target)
        if chain is None:
            return "maybe"
        outcome, _ = self.walk(chain, labels, depth + 1)
        if outcome in ("accept", "drop", "maybe"):
            return outcome
        return "goto-end" if goto else None  # fell off the end, or returned

    def _vmap(self, match: Match) -> tuple[str | None, str, bool]:
        item = self._item(match.selector)
        if item is None or match.op != "==":
            return None, "", bool(vmap_verdicts(match.value) - {"accept", "continue"})
        found = vmap_verdict(match.value, item)
        if found is None:
            return None, "", False
        return found[0], found[1], False

    def _item(self, selector: str) -> str | None:
        if selector == "ct state":
            return self.flow.state
        if selector in ("tcp dport", "th dport") and self.flow.port is not None:
            return self.flow.port
        if selector in ("meta l4proto", "ip protocol", "ip6 nexthdr") and self.flow.port:
            return "tcp"
        return None

    def _label(self, match: Match) -> str:
        selector, value = match.selector, match.value
        if selector in ("iif", "iifname", "meta iif", "meta iifname") and value.strip('"') == "lo":
            return "lo" if match.op == "==" else "some"
        item = self._item(selector)
        if item is not None:
            found = contains(value, item, self.sets)
            if found is None:
                return "unknown"
            if match.op not in ("==", "!="):
                return "unknown"
            return "yes" if found == (match.op == "==") else "no"
        if selector in SOURCE_SELECTORS or selector.startswith(("ip ", "ip6 ")):
            return "some"
        if self.flow.port is not None and selector.startswith(OTHER_PROTOCOL):
            return "no"
        if self.flow.port is None and (
            selector.startswith(("tcp ", "th ", *OTHER_PROTOCOL))
            or selector in ("meta l4proto", "ip protocol", "ip6 nexthdr")
        ):
            return "some"
        if selector in ("tcp flags",):
            return "some"
        return "unknown"


def _accepts(labels: Labels) -> bool:
    if any(label in ("no", "lo", "unknown") for label in labels):
        return False
    return not labels or "yes" in labels


def _drops(labels: Labels) -> bool:
    return not any(label in ("no", "lo", "some") for label in labels)
