"""Host-side thermal protection: a second line of defence behind the firmware's own.

Many boards ship with Marlin's THERMAL_PROTECTION_HOTENDS/BED disabled, and then a thermistor
that falls out of its block or a heater cartridge that slips out reads room temperature while
the firmware keeps heating. `ThermalWatch` watches what the host can see (every temperature
report and every target the host sends) and applies the firmware's own rules per heater:

- heating failed (Marlin's WATCH_TEMP): after a new target well above the reading, the reading
  must rise by `heating_gain_c` within `heating_period_s`; checked again every period until
  the heater is close to its target;
- thermal runaway (Marlin's THERMAL_PROTECTION): once at target, a reading more than
  `runaway_hysteresis_c` below it for `runaway_period_s`, with the target unchanged; before
  the target is reached, the same fall below the highest reading so far (Marlin has no check
  there, and a heater dying in its last few degrees would escape the heating check);
- over temperature: a reading above the profile's maximum plus a margin, at any time;
- stale reports: no report for `stale_report_s` while any heater has a target.

The first three are judged on readings, so a rule trips at the first report past its period;
only the stale rule needs a clock, from `check()`. The module does no I/O and reads no clock:
every call carries `now` (seconds on any monotonic clock), which keeps it a table-testable pure
state machine. A tripped watch stays tripped and says nothing more.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from printforge.gcode.syntax import parse_line
from printforge.hardware.marlin.config import ThermalConfig
from printforge.hardware.marlin.protocol import Temperatures

__all__ = ["ThermalTrip", "ThermalWatch", "readings"]

# Marlin only starts the heating check when the reading is below the target by more than
# WATCH_TEMP_INCREASE + TEMP_HYSTERESIS + 1 (TEMP_HYSTERESIS is 3 in the stock Configuration.h).
WATCH_EXTRA_C = 4.0
# Marlin counts a heater as at target once the reading reaches it. A heater that settles a
# hair low (the virtual one approaches its target exponentially) is close enough within
# TEMP_WINDOW, 1 °C in the stock Configuration.h.
REACHED_WINDOW_C = 1.0
_TARGET_CODES = frozenset({"M104", "M109", "M140", "M190"})


@dataclass(frozen=True, slots=True)
class ThermalTrip:
    """A rule that tripped: which heater ("" for stale reports), which rule, and why."""

    heater: str
    rule: str  # heating_failed | thermal_runaway | over_temperature | stale_reports
    message: str


@dataclass(slots=True)
class _Rules:
    gain_c: float
    heating_s: float
    hysteresis_c: float
    runaway_s: float
    max_c: float | None
    limit_text: str
    prefix: str  # of the config keys: "" for hotends, "bed_" for the bed


@dataclass(slots=True)
class _Heater:
    name: str  # as the status names it: "hotend", "hotend1", "bed"
    rules: _Rules
    target: float = 0.0
    reading: float | None = None
    # heating check: armed at `watch_from` with reading `watch_base`, judged at `watch_due`
    watch_due: float | None = None
    watch_from: float = 0.0
    watch_base: float = 0.0
    watch_pending: bool = False  # a target came before any reading: arm on the first one
    reached: bool = False
    peak: float = -math.inf  # the highest reading since the target was set, while not reached
    below_since: float | None = None
    below_first: float = 0.0


def readings(temps: Temperatures) -> Iterator[tuple[str, str, float, float | None]]:
    """(key, status name, actual, target or None) of each heater in a report.

    Keys are "hotend0".."hotendN" and "bed" whatever the report's style, so a target the host
    sends for tool 0 meets the reading of a single-extruder board's plain `T:`.
    """
    numbered = any(k[1:].isdigit() for k in temps.values if k.startswith("T"))
    for name, (actual, target) in temps.values.items():
        if name == "B":
            yield "bed", "bed", actual, target
        elif name == "T" and not numbered:
            yield "hotend0", "hotend", actual, target
        elif name.startswith("T") and name[1:].isdigit():
            yield f"hotend{name[1:]}", f"hotend{name[1:]}", actual, target


def _s(seconds: float) -> str:
    return f"{seconds:.3g} s"


def _c(celsius: float) -> str:
    return f"{celsius:.1f} °C"


class ThermalWatch:
    """The four rules over every heater of one printer. Feed it; it answers with a trip."""

    def __init__(
        self,
        config: ThermalConfig,
        *,
        max_hotend_c: float,
        max_bed_c: float,
        min_stale_s: float = 0.0,
    ) -> None:
        """Watch one printer's heaters.

        Args:
            max_hotend_c: the profile's `max_hotend_temp`; readings may exceed it by the margin.
            max_bed_c: the profile's `max_bed_temp` (0: no heated bed to hold to a limit).
            min_stale_s: a floor for the stale rule, a few report intervals.
        """
        self.cfg = config
        self.max_hotend_c = max_hotend_c
        self.max_bed_c = max_bed_c
        self.stale_s = max(config.stale_report_s, min_stale_s)
        self.heaters: dict[str, _Heater] = {}
        self.active_tool = 0
        self.last_report: float | None = None
        self.on_since: float | None = None  # when some heater last went from none on
        self.tripped: ThermalTrip | None = None

    def _heater(self, key: str) -> _Heater:
        heater = self.heaters.get(key)
        if heater is None:
            cfg = self.cfg
            if key == "bed":
                limit = self.max_bed_c + cfg.bed_over_temp_margin_c
                rules = _Rules(
                    cfg.bed_heating_gain_c,
                    cfg.bed_heating_period_s,
                    cfg.bed_runaway_hysteresis_c,
                    cfg.bed_runaway_period_s,
                    # A profile without a heated bed (max 0) has nothing to hold a bed to.
                    limit if self.max_bed_c > 0 else None,
                    f"max_bed_temp {self.max_bed_c:g} + bed_over_temp_margin_c "
                    f"{cfg.bed_over_temp_margin_c:g}",
                    "bed_",
                )
            else:
                rules = _Rules(
                    cfg.heating_gain_c,
                    cfg.heating_period_s,
                    cfg.runaway_hysteresis_c,
                    cfg.runaway_period_s,
                    self.max_hotend_c + cfg.over_temp_margin_c,
                    f"max_hotend_temp {self.max_hotend_c:g} + over_temp_margin_c "
                    f"{cfg.over_temp_margin_c:g}",
                    "",
                )
            name = "hotend" if key == "hotend0" else key
            heater = self.heaters[key] = _Heater(name, rules)
        return heater

    @property
    def heating(self) -> list[str]:
        """Names of the heaters with a target."""
        return [h.name for h in self.heaters.values() if h.target > 0]

    # feeding -------------------------------------------------------------------------------
    def on_command(self, command: str, now: float) -> None:
        """A command the printer has taken: targets (M104/M109/M140/M190) and tool changes."""
        line = parse_line(command)
        if line is None:
            return
        code = line.code
        if code[:1] == "T" and code[1:].isdigit():
            self.active_tool = int(code[1:])
            return
        if code not in _TARGET_CODES:
            return
        words = {k: v for k, v in line.words.items() if v is not None}
        target = words.get("S", words.get("R"))
        if target is None:
            return  # M104 without S/R (or AUTOTEMP's F/B) leaves the target alone
        if code in ("M140", "M190"):
            key = "bed"
        else:
            key = f"hotend{int(words.get('T', self.active_tool))}"
        self.on_target(key, target, now)

    def on_target(self, key: str, target: float, now: float) -> None:
        """A heater's target changed (from a host command or a report): the rules restart."""
        heater = self._heater(key)
        target = max(0.0, target)
        if abs(target - heater.target) < 0.01:
            return
        was_on = bool(self.heating)
        heater.target = target
        heater.reached = False
        heater.peak = heater.reading if heater.reading is not None else -math.inf
        heater.below_since = None
        heater.watch_due = None
        heater.watch_pending = False
        if target > 0:
            if not was_on:
                self.on_since = now
            if heater.reading is None:
                heater.watch_pending = True
            elif heater.reading >= target - REACHED_WINDOW_C:
                # A lower target is reached at once, as in Marlin: a heater that dies while
                # cooling to it must not escape both rules before the next report.
                heater.reached = True
            else:
                self._arm_watch(heater, heater.reading, now)

    def _arm_watch(self, heater: _Heater, reading: float, now: float) -> None:
        # Marlin's start_watching_heater: only a heater far enough below gives a fair test.
        if reading < heater.target - (heater.rules.gain_c + WATCH_EXTRA_C):
            heater.watch_from, heater.watch_base = now, reading
            heater.watch_due = now + heater.rules.heating_s
        else:
            heater.watch_due = None

    def on_report(self, temps: Temperatures, now: float) -> ThermalTrip | None:
        """A temperature report arrived: judge every heater in it."""
        if self.tripped is not None:
            return None
        self.last_report = now
        for key, _name, actual, target in readings(temps):
            if target is not None:
                self.on_target(key, target, now)  # the board's word wins (LCD, resume...)
            trip = self._judge(self._heater(key), actual, now)
            if trip is not None:
                self.tripped = trip
                return trip
        return None

    def check(self, now: float) -> ThermalTrip | None:
        """The clock's rule: reports have stopped while some heater is on."""
        if self.tripped is not None or not self.heating:
            return None
        on_since = self.on_since if self.on_since is not None else now
        since = max(on_since, self.last_report if self.last_report is not None else on_since)
        if now - since < self.stale_s:
            return None
        parts = []
        for h in self.heaters.values():
            if h.target > 0:
                last = _c(h.reading) if h.reading is not None else "no reading"
                parts.append(f"{h.name} target {_c(h.target)}, last {last}")
        self.tripped = ThermalTrip(
            "",
            "stale_reports",
            f"no temperature report for {_s(now - since)} while heating ({'; '.join(parts)});"
            f" rule: stale_report_s {self.stale_s:.3g} s",
        )
        return self.tripped

    # the rules -----------------------------------------------------------------------------
    def _judge(self, h: _Heater, actual: float, now: float) -> ThermalTrip | None:
        h.reading = actual
        rules = h.rules
        if rules.max_c is not None and actual > rules.max_c:
            return ThermalTrip(
                h.name,
                "over_temperature",
                f"{h.name} over temperature: {_c(actual)} is above {_c(rules.max_c)}"
                f" (target {_c(h.target)}); rule: {rules.limit_text}",
            )
        if h.target <= 0:
            return None
        if h.watch_pending:
            h.watch_pending = False
            self._arm_watch(h, actual, now)
        if h.watch_due is not None and now >= h.watch_due:
            if actual < h.watch_base + rules.gain_c:
                return ThermalTrip(
                    h.name,
                    "heating_failed",
                    f"{h.name} heating failed: {_c(h.watch_base)} then {_c(actual)}"
                    f" {_s(now - h.watch_from)} later, heating to {_c(h.target)}; rule: a rise of"
                    f" {rules.prefix}heating_gain_c {rules.gain_c:g} °C within"
                    f" {rules.prefix}heating_period_s {rules.heating_s:.3g} s",
                )
            self._arm_watch(h, actual, now)  # still far off: watch the next period too
        if not h.reached and actual >= h.target - REACHED_WINDOW_C:
            h.reached = True
            h.watch_due = None
        if h.reached:
            reference = f"its target {_c(h.target)}"
            floor = h.target - rules.hysteresis_c
        else:
            # Marlin only starts watching for a fall once the target is reached, so a heater
            # that dies in the last few degrees, where the heating check no longer runs, would
            # escape; the host holds a heater still on its way to the highest reading it made.
            h.peak = max(h.peak, actual)
            reference = f"its highest reading {_c(h.peak)} on the way to {_c(h.target)}"
            floor = h.peak - rules.hysteresis_c
        if actual >= floor:
            h.below_since = None
            return None
        if h.below_since is None:
            h.below_since, h.below_first = now, actual
            return None
        if now - h.below_since >= rules.runaway_s:
            return ThermalTrip(
                h.name,
                "thermal_runaway",
                f"{h.name} thermal runaway: {_c(h.below_first)} then {_c(actual)}, more than"
                f" {rules.hysteresis_c:g} °C below {reference} for"
                f" {_s(now - h.below_since)}; rule: {rules.prefix}runaway_hysteresis_c"
                f" {rules.hysteresis_c:g} °C for {rules.prefix}runaway_period_s"
                f" {rules.runaway_s:.3g} s",
            )
        return None
