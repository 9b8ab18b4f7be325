"""Plans and statuses as text: terraform-style `+ - ~` trees, optional colour.

`render_plan` groups changes by resource (`+` add, `-` remove, `~` change,
with old → new), lists the steps that satisfy them and the verifier's
findings, and ends with a count line. Colour only on a terminal and never
when NO_COLOR is set. Output is deterministic for the same plan. Used by
the CLI (plan, apply, diff, rollback).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from reconciler.plan import Change, DomainPlan, Plan, canonical_json

SYMBOL = {"add": "+", "remove": "-", "change": "~"}
COLOUR = {"+": "\x1b[32m", "-": "\x1b[31m", "~": "\x1b[33m", "!": "\x1b[1;31m"}
RESET = "\x1b[0m"


def use_colour(stream_isatty: bool) -> bool:
    return stream_isatty and not os.environ.get("NO_COLOR")


def _value(value: object, limit: int = 70) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def change_line(change: Change) -> str:
    what = f"{change.object} {change.field}" if change.field else change.object
    symbol = SYMBOL[change.op]
    if change.op == "change":
        text = f"{symbol} {what}: {_value(change.old)} → {_value(change.new)}"
    elif change.op == "add":
        text = f"{symbol} {what}" + (f" = {_value(change.new)}" if change.field else "")
    else:
        text = f"{symbol} {what}"
    if change.destructive:
        text += "  [destructive" + (", forced]" if change.forced else "; needs force: true]")
    if change.detail:
        text += f"  ({change.detail})"
    return text


def render_domain(
    plan: DomainPlan, *, colour: bool, findings: Sequence[str] = (), verbose: bool = False
) -> list[str]:
    lines: list[str] = []
    by_resource: dict[str, list[Change]] = {}
    for change in plan.changes:
        by_resource.setdefault(change.resource, []).append(change)
    for resource in sorted(by_resource):
        lines.append(f"{resource}:")
        for change in by_resource[resource]:
            line = change_line(change)
            lines.append("  " + _paint(line, line[0], colour))
    if plan.steps:
        lines.append(f"  steps ({plan.domain}):")
        for number, step in enumerate(plan.steps, start=1):
            flag = " !destructive" if step.destructive else ""
            lines.append(f"    {number}. {step.tool} [{step.risk}{flag}] {step.reason}")
    for finding in findings:
        lines.append("  " + _paint(f"! {finding}", "!", colour))
    if verbose:
        for noop in plan.noops:
            lines.append(f"  = {noop.resource} {noop.object}: {noop.reason}")
    return lines


def render_plan(
    plan: Plan,
    *,
    colour: bool = False,
    findings: Mapping[str, Sequence[str]] | None = None,
    verbose: bool = False,
) -> str:
    lines: list[str] = []
    counts = {"add": 0, "change": 0, "remove": 0}
    steps = noops = 0
    for domain in plan.domains:
        lines.extend(
            render_domain(
                domain,
                colour=colour,
                findings=(findings or {}).get(domain.domain, ()),
                verbose=verbose,
            )
        )
        for change in domain.changes:
            counts[change.op] += 1
        steps += len(domain.steps)
        noops += len(domain.noops)
    if not plan.has_changes:
        lines.append("No changes. The target matches the specs.")
    else:
        lines.append(
            f"Plan: {counts['add']} to add, {counts['change']} to change, "
            f"{counts['remove']} to remove ({steps} step(s))."
        )
    if noops and not verbose:
        lines.append(f"{noops} item(s) already as declared (-v lists them).")
    return "\n".join(lines) + "\n"


def _paint(text: str, symbol: str, colour: bool) -> str:
    if not colour or symbol not in COLOUR:
        return text
    return f"{COLOUR[symbol]}{text}{RESET}"
