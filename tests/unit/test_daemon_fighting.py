"""reconciler.daemon.fighting with an injected clock: K heals within T is Fighting."""

from __future__ import annotations

from reconciler.daemon.fighting import Fighting


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_three_heals_within_the_window_fight_and_the_hold_doubles_to_the_cap() -> None:
    clock = Clock()
    f = Fighting(clock, heals=3, window=60, hold=1, cap=4)
    assert f.healed("Firewall/f", "nft-monitor: delete rule") is None
    clock.now += 10
    assert f.healed("Firewall/f") is None
    clock.now += 10
    fight = f.healed("Firewall/f")
    assert fight is not None
    assert (fight.heals, fight.hold, fight.by) == (3, 1.0, "nft-monitor: delete rule")
    holds = []
    for _ in range(4):
        clock.now += 1
        again = f.healed("Firewall/f", "nft-monitor: x")
        assert again is not None
        holds.append(again.hold)
    assert holds == [2.0, 4.0, 4.0, 4.0]
    assert set(f.fighting()) == {"Firewall/f"}
    assert f.healed("Network/n") is None  # another resource is counted on its own


def test_heals_spread_wider_than_the_window_never_fight_and_calm_forgets() -> None:
    clock = Clock()
    f = Fighting(clock, heals=3, window=60, hold=1)
    for _ in range(10):
        assert f.healed("Network/n") is None
        clock.now += 31  # at most two heals within any 60 s
    for _ in range(3):
        f.healed("Storage/s")
    assert not f.calm("Storage/s")
    clock.now += 61
    assert f.calm("Storage/s") and f.fighting() == {}
    assert f.healed("Storage/s") is None  # counting starts again


def test_forget_on_a_spec_change_resets_the_count() -> None:
    clock = Clock()
    f = Fighting(clock, heals=2, window=60)
    f.healed("Models/m")
    f.forget("Models/m")
    assert f.healed("Models/m") is None
