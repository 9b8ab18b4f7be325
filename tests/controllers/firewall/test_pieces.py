"""Unit tests of the firewall controller's pure pieces: service compilation, text
parsing and export, change details, the effect model, transactions, forced().

No nft: canonical texts here are copied from real `nft list` output (the
fixture cases hold more, recorded by tests/controllers/firewall/record.py).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from ruamel.yaml import YAML

from controllers.firewall import CONTROLLER
from controllers.firewall.desired import compile_service, structured
from controllers.firewall.details import difference, short, summary
from controllers.firewall.diff import same_text
from controllers.firewall.export import export, exported_table
from controllers.firewall.parse import parse_table
from controllers.firewall.state import Canonical, build_state, table_digest
from reconciler.sdk.controller import Desired
from reconciler.sdk.plan import Step
from specs.firewall import Firewall, Service, Table
from specs.loader import load_documents

TEXT = """table inet filter {
\tset lan_services {
\t\ttype inet_service
\t\tcomment "DNS, DHCP, NTP"
\t\telements = { 53, 67, 123 }
\t}

\tset ifs {
\t\ttype ifname
\t\telements = { "lo",
\t\t\t     "eth0" }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiifname @ifs udp dport @lan_services accept
\t\ttcp dport { 22, 9090 } counter accept comment "mgmt"
\t}

\tchain forward {
\t\ttype filter hook forward priority filter + 10; policy accept;
\t}

\tchain regular {
\t}
}
"""


def service(**values: Any) -> Service:
    return Service.model_validate(values)


@pytest.mark.parametrize(
    "values,family,rules",
    [
        ({"name": "ssh", "port": 22}, "inet", ['tcp dport 22 accept comment "ssh"']),
        ({"port": "8000-8080"}, "inet", ["tcp dport 8000-8080 accept"]),
        (
            {"ports": [53, 5353], "protocol": "udp", "iif": "br-lan", "action": "drop"},
            "inet",
            ['iifname "br-lan" udp dport { 53, 5353 } drop'],
        ),
        (
            {"name": "console", "port": 9090, "from": ["10.42.0.0/24", "fd42::/64"]},
            "inet",
            [
                'ip saddr 10.42.0.0/24 tcp dport 9090 accept comment "console"',
                'ip6 saddr fd42::/64 tcp dport 9090 accept comment "console"',
            ],
        ),
        (
            {"port": 25, "action": "reject", "from": ["10.0.0.0/8", "192.168.0.0/16"]},
            "ip",
            ["ip saddr { 10.0.0.0/8, 192.168.0.0/16 } tcp dport 25 reject"],
        ),
        ({"port": 25, "from": ["fd00::/8"]}, "ip", []),
        (
            {"port": 25, "from": ["10.0.0.0/8", "fd00::/8"]},
            "ip6",
            ["ip6 saddr fd00::/8 tcp dport 25 accept"],
        ),
    ],
)
def test_compile_service(values: dict[str, Any], family: str, rules: list[str]) -> None:
    assert compile_service(service(**values), family) == rules


def test_structured_appends_services_after_rules() -> None:
    table = Table.model_validate(
        {
            "name": "t",
            "sets": [{"name": "s", "type": "inet_service", "elements": [22]}],
            "chains": [
                {
                    "name": "input",
                    "type": "filter",
                    "hook": "input",
                    "priority": "filter + 10",
                    "rules": ["ct state established accept"],
                    "services": [{"port": 22}],
                },
                {"name": "r"},
            ],
        }
    )
    assert structured(table) == {
        "family": "inet",
        "name": "t",
        "sets": [{"name": "s", "type": "inet_service", "elements": [22]}],
        "chains": [
            {
                "name": "input",
                "type": "filter",
                "hook": "input",
                "priority": "filter + 10",
                "rules": ["ct state established accept", "tcp dport 22 accept"],
            },
            {"name": "r", "rules": []},
        ],
    }


def test_parse_table() -> None:
    parsed = parse_table(TEXT)
    assert [s.name for s in parsed.sets] == ["lan_services", "ifs"]
    assert parsed.sets[0].elements == ("53", "67", "123")
    assert parsed.sets[0].comment == "DNS, DHCP, NTP"
    assert parsed.sets[1].elements == ('"lo"', '"eth0"')
    chain = parsed.chains[0]
    assert (chain.type, chain.hook, chain.priority, chain.policy) == (
        "filter",
        "input",
        "filter",
        "drop",
    )
    assert chain.rules[-1] == 'tcp dport { 22, 9090 } counter accept comment "mgmt"'
    assert parsed.chains[1].priority == "filter + 10"
    assert parsed.chains[2].hook is None and parsed.chains[2].rules == ()
    assert not parsed.unknown


def test_export_validates_and_keeps_everything() -> None:
    table = exported_table(TEXT)
    assert table == {
        "family": "inet",
        "name": "filter",
        "sets": [
            {
                "name": "lan_services",
                "type": "inet_service",
                "elements": [53, 67, 123],
                "comment": "DNS, DHCP, NTP",
            },
            {"name": "ifs", "type": "ifname", "elements": ["lo", "eth0"]},
        ],
        "chains": [
            {
                "name": "input",
                "type": "filter",
                "hook": "input",
                "priority": "filter",
                "policy": "drop",
                "rules": [
                    "ct state established,related accept",
                    "iifname @ifs udp dport @lan_services accept",
                    'tcp dport { 22, 9090 } counter accept comment "mgmt"',
                ],
            },
            {
                "name": "forward",
                "type": "filter",
                "hook": "forward",
                "priority": "filter + 10",
                "policy": "accept",
            },
            {"name": "regular"},
        ],
    }


def test_export_documents_load_with_the_loader() -> None:
    state = build_state(
        {("inet", "filter"): TEXT, ("ip", "Filter_2"): "table ip Filter_2 {\n}\n"},
        {},
        complete=True,
    )
    documents = export(state)
    assert [d["metadata"]["name"] for d in documents] == ["inet-filter", "ip-filter-2"]
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump_all(documents, out)
    specset = load_documents([("export.yaml", out.getvalue().encode())])
    assert [r.key for r in specset.resources] == ["Firewall/inet-filter", "Firewall/ip-filter-2"]


@pytest.mark.parametrize(
    "text",
    [
        "table inet t {\n\tflags dormant\n}\n",
        "table inet t {\n\tmap m {\n\t\ttype ipv4_addr : verdict\n\t}\n}\n",
        'table inet t {\n\tchain c {\n\t\tcomment "x"\n\t}\n}\n',
        "table inet t {\n\tset s {\n\t\ttype ipv4_addr\n\t\ttimeout 1h\n\t}\n}\n",
        "table inet t {\n\tset s {\n\t\ttype ipv4_addr . inet_service\n\t}\n}\n",
        "table bridge t {\n\tchain c {\n\t\ttype filter hook input priority out; "
        "policy accept;\n\t}\n}\n",
        "not a table",
    ],
)
def test_export_skips_what_specs_cannot_express(text: str) -> None:
    assert exported_table(text) is None


def test_details() -> None:
    live = TEXT.replace("\t\tct state established,related accept\n", "").replace(
        "policy drop", "policy accept"
    )
    assert difference(live, TEXT) == (
        "chain input: policy accept → drop; +1 -0 rules in chain input: "
        "+ ct state established,related accept"
    )
    first, second = (
        "\t\tct state established,related accept\n",
        "\t\tiifname @ifs udp dport @lan_services accept\n",
    )
    reordered = TEXT.replace(first + second, second + first)
    assert difference(reordered, TEXT) == "rules reordered in chain input"
    fewer = TEXT.replace("\tchain regular {\n\t}\n", "").replace('"lo",', '"wan0",')
    assert difference(fewer, TEXT) == "set ifs: +1 -1 elements; +chain regular (0 rules)"
    assert summary(TEXT) == "3 chains, 3 rules, 2 sets"
    assert short(TEXT).startswith("3 rules #")


def test_same_text_ignores_counter_values() -> None:
    with_counts = TEXT.replace("counter accept", "counter packets 4 bytes 240 accept")
    assert same_text(with_counts, TEXT)
    assert not same_text(TEXT.replace("counter ", ""), TEXT)


# --- effect model, transactions, destructive / forced ------------------------

SPEC = {
    "family": "inet",
    "name": "filter",
    "chains": [
        {
            "name": "input",
            "type": "filter",
            "hook": "input",
            "priority": "filter",
            "policy": "drop",
            "rules": ["tcp dport 22 accept"],
        }
    ],
}
CANON = (
    "table inet filter {\n\tchain input {\n"
    "\t\ttype filter hook input priority filter; policy drop;\n"
    "\t\ttcp dport 22 accept\n\t}\n}\n"
)


def state(**live: str) -> Any:
    canonical = {
        table_digest(SPEC): Canonical(
            digest=table_digest(SPEC), family="inet", name="filter", text=CANON
        )
    }
    refs = {tuple(k.split("_", 1)): v for k, v in live.items()}
    return build_state(refs, canonical, complete=False)  # type: ignore[arg-type]


def apply(**payload: Any) -> Step:
    return Step(tool="firewall.apply", input=payload, reason="test")


def test_simulate_replaces_and_deletes() -> None:
    before = state(ip_nat="table ip nat {\n}\n")
    after = CONTROLLER.simulate(
        before, [apply(tables=[SPEC]), apply(delete=[{"family": "ip", "name": "nat"}])]
    )
    assert after.live() == {("inet", "filter"): CANON}
    gone = CONTROLLER.simulate(before, [apply(delete=[{"family": "ip6", "name": "x"}])])
    assert gone.live() == before.live()


@pytest.mark.parametrize(
    "steps,message",
    [
        ([Step(tool="firewall.add_rule", input={}, reason="x")], "knows only firewall.apply"),
        ([apply(tables=[SPEC], flush=True)], "unknown firewall.apply input field"),
        ([apply(tables=[{**SPEC, "chains": []}])], "cannot predict table inet/filter"),
        (
            [apply(tables=[SPEC]), apply(delete=[{"family": "inet", "name": "filter"}])],
            "appears twice",
        ),
        ([apply(tables="x")], "must be lists"),
    ],
)
def test_simulate_refuses_what_it_cannot_predict(steps: list[Step], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CONTROLLER.simulate(state(), steps)


def test_transactions_fold_every_apply_into_one_call() -> None:
    steps = [
        apply(tables=[SPEC]),
        Step(tool="firewall.check", input={"tables": [SPEC]}, reason="x"),
        apply(delete=[{"family": "ip", "name": "nat"}]),
        apply(tables=[{**SPEC, "name": "other"}]),
    ]
    calls = CONTROLLER.transactions(steps)
    assert [(c.tool, c.steps) for c in calls] == [
        ("firewall.apply", (0, 2, 3)),
        ("firewall.check", (1,)),
    ]
    assert calls[0].input == {
        "tables": [SPEC, {**SPEC, "name": "other"}],
        "delete": [{"family": "ip", "name": "nat"}],
    }
    assert CONTROLLER.transactions([]) == ()


def test_destructive_uses_nfts_canonical_form_then_the_table_as_written() -> None:
    reason = CONTROLLER.destructive(state(), apply(tables=[SPEC]))
    assert reason is not None and "accepts no the management console" in reason
    safe = {
        **SPEC,
        "chains": [
            {
                **SPEC["chains"][0],  # type: ignore[dict-item]
                "rules": ["ct state established accept", "tcp dport { 22, 9090 } accept"],
            }
        ],
    }
    assert (
        CONTROLLER.destructive(state(), apply(tables=[safe])) is None
    )  # not canonicalized: as written
    named = {
        **SPEC,
        "chains": [
            {
                **SPEC["chains"][0],  # type: ignore[dict-item]
                "rules": ["ct state established accept", "tcp dport { ssh, 9090 } accept"],
            }
        ],
    }
    assert "no ssh" in (CONTROLLER.destructive(state(), apply(tables=[named])) or "")
    assert CONTROLLER.destructive(state(), apply(delete=[{"name": "filter"}])) is None
    assert "not modelled" in (
        CONTROLLER.destructive(state(), Step(tool="firewall.add_rule", input={}, reason="x")) or ""
    )


def _desired(force: bool) -> Desired:
    doc = {
        "apiVersion": "aios.dev/v1",
        "kind": "Firewall",
        "metadata": {"name": "host"},
        "spec": {"tables": [{"name": "filter", "force": force}, {"name": "other"}]},
    }
    return Desired("firewall", (Firewall.model_validate(doc),))


def test_forced_needs_force_on_every_table_the_step_loads() -> None:
    assert CONTROLLER.forced(_desired(True), apply(tables=[SPEC]))
    assert not CONTROLLER.forced(_desired(False), apply(tables=[SPEC]))
    assert not CONTROLLER.forced(_desired(True), apply(tables=[SPEC, {**SPEC, "name": "other"}]))
    assert not CONTROLLER.forced(_desired(True), apply(tables=[{**SPEC, "name": "undeclared"}]))
    assert not CONTROLLER.forced(_desired(True), apply(delete=[{"name": "filter"}]))


def test_fingerprint_follows_live_text_and_canonical_forms() -> None:
    a = CONTROLLER.fingerprint(state(inet_filter=CANON))
    assert a == CONTROLLER.fingerprint(state(inet_filter=CANON))
    assert a != CONTROLLER.fingerprint(state(inet_filter=CANON + "\n"))
    assert a != CONTROLLER.fingerprint(build_state({("inet", "filter"): CANON}, {}, complete=False))


def test_table_digest_is_unambiguous() -> None:
    def digest(rules: Any) -> str:
        return table_digest({"name": "t", "chains": [{"name": "c", "rules": rules}]})

    forms = [["a", "b"], ["a\nb"], ["a", "", "b"], [], "a\nb", ["a b"], ["a", "b", ""]]
    assert len({digest(f) for f in forms}) == len(forms)
    assert digest(["a", "b"]) == digest(["a", "b"])
