"""`printforge farm broker-config`: mosquitto credentials and ACL for a farm, generated.

Writes, into `--out DIR` (created 0700; every file 0600, since most hold secrets):

- `passwd`: a mosquitto password file, one user per node and one for the orchestrator, each
  with a generated password (hashed by `mosquitto_passwd -U` when it is installed, else in the
  PBKDF2-SHA512 format mosquitto 2 reads: `user:$7$ITERATIONS$SALT_B64$HASH_B64`);
- `acl`: each node may write only its own printers' status, events and replies, and read only
  their commands, under the node-scoped topics `{prefix}/nodes/{node}/printers/+/…`; only the
  orchestrator may write commands, and it reads everything under the prefix. Anonymous clients
  get nothing;
- `mosquitto.conf`: the lines to include in the broker's configuration;
- `orchestrator.env` and `node-{ID}.env`: the `PRINTFORGE_BUS__*` settings each side needs
  (user name, password, the shared farm key, the node-scoped layout), for `EnvironmentFile=`
  or `set -a; . FILE`.

The flat layout (`{prefix}/printers/{NODE.NAME}/…`) cannot be confined per node by a broker
ACL: the node is part of one topic level and MQTT wildcards only match whole levels. The
node-scoped layout puts the node in a level of its own; orchestrators read both layouts.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["hash_password", "register", "write_broker_config", "write_password_file"]

# mosquitto 2's own defaults for sha512-pbkdf2 (mosquitto_passwd): 12 bytes of salt, 101
# rounds, 64 bytes of SHA-512 output. The passwords made here are 32 random URL-safe
# characters (192 bits): the work factor is not what protects them.
SALT_BYTES = 12
ITERATIONS = 101
DEFAULT_ORCHESTRATOR = "orchestrator"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("farm", help="farm bus administration (broker credentials and ACL)")
    farm_sub = p.add_subparsers(dest="farm_command", metavar="COMMAND")
    bc = farm_sub.add_parser(
        "broker-config",
        help="write a mosquitto password file, ACL and config snippet for the farm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bc.add_argument("--out", required=True, metavar="DIR", help="where to write the files")
    bc.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="ID",
        required=True,
        help="a node id (its user name and topic level); repeat for each node",
    )
    bc.add_argument(
        "--orchestrator",
        default=DEFAULT_ORCHESTRATOR,
        metavar="USER",
        help=f"the orchestrator's user name (default {DEFAULT_ORCHESTRATOR})",
    )
    bc.add_argument("--topic-prefix", default=None, metavar="PREFIX", help="default printforge/v1")
    bc.add_argument(
        "--broker", metavar="URL", help="written into the .env files (mqtt:// or mqtts://)"
    )
    bc.add_argument(
        "--force", action="store_true", help="replace files (and passwords) already in DIR"
    )
    bc.set_defaults(handler=_handle_broker_config)
    p.set_defaults(handler=_handle_missing, farm_parser=p)


def _handle_missing(args: argparse.Namespace) -> int:
    args.farm_parser.print_help()
    return 2


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """One password in mosquitto 2's sha512-pbkdf2 form: `$7$ITERATIONS$SALT$HASH` (base64)."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def _write_private(path: Path, text: str) -> None:
    """Create or replace `path` with mode 0600 from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)  # an existing file keeps its old mode through O_CREAT


def write_password_file(path: Path, users: dict[str, str], *, use_tool: bool | None = None) -> str:
    """Write `users` (name -> password) hashed into `path` (0600); returns how it was hashed.

    With mosquitto_passwd (use_tool None: when installed) the plain file is hashed in place by
    `mosquitto_passwd -U` inside a private folder, so no password is ever on a command line
    (where `ps` shows it) nor in a file others may read.
    """
    tool = shutil.which("mosquitto_passwd") if use_tool in (None, True) else None
    if use_tool and tool is None:
        raise FileNotFoundError("mosquitto_passwd is not installed")
    if tool is None:
        _write_private(path, "".join(f"{u}:{hash_password(p)}\n" for u, p in users.items()))
        return "builtin PBKDF2-SHA512"
    from printforge.runtime.errors import ConfigError

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".passwd-") as folder:
        os.chmod(folder, 0o700)
        plain = Path(folder) / "passwd"
        _write_private(plain, "".join(f"{u}:{p}\n" for u, p in users.items()))
        # umask 077: mosquitto_passwd writes a backup of the plain file while it works.
        done = subprocess.run(
            [tool, "-U", str(plain)], capture_output=True, text=True, umask=0o077, check=False
        )
        lines = plain.read_text().splitlines()
        if done.returncode != 0 or any(":$7$" not in line for line in lines):
            # Never keep a file that may still hold a password in the clear.
            plain.unlink(missing_ok=True)
            raise ConfigError(f"mosquitto_passwd -U failed: {done.stderr.strip()[:200]}")
        os.replace(plain, path)
    path.chmod(0o600)
    return "mosquitto_passwd"


def _acl(prefix: str, orchestrator: str, nodes: list[str]) -> str:
    lines = [
        "# printforge farm ACL, written by `printforge farm broker-config`.",
        "# No topic line before the first `user`: anonymous clients may neither read nor write.",
        "",
        f"user {orchestrator}",
        f"topic read {prefix}/#",
        f"topic write {prefix}/printers/+/cmd",
        f"topic write {prefix}/nodes/+/printers/+/cmd",
        "",
    ]
    for node in nodes:
        scope = f"{prefix}/nodes/{node}/printers/+"
        lines += [
            f"user {node}",
            # status is also the node's retained last will, which mosquitto checks as a write.
            f"topic write {scope}/status",
            f"topic write {scope}/events",
            f"topic write {scope}/reply",
            f"topic read {scope}/cmd",
            "",
        ]
    return "\n".join(lines)


def _conf(out: Path) -> str:
    return "\n".join(
        [
            "# printforge farm: include in mosquitto.conf (mosquitto 2), written by",
            "# `printforge farm broker-config`. The files must be readable by the broker's user",
            "# (chown mosquitto); they hold password hashes, keep them 0600.",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {out / 'passwd'}",
            f"acl_file {out / 'acl'}",
            "set_tcp_nodelay true",
            "# then a listener, with TLS on anything but a trusted LAN, e.g.:",
            "# listener 8883",
            "# certfile /etc/mosquitto/certs/server.pem",
            "# keyfile /etc/mosquitto/certs/server.key",
            "",
        ]
    )


def _env(values: dict[str, str]) -> str:
    # Values are generated tokens and ids (no spaces, quotes or $): safe unquoted for systemd's
    # EnvironmentFile= and for a shell's `set -a; . FILE`.
    return "".join(f"{key}={value}\n" for key, value in values.items())


def write_broker_config(
    out: Path,
    nodes: list[str],
    *,
    orchestrator: str = DEFAULT_ORCHESTRATOR,
    prefix: str | None = None,
    broker: str | None = None,
    force: bool = False,
    use_tool: bool | None = None,
) -> dict[str, object]:
    """Write every file into `out`; returns what was written (no secret in it)."""
    from printforge.hardware.mqtt.config import BusSettings, parse_broker
    from printforge.hardware.mqtt.topics import valid_printer_id
    from printforge.runtime.errors import InputError

    if broker is not None:
        parse_broker(broker)  # ConfigError with the reason, before anything is written
    bus_prefix = BusSettings(topic_prefix=prefix).topic_prefix if prefix else "printforge/v1"
    for name in [*nodes, orchestrator]:
        # One topic level and one mosquitto user name: no wildcard, slash, colon or blank.
        if not valid_printer_id(name) or any(c in name for c in ": \t\r\n") or "." in name:
            raise InputError(
                f"{name!r} cannot be a node id or user name: no '/', '+', '#', ':', '.' or blanks"
            )
    if len(set(nodes)) != len(nodes):
        raise InputError(f"a node is given twice: {sorted(nodes)}")
    if orchestrator in nodes:
        raise InputError(f"the orchestrator user {orchestrator!r} is also a node id")
    files = {
        "passwd": out / "passwd",
        "acl": out / "acl",
        "mosquitto.conf": out / "mosquitto.conf",
        "orchestrator.env": out / "orchestrator.env",
        **{f"node-{n}.env": out / f"node-{n}.env" for n in nodes},
    }
    present = [name for name, path in files.items() if path.exists()]
    if present and not force:
        raise InputError(
            f"{out} already holds {', '.join(present)}: pass --force to replace them (and every"
            " password in them)"
        )
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        out.chmod(0o700)
    out = out.resolve()
    passwords = {name: secrets.token_urlsafe(24) for name in [orchestrator, *nodes]}
    farm_key = secrets.token_urlsafe(32)
    how = write_password_file(out / "passwd", passwords, use_tool=use_tool)
    _write_private(out / "acl", _acl(bus_prefix, orchestrator, nodes))
    _write_private(out / "mosquitto.conf", _conf(out))
    common = {"PRINTFORGE_BUS__FARM_KEY": farm_key}
    if broker:
        common["PRINTFORGE_BUS__BROKER"] = broker
    if prefix:
        common["PRINTFORGE_BUS__TOPIC_PREFIX"] = bus_prefix
    _write_private(
        out / "orchestrator.env",
        _env(
            {
                "PRINTFORGE_BUS__USERNAME": orchestrator,
                "PRINTFORGE_BUS__PASSWORD": passwords[orchestrator],
                **common,
            }
        ),
    )
    for node in nodes:
        _write_private(
            out / f"node-{node}.env",
            _env(
                {
                    "PRINTFORGE_BUS__USERNAME": node,
                    "PRINTFORGE_BUS__PASSWORD": passwords[node],
                    "PRINTFORGE_BUS__NODE_ID": node,
                    "PRINTFORGE_BUS__TOPIC_LAYOUT": "node",
                    **common,
                }
            ),
        )
    return {"out": str(out), "files": sorted(files), "hashed_by": how, "prefix": bus_prefix}


def _handle_broker_config(args: argparse.Namespace) -> int:
    summary = write_broker_config(
        Path(args.out),
        list(args.node),
        orchestrator=args.orchestrator,
        prefix=args.topic_prefix,
        broker=args.broker,
        force=args.force,
    )
    out = summary["out"]
    files = ", ".join(summary["files"])  # type: ignore[arg-type]
    print(f"wrote {files} to {out} (passwords hashed by {summary['hashed_by']}; all 0600)")
    print(f"broker: include {out}/mosquitto.conf, chown its files to the broker's user, restart")
    print(f"orchestrator: load {out}/orchestrator.env into the environment of printforge serve")
    print(f"each node: copy {out}/node-ID.env to that host only, load it for printforge node")
    return 0
