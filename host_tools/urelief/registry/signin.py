"""Sign-in: bearer tokens (cached per process for TOKEN_CACHE_S), password login, logout,
issued tokens (all of them expire), and the per-address throttle on failed authentications.

Nobody can lock an operator out: wrong passwords make *their address* back off for that
username (LOGIN_FREE_FAILURES free, then LOGIN_BACKOFF_S doubling per failure up to
LOGIN_BACKOFF_MAX_S), counted from the audit log (across processes and restarts); the right
password from any other address still works. A login does the same work (one lookup, one
scrypt at the password cost) whether or not the username exists, so timing does not tell."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from urelief.ratelimit import RateLimiter
from urelief.registry import audit, credentials, policy
from urelief.registry.audit import Actor
from urelief.registry.core import RegistryCore, get
from urelief.registry.db import Database
from urelief.registry.errors import Invalid, Throttled
from urelief.registry.keys import ServerKey
from urelief.registry.models import AuditEntry, Operator, OperatorToken, utcnow
from urelief.registry.serialize import operator_out

LOGIN_FREE_FAILURES = 5  # wrong passwords per (username, address) before it backs off
LOGIN_BACKOFF_S = 30.0  # the first back-off; doubles with each further failure
LOGIN_BACKOFF_MAX_S = 900.0
LOGIN_WINDOW = timedelta(minutes=30)  # failures older than this no longer count
SESSION_TTL = timedelta(hours=12)  # a dashboard login
API_TOKEN_TTL = timedelta(days=90)  # tokens from add-operator / issue_token, unless told
API_TOKEN_TTL_MAX = timedelta(days=366)
TOKEN_CACHE_S = 30.0  # a revoked token stops working in other processes within this time
# Failed authentications (bad tokens, wrong passwords) per source address, in this process: a
# burst of AUTH_FAIL_BURST, then one per 1/AUTH_FAIL_PER_S s. Beyond that: 429 without checking
# a password, and one `throttled` audit row per source per THROTTLE_NOTE_S counting the refusals,
# so a flood cannot fill the audit log (nor burn CPU on scrypt). Good tokens still work.
AUTH_FAIL_BURST = 20
AUTH_FAIL_PER_S = 1 / 3
THROTTLE_NOTE_S = 60.0


class SignIn(RegistryCore):
    def __init__(self, db: Database, server_key: ServerKey | None = None):
        super().__init__(db, server_key)
        self._tokens: dict[bytes, tuple[Actor, float]] = {}
        self._tokens_lock = threading.Lock()
        self._failures = RateLimiter(AUTH_FAIL_PER_S, AUTH_FAIL_BURST, max_sources=10_000)
        self._throttle_notes: dict[str, tuple[float, int]] = {}  # source -> (last row, refused since)
        self._failures_lock = threading.Lock()
        credentials.stand_in_hash()  # made now, so no login pays for it (a timing tell)

    def authenticate(self, token: str, remote_addr: str = "", what: str = "") -> Actor | None:
        """Bearer token -> Actor, or None (and an `auth.failed` audit entry)."""
        cache_key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        with self._tokens_lock:
            hit = self._tokens.get(cache_key)
        if hit and hit[1] > now:
            return _with_addr(hit[0], remote_addr)
        actor = self._check_token(token) if token else None
        if actor is None:
            self._auth_failure(
                Actor(None, "", "", remote_addr=remote_addr), "auth.failed",
                detail={"request": what, "token": "absent" if not token else "rejected"},
            )
            return None
        with self._tokens_lock:
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[cache_key] = (actor, now + TOKEN_CACHE_S)
        return _with_addr(actor, remote_addr)

    def _auth_failure(self, who: Actor, action: str, **kw) -> None:
        """A failed authentication from `who.remote_addr`: a `denied` audit row while the source
        is within its budget (AUTH_FAIL_*); past it, `_throttled`."""
        with self._failures_lock:
            allowed = self._failures.allow(who.remote_addr)
        if not allowed:
            self._throttled(who, action, **kw)
        self._audit_alone(who, action, "denied", **kw)

    def _throttled(self, who: Actor, action: str, **kw) -> NoReturn:
        """Refuse (429) an attempt from a source over its failure budget. At most one
        `throttled` audit row per source per THROTTLE_NOTE_S, naming how many refused attempts
        it stands for."""
        src, t = who.remote_addr, time.monotonic()
        with self._failures_lock:
            last, refused = self._throttle_notes.get(src, (-THROTTLE_NOTE_S, 0))
            note = refused + 1 if t - last >= THROTTLE_NOTE_S else 0
            self._throttle_notes[src] = (t, 0) if note else (last, refused + 1)
            if len(self._throttle_notes) > 10_000:
                self._throttle_notes = {k: v for k, v in self._throttle_notes.items()
                                        if t - v[0] < THROTTLE_NOTE_S}
        if note:
            detail = {**kw.pop("detail", {}), "refused": note}
            self._audit_alone(who, action, "throttled", detail=detail, **kw)
        raise Throttled("too many failed sign-ins from this address; try again later")

    def _check_token(self, token: str) -> Actor | None:
        parts = credentials.split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        with self.db.Session() as s:  # read, and end the transaction before hashing (SQLite lock)
            row = s.execute(
                select(OperatorToken.secret_hash, OperatorToken.expires_at, Operator.id,
                       Operator.username, Operator.role, Operator.school_id)
                .join(Operator, Operator.id == OperatorToken.operator_id)
                .where(OperatorToken.key_id == key_id, OperatorToken.revoked_at.is_(None),
                       Operator.active.is_(True))
            ).first()
        if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
            return None
        if not credentials.verify_secret(secret, row.secret_hash):
            return None
        return Actor(row.id, row.username, row.role, row.school_id)

    def _forget_tokens(self) -> None:
        with self._tokens_lock:
            self._tokens.clear()

    def _new_token(self, s: Session, op: Operator, label: str, ttl: timedelta) -> str:
        """Every token expires: `ttl` is clamped to (0, API_TOKEN_TTL_MAX]."""
        if not timedelta(0) < ttl <= API_TOKEN_TTL_MAX:
            raise Invalid("bad token lifetime", [{"field": "ttl", "message":
                          f"more than 0, at most {API_TOKEN_TTL_MAX.days} days"}])
        token, key_id, secret_hash = credentials.new_token()
        s.add(OperatorToken(operator_id=op.id, key_id=key_id, secret_hash=secret_hash,
                            label=label, expires_at=utcnow() + ttl))
        return token

    def token_alive(self, token: str) -> bool:
        """Is this token still a valid session (not logged out, revoked, expired, or its
        operator disabled)? No audit row: for a live stream asking every few seconds."""
        cache_key = hashlib.sha256(token.encode()).digest()
        with self._tokens_lock:
            hit = self._tokens.get(cache_key)
        if hit and hit[1] > time.monotonic():
            return True
        return self._check_token(token) is not None if token else False

    def login(self, username: str, password: str, remote_addr: str = "",
              ttl: timedelta = SESSION_TTL) -> tuple[str, dict] | None:
        """Password -> a fresh token (a dashboard session). None if wrong; audited either way.
        An address backing off for this username (module docstring) is refused (Throttled)
        before any hashing. Failures also count against the source address (AUTH_FAIL_*)."""
        with self._failures_lock:
            over = self._failures.exhausted(remote_addr)
        if over:  # refused before any lookup or password hashing
            self._throttled(Actor(None, username[:64], "", remote_addr=remote_addr),
                            "auth.login", object_type="operator")
        since = utcnow() - LOGIN_WINDOW
        with self.db.Session() as s:  # read only; hashing happens outside any transaction
            op = s.scalar(select(Operator).where(Operator.username == username))
            # Only wrong passwords count (not refused attempts): retrying does not renew it.
            failures, last = s.execute(select(func.count(AuditEntry.id), func.max(AuditEntry.at))
                                       .where(AuditEntry.action == "auth.login",
                                              AuditEntry.username == username[:64],
                                              AuditEntry.remote_addr == remote_addr[:64],
                                              AuditEntry.outcome == "denied",
                                              AuditEntry.at >= since)).one()
        who = (Actor(op.id, op.username, op.role, op.school_id, remote_addr) if op
               else Actor(None, username[:64], "", remote_addr=remote_addr))
        wait = login_backoff_s(failures or 0)
        if wait and last is not None and (utcnow() - _aware(last)).total_seconds() < wait:
            self._audit_alone(who, "auth.login", "throttled", object_type="operator",
                              object_id=op.id if op else "")
            raise Throttled(f"too many failed logins for {username!r} from this address; "
                            f"try again in {wait:.0f} s")
        usable = op is not None and op.active and op.password_hash is not None
        # Unknown, disabled or password-less: the same scrypt work against a stand-in hash.
        ok = credentials.verify_secret(password, op.password_hash if usable else
                                       credentials.stand_in_hash()) and usable
        if not ok or op is None:
            self._auth_failure(who, "auth.login", object_type="operator",
                               object_id=op.id if op else "")
            return None
        with self.db.session() as s:
            if credentials.needs_rehash(op.password_hash):  # stored at a cost below today's
                s.get(Operator, op.id).password_hash = credentials.hash_secret(password)
            token = self._new_token(s, op, "login", ttl)
            audit.record(s, who, "auth.login", object_type="operator", object_id=op.id)
            return token, operator_out(op)

    def logout(self, actor: Actor, token: str) -> None:
        parts = credentials.split_token(token)
        with self.db.session() as s:
            if parts:
                row = s.scalar(select(OperatorToken).where(OperatorToken.key_id == parts[0]))
                if row is not None and row.operator_id == actor.operator_id:
                    row.revoked_at = utcnow()
            audit.record(s, actor, "auth.logout", object_type="operator",
                         object_id=actor.operator_id)
        self._forget_tokens()

    def issue_token(self, actor: Actor, operator_id: int, label: str = "",
                    ttl: timedelta = API_TOKEN_TTL) -> str:
        """A bearer token for a machine or script; it expires after `ttl` (at most
        API_TOKEN_TTL_MAX)."""
        def fn(s: Session) -> str:
            policy.check_admin(actor, "issue tokens")
            op = get(s, Operator, operator_id)
            token = self._new_token(s, op, label, ttl)
            audit.record(s, actor, "operator.token_issue", object_type="operator",
                         object_id=op.id, detail={"label": label})
            return token
        return self._run(actor, "operator.token_issue", fn, object_type="operator",
                         object_id=operator_id)


def login_backoff_s(failures: int) -> float:
    """Seconds an address waits after its last wrong password for one username."""
    if failures < LOGIN_FREE_FAILURES:
        return 0.0
    return min(LOGIN_BACKOFF_MAX_S, LOGIN_BACKOFF_S * 2 ** (failures - LOGIN_FREE_FAILURES))


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _with_addr(actor: Actor, remote_addr: str) -> Actor:
    return Actor(actor.operator_id, actor.username, actor.role, actor.school_id, remote_addr)
