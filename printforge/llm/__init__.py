"""LLM providers and the router that serves every agent needing a model (see docs/llm.md).

Import from the modules (`printforge.llm.router`, `printforge.llm.base`): this package imports
nothing itself, because `printforge.llm.config` is read at start-up and must stay light.
"""

__all__: list[str] = []
