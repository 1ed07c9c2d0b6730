"""Farm message signatures, the farm key setting, trusted origins and the node-scoped topics,
without a broker (the same things against real processes: tests/integration/test_farm_auth.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from printforge.hardware.mqtt.config import BusSettings, parse_origin
from printforge.hardware.mqtt.messages import COMMAND, ControlCommand, StatusMessage
from printforge.hardware.mqtt.signing import Signer, Verifier
from printforge.hardware.mqtt.topics import Topics
from printforge.models.printer import PrinterState
from printforge.runtime.errors import ConfigError
from printforge.settings import load_settings

KEY = b"k" * 40
TOPIC = "printforge/v1/printers/h1.p1/cmd"
REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pair(window_s: float = 30.0, **kw: object) -> tuple[Signer, Verifier, Clock]:
    clock = Clock()
    return (
        Signer(KEY, clock=clock),
        Verifier(KEY, window_s=window_s, clock=clock, **kw),  # type: ignore[arg-type]
        clock,
    )


def test_a_signed_message_verifies_and_an_old_receiver_reads_it_unchanged() -> None:
    signer, verifier, _ = pair()
    body = ControlCommand(op="emergency_stop").model_dump_json().encode()
    signed = signer.sign(TOPIC, body)
    assert signed.startswith(body[:-1]) and signed.endswith(b'"}}')
    assert verifier.check(TOPIC, signed).ok
    # A receiver that knows nothing of signatures parses the same command (unknown keys ignored).
    assert COMMAND.validate_json(signed) == COMMAND.validate_json(body)
    assert json.loads(signed)["sig"]["v"] == 1


def test_the_exact_bytes_are_signed_not_a_re_serialisation() -> None:
    signer, verifier, _ = pair()
    # Spacing and key order a JSON library would normalise: still verified as sent.
    body = b'{ "op" : "ping",\n "id": "x1" }'
    signed = signer.sign(TOPIC, body)
    assert verifier.check(TOPIC, signed).ok
    # ...and one byte changed anywhere in the body is a bad signature.
    for i in range(1, len(body) - 1):
        tampered = signed[:i] + bytes([signed[i] ^ 0x01]) + signed[i + 1 :]
        assert not verifier.check(TOPIC, tampered).ok


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: s.replace(b'"op":"emergency_stop"', b'"op":"clear_bed"'), "bad signature"),
        (lambda s: s[: s.rfind(b',"sig":{')] + b"}", "unsigned"),
        (lambda s: s.replace(b'"v":1', b'"v":2'), "malformed signature"),
        (lambda s: s + b" ", "malformed signature"),
    ],
)
def test_an_altered_or_stripped_signature_is_refused(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    signer, verifier, _ = pair()
    signed = signer.sign(TOPIC, ControlCommand(op="emergency_stop").model_dump_json())
    verdict = verifier.check(TOPIC, mutate(signed))
    assert not verdict.ok and verdict.reason == reason


def test_a_message_signed_for_another_topic_or_with_another_key_is_refused() -> None:
    signer, verifier, _ = pair()
    signed = signer.sign(TOPIC, b'{"id":"a","op":"ping"}')
    assert verifier.check(TOPIC.replace("h1.p1", "h1.p2"), signed).reason == "bad signature"
    assert verifier.check(TOPIC.replace("/cmd", "/reply"), signed).reason == "bad signature"
    other = Signer(b"o" * 40).sign(TOPIC, b'{"id":"a","op":"ping"}')
    assert verifier.check(TOPIC, other).reason == "bad signature"


def test_a_replay_is_refused_and_nonces_are_forgotten_after_the_window() -> None:
    signer, verifier, clock = pair(window_s=30)
    signed = signer.sign(TOPIC, b'{"id":"a","op":"ping"}')
    assert verifier.check(TOPIC, signed).ok
    again = verifier.check(TOPIC, signed)
    assert not again.ok and again.replayed and again.authentic
    clock.now += 29
    assert verifier.check(TOPIC, signed).replayed
    # Once its time has left the window the nonce is not needed: the time check refuses it.
    clock.now += 2
    late = verifier.check(TOPIC, signed)
    assert not late.ok and "behind" in late.reason
    assert verifier.remembered == 0


def test_clock_skew_within_the_window_is_accepted_beyond_it_refused() -> None:
    _, verifier, clock = pair(window_s=30)
    fast = Signer(KEY, clock=lambda: clock.now + 25)  # a sender 25 s ahead
    assert verifier.check(TOPIC, fast.sign(TOPIC, b'{"id":"a"}')).ok
    too_fast = Signer(KEY, clock=lambda: clock.now + 35)
    verdict = verifier.check(TOPIC, too_fast.sign(TOPIC, b'{"id":"b"}'))
    assert not verdict.ok and "35.0 s ahead of" in verdict.reason
    slow = Signer(KEY, clock=lambda: clock.now - 31)
    assert "behind" in verifier.check(TOPIC, slow.sign(TOPIC, b'{"id":"c"}')).reason
    # A retained copy or a will is old by nature: the MAC is checked, not the time.
    assert verifier.check(TOPIC, slow.sign(TOPIC, b'{"id":"c"}'), fresh=False).ok


def test_nonce_memory_is_bounded_and_never_lets_a_forgotten_nonce_through() -> None:
    signer, verifier, clock = pair(window_s=30, max_nonces=100)
    sent = []
    for _ in range(250):
        clock.now += 0.01
        sent.append(signer.sign(TOPIC, b'{"id":"x"}'))
        assert verifier.check(TOPIC, sent[-1]).ok
    assert verifier.remembered == 100
    # The oldest 150 nonces were forgotten: their replays are refused all the same.
    for old in sent[:150]:
        assert not verifier.check(TOPIC, old).ok
    for recent in sent[150:]:
        assert verifier.check(TOPIC, recent).replayed


def test_an_unauthorized_reply_names_a_nonce_the_signer_can_recognise() -> None:
    clock = Clock()
    signer = Signer(KEY, remember_s=60, clock=clock)
    verifier = Verifier(KEY, clock=clock)
    verdict = verifier.check(TOPIC, signer.sign(TOPIC, b'{"id":"a"}'))
    assert signer.issued(verdict.nonce)
    assert not signer.issued("0" * 32) and not signer.issued(None)
    clock.now += 61
    signer.sign(TOPIC, b'{"id":"b"}')  # issuing prunes what is older than remember_s
    assert not signer.issued(verdict.nonce)


def test_only_json_objects_are_signed() -> None:
    signer, _, _ = pair()
    for bad in (b"", b"{}", b"[1]", b"hello"):
        with pytest.raises(ValueError):
            signer.sign(TOPIC, bad)


# settings ----------------------------------------------------------------------------------


def test_a_short_farm_key_is_refused_without_showing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRINTFORGE_BUS__FARM_KEY", "too-short-but-secret")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "bus.farm_key" in err.value.message and "32" in err.value.message
    assert "too-short-but-secret" not in err.value.message
    monkeypatch.setenv("PRINTFORGE_BUS__FARM_KEY", "s" * 32)
    settings = load_settings()
    assert settings.bus.farm_key is not None
    assert "s" * 32 not in repr(settings.bus) + str(settings.bus.model_dump())


def test_a_node_with_a_short_farm_key_refuses_to_start() -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "printforge", "node", "--broker", "mqtt://127.0.0.1:9"),
            "--virtual",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PRINTFORGE_BUS__FARM_KEY": "0123456789-secret"},
    )
    assert done.returncode != 0
    assert "bus.farm_key" in done.stderr and "at least 32 characters" in done.stderr
    assert "0123456789-secret" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8470/api/x.gcode", ("http", "127.0.0.1", 8470)),
        ("HTTPS://Files.Example.com/a", ("https", "files.example.com", 443)),
        ("http://[::1]/a", ("http", "::1", 80)),
    ],
)
def test_origins(url: str, origin: tuple[str, str, int]) -> None:
    assert parse_origin(url) == origin


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x.gcode",
        "gopher://127.0.0.1:70/",
        "http://user:pw@127.0.0.1/x",
        "http://127.0.0.1\\@evil/",
        "//127.0.0.1/x",
        "not a url",
    ],
)
def test_what_is_not_an_http_origin(url: str) -> None:
    with pytest.raises(ValueError):
        parse_origin(url)


def test_artifact_origins_are_checked_and_normalised() -> None:
    bus = BusSettings(artifact_origins=["HTTP://Server.lan:8470/", "https://files.lan"])
    assert bus.artifact_origins == ["http://server.lan:8470", "https://files.lan:443"]
    with pytest.raises(ValueError, match="without a path"):
        BusSettings(artifact_origins=["http://server.lan/files/"])
    with pytest.raises(ValueError, match="only http"):
        BusSettings(artifact_origins=["file:///tmp"])


# node-scoped topics --------------------------------------------------------------------------


def test_node_scoped_topics_round_trip_and_bind_the_printer_to_its_node() -> None:
    node_side = Topics("pf/v1", node="hostA")
    assert node_side.status("hostA.mk3") == "pf/v1/nodes/hostA/printers/hostA.mk3/status"
    orch = Topics("pf/v1")
    assert orch.parse_full(node_side.cmd("hostA.mk3")) == ("hostA.mk3", "cmd", "hostA")
    assert orch.parse_full("pf/v1/printers/hostA.mk3/reply") == ("hostA.mk3", "reply", None)
    assert orch.cmd("hostA.mk3", node="hostA") == node_side.cmd("hostA.mk3")
    # hostA's user may write under nodes/hostA only; a printer id of hostB's there is refused.
    assert orch.parse_full("pf/v1/nodes/hostA/printers/hostB.mk3/status") is None
    assert orch.parse_full("pf/v1/nodes/hostA/printers/hostA./status") is None
    assert orch.parse_full("pf/v1/nodes/hostA/printers/hostA.mk3/other") is None
    assert orch.all_nodes("status") == "pf/v1/nodes/+/printers/+/status"


def test_a_status_still_parses_with_its_signature() -> None:
    signer, verifier, _ = pair()
    msg = StatusMessage(id="h1.p1", state=PrinterState.IDLE, node="h1")
    topic = "printforge/v1/printers/h1.p1/status"
    signed = signer.sign(topic, msg.model_dump_json())
    assert StatusMessage.model_validate_json(signed) == msg
    assert verifier.check(topic, signed).ok


def test_a_farm_key_quoted_by_some_library_is_taken_out_of_the_log_line() -> None:
    from printforge.runtime.logredact import redact

    key = "Zx9" * 12
    for line in (f"env PRINTFORGE_BUS__FARM_KEY={key}", f"{{'farm_key': '{key}'}}"):
        assert key not in redact(line)


@pytest.mark.parametrize(
    ("nodes", "orchestrator", "why"),
    [
        (["host/A"], "orch", "cannot be a node id"),
        (["host+"], "orch", "cannot be a node id"),
        (["a.b"], "orch", "cannot be a node id"),
        (["u:p"], "orch", "cannot be a node id"),
        (["orch"], "orch", "also a node id"),
        (["hostA", "hostA"], "orch", "given twice"),
    ],
)
def test_broker_config_refuses_names_an_acl_cannot_hold(
    tmp_path: Path, nodes: list[str], orchestrator: str, why: str
) -> None:
    from printforge.cli.farm import write_broker_config
    from printforge.runtime.errors import InputError

    with pytest.raises(InputError, match=why):
        write_broker_config(tmp_path / "out", nodes, orchestrator=orchestrator)
    assert not (tmp_path / "out").exists()  # nothing half-written
