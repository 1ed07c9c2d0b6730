"""JSON log lines: the fields a machine reads, the job and printer from context, no secret."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from printforge.runtime.errors import ConfigError
from printforge.runtime.logsetup import (
    bind_log_context,
    configure_logging,
    current_log_context,
    log_context,
)
from printforge.settings import load_settings

FARM_KEY = "farmkey-0123456789-abcdefghij-KLMNOPQRST"
API_KEY = "pf_ab12cd34_SECRETSECRETSECRET"
BROKER_PASSWORD = "brokerPW-77"


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers = handlers
    root.setLevel(level)


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_carry_fields_context_and_no_secret(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", logging.DEBUG)
    log = logging.getLogger("printforge.test.json")
    log.info("plain line")
    with log_context(job_id="job123", printer="mk3-1"):
        log.warning("bus settings: farm_key=%s", FARM_KEY)
        log.info("request headers {'Authorization': 'Bearer %s'}", API_KEY)
        log.info("X-API-Key: %s", API_KEY)
        log.info("connecting to mqtt://farm:%s@broker.lan:1883", BROKER_PASSWORD)
        try:
            raise ConnectionError(f"refused by mqtts://node-a:{BROKER_PASSWORD}@broker.lan:8883")
        except ConnectionError:
            log.exception("session failed")
    log.info("after the block", extra={"printer": "explicit"})
    err = capsys.readouterr().err
    for secret in (FARM_KEY, API_KEY, BROKER_PASSWORD):
        assert secret not in err, secret
    lines = json_lines(err)
    assert len(lines) == 7, err
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
        assert line["logger"] == "printforge.test.json"
    first = lines[0]
    assert first["level"] == "INFO" and first["message"] == "plain line"
    assert "job_id" not in first and "printer" not in first and "exception" not in first
    assert str(first["time"]).endswith("+00:00")
    for line in lines[1:6]:
        assert line["job_id"] == "job123" and line["printer"] == "mk3-1"
    assert lines[1]["level"] == "WARNING" and lines[1]["message"] == "bus settings: farm_key=***"
    assert lines[4]["message"] == "connecting to mqtt://farm:***@broker.lan:1883"
    failed = lines[5]
    assert failed["level"] == "ERROR" and failed["message"] == "session failed"
    assert "Traceback" in str(failed["exception"]) and "ConnectionError" in str(failed["exception"])
    assert "mqtts://node-a:***@broker.lan:8883" in str(failed["exception"])
    # The block put the context back; an explicit extra= names its own printer.
    assert lines[6].get("job_id") is None and lines[6]["printer"] == "explicit"


def test_settings_with_secrets_logged_whole_show_none(
    root_logging: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A careless `log.info("%r", settings.bus)` prints the SecretStr fields masked."""
    monkeypatch.setenv("PRINTFORGE_BUS__FARM_KEY", FARM_KEY)
    monkeypatch.setenv("PRINTFORGE_BUS__PASSWORD", BROKER_PASSWORD)
    monkeypatch.setenv("PRINTFORGE_API_KEY", API_KEY)
    settings = load_settings()
    configure_logging("json", logging.DEBUG)
    logging.getLogger("printforge.test").info("bus %r api %r", settings.bus, settings.api_key)
    err = capsys.readouterr().err
    assert len(json_lines(err)) == 1
    for secret in (FARM_KEY, API_KEY, BROKER_PASSWORD):
        assert secret not in err


def test_text_lines_name_the_job_and_printer_too(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("text", logging.INFO)
    log = logging.getLogger("printforge.test.text")
    with log_context(job_id="j9", printer="p1"):
        log.info("streaming, password=%s", BROKER_PASSWORD)
    log.info("idle")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith(
        "INFO printforge.test.text: streaming, password=*** [job_id=j9 printer=p1]"
    )
    assert lines[1].endswith("INFO printforge.test.text: idle")


@pytest.mark.asyncio
async def test_a_task_keeps_the_context_it_was_created_in() -> None:
    """Each job's task binds its id; tasks it creates inherit it, siblings never see it."""
    seen: dict[str, dict[str, str]] = {}

    async def job(job_id: str) -> None:
        bind_log_context(job_id=job_id)
        await asyncio.sleep(0)
        with log_context(printer=f"printer-of-{job_id}"):
            child = asyncio.create_task(asyncio.sleep(0, result=current_log_context()))
        seen[f"{job_id}/child"] = await child
        seen[job_id] = current_log_context()

    await asyncio.gather(job("a"), job("b"))
    assert seen["a"] == {"job_id": "a"} and seen["b"] == {"job_id": "b"}
    assert seen["a/child"] == {"job_id": "a", "printer": "printer-of-a"}
    assert current_log_context() == {}


def test_logging_format_is_a_checked_setting(tmp_path: Path) -> None:
    good = tmp_path / "json.toml"
    good.write_text('[logging]\nformat = "json"\n')
    assert load_settings(good).logging.format == "json"
    bad = tmp_path / "bad.toml"
    bad.write_text('[logging]\nformat = "xml"\n')
    with pytest.raises(ConfigError, match=r"logging\.format.*bad\.toml"):
        load_settings(bad)
