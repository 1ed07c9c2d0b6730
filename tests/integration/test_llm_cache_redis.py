"""The LLM response cache on a real Redis: each test starts its own `redis-server` on a free
loopback port in a temp dir (never a Redis that happens to run on this machine), shares answers
between two routers and between two processes, expires them, keeps installs apart by key prefix,
survives Redis going away or hanging, and never shows the password in the URL."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from printforge.hardware.mqtt.sim.mosquitto import free_port
from printforge.llm.base import LLMMessage, LLMRequest, LLMResponse
from printforge.llm.config import CacheSettings, LLMSettings, ProviderSettings
from printforge.llm.router import LLMRouter
from printforge.runtime.errors import ConfigError
from printforge.runtime.health import HealthRecord, HealthState
from printforge.settings import load_settings

redis = pytest.importorskip("redis", reason="the redis extra is not installed")

REDIS_SERVER = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
)
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server (scripts/setup)")

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-NEVER-SHOWN-pw"


class RedisServer:
    """A private redis-server: no persistence, loopback only, stoppable and restartable."""

    def __init__(self, folder: Path, password: str | None = None) -> None:
        self.folder = folder
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, password: str | None = None, db: int = 0) -> str:
        secret = password if password is not None else self.password
        auth = f":{secret}@" if secret else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        log = (self.folder / "redis.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.wait_ready()

    def client(self) -> Any:
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5
        )

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc is not None and self.proc.poll() is None, "redis-server exited"
            try:
                with self.client() as c:
                    if c.ping():
                        return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)  # readiness poll, not synchronisation

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test paused it
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def keys(self) -> list[str]:
        with self.client() as c:
            return sorted(k.decode() for k in c.keys("*"))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password=PASSWORD)
    server.start()
    yield server
    server.stop()


class Counting:
    """A provider that counts its calls (a stand-in for a paid model: the point is who answers)."""

    def __init__(self, name: str = "a") -> None:
        self.name = name
        self.kind = "openai"
        self.settings = ProviderSettings(kind="openai", model=f"{name}-small")
        self.calls = 0

    def model_for(self, request: LLMRequest) -> str:
        return self.settings.model or "m"

    def health(self) -> HealthRecord:
        return HealthRecord(name=self.name, component="llm")

    async def probe(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        return LLMResponse(
            provider=self.name,
            model=self.model_for(request),
            text="{}",
            data={"answer": request.text},
            tokens_in=10,
            tokens_out=5,
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ask(text: str = "a cube") -> LLMRequest:
    return LLMRequest(
        system="sys",
        messages=[LLMMessage(role="user", content=text)],
        json_schema={"type": "object"},
        text=text,
    )


def router_on(url: str, provider: Counting, clock: Clock | None = None, **cache: Any) -> LLMRouter:
    settings = LLMSettings(
        providers=[provider.name],
        # A paid model needs a price (an unpriced one is refused by the router).
        prices={provider.settings.model or "m": {"input": 1.0, "output": 2.0}},
        cache=CacheSettings(backend="redis", redis_url=url, **cache),  # type: ignore[arg-type]
    )
    return LLMRouter(settings, providers={provider.name: provider}, clock=clock or Clock())


@pytest.mark.asyncio
async def test_an_answer_is_shared_by_two_routers(redis_server: RedisServer) -> None:
    a1, a2 = Counting(), Counting()
    first, second = router_on(redis_server.url(), a1), router_on(redis_server.url(), a2)
    try:
        r1 = await first.complete(ask())
        r2 = await second.complete(ask())
        assert (a1.calls, a2.calls) == (1, 0)
        assert not r1.cached and r2.cached and r2.data == r1.data and r2.cost_usd == 0.0
        assert second.cache.hits == 1
        [key] = redis_server.keys()
        assert key.startswith("printforge:llm:")  # the default prefix
    finally:
        await first.close()
        await second.close()


CHILD = """
import asyncio, json, sys
from printforge.llm.config import LLMSettings
from printforge.llm.router import LLMRouter
from printforge.llm.base import LLMMessage, LLMRequest
from printforge.llm.prompt import design_schema, system_prompt

async def main() -> None:
    settings = LLMSettings.model_validate(
        {"providers": ["offline"], "cache": {"backend": "redis", "redis_url": sys.argv[1]}}
    )
    router = LLMRouter(settings)
    text = "a 20 mm calibration cube"
    request = LLMRequest(system=system_prompt(), messages=[LLMMessage(role="user", content=text)],
                         json_schema=design_schema(), text=text)
    try:
        r = await router.complete(request)
    finally:
        await router.close()
    print(json.dumps({"cached": r.cached, "provider": r.provider, "data": r.data}))

asyncio.run(main())
"""


def test_two_processes_share_the_cache(redis_server: RedisServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])

    def run() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, redis_server.url()],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=100,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    first, second = run(), run()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["provider"] == "offline" and second["data"] == first["data"]


@pytest.mark.asyncio
async def test_acl_user_escaped_password_and_db(redis_server: RedisServer) -> None:
    # aiocache's own from_url would pass "p%40ss..." still escaped and drop the user name.
    with redis_server.client() as c:
        c.execute_command("ACL", "SETUSER", "shop", "on", ">p@ss:w/rd", "~*", "+@all")
    a = Counting()
    router = router_on(f"redis://shop:p%40ss%3Aw%2Frd@127.0.0.1:{redis_server.port}/3", a)
    try:
        await router.complete(ask())
        assert (await router.complete(ask())).cached and a.calls == 1
        assert router.cache.url == f"redis://shop:***@127.0.0.1:{redis_server.port}/3"
    finally:
        await router.close()
    with redis.Redis(host="127.0.0.1", port=redis_server.port, password=PASSWORD, db=3) as c:
        assert len(c.keys("printforge:llm:*")) == 1


@pytest.mark.asyncio
async def test_entries_expire_after_ttl(redis_server: RedisServer) -> None:
    a = Counting()
    router = router_on(redis_server.url(), a, ttl_s=1)
    try:
        await router.complete(ask())
        [key] = redis_server.keys()
        with redis_server.client() as c:
            assert 0 < c.pttl(key) <= 1000  # Redis itself expires it, not our code
        # Wait for Redis to drop it (bounded generously for a loaded machine).
        deadline = time.monotonic() + 30
        while redis_server.keys():
            assert time.monotonic() < deadline, "the entry never expired"
            await asyncio.sleep(0.1)
        again = await router.complete(ask())
        assert not again.cached and a.calls == 2
    finally:
        await router.close()


@pytest.mark.asyncio
async def test_key_prefix_keeps_two_installs_apart(redis_server: RedisServer) -> None:
    a_shop, b_shop = Counting(), Counting()
    shop_a = router_on(redis_server.url(), a_shop, key_prefix="shop-a")
    shop_b = router_on(redis_server.url(), b_shop, key_prefix="shop-b")
    try:
        await shop_a.complete(ask())
        r = await shop_b.complete(ask())
        assert not r.cached and (a_shop.calls, b_shop.calls) == (1, 1)
        keys = redis_server.keys()
        assert len(keys) == 2
        assert {k.split(":llm:")[0] for k in keys} == {"shop-a", "shop-b"}
        assert (await shop_a.complete(ask())).cached and a_shop.calls == 1
    finally:
        await shop_a.close()
        await shop_b.close()


def test_key_prefix_is_checked() -> None:
    with pytest.raises(ValueError, match=r"llm\.cache\.key_prefix"):
        CacheSettings(key_prefix="two words")


@pytest.mark.asyncio
async def test_redis_going_away_degrades_to_no_cache(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    a = Counting()
    router = router_on(redis_server.url(), a, clock=clock, retry_s=30)
    try:
        await router.complete(ask("first"))
        redis_server.stop()

        r = await router.complete(ask("second"))  # the job still gets its answer
        assert r.data == {"answer": "second"} and a.calls == 2
        assert router.cache.state == "down"
        warnings = [m for m in caplog.messages if "LLM cache" in m]
        assert len(warnings) == 1 and "running without the cache" in warnings[0]

        # While down it does not even try: no more warnings, no waiting on a dead socket.
        assert (await router.complete(ask("first"))).cached is False
        assert len([m for m in caplog.messages if "LLM cache" in m]) == 1
        record = router.health.get("redis", "llm_cache")
        assert record.state is HealthState.DEGRADED and record.last_error
        assert router.health.overall() is not HealthState.UNHEALTHY

        # Back after retry_s, and it is said once.
        redis_server.start()
        clock.now += 31
        await router.complete(ask("third"))
        assert (await router.complete(ask("third"))).cached
        assert any("LLM cache is back" in m for m in caplog.messages)
        assert router.health.get("redis", "llm_cache").state is HealthState.HEALTHY
        everything = "\n".join(caplog.messages) + json.dumps(
            [rec.model_dump(mode="json") for rec in router.health.records()]
        )
        assert PASSWORD not in everything
    finally:
        await router.close()


@pytest.mark.asyncio
async def test_a_hung_redis_counts_as_down(redis_server: RedisServer) -> None:
    a = Counting()
    router = router_on(redis_server.url(), a, timeout_s=0.5)
    try:
        await router.complete(ask("warm up the connection"))
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)  # accepts nothing, answers nothing
        try:
            r = await asyncio.wait_for(router.complete(ask("while hung")), 60)
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        assert r.data == {"answer": "while hung"} and router.cache.state == "down"
        assert "Timeout" in (router.cache.last_error or "")
    finally:
        await router.close()


@pytest.mark.asyncio
async def test_a_wrong_password_is_a_warning_and_never_shown(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-pw-NEVER-SHOWN"
    a = Counting()
    router = router_on(redis_server.url(password=wrong), a)
    try:
        r = await router.complete(ask())
        assert r.data == {"answer": "a cube"} and router.cache.state == "down"
        shown = json.dumps(router.cache.describe()) + "\n".join(caplog.messages)
        assert "AuthenticationError" in shown or "ResponseError" in shown
        assert wrong not in shown and "redis://:***@127.0.0.1" in shown
    finally:
        await router.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://:hunter2-secret@127.0.0.1:notaport/0", "not a valid URL"),
        ("rediss://:hunter2-secret@127.0.0.1:6390/0", "must start with redis://"),
        ("http://:hunter2-secret@127.0.0.1:6390", "must start with redis://"),
        ("redis://:hunter2-secret@/0", "names no host"),
        ("redis://:hunter2-secret@127.0.0.1:6390/cache", "must be a number"),
    ],
)
def test_a_bad_redis_url_names_the_key_not_the_password(
    tmp_path: Path, url: str, problem: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(f'[llm.cache]\nbackend = "redis"\nredis_url = "{url}"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert "llm.cache.redis_url" in err.value.message and problem in err.value.message
    assert "hunter2" not in str(err.value) and str(config) in err.value.message


def test_redis_backend_needs_a_url_in_the_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[llm.cache]\nbackend = "redis"\n')
    settings = load_settings(config)
    with pytest.raises(ConfigError, match=r"llm\.cache\.redis_url is required"):
        LLMRouter(settings.llm)


def _cli(*args: str, data_dir: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFORGE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "printforge",
            "--data-dir",
            str(data_dir),
            "--config",
            str(config),
            "providers",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=100,
        check=False,
    )


def test_providers_shows_the_cache_without_the_password(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = tmp_path / "redis.toml"
    config.write_text(
        f'[llm.cache]\nbackend = "redis"\nredis_url = "{redis_server.url()}"\n'
        'key_prefix = "shop-a"\n'
    )
    done = _cli("--json", "--check", data_dir=tmp_path / "data", config=config)
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    cache = json.loads(done.stdout)["cache"]
    assert cache["url"] == f"redis://:***@127.0.0.1:{redis_server.port}/0"
    assert (cache["state"], cache["key_prefix"], cache["last_error"]) == ("up", "shop-a", None)

    table = _cli("--check", data_dir=tmp_path / "data", config=config)
    assert table.returncode == 0, table.stderr
    assert PASSWORD not in table.stdout + table.stderr
    assert f"cache: redis://:***@127.0.0.1:{redis_server.port}/0, prefix shop-a" in table.stdout

    redis_server.stop()
    down = _cli("--check", data_dir=tmp_path / "data", config=config)
    assert down.returncode == 0, down.stderr
    assert "down (" in down.stdout and PASSWORD not in down.stdout + down.stderr
