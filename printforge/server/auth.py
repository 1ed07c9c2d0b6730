"""API keys with roles, stored hashed; the one place a presented key is checked.

A generated key looks like `pf_<id>_<secret>`: the id finds the record without trying every
hash, the secret is checked with PBKDF2-SHA256 (salted) and a constant-time compare. The key
bootstrapped from PRINTFORGE_API_KEY may have any shape, so it is tried last. A successful check
is remembered by the key's SHA-256 in memory, because PBKDF2 is deliberately slow and a browser
sends the key with every request. Keys are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path

from pydantic import BaseModel, Field

from printforge.runtime.errors import AuthError, InputError

__all__ = ["CAPABILITIES", "ApiKeyRecord", "KeyStore", "Principal", "Role", "check_capabilities"]

log = logging.getLogger(__name__)

_ITERATIONS = 120_000
_BOOTSTRAP_ID = "bootstrap"


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    def allows(self, needed: Role) -> bool:
        return self >= needed

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            raise InputError(
                f"unknown role {name!r} (one of {', '.join(r.name.lower() for r in cls)})"
            ) from None


# What a key may do beyond its role. `printer`: move printers that are not running this key's
# own job (pause, resume, cancel, confirm the bed clear): the person who tends the machines.
# An operator key without it sends work through the queue and the gate, and stops only its own
# prints. Admin keys have every capability; a viewer key can hold none (it never moves a printer).
CAPABILITIES = ("printer",)


def check_capabilities(role: Role, capabilities: list[str] | tuple[str, ...]) -> list[str]:
    """The capabilities a key of `role` may be given, sorted and unique; InputError otherwise."""
    unknown = sorted(set(capabilities) - set(CAPABILITIES))
    if unknown:
        raise InputError(
            f"unknown capability {', '.join(map(repr, unknown))} (one of {', '.join(CAPABILITIES)})"
        )
    if capabilities and not role.allows(Role.OPERATOR):
        raise InputError("a viewer key cannot have capabilities: it never changes anything")
    return sorted(set(capabilities))


class Principal(BaseModel):
    """Who made a call: the key's id and name, never the key."""

    key_id: str
    name: str
    role: Role
    capabilities: frozenset[str] = frozenset()

    def can(self, capability: str) -> bool:
        """Whether this key has `capability`: an admin has them all, a viewer none."""
        if self.role.allows(Role.ADMIN):
            return True
        return self.role.allows(Role.OPERATOR) and capability in self.capabilities


class ApiKeyRecord(BaseModel):
    id: str
    name: str
    role: Role
    salt: str
    hash: str
    iterations: int = _ITERATIONS
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Absent in files written before capabilities existed: such a key has none.
    capabilities: list[str] = Field(default_factory=list)

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.name.lower(),
            "capabilities": list(self.capabilities),
            "created_at": self.created_at.isoformat(),
        }


def _derive(secret: str, salt: str, iterations: int) -> str:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), iterations).hex()


class KeyStore:
    """Keys in `<data_dir>/api_keys.json` (mode 0600), written atomically.

    More than one process writes it: `printforge serve --create-key` beside a running server.
    Every change is a read-modify-write under an exclusive lock (`api_keys.lock`), so neither
    writer drops the other's keys, and a reader notices the file changed (its inode, size and
    mtime) and reloads it, so a running server accepts a key created beside it at once.
    """

    _RECHECK_S = 1.0  # a verified key re-checks the file at most this often

    def __init__(self, path: Path) -> None:
        self.path = path
        self._records: dict[str, ApiKeyRecord] = {}
        self._verified: dict[str, Principal] = {}
        self._lock = asyncio.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0

    def load(self) -> None:
        self._stamp = self._file_stamp()
        self._checked = time.monotonic()
        if self._stamp is None:
            self._records = {}
            return
        try:
            raw = json.loads(self.path.read_text())
            records = {r["id"]: ApiKeyRecord.model_validate(r) for r in raw["keys"]}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise AuthError(f"the API key store {self.path} cannot be read: {err}") from err
        # A key revoked (or rotated) by another writer must not stay valid from the cache.
        kept = {k for k, r in records.items() if self._records.get(k) == r}
        self._verified = {d: p for d, p in self._verified.items() if p.key_id in kept}
        self._records = records

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def refresh(self) -> None:
        """Reload if another process changed the file since it was last read or written."""
        self._checked = time.monotonic()
        if self._file_stamp() != self._stamp:
            self.load()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One writer at a time across processes, working on the file's latest contents."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name("api_keys.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.load()
            yield
        finally:
            os.close(fd)

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        data = {"keys": [r.model_dump(mode="json") for r in self._records.values()]}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, self.path)
        self._stamp = self._file_stamp()

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[ApiKeyRecord]:
        return sorted(self._records.values(), key=lambda r: r.created_at)

    def _make_record(
        self, key_id: str, name: str, role: Role, secret: str, capabilities: list[str] | None = None
    ) -> ApiKeyRecord:
        salt = secrets.token_hex(16)
        return ApiKeyRecord(
            id=key_id,
            name=name,
            role=role,
            salt=salt,
            hash=_derive(secret, salt, _ITERATIONS),
            capabilities=capabilities or [],
        )

    def create(self, name: str, role: Role, capabilities: tuple[str, ...] = ()) -> str:
        """Add a key and return it; this is the only time the key exists in clear."""
        caps = check_capabilities(role, capabilities)
        key_id = secrets.token_hex(4)
        while key_id in self._records:
            key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(24)
        record = self._make_record(key_id, name, role, secret, caps)
        with self._writing():
            while key_id in self._records:  # the file may hold ids this process had not seen
                key_id = secrets.token_hex(4)
            self._records[key_id] = record.model_copy(update={"id": key_id})
            self._save()
        return f"pf_{key_id}_{secret}"

    def bootstrap(self, key: str) -> None:
        """Make `key` (from PRINTFORGE_API_KEY) the bootstrap admin key, replacing an older one."""
        if len(key) < 16:
            raise AuthError("PRINTFORGE_API_KEY must be at least 16 characters")
        current = self._records.get(_BOOTSTRAP_ID)
        if current is not None and hmac.compare_digest(
            _derive(key, current.salt, current.iterations), current.hash
        ):
            return
        record = self._make_record(_BOOTSTRAP_ID, "PRINTFORGE_API_KEY", Role.ADMIN, key)
        with self._writing():
            self._records[_BOOTSTRAP_ID] = record
            self._verified.clear()
            self._save()

    def revoke(self, key_id: str) -> None:
        with self._writing():
            if self._records.pop(key_id, None) is None:
                raise InputError(f"no API key with id {key_id!r}", code="not_found")
            self._verified = {k: p for k, p in self._verified.items() if p.key_id != key_id}
            self._save()

    def cached(self, key: str) -> Principal | None:
        """The principal of a key verified before (a dictionary lookup, no PBKDF2)."""
        if time.monotonic() - self._checked >= self._RECHECK_S:
            self.refresh()
        return self._verified.get(hashlib.sha256(key.encode()).hexdigest())

    def guess_scope(self, key: str) -> str | None:
        """The id of the generated key that `key` claims to be, if that id exists.

        Guesses at a generated key are throttled per key id: its 192-bit secret cannot be
        enumerated, so the limit there only bounds PBKDF2 work, and it never locks out the
        other keys used from the guesser's address. Anything else (the bootstrap key may be a
        weak, human-chosen one) is throttled per address.
        """
        parts = key.split("_", 2)
        if len(parts) == 3 and parts[0] == "pf" and parts[1] not in self._records:
            self.refresh()  # perhaps created by another process a moment ago
        if len(parts) == 3 and parts[0] == "pf" and parts[1] in self._records:
            return parts[1]
        return None

    async def verify(self, key: str) -> Principal:
        """The principal for `key`, or AuthError. PBKDF2 runs off the event loop."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        known = self._verified.get(digest)
        if known is not None:
            return known
        self.refresh()
        record = self._candidate(key)
        if record is not None:
            secret = key.split("_", 2)[2] if record.id != _BOOTSTRAP_ID else key
            derived = await asyncio.to_thread(_derive, secret, record.salt, record.iterations)
            if hmac.compare_digest(derived, record.hash):
                principal = Principal(
                    key_id=record.id,
                    name=record.name,
                    role=record.role,
                    capabilities=frozenset(record.capabilities),
                )
                async with self._lock:
                    if record.id in self._records:
                        self._verified[digest] = principal
                return principal
        raise AuthError("invalid API key")

    def _candidate(self, key: str) -> ApiKeyRecord | None:
        parts = key.split("_", 2)
        if len(parts) == 3 and parts[0] == "pf" and parts[1] in self._records:
            return self._records[parts[1]]
        return self._records.get(_BOOTSTRAP_ID)
