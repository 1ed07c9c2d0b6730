"""The offline provider: the rule-based parser behind the LLMProvider interface. Free, local."""

from __future__ import annotations

import asyncio
import time

from printforge.llm.base import LLMRequest, LLMResponse
from printforge.llm.config import ProviderSettings
from printforge.llm.offline.parser import parse_request
from printforge.runtime.health import HealthRecord

__all__ = ["OfflineProvider"]


class OfflineProvider:
    kind = "offline"
    model_name = "rules-v1"

    def __init__(self, name: str = "offline", settings: ProviderSettings | None = None) -> None:
        self.name = name
        self.settings = settings or ProviderSettings(kind="offline")
        self._record = HealthRecord(name=name, component="llm")

    def model_for(self, request: LLMRequest) -> str:
        return self.model_name

    def health(self) -> HealthRecord:
        return self._record

    async def close(self) -> None:
        return None

    async def probe(self) -> None:
        await asyncio.to_thread(parse_request, "a 20 mm calibration cube")

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        # With the printer known, an oversize request is refused here, with what was understood,
        # rather than later as a bare validation failure.
        # In a thread: the rules and their outline checks are pure Python (5-70 ms), which
        # would hold the loop the printers stream on. A process would cost more than it
        # saves: the parse is short, and the loop gets the GIL back every switch interval.
        spec = await asyncio.to_thread(parse_request, request.text, request.printer)
        data = spec.model_dump(mode="json")
        return LLMResponse(
            provider=self.name,
            model=self.model_name,
            text=spec.model_dump_json(),
            data=data,
            latency_s=time.perf_counter() - started,
        )
