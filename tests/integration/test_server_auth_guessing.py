"""Guessing keys is slowed for real: once an address has spent its wrong guesses, even the right
key is refused until the bucket refills, so a guesser cannot tell a hit from a miss."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from printforge.server.app import create_app
from printforge.server.limits import RateLimiter
from printforge.settings import load_settings

KEY = "guessing-admin-key-0123456789"


@pytest.mark.asyncio
async def test_an_address_out_of_guesses_is_refused_before_its_key_is_checked(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        overrides={"data_dir": str(tmp_path / "data"), "mock": True, "api_key": KEY}
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        statuses = []
        for n in range(40):
            resp = await client.get(
                "/api/auth/whoami", headers={"Authorization": f"Bearer wrong-guess-{n:04d}xx"}
            )
            statuses.append(resp.status)
            await resp.release()
        assert statuses[0] == 401 and statuses[-1] == 429, statuses
        # The right key from the same address now gets the same 429: no oracle for a guesser.
        resp = await client.get("/api/auth/whoami", headers={"Authorization": f"Bearer {KEY}"})
        assert resp.status == 429 and "Retry-After" in resp.headers
        await resp.release()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws", headers={"Authorization": f"Bearer {KEY}"})
        assert refused.value.status == 429
    finally:
        await client.close()


def test_ensure_takes_no_token() -> None:
    limiter = RateLimiter(60, burst=2)
    limiter.ensure("k")  # an unknown key has a full bucket
    limiter.check("k")
    limiter.ensure("k")
    limiter.ensure("k")
    limiter.check("k")
    with pytest.raises(Exception, match="rate limit exceeded"):
        limiter.ensure("k")
