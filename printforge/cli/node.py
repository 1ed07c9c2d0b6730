"""`printforge node`: attach this host's printers and expose each on the farm bus (MQTT)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import secrets
import signal
import sys
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "node",
        help="expose this host's printers on the farm bus (MQTT) for a remote orchestrator",
        description=__doc__,
    )
    p.add_argument("--broker", metavar="URL", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    # Also accepted after the subcommand, as the usage line shows.
    p.add_argument("--config", dest="node_config", metavar="FILE", help="one more TOML layer")
    p.add_argument(
        "--virtual", type=int, default=0, metavar="N", help="add N virtual printers (virtual-1..N)"
    )
    p.add_argument(
        "--sim-printers",
        type=int,
        default=0,
        metavar="N",
        help="mock farm: N light simulated printers (sim-1..N), cheap enough for hundreds",
    )
    p.add_argument(
        "--sim-moonraker",
        type=int,
        default=0,
        metavar="N",
        help="mock farm: run N Klipper/Moonraker simulators (klipper-1..N) on the broker and"
        " attach them",
    )
    p.add_argument(
        "--sim-bambu",
        type=int,
        default=0,
        metavar="N",
        help="mock farm: run N Bambu Lab LAN-mode simulators (bambu-1..N) on the broker and"
        " attach them; they log in as bblp with a per-run access code, so the broker must not"
        " check passwords",
    )
    p.add_argument(
        "--printer",
        action="append",
        default=[],
        metavar="NAME",
        help="expose this configured printer (repeatable); default: every enabled hardware one",
    )
    p.add_argument("--node-id", metavar="ID", help="this host's name on the bus (default hostname)")
    p.add_argument("--topic-prefix", metavar="PREFIX", help="default printforge/v1")
    p.add_argument("--username", metavar="USER", help="broker user name")
    p.add_argument(
        "--password-env", metavar="VAR", help="read the broker password from this variable"
    )
    p.add_argument("--tls-ca", metavar="FILE", help="CA that signed the broker's certificate")
    p.add_argument(
        "--farm-key-env",
        metavar="VAR",
        help="read the farm key (signs every farm message) from this variable; default"
        " PRINTFORGE_BUS__FARM_KEY",
    )
    p.add_argument(
        "--artifact-origin",
        action="append",
        default=None,
        metavar="URL",
        help="an http(s) origin a started file may be fetched from (repeatable); default none",
    )
    p.add_argument(
        "--topic-layout",
        choices=("flat", "node"),
        help="node: publish under {prefix}/nodes/{node}/…, for a broker ACL per node",
    )
    p.add_argument("--status-interval", type=float, metavar="S", help="heartbeat period")
    p.add_argument(
        "--sim-speed",
        type=float,
        metavar="N",
        help="speed-up of --virtual, --sim-printers and --sim-bambu",
    )
    p.add_argument(
        "--drop-at",
        type=float,
        metavar="FRACTION",
        help="fault injection: fall off the bus once a print reaches this fraction",
    )
    p.add_argument("--reply-delay", type=float, metavar="S", help="fault injection: slow replies")
    p.set_defaults(handler=_handle_node)


def _bus_overrides(args: argparse.Namespace) -> dict[str, object]:
    import os

    from printforge.runtime.errors import InputError

    bus: dict[str, object] = {}
    for key, value in (
        ("broker", args.broker),
        ("node_id", args.node_id),
        ("topic_prefix", args.topic_prefix),
        ("username", args.username),
        ("tls_ca", args.tls_ca),
        ("status_interval_s", args.status_interval),
        ("artifact_origins", args.artifact_origin),
        ("topic_layout", args.topic_layout),
    ):
        if value is not None:
            bus[key] = value
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise InputError(f"--password-env {args.password_env}: the variable is not set")
        bus["password"] = password
    if args.farm_key_env:
        key = os.environ.get(args.farm_key_env)
        if key is None:
            raise InputError(f"--farm-key-env {args.farm_key_env}: the variable is not set")
        bus["farm_key"] = key
    return bus


async def _moonraker_sims(
    count: int, settings: Any, manager: Any, sims: list[tuple[str, Any]]
) -> None:
    """Klipper simulators on the same broker, each driven through the real Moonraker driver."""
    from printforge.hardware.mqtt.moonraker import MoonrakerConfig, MoonrakerDriver
    from printforge.hardware.mqtt.sim.moonraker import MoonrakerSimulator
    from printforge.settings import PrinterEntry

    node_id = settings.bus.resolved_node_id()
    profile = settings.printer_profile(settings.default_printer)
    for i in range(1, count + 1):
        name = f"klipper-{i}"
        sim = MoonrakerSimulator(settings.bus, f"{node_id}-{name}")
        sims.append((name, sim))  # before start: a half-started one is stopped too
        await sim.start()
        config = MoonrakerConfig(
            broker=settings.bus.broker,
            instance=sim.instance,
            http_url=sim.http_url,
            username=settings.bus.username,
            password=settings.bus.password,
            tls_ca=settings.bus.tls_ca,
        )
        entry = PrinterEntry(driver="moonraker", profile=profile.name)
        driver = MoonrakerDriver(name, config, profile)
        driver.mark_simulated()
        await manager.add(driver, entry)


async def _bambu_sims(count: int, settings: Any, manager: Any, sims: list[tuple[str, Any]]) -> None:
    """Bambu LAN simulators reporting through the same broker, each driven by the Bambu driver.

    A real printer is its own TLS broker; a simulator shares the farm's broker instead, so the
    driver is pointed at that broker (`broker`) and at the simulator's plain FTP server: a mock
    farm has no certificate to serve FTPS with. Each access code is made here, per run, and
    only ever handed to the simulator and its driver.
    """
    from printforge.hardware.mqtt.bambu import USER, BambuConfig, BambuDriver
    from printforge.hardware.mqtt.sim.bambu import BambuSimulator
    from printforge.runtime.errors import AuthError, ConfigError
    from printforge.settings import PrinterEntry

    bus = settings.bus
    node_id = bus.resolved_node_id()
    profile = settings.printer_profile(settings.default_printer)
    for i in range(1, count + 1):
        name = f"bambu-{i}"
        serial = f"{node_id}-{name}"
        access_code = f"{secrets.randbelow(10**8):08d}"  # eight digits, like a printer's
        sim = BambuSimulator(
            bus, serial, access_code, ftps_context=None, sim_speed=settings.sim_speed
        )
        sims.append((name, sim))  # before start: a half-started one is stopped too
        try:
            await sim.start()
        except AuthError as err:
            raise ConfigError(
                f"--sim-bambu: broker {bus.broker} refused user {USER}; the simulators log in"
                " as a printer does, with a per-run access code, so the broker must not check"
                " passwords"
            ) from err
        config = BambuConfig(
            host="127.0.0.1",  # where the simulator's FTP server listens
            serial=serial,
            access_code=access_code,
            broker=bus.broker,
            ftp_port=sim.ftp_port,
            ftp_tls=False,
            tls_ca=None if bus.tls_insecure else bus.tls_ca,
            verify_hostname=True,  # a broker, unlike a printer, has its own name in its certificate
        )
        entry = PrinterEntry(driver="bambu", profile=profile.name)
        driver = BambuDriver(name, config, profile)
        driver.mark_simulated()
        await manager.add(driver, entry)


async def _first_contact(node: Any, bus: Any, timeout_s: float = 10.0) -> None:
    """Stop on credentials the broker refuses; a broker that is down is only waited for.

    A node that retried a rejected password forever would look alive to its operator while no
    printer ever reached the farm; a broker that is not up yet is normal at boot, and the
    clients keep reconnecting after this returns.
    """
    from printforge.runtime.errors import AuthError

    clients = [e.client for e in node.endpoints]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if any(c.auth_failed for c in clients):
            who = f"user {bus.username}" if bus.username else "an anonymous login"
            raise AuthError(
                f"broker {bus.broker} refused {who}: check --username and --password-env"
                " (or [bus] username / PRINTFORGE_BUS__PASSWORD)"
            )
        waiting = [c.connected.wait() for c in clients if not c.connected.is_set()]
        if not waiting:
            return
        # Wake at the first connection or after a short while, to look at auth_failed again.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                await asyncio.gather(*waiting)
    # Still unreachable: say so once; the clients go on reconnecting with backoff.
    print(
        f"printforge node: broker {bus.broker} not reachable yet, retrying in the background",
        file=sys.stderr,
    )


async def _handle_node(args: argparse.Namespace) -> int:
    from printforge.cli import load_cli_settings
    from printforge.hardware.mqtt.node import BusNode, EndpointFaults
    from printforge.orchestrator.printers import PrinterManager
    from printforge.runtime.errors import InputError
    from printforge.settings import PrinterEntry

    if args.node_config:
        args.config = args.node_config
    for flag in ("virtual", "sim_printers", "sim_moonraker", "sim_bambu"):
        if getattr(args, flag) < 0:
            raise InputError(f"--{flag.replace('_', '-')} takes a count of 0 or more")
    overrides: dict[str, object] = {"sim_speed": args.sim_speed}
    bus = _bus_overrides(args)
    if bus:
        overrides["bus"] = bus
    settings = load_cli_settings(args, **overrides)
    address = settings.bus.address()  # fail now, with the reason, when no broker is configured
    if args.tls_ca and not address.tls:
        # Otherwise the flag would be ignored and the password sent in the clear.
        raise InputError(
            f"--tls-ca is only used over TLS: give the broker as mqtts://{address.host}:PORT"
        )

    # A node exposes hardware; virtual printers only when asked for, so a farm never gets a
    # phantom printer by default. Printers driven over the bus are never re-exposed.
    wanted = list(args.printer) or [
        name
        for name, entry in settings.printers.items()
        if entry.enabled and entry.driver not in ("bus", "virtual")
    ]
    for name in args.printer:
        settings.printer(name)  # ConfigError naming the configured ones
    profile = settings.printers[settings.default_printer].profile
    for i in range(1, args.virtual + 1):
        name = f"virtual-{i}"
        settings.printers.setdefault(
            name,
            PrinterEntry(driver="virtual", profile=profile, material=settings.default_material),
        )
        wanted.append(name)
    if not wanted and not (args.sim_moonraker or args.sim_printers or args.sim_bambu):
        raise InputError(
            "nothing to expose: configure a printer, pass --printer NAME, or start a mock farm"
            " with --virtual N, --sim-printers N, --sim-moonraker N or --sim-bambu N"
        )

    if args.drop_at is not None and not 0 <= args.drop_at <= 1:
        raise InputError(f"--drop-at takes a fraction from 0 to 1, not {args.drop_at:g}")
    if args.reply_delay is not None and args.reply_delay < 0:
        raise InputError(f"--reply-delay takes seconds, 0 or more, not {args.reply_delay:g}")
    faults = None
    if args.drop_at is not None or args.reply_delay is not None:
        faults = EndpointFaults(drop_at_fraction=args.drop_at, reply_delay_s=args.reply_delay or 0)
    # Handlers first: a signal while a farm is still starting ends it cleanly once started.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    manager = PrinterManager(settings)
    sims: list[tuple[str, Any]] = []
    node: BusNode | None = None
    try:
        for name in wanted:
            entry = settings.printers[name]
            await manager.add(manager.build(name, entry), entry)
        for i in range(1, args.sim_printers + 1):
            from printforge.hardware.mqtt.sim.printer import SimPrinter, SimPrinterConfig

            name = f"sim-{i}"
            sim_printer = SimPrinter(
                name,
                SimPrinterConfig(sim_speed=settings.sim_speed),
                settings.printer_profile(settings.default_printer),
                settings.material(settings.default_material) if settings.materials else None,
            )
            entry = PrinterEntry(driver="sim", profile=sim_printer.profile.name)
            await manager.add(sim_printer, entry)
            wanted.append(name)
        await _moonraker_sims(args.sim_moonraker, settings, manager, sims)
        await _bambu_sims(args.sim_bambu, settings, manager, sims)
        wanted += [name for name, _sim in sims]
        node = BusNode(
            settings.bus,
            [manager.get(name) for name in wanted],
            health=manager.health,
            faults=faults,
            tags={name: manager.entry(name).tags for name in wanted},
        )
        await node.start()
        await _first_contact(node, settings.bus)
        # Everything built so far lives as long as the node: keep it out of the cyclic
        # collector's full passes, whose pauses otherwise show up as command latency.
        gc.collect()
        gc.freeze()
        ids = ", ".join(e.printer_id for e in node.endpoints)
        # One line on stdout that scripts (and the tests) wait for.
        print(f"printforge node {node.node_id} on {settings.bus.broker}: {ids}", flush=True)
        await stop.wait()
    finally:
        # Reverse order: the bus hears "node stopped" first, then each driver lets go of its
        # printer, then the simulators leave (the Moonraker ones saying so, retained).
        if node is not None:
            await node.stop()
        for name in reversed(manager.names()):  # added one by one, so removed one by one
            await manager.remove(name)
        for _name, sim in reversed(sims):
            await sim.stop()
    print("printforge node: stopped", file=sys.stderr)
    return 0
