"""Signed farm messages: HMAC-SHA256 with the farm key over the topic and the exact payload bytes.

A signed message is the unsigned JSON object with one more member, always the last one, in a
fixed textual form:

    {…the message's keys…,"sig":{"v":1,"ts":1763790123456,"nonce":"<32 hex>","mac":"<64 hex>"}}

The signed bytes are the payload as it was before the member was added: everything before
`,"sig":{` plus the closing `}`. Nothing is re-serialised, so sender and receiver agree on the
bytes whatever JSON library either uses, and a receiver that does not know about signatures
reads the message as before (unknown keys are ignored). The MAC covers

    b"printforge-bus-sig/1\\n" + len(topic) + b":" + topic + b"\\n"
        + ts + b"\\n" + nonce + b"\\n" + body

with `len(topic)` in decimal: the topic is length-prefixed because it is the one free-form
part; `ts` (unix milliseconds, digits only) and `nonce` (hex) cannot contain a newline, and the
body runs to the end. Binding the topic means a message signed for one printer (or as a reply)
is worthless on another topic.

Freshness: a live message must carry a `ts` within `window_s` of the receiver's clock (either
way: hosts' clocks differ) and a nonce not seen before; nonces are remembered until their `ts`
leaves the window, at most `max_nonces` of them. When that cap is reached the oldest nonce is
forgotten and every message whose `ts` is not newer than it is refused from then on, so a
message whose nonce may have been forgotten is never accepted twice.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Complaints", "Signer", "Verdict", "Verifier", "signing_pair"]

log = logging.getLogger(__name__)

SIG_VERSION = 1
_DOMAIN = b"printforge-bus-sig/1\n"
_MARK = b',"sig":{'
_SUFFIX = re.compile(
    rb',"sig":\{"v":1,"ts":([0-9]{1,16}),"nonce":"([0-9a-f]{32})","mac":"([0-9a-f]{64})"\}\}\Z'
)


def _canonical(topic: bytes, ts: bytes, nonce: bytes, body: bytes) -> bytes:
    return b"".join(
        (_DOMAIN, str(len(topic)).encode(), b":", topic, b"\n", ts, b"\n", nonce, b"\n", body)
    )


class _Mac:
    """HMAC-SHA256 with one key, keyed once: each message then copies the keyed state, which
    skips the per-call digest lookup and key schedule (several times faster with OpenSSL 3)."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def hex(self, topic: bytes, ts: bytes, nonce: bytes, body: bytes) -> bytes:
        h = self._keyed.copy()
        h.update(_canonical(topic, ts, nonce, body))
        return h.hexdigest().encode()


class Signer:
    """Signs outgoing payloads; optionally remembers the nonces it issued (for a while)."""

    def __init__(
        self,
        key: bytes,
        *,
        remember_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < 32:
            raise ValueError("a farm key has at least 32 characters")
        self._mac = _Mac(key)
        self._clock = clock
        self._remember_s = remember_s
        self._issued: dict[bytes, float] = {}
        self._issued_order: list[tuple[float, bytes]] = []

    def sign(self, topic: str, payload: bytes | str) -> bytes:
        body = payload.encode() if isinstance(payload, str) else bytes(payload)
        if len(body) < 3 or body[:1] != b"{" or body[-1:] != b"}":
            raise ValueError("only a non-empty JSON object can be signed")
        now = self._clock()
        ts = str(int(now * 1000)).encode()
        nonce = secrets.token_hex(16).encode()
        mac = self._mac.hex(topic.encode(), ts, nonce, body)
        if self._remember_s:
            self._issued[nonce] = now
            heapq.heappush(self._issued_order, (now, nonce))
            limit = now - self._remember_s
            while self._issued_order and self._issued_order[0][0] < limit:
                _, old = heapq.heappop(self._issued_order)
                self._issued.pop(old, None)
        return b"".join(
            (body[:-1], b',"sig":{"v":1,"ts":', ts, b',"nonce":"', nonce, b'","mac":"')
        ) + (mac + b'"}}')

    def issued(self, nonce: str | None) -> bool:
        """Whether this signer put `nonce` on a message recently (within `remember_s`)."""
        return nonce is not None and nonce.encode() in self._issued


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking one message. `authentic`: the MAC is right (even if stale)."""

    ok: bool
    reason: str = ""
    nonce: str | None = None
    authentic: bool = False
    replayed: bool = False
    ts: float = 0.0


_UNSIGNED = Verdict(False, "unsigned")


class Verifier:
    """Checks signatures, freshness and replays of incoming messages."""

    def __init__(
        self,
        key: bytes,
        *,
        window_s: float = 30.0,
        max_nonces: int = 200_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._mac = _Mac(key)
        self.window_s = window_s
        self._max = max_nonces
        self._clock = clock
        self._seen: set[bytes] = set()
        self._expiry: list[tuple[float, bytes]] = []  # (ts + window, nonce), a heap
        self._watermark = float("-inf")  # ts at or below this is refused: nonce may be gone

    def check(self, topic: str, payload: bytes, *, fresh: bool = True) -> Verdict:
        """Verify `payload` received on `topic`: `authenticate`, then (with `fresh`) `admit`."""
        verdict = self.authenticate(topic, payload)
        return self.admit(verdict) if fresh and verdict.ok else verdict

    def authenticate(self, topic: str, payload: bytes) -> Verdict:
        """The MAC alone: signed with the farm key, for this topic, unaltered. A retained copy
        or a last will is old by nature and is checked this far only."""
        at = payload.rfind(_MARK)
        if at < 0:
            return _UNSIGNED
        m = _SUFFIX.match(payload, at)
        if m is None or at < 2 or payload[:1] != b"{":
            return Verdict(False, "malformed signature")
        ts_text, nonce, mac = m.group(1), m.group(2), m.group(3)
        body = payload[:at] + b"}"
        want = self._mac.hex(topic.encode(), ts_text, nonce, body)
        if not hmac.compare_digest(want, mac):
            return Verdict(False, "bad signature")
        return Verdict(True, nonce=nonce.decode(), authentic=True, ts=int(ts_text) / 1000)

    def admit(self, verdict: Verdict) -> Verdict:
        """Freshness and replay of an authentic message: its time within the window of this
        host's clock, its nonce never seen before (and remembered from now on)."""
        if not verdict.ok or verdict.nonce is None:
            return verdict
        now = self._clock()
        self._expire(now)
        ts = verdict.ts
        off = ts - now
        if abs(off) > self.window_s:
            direction = "ahead of" if off > 0 else "behind"
            return Verdict(
                False,
                f"timestamp {abs(off):.1f} s {direction} this host's clock"
                f" (window ±{self.window_s:g} s)",
                nonce=verdict.nonce,
                authentic=True,
                ts=ts,
            )
        nonce = verdict.nonce.encode()
        if nonce in self._seen:
            return Verdict(
                False, "replayed", nonce=verdict.nonce, authentic=True, replayed=True, ts=ts
            )
        if ts <= self._watermark:
            return Verdict(
                False,
                "too old to tell from a replay (nonce memory full)",
                nonce=verdict.nonce,
                authentic=True,
                ts=ts,
            )
        self._seen.add(nonce)
        heapq.heappush(self._expiry, (ts + self.window_s, nonce))
        while len(self._seen) > self._max:
            until, old = heapq.heappop(self._expiry)
            self._seen.discard(old)
            self._watermark = max(self._watermark, until - self.window_s)
        return verdict

    def _expire(self, now: float) -> None:
        heap = self._expiry
        while heap and heap[0][0] < now:
            _, old = heapq.heappop(heap)
            self._seen.discard(old)

    @property
    def remembered(self) -> int:
        return len(self._seen)


def signing_pair(
    key: str | None, *, window_s: float, remember_issued: bool = False
) -> tuple[Signer | None, Verifier | None]:
    """Signer and verifier for a farm key, or (None, None) when there is none."""
    if not key:
        return None, None
    raw = key.encode()
    # Nonces we issued are remembered as long as a reply about them can be fresh.
    signer = Signer(raw, remember_s=2 * window_s if remember_issued else 0.0)
    return signer, Verifier(raw, window_s=window_s)


class Complaints:
    """One warning, then at most one summary per `every_s`: a flood must not flood the log."""

    def __init__(self, logger: logging.Logger, *, every_s: float = 60.0) -> None:
        self._log = logger
        self._every = every_s
        self._next = 0.0
        self._held = 0
        self.count = 0

    def note(self, message: str, *args: object) -> None:
        self.count += 1
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        held, self._held = self._held, 0
        self._next = now + self._every
        if held:
            more = " (and %d more like it since the last warning)"
            self._log.warning(message + more, *args, held)
        else:
            self._log.warning(message, *args)
