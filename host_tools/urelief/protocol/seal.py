"""Protocol v1 crypto on the server: key derivation, AES-128-CTR, truncated HMAC-SHA256.

Written from the spec with `cryptography` (and the stdlib HMAC), independently of the firmware's
`proto.seal`, which builds CTR over ECB and HMAC over sha256 by hand: test vectors hold them together.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from urelief.protocol.messages import TAG_LEN

SECRET_LEN = 32  # per-device secret made at provisioning
ENC_INFO = b"urelief v1 enc"  # HKDF-Expand info labels
MAC_INFO = b"urelief v1 mac"
UPLINK, DOWNLINK = 0, 1
_NONCE = struct.Struct(">IBI5xH")  # device id, direction, counter, zeros, block index


@dataclass(frozen=True)
class Keys:
    enc: bytes  # AES-128 key, 16 bytes
    mac: bytes  # HMAC-SHA256 key, 32 bytes
    aes: algorithms.AES  # enc, validated once


@lru_cache(maxsize=100_000)
def derive_keys(secret: bytes) -> Keys:
    """K_enc = HKDF-Expand(secret, ENC_INFO, 16), K_mac = HKDF-Expand(secret, MAC_INFO, 32)."""
    if len(secret) != SECRET_LEN:
        raise ValueError(f"device secret must be {SECRET_LEN} bytes, got {len(secret)}")
    enc = HKDFExpand(hashes.SHA256(), 16, ENC_INFO).derive(secret)
    mac = HKDFExpand(hashes.SHA256(), 32, MAC_INFO).derive(secret)
    return Keys(enc, mac, algorithms.AES(enc))


def nonce(device_id: int, direction: int, counter: int) -> bytes:
    """The first CTR block: unique per (key, direction, counter); the low 16 bits count blocks."""
    return _NONCE.pack(device_id, direction, counter, 0)


def ctr(keys: Keys, device_id: int, direction: int, counter: int, data: bytes) -> bytes:
    """Encrypt or decrypt (the same operation) `data` with AES-128-CTR."""
    if not data:
        return b""
    enc = Cipher(keys.aes, modes.CTR(nonce(device_id, direction, counter)))
    return enc.encryptor().update(data)


def tag(keys: Keys, data: bytes) -> bytes:
    """HMAC-SHA256 over header+ciphertext, truncated to TAG_LEN bytes."""
    return hmac.digest(keys.mac, data, "sha256")[:TAG_LEN]


def tag_ok(keys: Keys, data: bytes, received: bytes) -> bool:
    return hmac.compare_digest(tag(keys, data), received)
