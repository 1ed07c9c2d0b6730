"""Farm bus topic names: `{prefix}/printers/{id}/{status|events|cmd|reply}`."""

from __future__ import annotations

__all__ = ["KINDS", "Topics", "valid_printer_id"]

KINDS = ("status", "events", "cmd", "reply")


def valid_printer_id(printer_id: str) -> bool:
    """A printer id is one topic level: no wildcards, no slash, not empty."""
    return bool(printer_id) and not any(c in printer_id for c in "/+#\x00")


class Topics:
    """Topic names under one prefix; `parse` splits a received topic back into (id, kind)."""

    def __init__(self, prefix: str = "printforge/v1") -> None:
        self.prefix = prefix
        self._root = f"{prefix}/printers/"

    def status(self, printer_id: str) -> str:
        return f"{self._root}{printer_id}/status"

    def events(self, printer_id: str) -> str:
        return f"{self._root}{printer_id}/events"

    def cmd(self, printer_id: str) -> str:
        return f"{self._root}{printer_id}/cmd"

    def reply(self, printer_id: str) -> str:
        return f"{self._root}{printer_id}/reply"

    def all(self, kind: str) -> str:
        """The wildcard filter for one kind over every printer."""
        return f"{self._root}+/{kind}"

    def parse(self, topic: str) -> tuple[str, str] | None:
        if not topic.startswith(self._root):
            return None
        rest = topic[len(self._root) :].split("/")
        if len(rest) != 2 or rest[1] not in KINDS or not valid_printer_id(rest[0]):
            return None
        return rest[0], rest[1]
