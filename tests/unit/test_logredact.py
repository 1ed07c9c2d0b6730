"""Credentials never reach a log line, whichever library writes it."""

from __future__ import annotations

import io
import logging

import pytest

from printforge.runtime.logredact import install, redact


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    buffer = io.StringIO()
    logger = logging.getLogger("test.logredact")
    logger.handlers = [logging.StreamHandler(buffer)]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    install(logger)
    return logger, buffer


def test_library_style_lines_lose_their_secrets(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    logger.info(
        'HTTP Request: %s %s "%s"', "POST", "http://me:PROXYPASS@127.0.0.1:9/v1/chat", "200"
    )
    logger.debug("headers: {'authorization': 'Bearer sk-live-abcdef123456'}")
    logger.debug(
        "connecting to redis://:REDISPW@localhost:6379/0 and mqtts://bblp:12345678@10.0.0.5"
    )
    logger.debug("GET /ws?token=pf_abc_SECRETSECRET HTTP/1.1")
    try:
        raise ConnectionError("cannot reach https://user:HUNTER22@proxy.example:8080/")
    except ConnectionError:
        logger.exception("call failed")
    text = buffer.getvalue()
    for secret in ("PROXYPASS", "sk-live-abcdef123456", "REDISPW", "12345678", "SECRETSECRET",
                   "HUNTER22"):  # fmt: skip
        assert secret not in text, secret
    assert "http://me:***@127.0.0.1:9/v1/chat" in text
    assert "Traceback" in text and "ConnectionError" in text


@pytest.mark.parametrize(
    "harmless",
    [
        "tokens_in=412 tokens_out=90 cost_usd=0.0012",
        "max_tokens: 4096",
        "printer virtual: 6528 lines acknowledged",
        "http://127.0.0.1:8470/api/jobs/abc",
        "time 12:30:01 at mqtt://broker:1883",
    ],
)
def test_ordinary_text_is_left_alone(harmless: str) -> None:
    assert redact(harmless) == harmless
