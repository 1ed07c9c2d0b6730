"""The host-side thermal watchdog as a table: events in, the rule that trips (or none) out."""

from __future__ import annotations

import math

import pytest

from printforge.hardware.marlin.config import MarlinConfig, ThermalConfig
from printforge.hardware.marlin.protocol import parse_temperatures
from printforge.hardware.marlin.thermal import ThermalTrip, ThermalWatch

# Events: ("cmd", t, command) a command the printer took; ("rep", t, report) a temperature
# report as Marlin prints it; ("tick", t) the clock's check.
Event = tuple[str, float, str] | tuple[str, float]


def _rep(
    t: float, hotend: float, target: float = 210.0, bed: float = 60.0, btgt: float = 60.0
) -> Event:
    return ("rep", t, f"T:{hotend:.2f} /{target:.2f} B:{bed:.2f} /{btgt:.2f} @:0 B@:0")


def _heating(
    start: float, target: float, tau: float, t0: float, t1: float, step: float
) -> list[float]:
    """Readings of a healthy first-order heater (the virtual printer's model), every `step`."""
    out: list[float] = []
    t = t0
    while t <= t1:
        out.append(target + (start - target) * math.exp(-(t - t0) / tau))
        t += step
    return out


def _run(events: list[Event], config: ThermalConfig | None = None) -> ThermalTrip | None:
    watch = ThermalWatch(config or ThermalConfig(), max_hotend_c=280.0, max_bed_c=110.0)
    for event in events:
        kind, t = event[0], event[1]
        trip = None
        if kind == "cmd":
            watch.on_command(str(event[2]), t)  # type: ignore[misc]
        elif kind == "rep":
            temps = parse_temperatures(str(event[2]))  # type: ignore[misc]
            assert temps is not None
            trip = watch.on_report(temps, t)
        else:
            trip = watch.check(t)
        if trip is not None:
            return trip
    return None


def _healthy_print() -> list[Event]:
    """Cold start, bed then hotend wait, first-layer 215 then 205, a raise to 230, cool-down."""
    ev: list[Event] = [("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00 @:0 B@:0")]
    ev += [("cmd", 0.5, "M140 S60"), ("cmd", 0.6, "M104 S215")]
    hot = _heating(22, 215, 20, 0.6, 200, 2.0)
    bed = _heating(22, 60, 40, 0.5, 200, 2.0)
    for i, (h, b) in enumerate(zip(hot, bed, strict=False)):
        t = 1.0 + 2.0 * i
        ev.append(_rep(t, h, 215, b, 60))
        ev.append(("tick", t + 0.5))
    ev.append(("cmd", 205.0, "M104 S205"))  # after the first layer: lower
    for i, h in enumerate(_heating(215, 205, 20, 205, 300, 2.0)):
        ev.append(_rep(206.0 + 2 * i, h, 205))
    ev.append(("cmd", 301.0, "M109 S230"))  # a raise mid-print, waited for
    for i, h in enumerate(_heating(205, 230, 20, 301, 500, 2.0)):
        ev.append(_rep(302.0 + 2 * i, h, 230))
    ev += [("cmd", 501.0, "M104 S0"), ("cmd", 501.1, "M140 S0")]
    for i, h in enumerate(_heating(230, 22, 20, 501, 800, 2.0)):
        ev.append(_rep(502.0 + 2 * i, h, 0, max(22.0, 60 - i), 0))
    ev.append(("tick", 2000.0))  # heaters off: silence is fine
    return ev


CASES: list[tuple[str, list[Event], str | None, tuple[str, ...]]] = [
    ("healthy print", _healthy_print(), None, ()),
    (
        "heating failed: the reading never moves",
        [
            ("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00"),
            ("cmd", 1.0, "M109 S210"),
            *[_rep(2.0 + 2 * i, 22.3, 210, 22, 0) for i in range(15)],
        ],
        "heating_failed",
        (
            "hotend heating failed",
            "22.0 °C then 22.3 °C",
            "210.0 °C",
            "heating_gain_c 2 °C within heating_period_s 20 s",
        ),
    ),
    (
        "heating failed on the bed uses the bed's period",
        [
            ("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00"),
            ("cmd", 1.0, "M190 S60"),
            *[_rep(2.0 + 2 * i, 22, 0, 22.5, 60) for i in range(40)],
        ],
        "heating_failed",
        ("bed heating failed", "bed_heating_period_s 60 s"),
    ),
    (
        "bed still rising slowly after 50 s: no trip yet (its period is 60 s)",
        [
            ("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00"),
            ("cmd", 1.0, "M190 S60"),
            *[_rep(2.0 + 2 * i, 22, 0, 22.5, 60) for i in range(25)],
        ],
        None,
        (),
    ),
    (
        "heating stalls half way: the check re-arms each period",
        [
            ("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00"),
            ("cmd", 1.0, "M104 S210"),
            *[_rep(2.0 + 2 * i, min(22 + 10 * i, 120), 210, 22, 0) for i in range(40)],
        ],
        "heating_failed",
        ("120.0 °C then 120.0 °C",),
    ),
    (
        "a target close to the reading is not watched (Marlin's margin)",
        [
            ("rep", 0.0, "T:205.00 /205.00 B:22.00 /0.00"),
            ("cmd", 1.0, "M104 S210"),
            *[_rep(2.0 + 2 * i, 205.5, 210, 22, 0) for i in range(30)],
        ],
        None,
        (),
    ),
    (
        "thermal runaway: at target, then falls and stays low",
        [
            ("rep", 0.0, "T:210.00 /210.00 B:60.00 /60.00"),
            *[_rep(1.0 + i, 210 - (0 if i < 5 else 3 * (i - 4)), 210) for i in range(60)],
        ],
        "thermal_runaway",
        (
            "hotend thermal runaway",
            "below its target 210.0 °C",
            "for 4",
            "runaway_hysteresis_c 4 °C for runaway_period_s 40 s",
        ),
    ),
    (
        "a dip that recovers within the period does not trip",
        [
            ("rep", 0.0, "T:210.00 /210.00 B:60.00 /60.00"),
            *[_rep(1.0 + i, 200.0 if 10 <= i < 40 else 210.0, 210) for i in range(100)],
        ],
        None,
        (),
    ),
    (
        "a new target restarts the runaway rule (cooling to a lower target is fine)",
        [
            ("rep", 0.0, "T:230.00 /230.00 B:60.00 /60.00"),
            ("cmd", 0.5, "M104 S200"),
            *[_rep(1.0 + i, max(200.0, 230 - i), 200) for i in range(80)],
        ],
        None,
        (),
    ),
    (
        "a heater that dies in its last few degrees, before reaching the target",
        [
            ("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00"),
            ("cmd", 1.0, "M109 S210"),
            _rep(10.0, 180.0, 210, 22, 0),
            _rep(20.0, 206.0, 210, 22, 0),  # within 6 °C: the heating check is over
            *[_rep(22.0 + 2 * i, 206.0 - 3 * i, 210, 22, 0) for i in range(40)],
        ],
        "thermal_runaway",
        ("hotend thermal runaway", "below its highest reading 206.0 °C on the way to 210.0 °C"),
    ),
    (
        "a heater creeping up to its target slowly never trips",
        [
            ("rep", 0.0, "T:200.00 /0.00 B:22.00 /0.00"),
            ("cmd", 1.0, "M104 S210"),
            *[_rep(2.0 + 2 * i, 205.0 + 0.02 * i, 210, 22, 0) for i in range(100)],
        ],
        None,
        (),
    ),
    (
        "a lower target, then the heater dies before the next report",
        [
            _rep(0.0, 215.0, 215),
            ("cmd", 1.0, "M104 S205"),
            *[_rep(2.0 + 2 * i, 22.0, 205) for i in range(30)],
        ],
        "thermal_runaway",
        ("hotend thermal runaway", "22.0 °C then 22.0 °C", "below its target 205.0 °C"),
    ),
    (
        "bed runaway uses the bed's 2 °C and 20 s",
        [
            ("rep", 0.0, "T:22.00 /0.00 B:60.00 /60.00"),
            *[_rep(1.0 + i, 22, 0, 60 if i < 3 else 57, 60) for i in range(30)],
        ],
        "thermal_runaway",
        (
            "bed thermal runaway",
            "57.0 °C",
            "bed_runaway_hysteresis_c 2 °C for bed_runaway_period_s 20",
        ),
    ),
    (
        "over temperature at any time, even with the heater off",
        [("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00"), _rep(1.0, 296.0, 0, 22, 0)],
        "over_temperature",
        ("hotend over temperature", "296.0 °C", "295.0 °C", "max_hotend_temp 280 + over_temp"),
    ),
    (
        "over temperature of the bed",
        [_rep(1.0, 22, 0, 121.0, 100)],
        "over_temperature",
        ("bed over temperature", "max_bed_temp 110 + bed_over_temp_margin_c 10"),
    ),
    (
        "just under the limit is fine",
        [_rep(1.0, 294.9, 280, 119.9, 110)],
        None,
        (),
    ),
    (
        "stale reports while heating",
        [
            ("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00"),
            ("cmd", 1.0, "M104 S210"),
            _rep(2.0, 60, 210, 22, 0),
            ("tick", 20.0),
            ("tick", 32.5),
        ],
        "stale_reports",
        ("no temperature report for 30.5 s", "hotend target 210.0 °C, last 60.0 °C"),
    ),
    (
        "silence with every heater off is fine",
        [("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00"), ("tick", 1000.0)],
        None,
        (),
    ),
    (
        "stale counts from when the heater went on, not from an old report",
        [("rep", 0.0, "T:22.00 /0.00 B:22.00 /0.00"), ("cmd", 100.0, "M140 S60"), ("tick", 120.0)],
        None,
        (),
    ),
    (
        "a second hotend by T parameter, reported as T0/T1",
        [
            ("rep", 0.0, "T:22.0 /0.0 B:22.0 /0.0 T0:22.0 /0.0 T1:22.0 /0.0"),
            ("cmd", 1.0, "M104 T1 S240"),
            *[
                ("rep", 2.0 + 2 * i, "T:22.0 /0.0 B:22.0 /0.0 T0:22.0 /0.0 T1:22.1 /240.0")
                for i in range(15)
            ],
        ],
        "heating_failed",
        ("hotend1 heating failed",),
    ),
    (
        "a tool change sends M104 without T to the new tool",
        [
            ("rep", 0.0, "T:22.0 /0.0 B:22.0 /0.0 T0:22.0 /0.0 T1:22.0 /0.0"),
            ("cmd", 0.5, "T1"),
            ("cmd", 1.0, "M104 S240"),
            *[("rep", 2.0 + 2 * i, "T0:22.0 /0.0 T1:22.0") for i in range(15)],
        ],
        "heating_failed",
        ("hotend1 heating failed",),
    ),
    (
        "a target from the host before any report: the first reading is the baseline",
        [("cmd", 0.0, "M104 S210"), *[_rep(30.0 + 2 * i, 22.0, 210, 22, 0) for i in range(12)]],
        "heating_failed",
        ("22.0 °C then 22.0 °C 2",),
    ),
]


@pytest.mark.parametrize(
    ("events", "rule", "words"),
    [pytest.param(ev, rule, words, id=name) for name, ev, rule, words in CASES],
)
def test_rules(events: list[Event], rule: str | None, words: tuple[str, ...]) -> None:
    trip = _run(events)
    if rule is None:
        assert trip is None, trip
        return
    assert trip is not None and trip.rule == rule
    for word in words:
        assert word in trip.message, (word, trip.message)


def test_a_tripped_watch_stays_quiet() -> None:
    watch = ThermalWatch(ThermalConfig(), max_hotend_c=280.0, max_bed_c=110.0)
    temps = parse_temperatures("T:300.0 /0.0 B:22.0 /0.0")
    assert temps is not None
    first = watch.on_report(temps, 1.0)
    assert first is not None and watch.tripped is first
    assert watch.on_report(temps, 2.0) is None
    assert watch.check(100.0) is None


def test_stale_floor_and_no_heated_bed() -> None:
    # Never judge silence shorter than the floor the driver gives (a few report intervals).
    watch = ThermalWatch(
        ThermalConfig(stale_report_s=0.1), max_hotend_c=280.0, max_bed_c=0.0, min_stale_s=5.0
    )
    watch.on_command("M104 S200", 0.0)
    assert watch.check(4.9) is None
    trip = watch.check(5.1)
    assert trip is not None and trip.rule == "stale_reports"
    # A profile without a heated bed has no bed limit to trip on.
    watch = ThermalWatch(ThermalConfig(), max_hotend_c=280.0, max_bed_c=0.0)
    temps = parse_temperatures("T:22.0 /0.0 B:130.0 /0.0")
    assert temps is not None
    assert watch.on_report(temps, 1.0) is None


def test_commands_that_set_no_target_are_ignored() -> None:
    watch = ThermalWatch(ThermalConfig(), max_hotend_c=280.0, max_bed_c=110.0)
    for command in ("M104", "M104 F1.5 B250", "G1 X10 S200", "M106 S255", "M105", ""):
        watch.on_command(command, 0.0)
    assert watch.heating == []
    watch.on_command("m190 r55 ; lower case and a comment", 0.0)
    assert watch.heating == ["bed"]
    assert watch.heaters["bed"].target == 55.0


def test_config_defaults_scaling_and_refusals() -> None:
    cfg = ThermalConfig()
    # Marlin's stock Configuration_adv.h figures.
    assert (cfg.heating_gain_c, cfg.heating_period_s) == (2.0, 20.0)
    assert (cfg.runaway_hysteresis_c, cfg.runaway_period_s) == (4.0, 40.0)
    assert (cfg.bed_heating_gain_c, cfg.bed_heating_period_s) == (2.0, 60.0)
    assert (cfg.bed_runaway_hysteresis_c, cfg.bed_runaway_period_s) == (2.0, 20.0)
    fast = cfg.scaled(20.0)
    assert fast.heating_period_s == 1.0 and fast.bed_runaway_period_s == 1.0
    assert fast.stale_report_s == 1.5 and fast.runaway_hysteresis_c == 4.0
    marlin = MarlinConfig.model_validate({"port": "/dev/x", "thermal": {"enabled": False}})
    assert marlin.thermal.enabled is False
    with pytest.raises(ValueError, match="runaway_period"):
        MarlinConfig.model_validate({"port": "/dev/x", "thermal": {"runaway_period": 5}})
    with pytest.raises(ValueError, match="heating_period_s"):
        ThermalConfig(heating_period_s=0)
