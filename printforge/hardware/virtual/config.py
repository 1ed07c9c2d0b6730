"""Options of a virtual printer: its speed, its wire and the faults it is told to show."""

from __future__ import annotations

from pydantic import Field

from printforge.hardware.base import DriverConfig

__all__ = ["VirtualConfig"]


class VirtualConfig(DriverConfig):
    """`[printers.NAME]` keys of a `driver = "virtual"` printer (and `virtual-printer` flags)."""

    sim_speed: float | None = Field(
        None, gt=0, description="times faster than real time; None means 1.0 (real time)"
    )
    baud: int = Field(115200, gt=0, description="modelled 8N1 wire speed")
    advanced_ok: bool = Field(False, description="answer `ok N<line> P<planner> B<slots>`")
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
    reconnect_after_s: float | None = Field(
        None, gt=0, description="a disconnected board is back this much later (None: never)"
    )
    busy_interval_s: float | None = Field(
        2.0, gt=0, description="`busy: processing` this often during a long command (M113)"
    )
    move_time_s: float | None = Field(
        None, gt=0, description="fixed simulated time per move instead of the kinematic one"
    )
    seed: int | None = Field(None, description="random seed for the injected faults")
    latency_s: float = Field(0.0, ge=0, description="one-way delay added by a USB bridge")
