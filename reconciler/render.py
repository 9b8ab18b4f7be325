"""Plans and statuses as text: terraform-style `+ - ~` trees, optional colour.

`render_plan` groups changes by resource (`+` add, `-` remove, `~` change,
with old → new), lists the steps that satisfy them and the verifier's
findings, shows every domain or resource that could not be planned with its
error (`!` lines), and ends with a summary line that never says "No changes"
when anything could not be planned. Colour only on a terminal and never when
NO_COLOR is set. Output is deterministic for the same plan. Used by the CLI
(plan, apply, diff, rollback).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from reconciler.sdk.plan import Change, DomainPlan, Plan, PlanFailure, canonical_json

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
    plan: DomainPlan,
    *,
    colour: bool,
    failures: Sequence[PlanFailure] = (),
    verbose: bool = False,
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
    if failures and not lines:  # nothing else names the domain
        lines.append(f"{plan.domain}:")
    lines.extend(failure_lines(failures, colour=colour))
    if verbose:
        for noop in plan.noops:
            lines.append(f"  = {noop.resource} {noop.object}: {noop.reason}")
    return lines


def failure_lines(failures: Sequence[PlanFailure], *, colour: bool) -> list[str]:
    """`! ...` lines: a domain's own failure first (one line per finding), then the
    resources it is attributed to or that were left out."""
    lines: list[str] = []
    said = {line for f in failures if not f.resource for line in f.message.splitlines()}
    for failure in failures:
        prefix = f"{failure.resource}: " if failure.resource else ""
        own = failure.message.splitlines()
        if failure.resource and own and all(line in said for line in own):
            text = f"! {prefix}{failure.reason}: caused the finding above"
            lines.append("  " + _paint(text, "!", colour))
            continue
        for part in own or [""]:
            text = f"! {prefix}{failure.reason}: {_value(part, 400)}"
            lines.append("  " + _paint(text, "!", colour))
    return lines


def render_plan(plan: Plan, *, colour: bool = False, verbose: bool = False) -> str:
    lines: list[str] = []
    counts = {"add": 0, "change": 0, "remove": 0}
    steps = noops = 0
    by_domain: dict[str, list[PlanFailure]] = {}
    for failure in plan.failures:
        by_domain.setdefault(failure.domain, []).append(failure)
    for domain in plan.domains:
        lines.extend(
            render_domain(
                domain, colour=colour, failures=by_domain.pop(domain.domain, ()), verbose=verbose
            )
        )
        for change in domain.changes:
            counts[change.op] += 1
        steps += len(domain.steps)
        noops += len(domain.noops)
    for name, failures in by_domain.items():  # domains that could not be planned at all
        lines.append(_paint(f"{name}: could not be planned", "!", colour))
        lines.extend(failure_lines(failures, colour=colour))
    totals = (
        f"Plan: {counts['add']} to add, {counts['change']} to change, "
        f"{counts['remove']} to remove ({steps} step(s))"
    )
    if plan.failures:
        problem = failure_summary(plan)
        lines.append(
            f"{totals}. INCOMPLETE: {problem}."
            if plan.has_changes
            else f"Planning failed: {problem}; the target may not match the specs."
        )
    elif not plan.has_changes:
        lines.append("No changes. The target matches the specs.")
    else:
        lines.append(totals + ".")
    if noops and not verbose:
        lines.append(f"{noops} item(s) already as declared (-v lists them).")
    return "\n".join(lines) + "\n"


def failure_summary(plan: Plan) -> str:
    """One phrase per failed domain and per left-out resource, e.g.
    `domain storage could not be planned (ToolFailed)`."""
    words = {
        "PlanRejected": "was refused by the verifier",
        "DestructiveRefused": "has a destructive step without force: true",
    }
    parts: list[str] = []
    for failure in plan.failures:
        if failure.resource and plan.blocked(failure.domain):
            continue  # named in the domain's own lines
        who = failure.resource or f"domain {failure.domain}"
        what = words.get(failure.reason, "could not be planned")
        parts.append(f"{who} {what} ({failure.reason})")
    return "; ".join(parts)


def _paint(text: str, symbol: str, colour: bool) -> str:
    if not colour or symbol not in COLOUR:
        return text
    return f"{COLOUR[symbol]}{text}{RESET}"
