"""AT Protocol pieces the Bluesky adapter builds on: record keys (TIDs) derived from a delivery's
idempotency key, posts as compact remote ids (strong refs for replies), and the process-wide cache of
sessions, which createSession's tight limits (30 per 5 minutes per account) make necessary."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chalicelib.channels.base import PermanentError

POST_COLLECTION = "app.bsky.feed.post"


# -- record keys ----------------------------------------------------------------------------------

TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable
MAX_PIECES = 16  # pieces of one thread (the config allows 10): each gets its own microsecond
_KEY_MOMENT = re.compile(r"\d{8}T\d{6}")
_TID_EARLIEST = datetime(2023, 1, 1, tzinfo=UTC)  # before atproto's public records, no TID is plausible
_TID_LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # 53 bits of microseconds end in 2255
_FALLBACK_WINDOW_SECONDS = 365 * 86_400


def record_key(idempotency_key: str, index: int) -> str:
    """The rkey of piece `index` of a delivery: a valid TID (top bit 0, 53 bits of microseconds since
    the epoch, a 10-bit clock id), the same on every retry.

    Which moment it carries: a TID reads as a timestamp and records of a collection sort by it
    (listRecords, repository browsers), so it should say when the post was meant, and it must never
    lie in the future (a future TID is what the network treats as suspect). The moment Banditore
    found the announcement is in its delivery keys ("banditore-<tenant>-<YYYYmmddTHHMMSS><digest>-
    <channel>"): stable across retries, minutes before the post. A key without one gets a moment in
    a fixed year from 2023, from its hash: still a valid, past TID. Within that second, the
    microseconds and the clock id come from the key's hash (30 bits: two deliveries of one second
    do not meet), plus the piece's index, so the pieces of a thread sort in order."""
    if not 0 <= index < MAX_PIECES:
        raise ValueError(f"a thread has at most {MAX_PIECES} pieces")
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    moment = _key_moment(idempotency_key) or _TID_EARLIEST + timedelta(
        seconds=int.from_bytes(digest[8:12], "big") % _FALLBACK_WINDOW_SECONDS
    )
    offset = int.from_bytes(digest[:4], "big") % (1_000_000 - MAX_PIECES)
    micros = int(moment.timestamp()) * 1_000_000 + offset + index
    clock_id = int.from_bytes(digest[4:6], "big") & 0x3FF
    return encode_tid(micros, clock_id)


def encode_tid(micros: int, clock_id: int) -> str:
    """13 base32-sortable characters of (micros << 10 | clock_id), most significant first."""
    if not 0 <= micros < 2**53 or not 0 <= clock_id < 2**10:
        raise ValueError("a TID holds 53 bits of microseconds and a 10-bit clock id")
    value = micros << 10 | clock_id
    return "".join(TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def _key_moment(idempotency_key: str) -> datetime | None:
    found = _KEY_MOMENT.search(idempotency_key)
    if found is None:
        return None
    try:
        moment = datetime.strptime(found.group(), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment if _TID_EARLIEST <= moment < _TID_LATEST else None


# -- posts as remote ids --------------------------------------------------------------------------


@dataclass(frozen=True)
class PostRef:
    """A post and the first post of its thread, as a reply needs them (strong refs: uri + cid).
    Encoded as the remote id "<did>/<rkey>/<cid>[/<root rkey>/<root cid>]": a DID, a TID and a CID
    hold no "/", and every post of ours and its root are in the account's own repo."""

    did: str
    rkey: str
    cid: str
    root_rkey: str
    root_cid: str

    @property
    def uri(self) -> str:
        return at_uri(self.did, self.rkey)

    def strong_ref(self) -> dict[str, str]:
        return {"uri": self.uri, "cid": self.cid}

    def root_ref(self) -> dict[str, str]:
        return {"uri": at_uri(self.did, self.root_rkey), "cid": self.root_cid}

    def reply(self) -> Reply:
        """A reply under this post: in its thread, whose first post is ours too."""
        return Reply(root=self.root_ref(), parent=self.strong_ref(), own_root=(self.root_rkey, self.root_cid))

    def encode(self) -> str:
        own = f"{self.did}/{self.rkey}/{self.cid}"
        if (self.root_rkey, self.root_cid) == (self.rkey, self.cid):
            return own
        return f"{own}/{self.root_rkey}/{self.root_cid}"

    @classmethod
    def decode(cls, remote_id: str) -> PostRef:
        parts = remote_id.split("/")
        own, rooted = 3, 5  # a thread's first post, a reply
        if len(parts) == own:
            parts += parts[1:]
        if len(parts) != rooted or not all(parts) or not parts[0].startswith("did:"):
            raise PermanentError(f"Bluesky: not a post of this channel: {remote_id[:80]}", reason="bad_reply")
        return cls(*parts)


@dataclass(frozen=True)
class Reply:
    """What a reply record names (app.bsky.feed.post#replyRef): its thread's first post and the post
    it answers, as strong refs {uri, cid}. `own_root` is that first post's (rkey, cid) when it is
    one of ours, for the reply's remote id; None under someone else's post (a citizen's), where the
    reply's remote id names it as the start of a thread of ours."""

    root: dict[str, str]
    parent: dict[str, str]
    own_root: tuple[str, str] | None


def at_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{POST_COLLECTION}/{rkey}"


# -- sessions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    did: str
    handle: str
    access_jwt: str = field(repr=False)
    refresh_jwt: str = field(repr=False)


@dataclass(frozen=True)
class _Entry:
    session: Session
    password_digest: bytes  # a changed app password (rotation) means a new session


SessionKey = tuple[str, str]  # (service, identifier)


class SessionCache:
    """Sessions for the life of the process (a warm Lambda keeps them), one per service and account.
    Creating and renewing hold the account's lock, so concurrent publishers wait for one session
    instead of each spending one of the 30 createSession calls allowed per 5 minutes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[SessionKey, _Entry] = {}
        self._account_locks: dict[SessionKey, threading.Lock] = {}

    def get(self, key: SessionKey, password: str, create: Callable[[], Session]) -> Session:
        digest = _digest(password)
        with self._account_lock(key):
            entry = self._entries.get(key)
            if entry is None or entry.password_digest != digest:
                self._entries.pop(key, None)
                entry = _Entry(create(), digest)
                self._entries[key] = entry
            return entry.session

    def renew(
        self,
        key: SessionKey,
        password: str,
        stale: Session,
        refresh: Callable[[Session], Session | None],
        create: Callable[[], Session],
    ) -> Session:
        """A session for an account whose `stale` one was refused: the one another thread renewed
        meanwhile, else `stale` refreshed, else (refresh token dead too) a new one."""
        digest = _digest(password)
        with self._account_lock(key):
            entry = self._entries.get(key)
            if entry is not None and entry.session != stale and entry.password_digest == digest:
                return entry.session
            self._entries.pop(key, None)  # a failure below leaves no dead session behind
            session = refresh(stale) or create()
            self._entries[key] = _Entry(session, digest)
            return session

    def forget(self, key: SessionKey, session: Session) -> None:
        with self._account_lock(key):
            entry = self._entries.get(key)
            if entry is not None and entry.session == session:
                del self._entries[key]

    def _account_lock(self, key: SessionKey) -> threading.Lock:
        with self._lock:
            return self._account_locks.setdefault(key, threading.Lock())


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode()).digest()


SESSIONS = SessionCache()
