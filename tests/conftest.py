"""Fixtures shared by test modules across the suite (a module that needs one just names it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.broker import BAMBU_ACCESS_CODE, Mosquitto, make_tls_files
from tests.fakes.postgres import LocalPostgres


@pytest.fixture(scope="session")
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One plain broker for the whole session; tests use their own topic prefixes."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker with a TLS listener (certificate made now) and the Bambu LAN user."""
    folder = tmp_path_factory.mktemp("mosquitto-tls")
    broker = Mosquitto(
        folder, tls=make_tls_files(folder / "tls"), users={"bblp": BAMBU_ACCESS_CODE}
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of one's own, for tests that kill or restart it."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """One PostgreSQL of our own for the session (initdb + pg_ctl on a free port)."""
    server = LocalPostgres()
    if not server.available:
        pytest.skip("no PostgreSQL server installed (scripts/setup installs Debian's postgresql)")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: LocalPostgres, request: pytest.FixtureRequest) -> str:
    """A new empty database in the session's PostgreSQL, for one test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50].lower()
    return postgres_server.create_database(f"{name}_{uuid.uuid4().hex[:8]}")
