"""Tools of the `firewall` namespace: aiOS's three rule tools and the declarative table tools.

aiOS-shaped: `firewall.rules`, `firewall.add_rule`, `firewall.delete_rule`
(contract §3.2; table `inet filter`; add/delete are reversible here through a
snapshot of that table). Declarative: `firewall.apply` replaces whole tables
in one atomic `nft -f` transaction, `firewall.check` runs the same script
under `nft -c`, `firewall.ruleset` lists tables as canonical text or JSON,
`firewall.canonicalize` loads tables into a throwaway namespace and lists
them back. Every nft call runs in the context's namespace (registry.drivers.nft.ruleset).
Specs: contract.catalogue.firewall. Collected by registry.handlers.index.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import OrderedDict

from contract.catalogue import firewall as firewall_defs
from contract.tooldef import JSON
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext
from registry.drivers.nft import ruleset as nft
from registry.drivers.nft.ruleset import Ref

FILTER: Ref = ("inet", "filter")


def _key(r: Ref) -> str:
    return f"nft:{r[0]}/{r[1]}"


async def _snapshot(ctx: ToolContext, refs: list[Ref]) -> JSON:
    # An unchanged table (same nf_tables generation) was usually just listed by observe,
    # with handles (firewall.ruleset {handles: true}): the same listing, from memory.
    texts = await nft.list_tables(ctx, refs, cached=True, handles=True)
    return {
        "tables": [
            {"family": r[0], "name": r[1], "text": None if t is None else nft.strip_handles(t)[0]}
            for r, t in texts.items()
        ]
    }


async def _restore(ctx: ToolContext, snapshot: JSON) -> None:
    try:
        tables = {(str(t["family"]), str(t["name"])): t["text"] for t in snapshot["tables"]}
    except (KeyError, TypeError):
        raise ToolError("not a firewall snapshot") from None
    await nft.load(ctx, nft.replace_script(tables))


class _FilterTableBackup(Tool):
    """aiOS's tools act on `inet filter`; the before-image is that table's text."""

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (_key(FILTER),)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        return await _snapshot(ctx, [FILTER])

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        await _restore(ctx, snapshot)


class FirewallRules(Tool):
    spec = firewall_defs.FIREWALL_RULES

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        return {"rules": nft.aios_rules(await nft.list_ruleset(ctx))}


_IDENT = re.compile(firewall_defs.NFT_IDENT_RE)


def _check_ident(value: str, what: str) -> None:
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise ToolError(f"invalid {what} name {value!r}")


class FirewallAddRule(_FilterTableBackup):
    spec = firewall_defs.FIREWALL_ADD_RULE

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        chain = str(args["chain"])
        _check_ident(chain, "chain")
        try:
            # nft joins its argv into one command line: only a checked statement goes in
            joined = nft.check_rule(f"{args['rule']} {args['action']}")
        except ToolError as exc:
            raise ToolError(f"Failed to add nft rule: {exc}") from None
        argv = ["nft", "add", "rule", "inet", "filter", chain, joined]
        result = await ctx.runner.run(ctx.in_netns(argv), check=False)
        if result.returncode != 0:
            raise ToolError(f"Failed to add nft rule: {result.err}")
        return {"added": True}


class FirewallDeleteRule(_FilterTableBackup):
    spec = firewall_defs.FIREWALL_DELETE_RULE

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        chain, index = str(args["chain"]), int(args["index"])
        _check_ident(chain, "chain")
        listing = await ctx.runner.run(
            ctx.in_netns(["nft", "-a", "list", "chain", "inet", "filter", chain]), check=False
        )
        if listing.returncode != 0:
            raise ToolError(f"Failed to list nft chain {chain}: {listing.err}")
        handles = [
            line.rsplit("# handle", 1)[1].strip()
            for line in listing.text.splitlines()
            if "# handle" in line
            and not line.strip().startswith(("table ", "chain ", "type ", "policy "))
        ]
        if index >= len(handles):
            raise ToolError(
                f"Rule index {index} not found in chain {chain} (only {len(handles)} rules)"
            )
        if not (handles[index].isascii() and handles[index].isdigit()):  # nft joins its argv
            raise ToolError(f"Failed to delete nft rule: unreadable handle {handles[index]!r}")
        argv = ["nft", "delete", "rule", "inet", "filter", chain, "handle", handles[index]]
        result = await ctx.runner.run(ctx.in_netns(argv), check=False)
        if result.returncode != 0:
            raise ToolError(f"Failed to delete nft rule: {result.err}")
        return {"deleted": True}


def _refs(args: JSON) -> list[Ref]:
    tables = [nft.ref(t) for t in args.get("tables", ())]
    tables += [nft.ref(t) for t in args.get("patch", ())]
    return tables + [nft.ref(t) for t in args.get("delete", ())]


class FirewallApply(Tool):
    spec = firewall_defs.FIREWALL_APPLY

    def touches(self, args: JSON) -> tuple[str, ...]:
        return tuple(_key(r) for r in dict.fromkeys(_refs(args)))

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        return await _snapshot(ctx, _refs(args))

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        await _restore(ctx, snapshot)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        patches = list(args.get("patch", ()))
        script = nft.render(args.get("tables", ()), args.get("delete", ()), patches)
        out: JSON = {
            "applied": [
                {"family": r[0], "name": r[1], "rules": n} for r, n in script.rules.items()
            ],
            "deleted": [
                {"family": r[0], "name": r[1]} for r in map(nft.ref, args.get("delete", ()))
            ],
        }
        if not patches:
            await nft.load(ctx, script.text, origins=script.origins)
            return out
        # A patch runs against the text it was planned on (the listing observe made,
        # from memory while no commit came since); the handles it names guard the rest.
        listings = await nft.patch_listings(ctx, patches)
        before = nft.current_generation(ctx, listings)
        printed = await nft.load(ctx, script.text, origins=script.origins, echo=True)
        remembered = nft.remember_patched(ctx, before, listings, patches, printed)
        out["patched"] = [
            {"family": r[0], "name": r[1], "ops": len(p["ops"]), "predicted": remembered > 0}
            for r, p in zip(map(nft.ref, patches), patches, strict=True)
        ]
        return out


class FirewallCheck(Tool):
    spec = firewall_defs.FIREWALL_CHECK

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        patches = list(args.get("patch", ()))
        script = nft.render(args.get("tables", ()), args.get("delete", ()), patches)
        if patches:
            await nft.patch_listings(ctx, patches)
        await nft.load(ctx, script.text, origins=script.origins, check=True)
        return {"ok": True}


class FirewallRuleset(Tool):
    """Named tables: one `nft list table` each, run concurrently (nft 1.0.6 cannot list
    from an `-f` script, and listing the whole ruleset would also list tables nobody
    asked for); no tables: one `nft list ruleset`, cut into tables."""

    spec = firewall_defs.FIREWALL_RULESET

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        as_json = args.get("format", "text") == "json"
        handles = bool(args.get("handles")) and not as_json
        wanted = [nft.ref(t) for t in args.get("tables", ())] if "tables" in args else None
        if wanted is None:
            found = await self._all(ctx, as_json=as_json, handles=handles)
        else:
            found = await self._some(ctx, wanted, as_json=as_json, handles=handles)
        out = []
        for (family, name), value in found.items():
            entry: JSON = {"family": family, "name": name, "exists": value is not None}
            if value is not None and handles:
                text, chains = nft.strip_handles(str(value))
                entry["text"] = nft.canonical(text)
                entry["handles"] = {c: " ".join(map(str, hs)) for c, hs in chains.items()}
            elif value is not None:
                entry["json" if as_json else "text"] = value
            out.append(entry)
        return {"tables": out}

    async def _all(self, ctx: ToolContext, *, as_json: bool, handles: bool) -> dict[Ref, object]:
        text = await nft.list_ruleset(ctx, json_format=as_json, cached=True, handles=handles)
        if handles:
            return dict(nft.split_ruleset(text))
        if not as_json:
            return {r: nft.canonical(t) for r, t in nft.split_ruleset(text).items()}
        grouped: dict[Ref, list[JSON]] = {}
        for obj in _objects(text):
            ((kind, body),) = obj.items()
            table = body["name"] if kind == "table" else body.get("table")
            grouped.setdefault((body["family"], table), []).append(obj)
        return dict(grouped)

    async def _some(
        self, ctx: ToolContext, refs: list[Ref], *, as_json: bool, handles: bool
    ) -> dict[Ref, object]:
        listed = await asyncio.gather(
            *(
                nft.list_table(ctx, r, json_format=as_json, cached=True, handles=handles)
                for r in refs
            )
        )
        out: dict[Ref, object] = {}
        for r, text in zip(refs, listed, strict=True):
            if text is None or handles:
                out[r] = text
            else:
                out[r] = _objects(text) if as_json else nft.canonical(text)
        return out


def _objects(text: str) -> list[JSON]:
    try:
        items = json.loads(text).get("nftables", [])
    except (json.JSONDecodeError, AttributeError):
        raise ToolError("nft -j printed unreadable JSON") from None
    return [o for o in items if isinstance(o, dict) and "metainfo" not in o]


# Each name is one argv word after `dev` (never a keyword); referenced_interfaces
# passes only names of the allow-list.
_CANON_SCRIPT = (
    'for n in "$@"; do ip link add dev "$n" type ifb || exit 3; done; '
    "nft -f - || exit 4; exec nft list ruleset"
)
_CACHE: OrderedDict[str, list[JSON]] = OrderedDict()
CACHE_SIZE = 64


class FirewallCanonicalize(Tool):
    spec = firewall_defs.FIREWALL_CANONICALIZE

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        tables = list(args["tables"])
        digest = hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()
        if digest in _CACHE:
            _CACHE.move_to_end(digest)
            return {"tables": [dict(t) for t in _CACHE[digest]]}
        script = nft.render(tables)
        devices = [n for n in nft.referenced_interfaces(tables) if n != "lo"]
        argv = ["unshare", "--net", "--", "sh", "-c", _CANON_SCRIPT, "sh", *devices]
        result = await ctx.runner.run(argv, stdin=script.text.encode(), check=False)
        if result.returncode == 4:
            raise ToolError(nft.map_error(result.err, script.origins))
        if result.returncode != 0:
            raise ToolError(f"canonicalize in a throwaway namespace failed: {result.err}")
        listed = nft.split_ruleset(result.text)
        out = [
            {"family": r[0], "name": r[1], "text": nft.canonical(listed.get(r, ""))}
            for r in map(nft.ref, tables)
        ]
        _CACHE[digest] = out
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        return {"tables": [dict(t) for t in out]}


TOOLS: tuple[type[Tool], ...] = (
    FirewallRules,
    FirewallAddRule,
    FirewallDeleteRule,
    FirewallRuleset,
    FirewallApply,
    FirewallCheck,
    FirewallCanonicalize,
)
