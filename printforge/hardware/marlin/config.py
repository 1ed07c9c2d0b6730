"""Options of a Marlin printer on a serial port (`[printers.NAME]` with `driver = "marlin"`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from printforge.hardware.base import DriverConfig

__all__ = ["MarlinConfig", "ThermalConfig"]


class ThermalConfig(BaseModel):
    """`[printers.NAME.thermal]`: the host's own thermal watchdog (see `marlin/thermal.py`).

    The defaults are Marlin's stock Configuration_adv.h figures (WATCH_TEMP_*, THERMAL_PROTECTION_*
    for hotends and bed) and Configuration.h HOTEND_OVERSHOOT/BED_OVERSHOOT, so the host holds a
    board to what a correctly built firmware would hold itself to.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="false turns the host-side watchdog off")
    heating_gain_c: float = Field(2.0, gt=0, description="WATCH_TEMP_INCREASE")
    heating_period_s: float = Field(20.0, gt=0, description="WATCH_TEMP_PERIOD")
    runaway_hysteresis_c: float = Field(4.0, gt=0, description="THERMAL_PROTECTION_HYSTERESIS")
    runaway_period_s: float = Field(40.0, gt=0, description="THERMAL_PROTECTION_PERIOD")
    bed_heating_gain_c: float = Field(2.0, gt=0, description="WATCH_BED_TEMP_INCREASE")
    bed_heating_period_s: float = Field(60.0, gt=0, description="WATCH_BED_TEMP_PERIOD")
    bed_runaway_hysteresis_c: float = Field(
        2.0, gt=0, description="THERMAL_PROTECTION_BED_HYSTERESIS"
    )
    bed_runaway_period_s: float = Field(20.0, gt=0, description="THERMAL_PROTECTION_BED_PERIOD")
    over_temp_margin_c: float = Field(
        15.0, ge=0, description="a hotend reading above the profile's max_hotend_temp + this trips"
    )
    bed_over_temp_margin_c: float = Field(
        10.0, ge=0, description="a bed reading above the profile's max_bed_temp + this trips"
    )
    stale_report_s: float = Field(
        30.0, gt=0, description="no temperature report this long while a heater is on trips"
    )

    def scaled(self, speed: float) -> ThermalConfig:
        """The same rules on a clock `speed` times faster (a virtual printer's sim_speed)."""
        periods = (
            "heating_period_s",
            "runaway_period_s",
            "bed_heating_period_s",
            "bed_runaway_period_s",
            "stale_report_s",
        )
        return self.model_copy(update={k: getattr(self, k) / speed for k in periods})


class MarlinConfig(DriverConfig):
    port: str = Field(description="serial device, e.g. /dev/ttyUSB0, or a pyserial URL")
    baud: int = Field(115200, gt=0)
    strategy: Literal["send_ahead", "ping_pong"] = Field(
        "send_ahead", description="ping_pong waits for each ok (the reference strategy)"
    )
    rx_buffer_bytes: int | None = Field(
        None, ge=32, description="the firmware's RX ring; default from the printer profile (128)"
    )
    command_slots: int | None = Field(
        None, ge=1, description="Marlin BUFSIZE; default from the printer profile (4)"
    )
    handshake_timeout_s: float = Field(10.0, gt=0, description="give up connecting after this")
    ok_timeout_s: float = Field(
        10.0, gt=0, description="silence with lines in flight before probing for a lost ok"
    )
    temp_interval_s: float = Field(2.0, gt=0, description="temperature report interval")
    resend_sends_ok: bool = Field(
        True, description="Marlin 2.1 follows `Resend:` with `ok`; some 2.0.x builds do not"
    )
    reconnect: bool = Field(True, description="reconnect after the printer vanishes")
    reconnect_max_s: float = Field(30.0, gt=0, description="cap of the reconnect backoff")
    safe_stop_timeout_s: float = Field(30.0, gt=0)
    thermal: ThermalConfig = Field(
        default_factory=ThermalConfig, description="the host-side thermal watchdog"
    )
