"""Device keys at rest: sealed with AES-256-GCM under the server key.

Server key: 32 bytes from `$URELIEF_SERVER_KEY` (hex or base64) or the file named by
`$URELIEF_SERVER_KEY_FILE` (raw 32 bytes, or hex/base64 text). `urelief registry init-key FILE`
makes one (mode 0600); with neither set, `load_or_create` uses `$URELIEF_VAR/server.key`. Sealed form: version (1 byte) | nonce (12) | ciphertext+tag; the device id
is the associated data, so a sealed key copied onto another device's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENV_KEY = "URELIEF_SERVER_KEY"
ENV_KEY_FILE = "URELIEF_SERVER_KEY_FILE"
_VERSION = 1
_NONCE_LEN = 12


class ServerKeyError(Exception):
    pass


def _parse_key(material: bytes) -> bytes:
    if len(material) == 32:
        return material
    text = material.strip().decode("ascii", "replace")
    for decode in (bytes.fromhex, base64.b64decode, base64.urlsafe_b64decode):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return key
    raise ServerKeyError("server key must be 32 bytes (raw, hex or base64)")


class ServerKey:
    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ServerKeyError("server key must be 32 bytes")
        self._aead = AESGCM(key)
        self.fingerprint = hashlib.sha256(b"urelief-server-key" + key).hexdigest()[:16]

    @classmethod
    def from_env(cls, environ=os.environ) -> ServerKey:
        if environ.get(ENV_KEY):
            return cls(_parse_key(environ[ENV_KEY].encode()))
        if environ.get(ENV_KEY_FILE):
            return cls.from_file(environ[ENV_KEY_FILE])
        raise ServerKeyError(f"no server key: set {ENV_KEY} or {ENV_KEY_FILE}")

    @classmethod
    def load_or_create(cls, environ=os.environ) -> ServerKey:
        """From the environment, else `$URELIEF_VAR/server.key` (made on first use, 0600)."""
        if environ.get(ENV_KEY) or environ.get(ENV_KEY_FILE):
            return cls.from_env(environ)
        path = Path(environ.get("URELIEF_VAR", "var")) / "server.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            cls.generate(path)
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: str | Path) -> ServerKey:
        return cls(_parse_key(Path(path).read_bytes()))

    @staticmethod
    def generate(path: str | Path) -> Path:
        path = Path(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        return path

    def seal(self, device_id: int, device_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE_LEN)
        return bytes([_VERSION]) + nonce + self._aead.encrypt(nonce, device_key, _aad(device_id))

    def open(self, device_id: int, sealed: bytes) -> bytes:
        if len(sealed) < 1 + _NONCE_LEN + 16 or sealed[0] != _VERSION:
            raise ServerKeyError("sealed device key: bad format")
        nonce = sealed[1 : 1 + _NONCE_LEN]
        try:
            return self._aead.decrypt(nonce, sealed[1 + _NONCE_LEN :], _aad(device_id))
        except InvalidTag:
            raise ServerKeyError(f"device {device_id}: key does not open (wrong server key?)") from None


def _aad(device_id: int) -> bytes:
    return b"urelief-device-key\x00" + device_id.to_bytes(4, "big")
