"""Issue 15, item 5: notifications from a real `printforge serve` to a real local HTTP receiver.

Signed webhooks (retried through the receiver's 503s), a webhook that keeps failing (the dead
letter list through the API, then a resend), and Apprise's own `json://` sender. The secrets
never reach the server's log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from printforge.models.event import JobEvent, PrinterStatusEvent
from printforge.models.job import JobState
from printforge.models.printer import PrinterState, PrinterStatus
from printforge.notify.events import EventTranslator
from tests.fakes.serve_process import ServeProcess, wait_for

KEY = "notify-admin-key-0123456789"
SECRET = "s3cret-hook-a-0123456789"
TOKEN_B = "tok-b-9876543210"


class Receiver:
    """A local HTTP server that records every POST; a path can be told to fail first."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail_first: dict[str, int] = {"/hook-a": 1}  # 503s before the first 200
        self.failing: set[str] = {"/hook-b"}  # 500 until removed
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                with receiver._lock:
                    left = receiver.fail_first.get(path, 0)
                    if left:
                        receiver.fail_first[path] = left - 1
                    status = 503 if left else 500 if path in receiver.failing else 200
                    receiver.posts.append(
                        {"path": path, "headers": dict(self.headers), "body": body,
                         "status": status}
                    )  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def received(self, path: str, status: int = 200) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.posts if p["path"] == path and p["status"] == status]

    def events(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(p["body"]) for p in self.received(path)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def server(receiver: Receiver, tmp_path: Path) -> Iterator[ServeProcess]:
    base = f"http://127.0.0.1:{receiver.port}"
    config = tmp_path / "farm.toml"
    config.write_text(
        '[printers.virtual]\ndriver = "virtual"\nbed_clear_required = true\n\n'
        "[notify]\nwebhooks = [\n"
        f'  {{ url = "{base}/hook-a", secret = "{SECRET}",'
        ' events = ["job.completed", "printer.bed_clear_needed"] },\n'
        f'  {{ url = "{base}/hook-b?token={TOKEN_B}", events = ["job.completed"] }},\n'
        "]\n"
        f'apprise = ["json://127.0.0.1:{receiver.port}/apprise"]\n\n'
        "[notify.retry]\nmax_attempts = 3\nbackoff_initial_s = 0.05\nbackoff_max_s = 0.2\n"
        "timeout_s = 5.0\n"
    )
    proc = ServeProcess(tmp_path / "data", KEY, config=config).start()
    yield proc
    proc.stop()


def test_a_completed_job_is_notified_signed_retried_and_dead_lettered(
    server: ServeProcess, receiver: Receiver
) -> None:
    job = server.api("POST", "/api/jobs", {"request": "a 10 mm cube"})
    job_id = job["job_id"]

    # Webhook A: a 503 first, then delivered on a retry; signed with its secret.
    def completed_at_a() -> list[dict[str, Any]]:
        return [
            p
            for p in receiver.received("/hook-a")
            if json.loads(p["body"])["event"] == "job.completed"
        ]

    post = wait_for(completed_at_a, 120, "job.completed at webhook A")[0]
    assert receiver.received("/hook-a", 503), "the receiver's 503 was not retried"
    expected = "sha256=" + hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
    assert post["headers"]["X-Printforge-Signature"] == expected
    event = json.loads(post["body"])
    assert (event["event"], event["job_id"]) == ("job.completed", job_id)
    # The printer waits for its bed: that is an event too (webhook A asked for it).
    wait_for(
        lambda: any(e["event"] == "printer.bed_clear_needed" for e in receiver.events("/hook-a")),
        60,
        "printer.bed_clear_needed at webhook A",
    )

    # Apprise's json:// sender, pointed at the receiver.
    def apprised() -> dict[str, Any] | None:
        notes = [json.loads(p["body"]) for p in receiver.received("/apprise")]
        return next((n for n in notes if n["title"] == "printforge: job.completed"), None)

    note = wait_for(apprised, 60, "the Apprise notification of the completed job")
    assert job_id in note["message"]

    # Webhook B never answers 200: after 3 attempts the delivery is a dead letter.
    def failed() -> list[dict[str, Any]]:
        return list(server.api("GET", "/api/notify/failed")["failed"])

    dead = wait_for(failed, 60, "the dead letter")
    assert len(dead) == 1
    assert dead[0]["attempts"] == 3
    assert dead[0]["event"]["event"] == "job.completed"
    assert len(receiver.received("/hook-b", 500)) == 3
    assert TOKEN_B not in json.dumps(dead), "the dead-letter list shows the webhook's token"

    receiver.failing.clear()
    resent = server.api("POST", f"/api/notify/failed/{dead[0]['id']}/resend")
    assert resent == {"id": dead[0]["id"], "delivered": True}
    assert [e["job_id"] for e in receiver.events("/hook-b")] == [job_id]
    assert failed() == []

    log = server.log.read_text()
    assert SECRET not in log
    assert TOKEN_B not in log


def test_events_become_notifications_once_per_change() -> None:
    translate = EventTranslator().translate
    failed = JobEvent(
        kind="state",
        job_id="j1",
        state=JobState.FAILED,
        data={"error": {"code": "needs_input", "message": "which size?"}},
    )
    assert [(n.event, n.message) for n in translate(failed)] == [("job.needs_input", "which size?")]
    broken = JobEvent(
        kind="state",
        job_id="j2",
        state=JobState.FAILED,
        data={"error": {"code": "printer_fault", "message": "thermal runaway"}},
    )
    assert [n.event for n in translate(broken)] == ["job.failed"]
    fault = PrinterStatusEvent(
        status=PrinterStatus(
            id="mk3", driver="marlin", state=PrinterState.FAULTED, message="MINTEMP"
        )
    )
    assert [(n.event, n.printer) for n in translate(fault)] == [("printer.fault", "mk3")]
    assert translate(fault) == [], "a fault repeated by every status report is told once"
