#!/usr/bin/env python3
"""Benchmark the LLM router against the local fake server (no network, no keys).

Measures, each against a reference taken in the same run:
  1. router overhead per call: router.complete() vs a bare SDK call to the same server;
  2. fail-over with an open breaker: first provider down, every call must skip it without a
     network round trip; compared with calling the fallback provider directly;
  3. cache-hit latency vs a bare SDK call.

Usage: python scripts/bench_llm.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from printforge.llm.base import LLMMessage, LLMRequest  # noqa: E402
from printforge.llm.config import CacheSettings, LLMSettings, ProviderSettings  # noqa: E402
from printforge.llm.router import LLMRouter  # noqa: E402
from tests.fakes.llm_server import FakeLLM, Step  # noqa: E402

ANSWER = {"name": "cube", "parts": [{"kind": "box", "size": [20, 20, 20]}]}
# Strict, as OpenAI requires (the fake server refuses anything else).
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}


PROMPT = {"system": "You design parts.", "schema": SCHEMA}


def request(i: int = 0) -> LLMRequest:
    return LLMRequest(
        system=PROMPT["system"],
        messages=[LLMMessage(role="user", content=f"a cube {i}")],
        json_schema=PROMPT["schema"],
        text=f"a cube {i}",
        max_tokens=256,
    )


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p90_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1] * 1000


def settings(fake: FakeLLM, order: list[str], cache: bool) -> LLMSettings:
    return LLMSettings(
        providers=order,
        provider={
            "openai": ProviderSettings(
                kind="openai",
                model="gpt-4o-mini",
                api_key="sk-bench",
                base_url=fake.openai_base_url,
                timeout_s=5,
            ),
            "down": ProviderSettings(
                kind="openai",
                model="gpt-4o-mini",
                api_key="sk-bench",
                base_url=fake.local_base_url,
                timeout_s=5,
            ),
        },
        prices={"gpt-4o-mini": {"input": 0.15, "output": 0.6}},
        budget_per_day_usd=1e6,
        budget_per_job_usd=1e6,
        max_attempts=1,
        breaker_failure_threshold=2,
        breaker_reset_s=3600,
        cache=CacheSettings(enabled=cache),
    )


async def bare_sdk(fake: FakeLLM, n: int) -> list[float]:
    client = openai.AsyncOpenAI(api_key="sk-bench", base_url=fake.openai_base_url, max_retries=0)
    out = []
    try:
        for i in range(n):
            t = time.perf_counter()
            await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[
                    {"role": "system", "content": PROMPT["system"]},
                    {"role": "user", "content": f"a cube {i}"},
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": "design_spec",
                        "schema": PROMPT["schema"],
                        "strict": True,
                    },
                },
                max_tokens=256,
                temperature=0.0,
            )
            out.append(time.perf_counter() - t)
    finally:
        await client.close()
    return out


async def routed(router: LLMRouter, n: int, *, same: bool = False) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        await router.complete(request(0 if same else i))
        out.append(time.perf_counter() - t)
    return out


async def overhead(fake: FakeLLM, n: int, label: str) -> list[float]:
    """Bare SDK vs router p50 with the current PROMPT; returns the bare samples."""
    await bare_sdk(fake, 20)  # warm up connections and imports
    router = LLMRouter(settings(fake, ["openai"], cache=False))
    await routed(router, 20)
    bare: list[float] = []
    via: list[float] = []
    # Interleave the two so drift on a shared machine hits both alike.
    for _ in range(4):
        bare += await bare_sdk(fake, n // 4)
        via += await routed(router, n // 4)
    await router.close()
    extra = p50_ms(via) - p50_ms(bare)
    print(f"[{label}] bare SDK call  p50 {p50_ms(bare):7.3f} ms  p90 {p90_ms(bare):7.3f} ms")
    print(f"[{label}] router call    p50 {p50_ms(via):7.3f} ms  p90 {p90_ms(via):7.3f} ms")
    print(
        f"[{label}] router overhead p50 {extra:7.3f} ms  ratio"
        f" {p50_ms(via) / p50_ms(bare):.3f}  (target < 2 ms)  {'OK' if extra < 2 else 'OVER'}"
    )
    return bare


async def main(n: int) -> None:
    from printforge.llm.prompt import design_schema, system_prompt

    async with FakeLLM(Step(answer=ANSWER), local=Step(status=503)) as fake:
        bare = await overhead(fake, n, "small prompt")
        PROMPT.update(system=system_prompt(), schema=design_schema())
        await overhead(fake, n, "research prompt + design schema")
        PROMPT.update(system="You design parts.", schema=SCHEMA)

        # Fail-over: "down" answers 503 until its breaker opens; then it must cost nothing.
        router = LLMRouter(settings(fake, ["down", "openai"], cache=False))
        for _ in range(3):
            await router.complete(request())
        down_before = fake.calls("local")
        failover = await routed(router, n)
        down_calls = fake.calls("local") - down_before
        await router.close()
        direct = LLMRouter(settings(fake, ["openai"], cache=False))
        straight = await routed(direct, n)
        await direct.close()
        print(
            f"fail-over (breaker open) p50 {p50_ms(failover):7.3f} ms vs direct"
            f" {p50_ms(straight):7.3f} ms  ratio {p50_ms(failover) / p50_ms(straight):.3f};"
            f" requests to the down provider while open: {down_calls}"
            f"  {'OK' if down_calls == 0 else 'FAIL'}"
        )

        # Cache hits.
        router = LLMRouter(settings(fake, ["openai"], cache=True))
        await router.complete(request())
        before = fake.calls("openai")
        hits = await routed(router, n, same=True)
        served = fake.calls("openai") - before
        await router.close()
        print(
            f"cache hit            p50 {p50_ms(hits):7.3f} ms  ratio to bare SDK"
            f" {p50_ms(hits) / p50_ms(bare):.3f}; requests reaching the server: {served}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    asyncio.run(main(max(8, parser.parse_args().calls)))
