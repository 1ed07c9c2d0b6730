"""`printforge service install`: run printforge as a systemd service on this host.

    printforge service install [--node NAME] [--user USER] [--data-dir DIR] [--now]
                               [--dry-run] [--unit-dir DIR] [--config-dir DIR] [--exec CMD]

Without --node it installs the orchestrator (`printforge.service`: `printforge serve`); with
--node NAME the template `printforge-node@.service` and enables `printforge-node@NAME`, which
reads /etc/printforge/node-NAME.toml and node-NAME.env. It writes the unit (from
deploy/systemd/, with this host's printforge executable, user and data directory filled in),
a commented settings file and a root-only environment file for secrets when they do not exist
yet (never overwriting them), creates the service user if it is missing, reloads systemd and
enables the unit (`--now`: starts it too).

`--dry-run` prints every file it would write and every command it would run, and changes
nothing. On a host where systemd is not running (a container, a chroot, an image being built)
it refuses, unless `--unit-dir` says where to write the files anyway: then it writes them and
says which commands to run on the target host.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Plan", "plan_install", "register", "systemd_running", "units_dir"]

DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_CONFIG_DIR = Path("/etc/printforge")
DEFAULT_DATA_DIR = Path("/var/lib/printforge")
DEFAULT_USER = "printforge"
# What the shipped units say; replaced with this host's values.
_SHIPPED_EXEC = "/usr/local/bin/printforge"
_SHIPPED_CONFIG_DIR = "/etc/printforge"
_SHIPPED_DATA_DIR = "/var/lib/printforge"
_STATE_ROOT = Path("/var/lib")
_HOMES = (Path("/home"), Path("/root"), Path("/run/user"))


def units_dir() -> Path:
    """The shipped unit files: `printforge/_deploy/systemd` in a wheel, else `deploy/systemd`."""
    here = Path(__file__).resolve().parent.parent
    bundled = here / "_deploy" / "systemd"
    return bundled if bundled.is_dir() else here.parent / "deploy" / "systemd"


def systemd_running() -> bool:
    """The test systemd's own sd_booted() makes: PID 1 is systemd when this directory exists."""
    return Path("/run/systemd/system").is_dir()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("service", help="install printforge as a systemd service")
    service_sub = p.add_subparsers(dest="service_command", metavar="COMMAND")
    i = service_sub.add_parser(
        "install",
        help="write, enable (and with --now start) the systemd unit for serve or a node",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("--node", metavar="NAME", help="install the node unit printforge-node@NAME")
    i.add_argument(
        "--user", default=DEFAULT_USER, help=f"the service's user (default {DEFAULT_USER})"
    )
    i.add_argument(
        "--data-dir",
        dest="service_data_dir",
        metavar="DIR",
        help=f"the data directory (default {DEFAULT_DATA_DIR}; a node's is DIR/node-NAME)",
    )
    i.add_argument("--now", action="store_true", help="start the service as well")
    i.add_argument(
        "--dry-run", action="store_true", help="print what would be written and run; change nothing"
    )
    i.add_argument(
        "--unit-dir",
        metavar="DIR",
        help=f"where unit files go (default {DEFAULT_UNIT_DIR}); needed without a running systemd",
    )
    i.add_argument(
        "--config-dir",
        metavar="DIR",
        help=f"settings and secrets files (default {DEFAULT_CONFIG_DIR})",
    )
    i.add_argument(
        "--exec",
        dest="exec_cmd",
        metavar="CMD",
        help="the printforge command the unit runs (default: the one running now)",
    )
    i.set_defaults(handler=_handle_install)
    p.set_defaults(handler=_handle_missing, service_parser=p)


def _handle_missing(args: argparse.Namespace) -> int:
    args.service_parser.print_help(sys.stderr)
    return 2


@dataclass
class PlannedFile:
    path: Path
    content: str
    mode: int
    replace: bool  # units are replaced; settings and secrets files never are


@dataclass
class Plan:
    unit: str  # what `systemctl enable` gets
    files: list[PlannedFile] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)


def _this_printforge() -> str:
    """The command that runs this printforge: its console script, else `python -m printforge`."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "printforge" and argv0.is_file():
        return str(argv0.absolute())
    found = shutil.which("printforge")
    if found:
        return str(Path(found).absolute())
    return f"{shlex.quote(sys.executable)} -m printforge"


def _group_of(user: str) -> str:
    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user  # created below with a group of its own name


def _check_data_dir(data_dir: Path) -> None:
    from printforge.runtime.errors import InputError

    if not data_dir.is_absolute():
        raise InputError(f"--data-dir {data_dir}: give an absolute path")
    for home in _HOMES:
        if data_dir.is_relative_to(home):
            raise InputError(
                f"--data-dir {data_dir}: the service runs with ProtectHome=yes and cannot reach"
                f" {home}; choose a directory under /var/lib or /srv"
            )


def render_unit(
    template: str, *, exec_cmd: str, user: str, group: str, config_dir: Path, data_dir: Path | None
) -> str:
    """The shipped unit with this host's executable, user, config and data directory."""
    lines = []
    for line in template.splitlines():
        if line.startswith("ExecStart="):
            line = line.replace(f"ExecStart={_SHIPPED_EXEC}", f"ExecStart={exec_cmd}", 1)
        elif line.startswith("User="):
            line = f"User={user}"
        elif line.startswith("Group="):
            line = f"Group={group}"
        if not line.startswith("#"):
            line = line.replace(_SHIPPED_CONFIG_DIR, str(config_dir))
        if data_dir is not None and not line.startswith("#"):
            line = _with_data_dir(line, data_dir)
            if line is None:
                continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def _with_data_dir(line: str, data_dir: Path) -> str | None:
    """Point the unit at another data directory (a node's is `DIR/node-NAME`): StateDirectory=
    when it is under /var/lib (systemd makes it and hands it to the user), else ReadWritePaths=
    beside ProtectSystem=strict."""
    under_state = data_dir.is_relative_to(_STATE_ROOT)
    if line.startswith("Environment=PRINTFORGE_DATA_DIR="):
        return line.replace(_SHIPPED_DATA_DIR, str(data_dir), 1)
    if line.startswith("StateDirectory="):
        rest = line.removeprefix(f"StateDirectory={Path(_SHIPPED_DATA_DIR).name}")
        if under_state:
            return f"StateDirectory={data_dir.relative_to(_STATE_ROOT)}{rest}"
        return f"ReadWritePaths={data_dir}{rest}"
    if line.startswith("StateDirectoryMode=") and not under_state:
        return None
    return line


def _settings_skeleton(node: str | None) -> str:
    if node is None:
        return """\
# printforge serve on this host (PRINTFORGE_ENV=production: listens on 0.0.0.0:8470, every
# call needs an API key, printers are real). Keys not set here come from the embedded
# config/default.toml and production.toml. Secrets go in the environment file, not here.

# [server]
# port = 8470

# [printers.mk3]
# driver = "marlin"
# profile = "prusa-mk3s"
# material = "PLA"
# port = "/dev/serial/by-id/usb-Prusa_Research__prusa3d.com__Original_Prusa_i3_MK3_CZPX...-if00"
# baud = 115200
# bed_clear_required = true

# [bus]
# broker = "mqtts://farm-broker.lan:8883"
# tls_ca = "/etc/printforge/ca.pem"

# [logging]
# format = "json"
"""
    return f"""\
# printforge node {node}: the printers this host exposes on the farm bus, and the broker.
# Secrets (broker password, farm key) go in node-{node}.env, not here.

# [bus]
# broker = "mqtts://farm-broker.lan:8883"
# tls_ca = "/etc/printforge/ca.pem"
# topic_layout = "node"

# [printers.mk3-1]
# driver = "marlin"
# profile = "prusa-mk3s"
# material = "PLA"
# port = "/dev/serial/by-id/usb-..."
# bed_clear_required = true
"""


def _secrets_skeleton(node: str | None) -> str:
    if node is not None:
        return f"""\
# Secrets for printforge-node@{node}, read by systemd (as root) before the node starts.
# `printforge farm broker-config --node {node}` writes this file's content as node-{node}.env.
# PRINTFORGE_BUS__USERNAME={node}
# PRINTFORGE_BUS__PASSWORD=...
# PRINTFORGE_BUS__FARM_KEY=...      (>= 32 characters, the same on every node and orchestrator)
"""
    return """\
# Secrets for printforge serve, read by systemd (as root) before the service starts.
# PRINTFORGE_API_KEY=...            (>= 16 characters: bootstraps one admin key)
# PRINTFORGE_BUS__USERNAME=orchestrator
# PRINTFORGE_BUS__PASSWORD=...      (`printforge farm broker-config` writes orchestrator.env)
# PRINTFORGE_BUS__FARM_KEY=...      (>= 32 characters, the same on every node and orchestrator)
# OPENAI_API_KEY=...
# ANTHROPIC_API_KEY=...
"""


def plan_install(
    *,
    node: str | None,
    user: str,
    data_dir: Path | None,
    unit_dir: Path,
    config_dir: Path,
    exec_cmd: str,
    now: bool,
) -> Plan:
    from printforge.runtime.errors import InputError

    if node is not None and (not node or "/" in node or node.startswith(("-", "."))):
        raise InputError(f"--node {node!r}: a node name, such as the host's name")
    if data_dir is not None:
        _check_data_dir(data_dir)
    template_name = "printforge-node@.service" if node else "printforge.service"
    template = (units_dir() / template_name).read_text()
    group = _group_of(user)
    unit = render_unit(
        template,
        exec_cmd=exec_cmd,
        user=user,
        group=group,
        config_dir=config_dir,
        data_dir=data_dir,
    )
    plan = Plan(unit=f"printforge-node@{node}.service" if node else "printforge.service")
    plan.files.append(PlannedFile(unit_dir / template_name, unit, 0o644, replace=True))
    stem = f"node-{node}" if node else "printforge"
    plan.files.append(
        PlannedFile(config_dir / f"{stem}.toml", _settings_skeleton(node), 0o644, replace=False)
    )
    plan.files.append(
        PlannedFile(config_dir / f"{stem}.env", _secrets_skeleton(node), 0o600, replace=False)
    )
    try:
        pwd.getpwnam(user)
    except KeyError:
        home = str(data_dir or DEFAULT_DATA_DIR)
        plan.commands.append(
            [
                "useradd",
                "--system",
                "--user-group",
                "--home-dir",
                home,
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                user,
            ]
        )
    if data_dir is not None and not data_dir.is_relative_to(_STATE_ROOT):
        # Outside /var/lib systemd does not make it: the directory must exist, owned by the user.
        target = str(data_dir / f"node-{node}" if node else data_dir)
        plan.commands.append(["install", "-d", "-o", user, "-g", group, "-m", "0750", target])
    plan.commands.append(["systemctl", "daemon-reload"])
    plan.commands.append(["systemctl", "enable", *(["--now"] if now else []), plan.unit])
    return plan


def _handle_install(args: argparse.Namespace) -> int:
    from printforge.runtime.errors import ConfigError

    unit_dir = Path(args.unit_dir) if args.unit_dir else DEFAULT_UNIT_DIR
    config_dir = Path(args.config_dir).absolute() if args.config_dir else DEFAULT_CONFIG_DIR
    data_dir = Path(args.service_data_dir) if args.service_data_dir else None
    plan = plan_install(
        node=args.node,
        user=args.user,
        data_dir=data_dir,
        unit_dir=unit_dir,
        config_dir=config_dir,
        exec_cmd=args.exec_cmd or _this_printforge(),
        now=args.now,
    )
    running = systemd_running()
    if args.dry_run:
        _print_plan(plan, running)
        return 0
    if not running and not args.unit_dir:
        raise ConfigError(
            "systemd is not running on this host (no /run/systemd/system): nothing was written;"
            " see what would be installed with --dry-run, or write the files anyway with"
            " --unit-dir DIR (and --config-dir DIR)"
        )
    for planned in plan.files:
        _write(planned)
    if not running:
        print(
            "printforge: systemd is not running on this host: wrote the files, created no user"
            " and enabled nothing; on the host that runs them:",
            file=sys.stderr,
        )
        for cmd in plan.commands:
            print(f"  {shlex.join(cmd)}", file=sys.stderr)
        return 0
    for cmd in plan.commands:
        print(f"+ {shlex.join(cmd)}")
        result = subprocess.run(cmd, check=False)
        if result.returncode != 0:
            raise ConfigError(f"`{shlex.join(cmd)}` failed (exit {result.returncode})")
    started = "started" if args.now else "enabled (start it with systemctl start " + plan.unit + ")"
    print(f"{plan.unit} installed and {started}; logs: journalctl -u {plan.unit}")
    return 0


def _write(planned: PlannedFile) -> None:
    path = planned.path
    if path.exists() and not planned.replace:
        print(f"kept {path} (exists)")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, planned.mode)
    with os.fdopen(fd, "w") as f:
        f.write(planned.content)
    os.chmod(tmp, planned.mode)  # the umask must not widen or narrow it
    os.replace(tmp, path)
    print(f"wrote {path}")


def _print_plan(plan: Plan, running: bool) -> None:
    for planned in plan.files:
        when = "" if planned.replace else ", only if it does not exist"
        print(f"# --- {planned.path} (mode {planned.mode:04o}{when})")
        print(planned.content, end="")
    print("# --- commands")
    if not running:
        print("# systemd is not running on this host: these run on the host that runs the unit")
    for cmd in plan.commands:
        print(shlex.join(cmd))
