"""Protocol v1 crypto on the device: HMAC-SHA256 over hashlib.sha256 (no `hmac` on ESP32),
AES-128-CTR over cryptolib ECB (stock ESP32 has ECB and CBC only), keys from the device secret."""
import hashlib
import struct

import cryptolib
from micropython import const

_SHA_BLOCK = const(64)  # SHA-256 block size, bytes
_AES_ECB = const(1)
TAG_LEN = const(8)  # truncated HMAC: 64-bit tag
SECRET_LEN = const(32)
UPLINK = const(0)
DOWNLINK = const(1)
_NONCE = ">IBI5xH"  # device id, direction, counter, 5 zero bytes, block index


def _pads(key):
    """HMAC inner/outer key blocks (RFC 2104); keys longer than a block are hashed first."""
    if len(key) > _SHA_BLOCK:
        key = hashlib.sha256(key).digest()
    ipad = bytearray(_SHA_BLOCK)
    opad = bytearray(_SHA_BLOCK)
    for i in range(_SHA_BLOCK):
        k = key[i] if i < len(key) else 0
        ipad[i] = k ^ 0x36
        opad[i] = k ^ 0x5C
    return ipad, opad


def _hmac(ipad, opad, msg):
    h = hashlib.sha256(ipad)
    h.update(msg)
    h2 = hashlib.sha256(opad)
    h2.update(h.digest())
    return h2.digest()


def hmac_sha256(key, msg):
    ipad, opad = _pads(key)
    return _hmac(ipad, opad, msg)


def derive(secret, info, n):
    """HKDF-Expand (RFC 5869) for n <= 32: the first block T(1) = HMAC(secret, info | 0x01)."""
    return hmac_sha256(secret, info + b"\x01")[:n]


class Seal:
    """Keys and scratch buffers for one device key; sealing and opening allocate ~nothing else."""
    def __init__(self, secret, device_id, key_id):
        if len(secret) != SECRET_LEN:
            raise ValueError("device secret must be 32 bytes")
        self.device_id = device_id
        self.key_id = key_id
        self._aes = cryptolib.aes(derive(secret, b"urelief v1 enc", 16), _AES_ECB)
        self._ipad, self._opad = _pads(derive(secret, b"urelief v1 mac", 32))
        self._block = bytearray(16)  # CTR counter block
        self._stream = bytearray(16)  # keystream block

    def crypt(self, buf, start, end, direction, counter):
        """XOR buf[start:end] in place with the AES-128-CTR keystream for (direction, counter)."""
        blk = self._block
        ks = self._stream
        struct.pack_into(_NONCE, blk, 0, self.device_id, direction, counter, 0)
        i = start
        n = 0
        while i < end:
            blk[14] = n >> 8
            blk[15] = n & 0xFF
            self._aes.encrypt(blk, ks)
            j = 0
            while j < 16 and i < end:
                buf[i] ^= ks[j]
                i += 1
                j += 1
            n += 1

    def tag(self, buf, end):
        """HMAC-SHA256(K_mac, buf[:end]) truncated to TAG_LEN bytes."""
        return _hmac(self._ipad, self._opad, memoryview(buf)[:end])[:TAG_LEN]

    def tag_ok(self, buf, end):
        """Constant-time compare of buf[end:end+TAG_LEN] with the tag over buf[:end]."""
        t = self.tag(buf, end)
        d = 0
        for i in range(TAG_LEN):
            d |= t[i] ^ buf[end + i]
        return d == 0
