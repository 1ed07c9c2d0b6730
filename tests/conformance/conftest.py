"""Fixtures for the conformance tests: the reference Marlin on a pty and a raw pyserial host."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import serial

from tests.conformance.marlin_reference import MarlinReference
from tests.conformance.marlin_wire import frame


class RawHost:
    """A host that writes bytes and reads whole lines with deadlines, nothing more."""

    def __init__(self, port: str) -> None:
        self.serial = serial.Serial(port, 115200, timeout=0.05)
        self._partial = b""

    def write(self, data: bytes) -> None:
        self.serial.write(data)
        self.serial.flush()

    def send(self, number: int, command: str) -> None:
        self.write(frame(number, command))

    def read_raw_until(self, end: bytes, timeout: float = 10.0) -> bytes:
        """Every byte up to and including ``end`` (exact bytes, for the wire-level checks)."""
        deadline = time.monotonic() + timeout
        data = self._partial
        while end not in data:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {end!r} within {timeout} s; got {data!r}")
            data += self.serial.read(max(1, self.serial.in_waiting))  # at once, not at timeout
        cut = data.index(end) + len(end)
        self._partial = data[cut:]
        return data[:cut]

    def line(self, timeout: float = 10.0) -> str:
        return self.read_raw_until(b"\n", timeout)[:-1].decode()

    def lines_until(self, last: Callable[[str], bool] | str, timeout: float = 10.0) -> list[str]:
        """Lines up to and including the first one ``last`` accepts (or equals)."""
        done = (lambda s: s == last) if isinstance(last, str) else last
        deadline = time.monotonic() + timeout
        out: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s; lines so far: {out}")
            try:
                out.append(self.line(left))
            except AssertionError as err:
                raise AssertionError(f"{err}; lines so far: {out}") from None
            if done(out[-1]):
                return out

    def close(self) -> None:
        self.serial.close()


@pytest.fixture
def marlin() -> Iterator[Callable[..., tuple[MarlinReference, RawHost]]]:
    """``marlin(**options)`` -> a started reference and a raw host on its pty; both are closed
    (with a bounded stop) after the test, and a thread error in the reference fails it."""
    made: list[tuple[MarlinReference, RawHost]] = []

    def make(**options: Any) -> tuple[MarlinReference, RawHost]:
        ref = MarlinReference(**options).start()
        try:
            host = RawHost(ref.port)
        except Exception:
            ref.stop()
            raise
        made.append((ref, host))
        return ref, host

    yield make
    errors: list[BaseException] = []
    for ref, host in made:
        host.close()
        ref.stop()
        errors += ref.errors
    assert not errors, f"the reference's threads failed: {errors!r}"
