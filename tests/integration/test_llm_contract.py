"""One contract for every LLMProvider, run against each kind: OpenAI, Anthropic and a local
OpenAI-compatible server through their real SDKs and the fake server, and the offline parser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from printforge.llm.base import LLMMessage, LLMProvider, LLMRequest, load_provider
from printforge.llm.config import ProviderSettings
from printforge.llm.offline import parse_request
from printforge.llm.prompt import design_schema, system_prompt
from printforge.runtime.errors import InputError, TransientError
from tests.fakes.llm_server import FakeLLM, Step

CUBE = parse_request("a 20 mm calibration cube").model_dump(mode="json")


def design_request(text: str = "a 20 mm calibration cube", **kw: Any) -> LLMRequest:
    return LLMRequest(
        system=system_prompt(),
        messages=[LLMMessage(role="user", content=text)],
        json_schema=design_schema(),
        text=text,
        **kw,
    )


class ProviderContract:
    """What every provider promises. Subclasses say how to build one."""

    kind: ClassVar[str]

    def settings(self, fake: FakeLLM) -> ProviderSettings:
        raise NotImplementedError

    @pytest_asyncio.fixture
    async def fake(self) -> AsyncIterator[FakeLLM]:
        async with FakeLLM(Step(answer=CUBE)) as fake:
            yield fake

    @pytest_asyncio.fixture
    async def provider(self, fake: FakeLLM) -> AsyncIterator[LLMProvider]:
        provider = load_provider(self.kind, self.settings(fake))
        yield provider
        await provider.close()

    @pytest.mark.asyncio
    async def test_answers_with_a_valid_design(self, provider: LLMProvider) -> None:
        response = await provider.complete(design_request())
        assert response.provider == provider.name
        assert response.data == CUBE and response.parse_error is None
        assert response.model == provider.model_for(design_request())

    @pytest.mark.asyncio
    async def test_escalation_and_explicit_models(self, provider: LLMProvider) -> None:
        small = provider.model_for(design_request())
        if provider.settings.escalation_model:
            assert provider.model_for(design_request(escalate=True)) != small
        if provider.kind != "offline":
            assert provider.model_for(design_request(model="named")) == "named"

    @pytest.mark.asyncio
    async def test_probe_and_health(self, provider: LLMProvider) -> None:
        await provider.probe()
        assert provider.health().name == provider.name


class TestOpenAI(ProviderContract):
    kind = "openai"

    def settings(self, fake: FakeLLM) -> ProviderSettings:
        return ProviderSettings(
            kind="openai",
            model="gpt-4o-mini",
            escalation_model="gpt-4o",
            base_url=fake.openai_base_url,
            api_key="sk-x",
        )  # type: ignore[arg-type]

    @pytest.mark.asyncio
    async def test_server_errors_are_transient(self, provider: LLMProvider, fake: FakeLLM) -> None:
        fake.queue("openai", Step(status=502))
        with pytest.raises(TransientError):
            await provider.complete(design_request())
        assert fake.calls("openai") == 1  # no SDK retry behind our back


class TestAnthropic(ProviderContract):
    kind = "anthropic"

    def settings(self, fake: FakeLLM) -> ProviderSettings:
        return ProviderSettings(
            kind="anthropic",
            model="claude-haiku-4-5",
            escalation_model="claude-sonnet-4-6",
            base_url=fake.anthropic_base_url,
            api_key="sk-x",
        )  # type: ignore[arg-type]

    @pytest.mark.asyncio
    async def test_prose_instead_of_the_tool_is_a_parse_error(
        self, provider: LLMProvider, fake: FakeLLM
    ) -> None:
        fake.queue("anthropic", Step(prose=True, raw_text="I think a cube is nice."))
        response = await provider.complete(design_request())
        assert response.data is None and "prose" in (response.parse_error or "")


class TestLocal(ProviderContract):
    kind = "openai_compatible"

    def settings(self, fake: FakeLLM) -> ProviderSettings:
        return ProviderSettings(
            kind="openai_compatible", model="llama3.1", base_url=fake.local_base_url
        )


class TestOffline(ProviderContract):
    kind = "offline"

    def settings(self, fake: FakeLLM) -> ProviderSettings:
        return ProviderSettings(kind="offline")

    @pytest.mark.asyncio
    async def test_refuses_what_it_cannot_read(self, provider: LLMProvider) -> None:
        with pytest.raises(InputError, match="understood nothing"):
            await provider.complete(design_request("xyzzy"))
