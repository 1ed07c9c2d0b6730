"""Farm bus topic names.

Two layouts of the same messages, under one prefix:

- flat (protocol v1 as first published): `{prefix}/printers/{id}/{status|events|cmd|reply}`;
- node-scoped: `{prefix}/nodes/{node}/printers/{id}/{kind}`, where `id` must start with
  `{node}.`. A printer id (`NODE.NAME`) is one topic level, and MQTT wildcards only match
  whole levels, so a broker ACL cannot say "hostA's printers" in the flat layout; with the
  node as a level of its own it can (`…/nodes/hostA/printers/+/status`).

An orchestrator reads both layouts and answers a printer on the layout it heard it on; a node
publishes on the one it is configured for (`[bus] topic_layout`, default flat, which every
orchestrator understands).
"""

from __future__ import annotations

__all__ = ["KINDS", "Topics", "valid_printer_id"]

KINDS = ("status", "events", "cmd", "reply")


def valid_printer_id(printer_id: str) -> bool:
    """A printer id is one topic level: no wildcards, no slash, not empty."""
    return bool(printer_id) and not any(c in printer_id for c in "/+#\x00")


class Topics:
    """Topic names under one prefix; `parse` splits a received topic back into (id, kind).

    With `node`, a printer's own topics are node-scoped (the node side of the `node` layout);
    an orchestrator passes the node per call instead, as it learned it from the printer.
    """

    def __init__(self, prefix: str = "printforge/v1", *, node: str | None = None) -> None:
        self.prefix = prefix
        self.node = node
        self._root = f"{prefix}/printers/"
        self._nodes = f"{prefix}/nodes/"

    def _of(self, printer_id: str, kind: str, node: str | None) -> str:
        node = node or self.node
        if node is None:
            return f"{self._root}{printer_id}/{kind}"
        return f"{self._nodes}{node}/printers/{printer_id}/{kind}"

    def status(self, printer_id: str, node: str | None = None) -> str:
        return self._of(printer_id, "status", node)

    def events(self, printer_id: str, node: str | None = None) -> str:
        return self._of(printer_id, "events", node)

    def cmd(self, printer_id: str, node: str | None = None) -> str:
        return self._of(printer_id, "cmd", node)

    def reply(self, printer_id: str, node: str | None = None) -> str:
        return self._of(printer_id, "reply", node)

    def all(self, kind: str) -> str:
        """The wildcard filter for one kind over every printer (flat layout)."""
        return f"{self._root}+/{kind}"

    def all_nodes(self, kind: str) -> str:
        """The wildcard filter for one kind over every printer of every node (node layout)."""
        return f"{self._nodes}+/printers/+/{kind}"

    def parse(self, topic: str) -> tuple[str, str] | None:
        full = self.parse_full(topic)
        return None if full is None else (full[0], full[1])

    def parse_full(self, topic: str) -> tuple[str, str, str | None] | None:
        """(printer id, kind, node or None for the flat layout); None for any other topic,
        including a node-scoped one whose printer id does not belong to that node."""
        if topic.startswith(self._root):
            rest = topic[len(self._root) :].split("/")
            if len(rest) != 2 or rest[1] not in KINDS or not valid_printer_id(rest[0]):
                return None
            return rest[0], rest[1], None
        if topic.startswith(self._nodes):
            rest = topic[len(self._nodes) :].split("/")
            if len(rest) != 4 or rest[1] != "printers" or rest[3] not in KINDS:
                return None
            node, printer_id = rest[0], rest[2]
            # A node's user may write under its own level only (the ACL); the id must be one
            # of that node's too, or hostA could still speak for "hostB.x" under nodes/hostA.
            if not (valid_printer_id(node) and valid_printer_id(printer_id)):
                return None
            if not printer_id.startswith(f"{node}.") or len(printer_id) == len(node) + 1:
                return None
            return printer_id, rest[3], node
        return None
