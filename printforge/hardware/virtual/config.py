"""Options of a virtual printer: its speed, its wire and the faults it is told to show."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from printforge.hardware.base import DriverConfig
from printforge.hardware.marlin.config import ThermalConfig
from printforge.models.printer import PrinterProfile

__all__ = ["TrueMachine", "VirtualConfig"]


class TrueMachine(DriverConfig):
    """How the simulated machine really moves, against the profile the file was sliced for.

    A real printer's acceleration and jerk are rarely the profile's (firmware defaults, a
    user's tuning, input shaping), so a print's time differs from every estimate made on the
    profile. These factors scale the profile's limits for the simulated motion only; the host,
    the gate and the slicer still see the profile. 1.0 everywhere is the profile itself.
    """

    acceleration: float = Field(1.0, gt=0, le=10, description="times the profile's acceleration")
    jerk: float = Field(1.0, gt=0, le=10, description="times the profile's jerk")
    speed: float = Field(
        1.0,
        gt=0,
        le=10,
        description="times every requested feedrate (M220's feedrate percentage / 100), capped"
        " by the profile's maximum feedrates",
    )

    def limits(self, profile: PrinterProfile) -> PrinterProfile:
        """The profile with the true machine's acceleration and jerk."""
        if self.acceleration == 1.0 and self.jerk == 1.0:
            return profile
        return profile.model_copy(
            update={
                "max_acceleration": profile.max_acceleration * self.acceleration,
                "max_jerk": profile.max_jerk * self.jerk,
            }
        )


class VirtualConfig(DriverConfig):
    """`[printers.NAME]` keys of a `driver = "virtual"` printer (and `virtual-printer` flags)."""

    sim_speed: float | None = Field(
        None, gt=0, description="times faster than real time; None means 1.0 (real time)"
    )
    baud: int = Field(115200, gt=0, description="modelled 8N1 wire speed")
    advanced_ok: bool = Field(False, description="answer `ok N<line> P<planner> B<slots>`")
    emergency_parser: bool = Field(
        True,
        description="EMERGENCY_PARSER: act on M108 and M112 as they arrive, ahead of the queue"
        " (reported as Cap:EMERGENCY_PARSER in M115); off, they wait their turn in the queue",
    )
    extruders: int = Field(1, ge=1, le=8)
    autoreport_temp: bool = Field(True, description="offer M155 (else the host polls M105)")
    noise_rate: float = Field(0.0, ge=0, lt=1, description="share of host lines corrupted")
    drop_ok_rate: float = Field(0.0, ge=0, lt=1, description="share of `ok`s lost")
    # Fault lines count the job's commands (1 = the file's first command) for the in-process
    # driver; on a pty, where the board cannot tell a job from other lines, the protocol's N.
    disconnect_at_line: int | None = Field(None, ge=1, description="vanish on this line")
    thermal_runaway_at_line: int | None = Field(
        None, ge=1, description="halt with thermal runaway on this line"
    )
    heater_fails_at_line: int | None = Field(
        None,
        ge=1,
        description="on this line `failing_heater` stops heating (a heater cartridge slipped"
        " out, a thermistor fell off): its reading drifts to room temperature while the target"
        " stays; this board has no thermal protection of its own, so only the host can notice",
    )
    failing_heater: Annotated[str, StringConstraints(pattern=r"^(hotend[0-7]?|bed)$")] = Field(
        "hotend", description="the heater of heater_fails_at_line: hotend, hotend1.., bed"
    )
    reconnect_after_s: float | None = Field(
        None, gt=0, description="a disconnected board is back this much later (None: never)"
    )
    busy_interval_s: float | None = Field(
        2.0,
        gt=0,
        description="`echo:busy: processing` this often during a long command (M113)",
    )
    drop_duplicate_lines: bool = Field(
        True,
        description="drop a copy of line last_N or last_N - 1 without an answer, as Marlin"
        " does since 2022 (PR #24972); false: answer it with Error and Resend, as before",
    )
    user_wait_s: float | None = Field(
        5.0,
        gt=0,
        description="simulated seconds after which the virtual user presses the printer's"
        " button in a wait for the user (M0/M1, M600's filament change); None: only M108"
        " (or press_button()) ends such a wait",
    )
    move_time_s: float | None = Field(
        None, gt=0, description="fixed simulated time per move instead of the kinematic one"
    )
    true_machine: TrueMachine = Field(
        default_factory=TrueMachine,
        description="the simulated motion's own acceleration, jerk and speed, as factors of the"
        " profile's (a real printer's time differs from the estimate made on its profile)",
    )
    seed: int | None = Field(None, description="random seed for the injected faults")
    latency_s: float = Field(0.0, ge=0, description="one-way delay added by a USB bridge")
    thermal: ThermalConfig = Field(
        default_factory=ThermalConfig,
        description="the host's thermal watchdog; its seconds are simulated seconds",
    )

    @model_validator(mode="after")
    def _heater_exists(self) -> VirtualConfig:
        index = self.failing_heater[6:]
        if index and int(index) >= self.extruders:
            raise ValueError(
                f"failing_heater {self.failing_heater} needs extruders > {index}"
                f" (this board has {self.extruders})"
            )
        return self
