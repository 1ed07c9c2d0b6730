"""The composition root of configuration: one `Settings` tree made of every floor's section.

Each floor owns the schema of its own section (`hardware.mqtt.config`, `llm.config`,
`slicing.config`, ...); this package sits above them and composes the tree, so that `runtime/`
and the component floors never import upwards to read their configuration. The floors that
consume the whole tree (agents, orchestrator, server, cli) sit above this one.
"""

from printforge.hardware.entry import PrinterEntry
from printforge.settings.loader import (
    ENVIRONMENTS,
    OrchestratorSettings,
    Settings,
    load_settings,
)
from printforge.settings.server import ServerSettings

__all__ = [
    "ENVIRONMENTS",
    "OrchestratorSettings",
    "PrinterEntry",
    "ServerSettings",
    "Settings",
    "load_settings",
]
