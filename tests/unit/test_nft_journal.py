"""registry.drivers.nft.journal without a kernel: notifications read from crafted datagrams,
transactions journaled in order, and listings brought forward (or refused) from them."""

from __future__ import annotations

import struct

from registry.drivers.nft.journal import Journal, Txn, advance, covers, read_messages

LISTING = """table inet filter { # handle 4
\tchain input { # handle 1
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept # handle 2
\t\ttcp dport 22 accept comment "not # handle 3" # handle 3
\t\ttcp dport 80 accept # handle 5
\t}
\tchain other { # handle 6
\t\ttcp dport 80 accept # handle 7
\t}
}
table ip nat { # handle 8
\tchain post { # handle 9
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmasquerade # handle 10
\t}
}
"""


def _attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def _message(msg: int, family: int, *attrs: bytes) -> bytes:
    body = struct.pack("=BBH", family, 0, 0) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (10 << 8) | msg, 0, 0, 0) + body


def delrule(family: int, table: str, chain: str, handle: int) -> bytes:
    return _message(
        8,
        family,
        _attr(1, table.encode() + b"\0"),
        _attr(2, chain.encode() + b"\0"),
        _attr(3, handle.to_bytes(8, "big")),
    )


def newgen(generation: int) -> bytes:
    return _message(15, 0, _attr(1, generation.to_bytes(4, "big")))


def test_a_transaction_of_deletions_is_read_up_to_its_new_generation() -> None:
    data = delrule(1, "filter", "input", 3) + delrule(1, "filter", "other", 7) + newgen(41)
    data += delrule(2, "nat", "post", 10)  # the next transaction has begun
    closed, pending = read_messages(data, Txn())
    assert [(g, t.tables) for g, t in closed] == [
        (41, {("inet", "filter"): [("input", 3), ("other", 7)]})
    ]
    assert pending.tables == {("ip", "nat"): [("post", 10)]} and not pending.everything


def test_anything_but_a_rule_deletion_marks_the_table_changed() -> None:
    newrule = _message(6, 1, _attr(1, b"filter\0"), _attr(2, b"input\0"))
    newset = _message(9, 2, _attr(1, b"nat\0"))
    closed, _ = read_messages(
        delrule(1, "filter", "input", 3) + newrule + newset + newgen(7), Txn()
    )
    assert closed[0][1].tables == {("inet", "filter"): None, ("ip", "nat"): None}


def test_unreadable_messages_mean_the_transaction_was_not_seen_whole() -> None:
    for bad in (
        _message(8, 99, _attr(1, b"filter\0")),  # unknown family
        _message(8, 1, _attr(2, b"input\0")),  # no table
        delrule(1, "filter", "input", 3)[:-6],  # cut short
        _message(8, 1, struct.pack("=HH", 64, 1) + b"filter\0\0"),  # attribute past the end
    ):
        closed, pending = read_messages(bad, Txn())
        assert closed == [] and pending.everything, bad
    closed, _ = read_messages(_message(15, 0), Txn())  # NEWGEN without its id
    assert closed == []


def test_generations_must_follow_each_other_and_the_first_is_not_trusted() -> None:
    log = Journal()
    log._first, log._seen = 11, 10  # as start() leaves it at generation 10
    log.record([(11, Txn()), (12, Txn()), (14, Txn())])  # 13 went missing
    assert log.between(10, 11) is None  # may have begun before the socket was bound
    assert log.between(11, 12) == [Txn()]
    assert log.between(12, 14) is None and log.between(13, 14) is None
    assert log.caught_up(14) and not log.caught_up(15)
    assert not log.wait_for(15, 0.01)
    assert log.between(14, 14) == []


def test_deleted_rules_are_dropped_by_handle_and_the_rest_is_untouched() -> None:
    txns = [Txn(tables={("inet", "filter"): [("input", 3)]}), Txn(tables={("ip", "nat"): None})]
    cmd = "-a list table inet filter"
    out = advance(LISTING, cmd, txns[:1])
    assert out == LISTING.replace(
        '\t\ttcp dport 22 accept comment "not # handle 3" # handle 3\n', ""
    )
    assert advance(LISTING, cmd, txns) == out  # another table's change does not matter
    assert advance(LISTING, "-a list ruleset", txns) is None  # ... to the whole ruleset it does
    both = [Txn(tables={("inet", "filter"): [("other", 7), ("input", 5)]})]
    ruleset = advance(LISTING, "-a list ruleset", both)
    assert ruleset is not None
    assert "# handle 7\n" not in ruleset and "# handle 5\n" not in ruleset
    assert ruleset.count("\n") == LISTING.count("\n") - 2


def test_what_cannot_be_known_is_a_miss() -> None:
    cmd = "-a list table inet filter"
    cases: tuple[dict[tuple[str, str], list[tuple[str, int]] | None], ...] = (
        {("inet", "filter"): None},  # a rule added, a chain changed ...
        {("inet", "filter"): [("input", 99)]},  # no such rule in the text: not its listing
        {("inet", "filter"): [("nosuch", 2)]},
        {("inet", "filter"): [("other", 2)]},  # handle 2 is in another chain
    )
    for tables in cases:
        assert advance(LISTING, cmd, [Txn(tables=tables)]) is None, tables
    deletion = [Txn(tables={("inet", "filter"): [("input", 2)]})]
    assert advance(LISTING, "list table inet filter", deletion) is None  # no handles printed
    assert advance(LISTING, "list table inet filter", [Txn(tables={("ip", "nat"): None})])
    assert advance(LISTING, "-j list table inet filter", []) is None
    assert covers("-a list chain inet filter input") is None
    assert covers("list ruleset") == (False, None)


def test_dropped_notifications_end_the_wait_and_advance_nothing() -> None:
    log = Journal()
    log._first, log._seen = 11, 10
    log.record([(11, Txn()), (12, Txn())])
    log.lost(15)  # ENOBUFS while the kernel was at generation 15
    assert log.caught_up(15) and log.between(12, 15) is None
    log.record([(16, Txn())])
    assert log.between(15, 16) == [Txn()]
