"""The authenticated caller, and who is behind which credential, remembered safely.

Checking a credential means reading the user (or key) and expanding their area to grid ids:
a few queries, more than a ``/locate`` or a device fix costs. :class:`Principals` remembers
the answer, but only while the :class:`~data.changes.ChangeFeed` is live and nothing that
decides access (users, scopes, keys, grids) changed since it was read — a demoted user or a
revoked key stops working within milliseconds, in every API process. Without a live feed
(no lifespan, or the database unreachable) nothing is remembered and every request reads.
Only successes are kept; a refused credential is checked again each time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from data.access.queries import AreaScope, key_digest
from data.changes import ChangeFeed
from data.models import Role


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, with the area already resolved for query filters."""

    name: str
    role: Role
    user_id: int | None
    scope: AreaScope
    via: str  # "token", "cookie" or "api_key"
    #: An administrator chose this account's password: the pages ask for the holder's own.
    must_change_password: bool = False


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    generation: int
    until: float  # time.time() after which the entry is not used


class Principals:
    """Credential → principal, valid under one change-feed generation and for ``ttl_s``.

    The TTL is only a backstop (changes end entries through the feed): long enough that a
    wearable reporting every few minutes is not checked again each time."""

    def __init__(self, *, ttl_s: float = 900.0, max_entries: int = 100_000) -> None:
        self.feed: ChangeFeed | None = None  # set while the app's lifespan runs
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(via: str, secret: str) -> str:
        # Digests only: the cache never holds a usable token or key. An API key's digest is
        # the one stored in ``api_key.digest``, which lets :meth:`put_digests` preload.
        return via + ":" + key_digest(secret)

    def generation(self) -> int:
        """Read *before* looking a credential up; pass it to :meth:`put` afterwards."""
        feed = self.feed
        return -1 if feed is None else feed.generation

    def get(self, via: str, secret: str) -> Principal | None:
        feed = self.feed
        if feed is None or not feed.live:
            return None
        entry = self._entries.get(self._key(via, secret))
        if entry is None or not feed.valid(entry.generation) or entry.until < time.time():
            return None
        return entry.principal

    def put(
        self,
        via: str,
        secret: str,
        principal: Principal,
        generation: int,
        expires: float | None = None,
    ) -> None:
        """Remember ``principal`` if nothing changed while it was read (``generation``)."""
        self.put_digests(via, {key_digest(secret): principal}, generation, expires)

    def put_digests(
        self,
        via: str,
        principals: dict[str, Principal],
        generation: int,
        expires: float | None = None,
    ) -> int:
        """Remember principals by the digest of their credential (preloading); how many
        were kept. Nothing is kept if anything changed since ``generation``."""
        feed = self.feed
        if feed is None or not feed.valid(generation):
            return 0
        until = time.time() + self._ttl_s
        if expires is not None:
            until = min(until, expires)  # a token's own expiry still ends it on time
        with self._lock:
            if len(self._entries) + len(principals) > self._max_entries:
                self._entries.clear()
            entries = list(principals.items())[: self._max_entries]
            for digest, principal in entries:
                self._entries[via + ":" + digest] = _Entry(principal, generation, until)
        return len(entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
