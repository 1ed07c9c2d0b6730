"""A Marlin printer on a serial port: connection, handshake, streaming, control and reconnect.

The I/O shell around `protocol` (parsing) and `engine` (window and recovery): bytes arrive in an
asyncio Protocol on pyserial-asyncio-fast, so one event loop serves many printers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

from printforge.hardware.base import LinkFacts, PrinterDriver
from printforge.hardware.eta import LiveEta
from printforge.hardware.marlin import protocol as proto
from printforge.hardware.marlin.config import MarlinConfig
from printforge.hardware.marlin.control import (
    SavedState,
    heaters_off_commands,
    modes_and_feed,
    park_commands,
    pause_commands,
    resume_commands,
)
from printforge.hardware.marlin.engine import LineEngine
from printforge.hardware.marlin.gcode_file import load_gcode, strip_command
from printforge.hardware.marlin.link import LineProtocol, open_serial
from printforge.hardware.marlin.objects import ObjectLabels, after_skip_commands, read_labels
from printforge.hardware.marlin.thermal import ThermalTrip, ThermalWatch
from printforge.hardware.marlin.waits import awaited, end_heating_waits, retrieve
from printforge.models.printer import (
    MaterialProfile,
    PlateObject,
    PrinterProfile,
    PrinterState,
    PrintProgress,
    Temperature,
)
from printforge.runtime.errors import (
    ConnectionLost,
    InputError,
    InvalidTransition,
    OperationTimeout,
    PrintCancelled,
    PrinterDisconnected,
    PrinterError,
    PrinterFault,
)

__all__ = ["MarlinDriver", "reconnect_wait"]

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1
STALL_REFRESH_S = 2.0  # a status with a later finish time while nothing is acknowledged
STATUS_TEMP_INTERVAL_S = 0.5
HANDSHAKE_PROBE_S = 1.0  # a board that resets on open misses the first lines


def reconnect_wait(delay: float, cap: float, jitter: float) -> float:
    """Seconds before the next reconnect attempt: `delay` with ±50 % jitter, never above `cap`.

    The jitter keeps a farm's boards from all retrying at once after a hub comes back; the cap
    is `reconnect_max_s`, which the jitter used to exceed by half.
    """
    return min(cap, delay * (0.5 + jitter))


class MarlinDriver(PrinterDriver):
    kind: ClassVar[str] = "marlin"
    Config: ClassVar[type[MarlinConfig]] = MarlinConfig  # type: ignore[assignment]

    def __init__(
        self,
        name: str,
        config: MarlinConfig,
        profile: PrinterProfile,
        material: MaterialProfile | None = None,
    ) -> None:
        super().__init__(name, config, profile, material)
        self.cfg = config
        self.engine: LineEngine | None = None
        self.firmware: proto.FirmwareInfo | None = None
        self.capabilities: dict[str, bool] = {}
        self._transport: Any = None
        self._protocol: LineProtocol | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._started = False
        self._streaming = False
        self._job: list[str] = []
        self._layers: list[int] = []
        self._labels = ObjectLabels()
        self._cancelled_objects: set[int] = set()
        self._saved: SavedState | None = None
        self._position: dict[str, float] | None = None
        self._caps_done = asyncio.Event()
        self._last_temp_status = 0.0
        self._cancel_reason: str | None = None
        self.last_error: str | None = None
        self.thermal: ThermalWatch | None = None  # the host's watchdog, one per connection
        # The reason of the latest keepalive (`processing`, `paused for user`) until the next
        # `ok`: what the firmware is busy with, shown in the status message.
        self.busy_reason: str | None = None
        # The state to go back to when a pause the firmware did itself (M600) ends.
        self._firmware_paused_from: PrinterState | None = None
        # A pause asked for while a long command (M109, G29) runs: it parks once that command
        # is done, as hosts do at the next line boundary. `_parking`: past the point where a
        # resume may simply call it off.
        self._pausing: asyncio.Task[None] | None = None
        self._parking = False

    # lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._stopping = False
        await self._connect()
        self._started = True

    async def stop(self) -> None:
        self._stopping = True
        self._started = False
        self._call_off_pause()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._close_link()
        if self.engine is not None:
            self.engine.fail(PrinterDisconnected(f"printer {self.name}: driver stopped"))
        self.connected.clear()
        if self._status.state is not PrinterState.FAULTED:
            self._set_status(state=PrinterState.OFFLINE)

    def link_facts(self) -> LinkFacts:
        return LinkFacts(
            firmware=self.firmware.name if self.firmware else None,
            watchdog_probes=self.engine.stats.watchdog_probes if self.engine else 0,
        )

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=f"{self.name}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_link(self) -> None:
        transport, self._transport = self._transport, None
        self._protocol = None
        if transport is not None:
            transport.close()
            await asyncio.sleep(0)  # let the transport finish closing the port

    async def _open(self) -> None:
        protocol = LineProtocol(self._on_line, self._on_connection_lost)
        self._transport = await open_serial(self.cfg.port, self.cfg.baud, protocol)
        self._protocol = protocol

    async def _connect(self) -> None:
        self._set_status(state=PrinterState.CONNECTING, message=None)
        self.busy_reason = None
        self._firmware_paused_from = None
        self.thermal = None  # a board that came back may have reset: the handshake starts anew
        await self._open()
        profile = self.profile
        self.engine = LineEngine(
            self._write,
            slots=self.cfg.command_slots or profile.command_slots,
            rx_bytes=self.cfg.rx_buffer_bytes or profile.rx_buffer_bytes,
            ping_pong=self.cfg.strategy == "ping_pong",
            ok_timeout_s=HANDSHAKE_PROBE_S,
            resend_sends_ok=self.cfg.resend_sends_ok,
            byte_rate=self.cfg.baud / 10,
        )
        try:
            async with asyncio.timeout(self.cfg.handshake_timeout_s):
                await self._handshake(self.engine)
        except TimeoutError as err:
            await self._close_link()
            self._set_status(state=PrinterState.OFFLINE, message="no answer to the handshake")
            raise OperationTimeout(
                f"printer on {self.cfg.port} did not answer the handshake within "
                f"{self.cfg.handshake_timeout_s:g} s (is it a Marlin printer, is the baud rate "
                f"{self.cfg.baud} right? A board halted by an error, such as thermal runaway,"
                " answers nothing until it is reset or power-cycled)"
            ) from err
        except PrinterError:
            await self._close_link()
            raise
        self.engine.ok_timeout_s = self.cfg.ok_timeout_s
        self.connected.set()
        self._set_status(state=PrinterState.IDLE, message=None)

    async def _handshake(self, engine: LineEngine) -> None:
        engine.reset(0)
        await engine.submit("M110 N0")
        self._caps_done.clear()
        self.capabilities.clear()
        self.firmware = None
        await engine.submit("M115")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._caps_done.wait()
        self._last_temp_status = 0.0
        await engine.submit("M105")  # temperatures in the status from the start
        interval = max(1, round(self.cfg.temp_interval_s))
        if self.capabilities.get("AUTOREPORT_TEMP"):
            await engine.submit(f"M155 S{interval}")
        else:
            self._spawn(self._poll_temperatures(engine), "temps")
        self._start_thermal_watch(engine, interval)

    # host-side thermal protection ----------------------------------------------------------
    def _start_thermal_watch(self, engine: LineEngine, report_every_s: float) -> None:
        cfg = self.cfg.thermal
        if not cfg.enabled:
            self.thermal = None
            return
        # Silence shorter than a few report intervals proves nothing: a loaded host or a board
        # busy with a long command delivers reports late.
        watch = ThermalWatch(
            cfg,
            max_hotend_c=self.profile.max_hotend_temp,
            max_bed_c=self.profile.max_bed_temp,
            min_stale_s=4 * max(report_every_s, self.cfg.temp_interval_s) + 2,
        )
        self.thermal = watch
        engine.on_done = self._on_command_done
        self._spawn(self._watch_reports(engine, watch), "thermal")

    def _on_command_done(self, command: str) -> None:
        # Only the cheap test per line: targets and tool changes are all the watch reads.
        if self.thermal is not None and command[:1] in "MmTt":
            self.thermal.on_command(command, time.monotonic())

    async def _watch_reports(self, engine: LineEngine, watch: ThermalWatch) -> None:
        tick = min(1.0, watch.stale_s / 4)
        while engine.failed is None and self.thermal is watch:
            await asyncio.sleep(tick)
            trip = watch.check(time.monotonic())
            if trip is not None and engine.failed is None:
                self._thermal_trip(trip)

    def _thermal_trip(self, trip: ThermalTrip) -> None:
        reason = f"host thermal watchdog: {trip.message}"
        if self._streaming:
            # The job's PrinterFault carries the verdict to whoever streams: no second telling.
            log.info("printer %s: %s", self.name, reason)
            self._emergency_stop_now(f"{reason}; emergency stop (M112) sent")
            return
        log.warning("printer %s: %s", self.name, reason)
        # Nothing to abort, so the gentler stop. Unnumbered lines take no place in the numbering,
        # so they go out although the engine is about to fail.
        hotends = sorted(k for k in self.thermal.heaters if k != "bed") if self.thermal else []
        off = [f"M104 T{key[6:]} S0" for key in hotends] or ["M104 S0"]
        self._write("".join(f"{c}\n" for c in [*off, "M140 S0"]).encode())
        self._fault(f"{reason}; heaters turned off")

    async def _poll_temperatures(self, engine: LineEngine) -> None:
        while engine.failed is None:
            await asyncio.sleep(self.cfg.temp_interval_s)
            if engine.failed is None and engine.in_flight < 2:
                engine.submit("M105")

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    # receiving -----------------------------------------------------------------------------
    def _on_line(self, text: str) -> None:
        msg = proto.parse_line(text)
        engine = self.engine
        if isinstance(msg, proto.Ok):
            if msg.temperatures is not None:
                self._on_temperatures(msg.temperatures)
            if engine is not None:
                engine.on_ok(msg)
            if self.firmware is not None:
                self._caps_done.set()
            if self.busy_reason is not None:
                self._on_busy(None)  # an `ok`: the long command is over
        elif isinstance(msg, proto.Resend):
            if engine is not None:
                engine.on_resend(msg.line)
        elif isinstance(msg, proto.Busy):
            if engine is not None:
                engine.on_busy()
            self._on_busy(msg.reason)
        elif isinstance(msg, proto.Temperatures):
            if msg.wait is not None and engine is not None:
                engine.on_busy()  # only a running M109/M190 prints `W:`: a sign of life
            self._on_temperatures(msg)
        elif isinstance(msg, proto.Position):
            self._position = msg.axes
        elif isinstance(msg, proto.FirmwareInfo):
            self.firmware = msg
        elif isinstance(msg, proto.Capability):
            self.capabilities[msg.name] = msg.enabled
        elif isinstance(msg, proto.FirmwareError):
            log.debug("printer %s: %s", self.name, msg.text)
            if msg.fatal:
                self._fault(msg.text)
            elif msg.last_line is not None and engine is not None:
                # The `Resend:` follows this line; stop sending stale lines already now.
                engine.on_line_error(msg.last_line + 1)
        elif isinstance(msg, proto.Action):
            self._on_action(msg)
        elif isinstance(msg, proto.ActionNotice):
            self._on_notice(msg)
        elif isinstance(msg, proto.Echo) and msg.text.startswith('Unknown command: "'):
            log.debug("printer %s: %s", self.name, text)
            if engine is not None:
                engine.on_unknown_command(msg.text[len('Unknown command: "') : -1])
        elif isinstance(msg, proto.Start):
            if engine is not None and engine.in_flight and self.connected.is_set():
                # The board reset under us: whatever it had queued is gone. Closing the port
                # leads to the usual reconnect and a fresh handshake.
                self._lost(PrinterDisconnected(f"printer {self.name} reset itself"))
                if self._transport is not None:
                    self._transport.close()
        else:
            log.debug("printer %s: %s", self.name, text)

    def _on_temperatures(self, temps: proto.Temperatures) -> None:
        now = time.monotonic()
        watch = self.thermal
        if watch is not None and self._status.state is not PrinterState.FAULTED:
            trip = watch.on_report(temps, now)
            if trip is not None:
                self._thermal_trip(trip)
        current = self._status.temperatures
        merged = dict(current)
        targets_changed = False
        for key, (actual, target) in temps.as_status().items():
            targets_changed |= key not in current or current[key].target != target
            merged[key] = Temperature(actual=actual, target=target)
        # Listeners hear a new target at once, plain readings at most twice a second.
        if targets_changed or now - self._last_temp_status >= STATUS_TEMP_INTERVAL_S:
            self._last_temp_status = now
            self._set_status(temperatures=merged)

    def _on_busy(self, reason: str | None) -> None:
        """Show what the firmware is busy with (`busy: paused for user`), until its next `ok`."""
        if reason == self.busy_reason:
            return
        shown = f"busy: {self.busy_reason}" if self.busy_reason else None
        self.busy_reason = reason
        state = self._status.state
        if state is PrinterState.FAULTED or self._firmware_paused_from is not None:
            return  # the fault's cause, or "paused by firmware", says more
        if self._pause_pending():
            return  # "pausing after ..." says more
        if reason is not None and state is not PrinterState.PAUSED:
            self._set_status(message=f"busy: {reason}")
        elif reason is None and self._status.message == shown:
            self._set_status(message=None)

    def _on_action(self, action: proto.Action) -> None:
        """`//action:` requests: the printer's own buttons ask the host to act."""
        log.info("printer %s asks the host to %s %s", self.name, action.name, action.args)
        # Marlin's runout prints `//action:pause filament_runout 0` when the host must pause
        # (no parking runout script); `out_of_filament` is Repetier-Firmware's form.
        if action.name in ("pause", "out_of_filament") and self._streaming:
            self._spawn(self._pause_quietly(), "action-pause")
        elif action.name == "resume" and self._saved is not None:
            self._spawn(self.resume(), "action-resume")
        elif action.name == "cancel" and self._streaming:
            self._spawn(self.cancel(), "action-cancel")
        elif action.name == "poweroff":
            # ACTION_ON_KILL, after `Error:Printer halted. kill() called!`.
            self._fault("the firmware halted and asks for a power-off (//action:poweroff)")
        # `filament_runout T0` comes just before `pause filament_runout 0` (one pause, not
        # two); prompts, notifications, start and shutdown are the user's business.

    def _on_notice(self, notice: proto.ActionNotice) -> None:
        """`//action:paused|resumed`: the firmware pauses by itself (M600, M125, a runout
        script, feature/pause.cpp) and resumes by itself. The host must not park or restore
        (its commands would queue behind the firmware's own): it shows the pause and keeps
        waiting; the keepalives (`busy: paused for user`) keep its watchdog quiet meanwhile."""
        log.info("printer %s: the firmware %s %s", self.name, notice.name, notice.args)
        state = self._status.state
        if notice.name == "paused":
            if state in (PrinterState.PRINTING, PrinterState.IDLE, PrinterState.HEATING):
                self._firmware_paused_from = state
                why = f" ({notice.args})" if notice.args else ""
                self._set_status(state=PrinterState.PAUSED, message=f"paused by firmware{why}")
        elif notice.name == "resumed" and self._firmware_paused_from is not None:
            back, self._firmware_paused_from = self._firmware_paused_from, None
            if state is PrinterState.PAUSED:
                self._set_status(state=back, message=None)

    async def _pause_quietly(self) -> None:
        with contextlib.suppress(InvalidTransition):
            await self.pause()

    def _fault(self, text: str) -> None:
        if self._status.state is PrinterState.FAULTED and self.last_error is not None:
            # The first cause is the one to show: M112 makes the board say "kill() called".
            log.info("printer %s (already faulted): %s", self.name, text)
            return
        self.last_error = text
        error = PrinterFault(f"printer {self.name}: {text}")
        if self.engine is not None:
            self.engine.fail(error)
        self._set_status(state=PrinterState.FAULTED, message=text)

    def _lost(self, error: PrinterDisconnected) -> None:
        engine = self.engine
        if engine is not None:
            error.last_acked_line = engine.job_acked if self._streaming else None
            engine.fail(error)
        self.connected.clear()
        if self._status.state is not PrinterState.FAULTED:
            self._set_status(state=PrinterState.OFFLINE, message=error.message)

    def _on_connection_lost(self, protocol: LineProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return  # an old link closing late
        self._transport = self._protocol = None
        if self._stopping:
            return
        self._lost(PrinterDisconnected(f"printer {self.name} disconnected ({exc or 'closed'})"))
        if self.cfg.reconnect and self._status.state is not PrinterState.FAULTED:
            self._spawn(self._reconnect(), "reconnect")

    async def _reconnect(self) -> None:
        delay = 0.5
        while not self._stopping:
            await asyncio.sleep(reconnect_wait(delay, self.cfg.reconnect_max_s, random.random()))
            try:
                await self._connect()
            except (PrinterError, ConnectionLost, OperationTimeout, InputError) as err:
                log.debug("printer %s: reconnect failed: %s", self.name, err)
                self._set_status(state=PrinterState.OFFLINE, message=str(err))
                delay = min(self.cfg.reconnect_max_s, delay * 2)
                continue
            log.info("printer %s reconnected", self.name)
            return

    # commands ------------------------------------------------------------------------------
    def _require_engine(self) -> LineEngine:
        engine = self.engine
        if engine is None or not self.connected.is_set():
            raise PrinterDisconnected(f"printer {self.name} is not connected")
        if engine.failed is not None:
            raise engine.failed
        return engine

    async def send(self, line: str) -> None:
        command = strip_command(line)
        if not command:
            return
        if len(command.encode()) > self.profile.max_line_bytes - 12:
            raise InputError(f"command too long for the firmware: {command[:40]}...")
        await self._require_engine().submit(command)

    async def _query_position(self, engine: LineEngine) -> dict[str, float] | None:
        self._position = None
        await engine.submit("M400")
        await engine.submit("M114")
        return self._position

    # streaming -----------------------------------------------------------------------------
    async def stream(
        self, path: Path, *, job_id: str | None = None
    ) -> AsyncIterator[PrintProgress]:
        engine = self._require_engine()
        if self._streaming:
            raise InvalidTransition(f"printer {self.name} is already printing")
        if self._status.state is PrinterState.FAULTED:
            raise PrinterFault(f"printer {self.name} is faulted: {self._status.message}")
        program = await asyncio.to_thread(load_gcode, path, self.profile.max_line_bytes)
        labels = await asyncio.to_thread(read_labels, program.commands)
        self._labels = labels
        self._cancelled_objects = set()
        self._streaming = True
        self._cancel_reason = None
        self._job = program.commands
        started = time.monotonic()
        progress = PrintProgress(
            lines_total=len(program),
            bytes_total=program.total_bytes,
            layers_total=program.layers_total or None,
        )
        self._layers = program.layers
        eta = LiveEta(path, self.profile, prior_pace=self._prior_pace(), commands=len(program))
        eta.start()
        self._set_status(state=PrinterState.PRINTING, job_id=job_id, progress=progress)
        self._publish_objects()
        engine.job_skip = self._skip_cancelled if labels else None
        engine.start_job(program.commands)
        last_emit = 0.0
        # Seconds spent paused: not the machine's pace, so the ETA's clock leaves them out.
        paused_s, last_tick = 0.0, started
        try:
            while True:
                if engine.failed is not None:
                    raise engine.failed
                if self._cancel_reason is not None:
                    raise PrintCancelled(f"printer {self.name}: {self._cancel_reason}")
                done = engine.job_done
                now = time.monotonic()
                if self._status.state is PrinterState.PAUSED:
                    paused_s += now - last_tick
                last_tick = now
                moved = engine.job_acked != progress.lines_acked
                # Nothing to tell while nothing is acknowledged (paused, heating, long move)...
                if done or (moved and now - last_emit >= PROGRESS_INTERVAL_S):
                    last_emit = now
                    progress = self._progress(progress, engine, now - started, eta, paused_s)
                    self._set_status(progress=progress)
                    yield progress
                elif now - last_emit >= STALL_REFRESH_S:
                    # ... but the finish moves later all the while: the status says so.
                    last_emit = now
                    progress = self._progress(progress, engine, now - started, eta, paused_s)
                    self._set_status(progress=progress)
                if done:
                    break
                engine.changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PROGRESS_INTERVAL_S):
                        await engine.changed.wait()
            self._set_status(state=PrinterState.IDLE, job_id=None)
        except asyncio.CancelledError:
            await self._shielded_safe_stop()
            raise
        except PrinterDisconnected as err:
            err.last_acked_line = engine.job_acked
            raise
        finally:
            self._call_off_pause()  # the job ended before a requested pause took effect
            engine.drop_job()
            engine.job_skip = None
            if self._status.objects:
                self._set_status(objects=[])  # they were this print's
            self._streaming = False
            self._saved = None
            self._firmware_paused_from = None
            await eta.close()

    def _prior_pace(self) -> float:
        """Wall seconds per planned second before a print shows its own (real time: 1)."""
        return 1.0

    def _progress(
        self,
        prev: PrintProgress,
        engine: LineEngine,
        elapsed: float,
        eta: LiveEta,
        paused_s: float = 0.0,
    ) -> PrintProgress:
        total = prev.bytes_total
        acked = engine.job_acked
        layer = self._layers[acked - 1] if prev.layers_total and acked else None
        fraction = engine.job_bytes_acked / total if total else 1.0
        return prev.model_copy(
            update={
                "lines_acked": engine.job_acked,
                "bytes_acked": engine.job_bytes_acked,
                "elapsed_s": elapsed,
                "resends": engine.stats.resends,
                "layer": layer,
                **eta.at_command(acked, elapsed - paused_s, fraction),
            }
        )

    # objects -------------------------------------------------------------------------------
    def _publish_objects(self) -> None:
        objects = [
            PlateObject(id=o.id, name=o.name, cancelled=o.id in self._cancelled_objects)
            for o in self._labels.objects
        ]
        self._set_status(objects=objects)

    async def cancel_object(self, ref: str | int) -> dict[str, Any]:
        """Leave out the rest of one object's lines (by id or name); the others print on."""
        if not self._streaming:
            raise InvalidTransition(f"printer {self.name} is not printing")
        if not self._labels:
            raise InputError(
                f"printer {self.name}: this print has no object labels (M486); slice it with"
                " the built-in slicer or turn on object labels in the slicer"
            )
        info = self._labels.resolve(ref)
        self._cancelled_objects.add(info.id)
        log.info("printer %s: object %d (%s) cancelled", self.name, info.id, info.name)
        self._publish_objects()
        return {"id": info.id, "name": info.name, "cancelled": True}

    def _skip_cancelled(self, index: int) -> tuple[int, list[str]] | None:
        if not self._cancelled_objects:
            return None
        seg = self._labels.segment_at(index)
        if seg is None or seg.object_id not in self._cancelled_objects:
            return None
        return seg.stop, after_skip_commands(seg)

    # control -------------------------------------------------------------------------------
    def _pause_pending(self) -> bool:
        return self._pausing is not None and not self._pausing.done()

    def _call_off_pause(self) -> None:
        """Drop a requested pause that has not started parking (the job ended, a resume)."""
        task, self._pausing = self._pausing, None
        if task is not None and not task.done():
            task.cancel()
            if self._status.message and self._status.message.startswith("pausing"):
                self._set_status(message=None)

    async def pause(self) -> None:
        """Stop feeding the job and park. Returns once parked; or, when the firmware is busy with
        a long command (a heating wait, a slow G29), at once with the status message saying the
        pause takes effect when that command ends: Marlin runs one command at a time, so the
        host cannot park before then, and nobody should wait on an open request for minutes.
        """
        engine = self._require_engine()
        if self._pause_pending():
            return  # asked for already; it takes effect when the running command ends
        if not self._streaming or engine.job_hold:
            raise InvalidTransition(f"printer {self.name} is not printing")
        if self._firmware_paused_from is not None:
            raise InvalidTransition(
                f"printer {self.name} is already paused by its firmware (a filament change or"
                " a pause of its own); it resumes by itself when its button is pressed"
            )
        engine.job_hold = True
        task = asyncio.create_task(self._park_when_drained(engine), name=f"{self.name}-pause")
        task.add_done_callback(self._pause_done)
        self._pausing = task
        # Moves ahead drain within seconds: answer once parked, as before. A heating wait ends
        # when the heater is at temperature, which can take minutes: answer now.
        if engine.heating_wait_in_flight() is None:
            await asyncio.wait({task}, timeout=self.cfg.safe_stop_timeout_s)
        if task.done():
            task.result()  # its error, if any, is the caller's
            return
        running = engine.oldest_in_flight()
        what = f"`{running[1]}`" if running is not None else "the current command"
        log.info("printer %s: pause requested; it takes effect when %s ends", self.name, what)
        self._set_status(message=f"pausing after {what} ends")

    def _pause_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        err = task.exception()
        if err is not None and not isinstance(err, PrinterError):
            log.warning("printer %s: pause failed: %s", self.name, err or type(err).__name__)
        # A PrinterError failed the engine too: the stream raises it for whoever prints.

    async def _park_when_drained(self, engine: LineEngine) -> None:
        # No timeout: the running command ends when it ends; the engine's watchdog and a lost
        # link fail the engine, which ends this wait too.
        while engine.in_flight and engine.failed is None:
            engine.changed.clear()
            await engine.changed.wait()
        if engine.failed is not None:
            raise engine.failed
        if not self._streaming:
            return
        self._parking = True
        try:
            await self._park(engine)
        finally:
            self._parking = False

    async def _park(self, engine: LineEngine) -> None:
        pos = await self._query_position(engine) or {}
        absolute, absolute_e, feed = modes_and_feed(self._job[: engine.job_acked])
        temps = self._status.temperatures
        hotends = {
            (int(key[6:]) if key[6:] else 0): t.target
            for key, t in temps.items()
            if key.startswith("hotend")
        }
        self._saved = SavedState(
            x=pos.get("X", 0.0),
            y=pos.get("Y", 0.0),
            z=pos.get("Z", 0.0),
            e=pos.get("E", 0.0),
            feed_mm_min=feed,
            hotends=hotends,
            bed=temps["bed"].target if "bed" in temps else 0.0,
            absolute=absolute,
            absolute_e=absolute_e,
        )
        for command in pause_commands(self._saved, self.profile):
            engine.submit(command)
        await engine.submit("M400")
        self._set_status(state=PrinterState.PAUSED, message=None)

    async def resume(self) -> None:
        engine = self._require_engine()
        task = self._pausing
        if task is not None and not task.done():
            if not self._parking:
                # Still waiting for the long command: nothing was parked, so nothing to undo.
                self._call_off_pause()
                engine.job_hold = False
                engine.pump()
                return
            await asyncio.wait({task}, timeout=self.cfg.safe_stop_timeout_s)
        if self._saved is None or not engine.job_hold:
            raise InvalidTransition(f"printer {self.name} is not paused")
        for command in resume_commands(self._saved):
            engine.submit(command)
        await engine.submit("M400")
        self._saved = None
        self._set_status(state=PrinterState.PRINTING)
        engine.job_hold = False
        engine.pump()

    async def cancel(self) -> None:
        if self._streaming:
            self._cancel_reason = "print cancelled"
        await self._shielded_safe_stop()

    async def _shielded_safe_stop(self) -> None:
        task = asyncio.ensure_future(self._safe_stop())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # Cancelled again while stopping: let the stop finish (it has its own timeout).
            await asyncio.wait({task}, timeout=self.cfg.safe_stop_timeout_s)
            raise

    async def _safe_stop(self) -> None:
        engine = self.engine
        if engine is None or engine.failed is not None or not self.connected.is_set():
            return
        self._set_status(state=PrinterState.CANCELLING)
        self._call_off_pause()
        engine.drop_job()
        engine.job_hold = False
        # No M410 here: a quickstop skips the deceleration, so Marlin's position is no longer
        # trusted and the lift and park below would start from a wrong place. The planner holds
        # at most `planner_blocks` moves; letting them finish costs seconds, not a crash.
        timeout = self.cfg.safe_stop_timeout_s
        try:
            async with asyncio.timeout(timeout):
                await end_heating_waits(engine, self.capabilities, self.name)
                # Queued before the position query, so the heaters go off as soon as the
                # firmware gets to them, even if this stop gives up waiting (a heating wait
                # nothing could end): they then still run once the wait is over.
                futures = [engine.submit(c) for c in heaters_off_commands()]
                for future in futures:
                    future.add_done_callback(retrieve)
                pos = await self._query_position(engine)
                z = pos.get("Z") if pos else None
                futures += [engine.submit(c) for c in park_commands(self.profile, z)]
                await asyncio.gather(*futures)
        except TimeoutError:
            log.warning(
                "printer %s: safe stop incomplete: timed out after %g s waiting for %s",
                self.name,
                timeout,
                awaited(engine, self.capabilities),
            )
        except PrinterError as err:
            log.warning(
                "printer %s: safe stop incomplete: %s", self.name, err or type(err).__name__
            )
        self._saved = None
        if self._status.state is PrinterState.CANCELLING:
            self._set_status(state=PrinterState.IDLE, job_id=None)

    async def emergency_stop(self) -> None:
        self._emergency_stop_now("emergency stop (M112)")

    def _emergency_stop_now(self, reason: str) -> None:
        # EMERGENCY_PARSER acts on M112 as it arrives, so it goes ahead of the queue, unnumbered.
        self._write(b"M112\n")
        self._fault(reason)
