"""Layered configuration: embedded TOML, env overlay, a user file, then PRINTFORGE_* variables.

Every layer is deep-merged into one tree while remembering which file set which key, so that a
bad value or an unknown key stops start-up with a message naming both.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from printforge.hardware.entry import PrinterEntry
from printforge.hardware.mqtt.config import BusSettings
from printforge.llm.config import LLMSettings
from printforge.models.printer import MaterialProfile, PrinterProfile
from printforge.models.spool import SpoolmanSettings, SpoolSettings
from printforge.notify.config import NotifySettings
from printforge.runtime.errors import ConfigError
from printforge.runtime.logsetup import LoggingSettings
from printforge.runtime.paths import config_dir, default_data_dir
from printforge.runtime.policy import CallPolicy, PolicyOverride
from printforge.settings.server import ServerSettings
from printforge.slicing.config import SlicerSettings

__all__ = [
    "ENVIRONMENTS",
    "OrchestratorSettings",
    "RuntimeSettings",
    "Settings",
    "StoreSettings",
    "load_settings",
]

ENVIRONMENTS = ("development", "staging", "production")
ENV_PREFIX = "PRINTFORGE_"
# Variables that steer loading itself rather than naming a setting.
_LOADER_VARS = {"PRINTFORGE_ENV", "PRINTFORGE_CONFIG"}

DEFAULT_PRINTER = "virtual"


# The command-line layer of the load in progress (see load_settings).
_FLAGS: ContextVar[dict[str, Any] | None] = ContextVar("printforge_flags", default=None)


class _FlagSource(PydanticBaseSettingsSource):
    """Command-line values, above the PRINTFORGE_* variables: `--data-dir /tmp/x` must not
    quietly become the PRINTFORGE_DATA_DIR of the production service."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return copy.deepcopy(_FLAGS.get() or {})


class RuntimeSettings(CallPolicy):
    """`[runtime]`: the call policy every agent runs under, and the CPU worker processes."""

    workers: int = Field(
        2,
        ge=0,
        le=64,
        description="processes for CPU-bound work (CAD, built-in slicer, G-code analysis);"
        " 0: threads in the server's own process",
    )


class AgentsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    research: PolicyOverride = Field(default_factory=PolicyOverride)
    cad: PolicyOverride = Field(default_factory=PolicyOverride)
    slicer: PolicyOverride = Field(default_factory=PolicyOverride)
    printer: PolicyOverride = Field(default_factory=PolicyOverride)


class OrchestratorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_active_jobs: int = Field(
        4, ge=1, le=256, description="jobs researched, designed or sliced at once"
    )
    requeue_interrupted: bool = Field(
        True, description="a print interrupted by a vanished printer goes back to the queue"
    )
    max_print_attempts: int = Field(2, ge=1, le=10)
    wait_for_offline_printers: bool = Field(
        True,
        description="accept a print whose printers have not connected yet and wait for them"
        " (a server); false refuses it at once (one command-line job)",
    )
    printer_retry_max_s: float = Field(
        60.0, gt=0, le=3600, description="longest wait between attempts to start a printer"
    )
    shutdown_grace_s: float = Field(
        45.0,
        gt=0,
        le=600,
        description="on stop, how long running jobs get to stop (a print stops its printer"
        " safely first: heaters off, nozzle up); longer than a driver's safe-stop timeout",
    )


class StoreSettings(BaseModel):
    """Where jobs live (issue 16): SQLite in the data directory, or a PostgreSQL that any
    number of orchestrators share."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        description="sqlite:///PATH (default: printforge.sqlite3 in the data directory) or"
        " postgresql://USER@HOST:PORT/DB",
    )
    leases: bool | None = Field(
        None,
        description="claim each job with a lease instead of locking the data directory, so"
        " several orchestrators share the store (on by default; false: one orchestrator per"
        " data directory, under an exclusive lock)",
    )
    lease_s: float = Field(
        10.0,
        ge=1.0,
        le=600.0,
        description="a lease not renewed for this long expires and another instance takes the"
        " job over (renewed every third of it)",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("sqlite:///", "postgresql://", "postgres://")
        ):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class Settings(BaseSettings):
    """The whole configuration tree."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    env: Literal["development", "staging", "production"] = "development"
    data_dir: Path = Field(default_factory=default_data_dir)
    mock: bool = Field(False, description="virtual printers and simulators instead of hardware")
    log_level: str = Field("WARNING", pattern="^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    api_key: SecretStr | None = Field(None, description="bootstraps one admin key for the server")
    default_printer: str = DEFAULT_PRINTER
    default_material: str = "PLA"
    sim_speed: float = Field(
        200.0, gt=0, description="virtual printers run this many times faster than real time"
    )
    virtual_cameras: bool = Field(
        False,
        description="every virtual printer gets a virtual camera (mock mode), not only those"
        " with a [printers.NAME.camera] table",
    )

    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    orchestrator: OrchestratorSettings = Field(default_factory=OrchestratorSettings)
    agents: AgentsSettings = Field(default_factory=AgentsSettings)
    printers: dict[str, PrinterEntry] = Field(default_factory=dict)
    printer_profiles: dict[str, PrinterProfile] = Field(default_factory=dict)
    materials: dict[str, MaterialProfile] = Field(default_factory=dict)
    slicer: SlicerSettings = Field(default_factory=SlicerSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    spools: SpoolSettings = Field(default_factory=SpoolSettings)
    spoolman: SpoolmanSettings = Field(default_factory=SpoolmanSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)

    # Set when no printer was declared and `virtual` was provided (see _defaults_exist).
    _implicit_printer: str | None = PrivateAttr(None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML layers arrive as init kwargs (already merged); variables win over them, and
        # flags typed on this command line win over variables set long ago in a service file.
        return (_FlagSource(settings_cls), env_settings, init_settings)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        # TOML and service env files are not read by a shell: "~" would become a folder named
        # "~"; and a relative path is pinned now so reports name files from any directory.
        return value.expanduser().absolute()

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        # A profile's name is its table key (or file stem); writing it twice invites mismatch.
        if isinstance(data, dict):
            for section in ("printers", "printer_profiles", "materials"):
                tables = data.get(section)
                if isinstance(tables, dict):
                    _fold_variable_keys(tables)
            for section in ("printer_profiles", "materials"):
                tables = data.get(section)
                if isinstance(tables, dict):
                    for key, table in tables.items():
                        if isinstance(table, dict):
                            table.setdefault("name", key)
        return data

    @model_validator(mode="after")
    def _defaults_exist(self) -> Settings:
        # A printer named `virtual` exists with no configuration at all; once printers are
        # declared, only they exist (a stray virtual printer would take real jobs).
        if not self.printers:
            self.printers[DEFAULT_PRINTER] = PrinterEntry()
            self._implicit_printer = DEFAULT_PRINTER
        if "generic-220" not in self.printer_profiles:
            self.printer_profiles["generic-220"] = PrinterProfile(name="generic-220")
        for pname, entry in self.printers.items():
            if entry.profile not in self.printer_profiles:
                raise ValueError(
                    f"printers.{pname}.profile: unknown printer profile {entry.profile!r}"
                    f" (known: {', '.join(sorted(self.printer_profiles))})"
                )
            if self.materials and self.material_key(entry.material) is None:
                raise ValueError(
                    f"printers.{pname}.material: unknown material {entry.material!r}"
                    f" (known: {', '.join(sorted(self.materials))})"
                )
            if self.materials:
                self._material_fits(pname, entry)
        if self.default_printer not in self.printers:
            if self.default_printer != DEFAULT_PRINTER:
                raise ValueError(f"default_printer: no printer named {self.default_printer!r}")
            self.default_printer = next(iter(self.printers))
        return self

    def _material_fits(self, pname: str, entry: PrinterEntry) -> None:
        # Found here, at start-up, rather than by the G-code gate after research, CAD and
        # slicing: the loaded material must be printable within the printer's limits.
        material = self.material(entry.material)
        profile = self.printer_profiles[entry.profile]
        checks = (
            ("hotend", material.hotend_temp, material.first_layer_hotend_temp, "max_hotend_temp"),
            ("bed", material.bed_temp, material.first_layer_bed_temp, "max_bed_temp"),
        )
        for heater, temp, first, limit_key in checks:
            needed = max(temp, first or 0.0)
            limit = getattr(profile, limit_key)
            if needed > limit:
                raise ValueError(
                    f"printers.{pname}.material: {material.name} needs the {heater} at"
                    f" {needed:g} °C, above profile {profile.name}'s {limit_key} {limit:g} °C"
                )

    @property
    def implicit_printer(self) -> str | None:
        """The name of the simulated printer provided because none was declared, if any."""
        return self._implicit_printer

    def without_implicit_printer(self) -> Settings:
        """These settings minus the simulated printer nobody asked for: a server's printers
        are the declared and discovered ones, and a simulation only with `mock` (issue 15)."""
        if self._implicit_printer is None:
            return self
        printers = {k: v for k, v in self.printers.items() if k != self._implicit_printer}
        # model_copy skips validation: the validator would put the printer straight back.
        copy_ = self.model_copy(update={"printers": printers})
        copy_._implicit_printer = None
        return copy_

    # lookups -------------------------------------------------------------------------------
    def material_key(self, name: str) -> str | None:
        wanted = name.casefold()
        return next((k for k in self.materials if k.casefold() == wanted), None)

    def material(self, name: str) -> MaterialProfile:
        key = self.material_key(name)
        if key is None:
            raise ConfigError(
                f"unknown material {name!r} (known: {', '.join(sorted(self.materials))})"
            )
        return self.materials[key]

    def printer(self, name: str) -> PrinterEntry:
        try:
            return self.printers[name]
        except KeyError:
            raise ConfigError(
                f"unknown printer {name!r} (configured: {', '.join(sorted(self.printers))})"
            ) from None

    def printer_profile(self, printer: str) -> PrinterProfile:
        return self.printer_profiles[self.printer(printer).profile]

    def policy(self, agent: str) -> CallPolicy:
        override: PolicyOverride = getattr(self.agents, agent, PolicyOverride())
        return override.apply(self.runtime)

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "printforge.sqlite3"

    @property
    def store_url(self) -> str:
        """The job store's URL: `[store] url`, else SQLite in the data directory."""
        return self.store.url or f"sqlite:///{self.db_path}"

    @property
    def store_leases(self) -> bool:
        """Whether orchestrators claim jobs with leases (and share the data directory)."""
        # On by default with SQLite too (issue 16): two `printforge run` on one data directory
        # run side by side, and a start recovers only jobs whose instance is gone.
        return True if self.store.leases is None else self.store.leases


# loading ---------------------------------------------------------------------------------------


def _fold_variable_keys(tables: dict[str, Any]) -> None:
    """pydantic-settings lower-cases what it reads from variables: PRINTFORGE_MATERIALS__PLA__...
    arrives as `pla`. It overrides the table named `PLA`, rather than declaring a second,
    incomplete one (a stray printer `mk3` beside `MK3` would even take jobs)."""
    for key in [k for k in tables if k == k.lower()]:
        same = [k for k in tables if k != key and k.casefold() == key]
        if len(same) == 1 and isinstance(tables[key], dict) and isinstance(tables[same[0]], dict):
            tables[same[0]] = _deep_merged(tables[same[0]], tables.pop(key))


def _deep_merged(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merged(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from err
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read: {err}") from err


def _merge(
    dst: dict[str, Any],
    src: dict[str, Any],
    origin: str,
    provenance: dict[tuple[str, ...], str],
    prefix: tuple[str, ...] = (),
) -> None:
    for key, value in src.items():
        path = (*prefix, key)
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value, origin, provenance, path)
        else:
            dst[key] = value
            provenance[path] = origin
            if isinstance(value, dict):
                _mark(value, origin, provenance, path)


def _mark(
    tree: dict[str, Any],
    origin: str,
    provenance: dict[tuple[str, ...], str],
    prefix: tuple[str, ...],
) -> None:
    for key, value in tree.items():
        provenance[(*prefix, key)] = origin
        if isinstance(value, dict):
            _mark(value, origin, provenance, (*prefix, key))


def _env_provenance(provenance: dict[tuple[str, ...], str]) -> None:
    for var in os.environ:
        if var.startswith(ENV_PREFIX) and var not in _LOADER_VARS:
            parts = tuple(p.lower() for p in var[len(ENV_PREFIX) :].split("__"))
            provenance[parts] = f"environment variable {var}"


def _origin_of(loc: tuple[str | int, ...], provenance: dict[tuple[str, ...], str]) -> str | None:
    # Variables arrive lower-cased (PRINTFORGE_MATERIALS__PLA__... names `PLA`): compare folded;
    # later layers were recorded later, so they win.
    folded: dict[tuple[str, ...], str] = {}
    for path, origin in provenance.items():
        folded[tuple(p.casefold() for p in path)] = origin
    provenance = folded
    keys = tuple(str(p).casefold() for p in loc)
    # From the key itself up to its outermost table: the first layer that set it, or that set
    # something inside it. A key only a variable created (PRINTFORGE_A__B__C makes an unknown
    # `a.b`), or a required key missing from a table a variable declared, is the variable's,
    # not the file's that set the parent table.
    for n in range(len(keys), 0, -1):
        prefix = keys[:n]
        if prefix in provenance:
            return provenance[prefix]
        below = [o for k, o in provenance.items() if len(k) > n and k[:n] == prefix]
        if below:
            return below[-1]
    return None


def _explain(err: ValidationError, provenance: dict[tuple[str, ...], str]) -> str:
    lines = []
    for item in err.errors(include_url=False, include_input=False):
        loc = tuple(p for p in item["loc"] if p not in ("function-after",))
        # Pydantic reports model-level checks at the model; our messages start with the key.
        key = ".".join(str(p) for p in loc) or str(item["msg"]).split(":", 1)[0].removeprefix(
            "Value error, "
        )
        msg = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        # A check across a table's keys ("hotend_temp 290 exceeds max_hotend_temp 235") is
        # reported at the table; the key it names first is the one to trace to its file.
        first = msg.split(" ", 1)[0].rstrip(":,")
        origin = (
            (_origin_of((*loc, first), provenance) if loc and first.isidentifier() else None)
            or _origin_of(loc, provenance)
            or _origin_of(tuple(key.split(".")), provenance)
        )
        where = f" (in {origin})" if origin else ""
        text = msg if msg.startswith(key) else f"{key}: {msg}"
        lines.append(f"{text}{where}")
    return "invalid configuration: " + "; ".join(lines)


def _profile_layers(
    base: Path, merged: dict[str, Any], provenance: dict[tuple[str, ...], str]
) -> None:
    for folder, section in (("printers", "printer_profiles"), ("materials", "materials")):
        directory = base / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            _merge(merged, {section: {path.stem: _read_toml(path)}}, str(path), provenance)


def load_settings(
    config_file: Path | str | None = None,
    *,
    env: str | None = None,
    overrides: dict[str, Any] | None = None,
    base_dir: Path | None = None,
) -> Settings:
    """Build the settings tree; raises ConfigError naming the offending key and file."""
    base = base_dir or config_dir()
    env_name = env or os.environ.get("PRINTFORGE_ENV") or "development"
    if env_name not in ENVIRONMENTS:
        raise ConfigError(f"PRINTFORGE_ENV={env_name!r} is not one of {', '.join(ENVIRONMENTS)}")
    merged: dict[str, Any] = {}
    provenance: dict[tuple[str, ...], str] = {}

    _profile_layers(base, merged, provenance)
    default = base / "default.toml"
    if default.is_file():
        _merge(merged, _read_toml(default), str(default), provenance)
    overlay = base / f"{env_name}.toml"
    if overlay.is_file():
        _merge(merged, _read_toml(overlay), str(overlay), provenance)
    user_file = config_file or os.environ.get("PRINTFORGE_CONFIG")
    if user_file:
        path = Path(user_file).expanduser()
        _merge(merged, _read_toml(path), str(path), provenance)
    merged["env"] = env_name
    _env_provenance(provenance)
    if overrides:
        # Recorded after the variables: a flag's value is the one that counts, and is named.
        _merge(merged, overrides, "command line", provenance)

    token = _FLAGS.set(overrides or {})
    try:
        settings = Settings(**merged)
    except ValidationError as err:
        raise ConfigError(_explain(err, provenance)) from None
    except SettingsError as err:
        raise ConfigError(_explain_env(err)) from None
    finally:
        _FLAGS.reset(token)
    _validate_drivers(settings, provenance)
    return settings


def _explain_env(err: SettingsError) -> str:
    """pydantic-settings reads `PRINTFORGE_<TABLE>` as the whole table, in JSON; a plain value
    there (say PRINTFORGE_SERVER=http://host, meant for one key) fails before validation."""
    found = re.search(r'field "([^"]+)"', str(err))
    field = found.group(1) if found else None
    if field is None:
        return f"invalid configuration from the environment: {err}"
    var = f"{ENV_PREFIX}{field.upper()}"
    if var.casefold() not in {v.casefold() for v in os.environ}:
        # Not the whole table: a key under it that takes a list or a table, given a plain
        # value (PRINTFORGE_LLM__PROVIDERS=offline); those are written in JSON.
        nested = sorted(
            v
            for v, value in os.environ.items()
            if v.casefold().startswith(f"{var}__".casefold())
            and not _is_json(value)
            and _takes_json(v[len(ENV_PREFIX) :].lower().split("__"))
        )
        if nested:
            return (
                f"environment variable {nested[0]} takes a list or a table, written in JSON"
                f' (e.g. {ENV_PREFIX}LLM__PROVIDERS=\'["openai", "offline"]\')'
            )
    return (
        f"environment variable {var} must be a JSON object for the [{field}] table;"
        f" set one key with {var}__KEY instead (e.g. {ENV_PREFIX}SLICER__ENGINE=prusaslicer)"
    )


def _takes_json(parts: list[str]) -> bool:
    """Whether the setting at this path is a list or a table (which variables give in JSON)."""
    annotation: Any = Settings
    for part in parts:
        annotation = _unwrap_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return False
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]  # `part` names one table of the dict
        else:
            return False
    annotation = _unwrap_optional(annotation)
    return get_origin(annotation) in (list, tuple, set, dict) or (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
    )


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _validate_drivers(settings: Settings, provenance: dict[tuple[str, ...], str]) -> None:
    from printforge.hardware.base import load_driver

    for name, entry in settings.printers.items():
        try:
            driver_cls = load_driver(entry.driver)
        except ConfigError as err:
            key = ("printers", name, "driver")
            origin = _origin_of(key, provenance)
            where = f" (in {origin})" if origin else ""
            raise ConfigError(
                f"invalid configuration: {'.'.join(key)}: {err.message}{where}"
            ) from None
        try:
            driver_cls.Config.model_validate(entry.driver_options)
        except ValidationError as err:
            shifted = ValidationError.from_exception_data(
                err.title,
                [
                    {**e, "loc": ("printers", name, *e["loc"])}  # type: ignore[typeddict-item]
                    for e in err.errors(include_url=False)
                ],
            )
            raise ConfigError(_explain(shifted, provenance)) from None
