"""Operator passwords and bearer tokens, stored only as scrypt hashes (hashlib.scrypt).

A token reads `urt_<key_id>_<secret>`: `key_id` (12 hex) finds the row without a scan; only the
scrypt hash of `secret` (256 random bits) is stored. Hash strings carry their own parameters:
`scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>`, so costs can rise without a migration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _random
import threading

# OWASP Password Storage Cheat Sheet (scrypt, when Argon2id is not at hand): N >= 2^17, r = 8,
# p = 1, i.e. 128 MiB and ~0.3 s a hash here; stored hashes below it are redone at login.
PASSWORD_LOG2_N = 17
TOKEN_LOG2_N = 12  # the secret has 256 random bits; the hash only stops a database leak replaying
_R, _P, _DKLEN = 8, 1, 32
TOKEN_PREFIX = "urt"


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# Password-cost hashes at once: each takes 128 * N * r bytes (128 MiB at 2^17), so a burst of
# logins queues here instead of taking the server's memory.
_HEAVY_LOG2_N = 15
_heavy = threading.BoundedSemaphore(2)


def _scrypt(secret: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    kw = {"salt": salt, "n": n, "r": r, "p": p, "dklen": _DKLEN, "maxmem": 256 * n * r + (1 << 20)}
    if log2_n < _HEAVY_LOG2_N:
        return hashlib.scrypt(secret.encode(), **kw)
    with _heavy:
        return hashlib.scrypt(secret.encode(), **kw)


def hash_secret(secret: str, log2_n: int | None = None) -> str:
    log2_n = PASSWORD_LOG2_N if log2_n is None else log2_n
    salt = _random.token_bytes(16)
    digest = _scrypt(secret, salt, log2_n, _R, _P)
    return f"scrypt${log2_n}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, log2_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or not 10 <= int(log2_n) <= 20:
            return False
        got = _scrypt(secret, _unb64(salt), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def needs_rehash(stored: str) -> bool:
    """True if `stored` was hashed at a cost below today's password cost."""
    try:
        scheme, log2_n, r, p, _salt, _digest = stored.split("$")
        return scheme != "scrypt" or int(log2_n) < PASSWORD_LOG2_N or int(r) < _R
    except ValueError:
        return True


_stand_in: dict[int, str] = {}


def stand_in_hash() -> str:
    """A hash of a random secret at today's password cost: what a login for an unknown or
    disabled operator is checked against, so that it costs the same as a wrong password."""
    if PASSWORD_LOG2_N not in _stand_in:
        _stand_in[PASSWORD_LOG2_N] = hash_secret(_random.token_urlsafe(16))
    return _stand_in[PASSWORD_LOG2_N]


def new_token() -> tuple[str, str, str]:
    """-> (token to hand out once, key_id to store, secret hash to store)."""
    key_id = _random.token_hex(6)
    secret = _random.token_urlsafe(32)
    return f"{TOKEN_PREFIX}_{key_id}_{secret}", key_id, hash_secret(secret, TOKEN_LOG2_N)


def split_token(token: str) -> tuple[str, str] | None:
    """-> (key_id, secret), or None if it is not shaped like one of ours."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 12 or len(parts[2]) < 20:
        return None
    return parts[1], parts[2]
