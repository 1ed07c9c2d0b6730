"""The offline, rule-based research provider (the default on every fresh machine)."""

from printforge.llm.offline.parser import KNOWN_PARTS, parse_request, understand

__all__ = ["KNOWN_PARTS", "parse_request", "understand"]
