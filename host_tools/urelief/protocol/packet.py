"""Sealed packets: encode and verify uplinks and downlinks (protocol v1, docs/protocol.md).

packet = header(10) | AES-128-CTR(body) | HMAC-SHA256(header | ciphertext)[:8]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from urelief.protocol import codec, seal
from urelief.protocol.messages import (
    HEADER_LEN,
    MAX_COUNTER,
    MAX_PACKET,
    MIN_PACKET,
    TAG_LEN,
    TYPE_OF,
    VERSION,
    Downlink,
    MsgType,
    Reason,
    Uplink,
)
from urelief.protocol.replay import KeyStore, ReplayWindow


@dataclass(frozen=True)
class Accepted:
    device_id: int
    key_id: int
    counter: int
    type: MsgType
    message: Uplink | Downlink
    warnings: tuple[str, ...] = ()  # fields dropped as invalid (the packet itself is authentic)

    ok = True


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    detail: str = ""
    device_id: int | None = None  # from the header, when it could be read (not trusted
    counter: int | None = None  # unless authentic is True)
    message: Uplink | Downlink | None = field(default=None, repr=False)  # DUPLICATE/TOO_OLD only

    ok = False

    @property
    def authentic(self) -> bool:
        """The tag verified: a duplicate or late copy of a genuine packet (re-ack, don't act)."""
        return self.reason in (Reason.DUPLICATE, Reason.TOO_OLD)


class EncodeError(ValueError):
    pass


def _seal(msg, direction: int, device_id: int, key_id: int, secret: bytes, counter: int) -> bytes:
    if not 0 < counter <= MAX_COUNTER:
        raise EncodeError(f"counter {counter} not in 1..{MAX_COUNTER}")
    if not 0 <= device_id <= 0xFFFF_FFFF:
        raise EncodeError(f"device id {device_id} not a u32")
    mtype = TYPE_OF[type(msg)]
    if mtype.downlink != bool(direction):
        raise EncodeError(f"{mtype.name} is not a {'downlink' if direction else 'uplink'}")
    keys = seal.derive_keys(secret)
    header = codec.HEADER.pack(codec.header_byte(key_id), mtype, device_id, counter)
    body = codec.LAYOUTS[mtype].encode(msg)
    sealed = header + seal.ctr(keys, device_id, direction, counter, body)
    packet = sealed + seal.tag(keys, sealed)
    if len(packet) > MAX_PACKET:
        raise EncodeError(f"{mtype.name} packet of {len(packet)} bytes > {MAX_PACKET}")
    return packet


def encode_uplink(msg: Uplink, *, device_id: int, key_id: int, secret: bytes,
                  counter: int) -> bytes:
    """An uplink as a device would send it (test vectors, simulators, load tests)."""
    return _seal(msg, seal.UPLINK, device_id, key_id, secret, counter)


def encode_downlink(msg: Downlink, *, device_id: int, key_id: int, secret: bytes,
                    counter: int) -> bytes:
    """A sealed downlink. `counter` is the server's own per-device downlink counter: persist it
    and never reuse a value with the same key (a reused counter reuses the CTR keystream)."""
    return _seal(msg, seal.DOWNLINK, device_id, key_id, secret, counter)


def _open(packet: bytes, downlink: bool, keys_for, replay_check) -> Accepted | Rejected:
    n = len(packet)
    if n < MIN_PACKET:
        return Rejected(Reason.TRUNCATED, f"{n} bytes < {MIN_PACKET}")
    if n > MAX_PACKET:
        return Rejected(Reason.OVERSIZED, f"{n} bytes > {MAX_PACKET}")
    b0, raw_type, device_id, counter = codec.HEADER.unpack_from(packet)
    if b0 >> 4 != VERSION:
        return Rejected(Reason.WRONG_VERSION, f"version {b0 >> 4}", device_id, counter)
    key_id = b0 & 0x0F
    mtype = codec.LAYOUT_TYPES.get(raw_type)
    if mtype is None or mtype.downlink != downlink:
        return Rejected(Reason.UNKNOWN_TYPE, f"type 0x{raw_type:02x}", device_id, counter)
    layout = codec.LAYOUTS[mtype]
    body_len = n - HEADER_LEN - TAG_LEN
    if body_len < layout.size:
        return Rejected(Reason.TRUNCATED, f"{mtype.name} body {body_len} < {layout.size} bytes",
                        device_id, counter)
    secret = keys_for(device_id, key_id)
    if secret is None:
        return Rejected(Reason.UNKNOWN_DEVICE, f"no key {key_id} for device {device_id}",
                        device_id, counter)
    keys = seal.derive_keys(secret)
    if not seal.tag_ok(keys, packet[:-TAG_LEN], packet[-TAG_LEN:]):
        return Rejected(Reason.BAD_TAG, "", device_id, counter)
    direction = seal.DOWNLINK if downlink else seal.UPLINK
    body = seal.ctr(keys, device_id, direction, counter, packet[HEADER_LEN:-TAG_LEN])
    warnings: list[str] = []
    msg = layout.decode(body, warnings)
    if isinstance(msg, Reason):
        return Rejected(msg, f"{mtype.name} body of {body_len} bytes", device_id, counter)
    replayed = Reason.TOO_OLD if counter == 0 else replay_check(device_id, counter)
    if replayed is not None:
        return Rejected(replayed, "", device_id, counter, msg)
    return Accepted(device_id, key_id, counter, mtype, msg, tuple(warnings))


def decode_uplink(datagram: bytes, keystore: KeyStore, replay: ReplayWindow, *,
                  commit: bool = True) -> Accepted | Rejected:
    """Verify and decrypt one uplink packet (UDP payload or SMS binary user data).

    Never raises for any input bytes. Checks, cheapest first: size, version, type, size for the
    type, key, tag, then the replay window. With `commit=False` the window is only checked:
    call `replay.commit(device_id, counter)` in the transaction that stores the message.
    """
    res = _open(bytes(datagram), False, keystore.key_for, replay.check)
    if commit and isinstance(res, Accepted):
        replay.commit(res.device_id, res.counter)
    return res


def decode_downlink(packet: bytes, *, device_id: int, key_id: int, secret: bytes,
                    replay: ReplayWindow | None = None) -> Accepted | Rejected:
    """What the device does with a downlink (tests and tools; the firmware has its own)."""

    def keys_for(dev: int, kid: int) -> bytes | None:
        return secret if (dev, kid) == (device_id, key_id) else None

    res = _open(bytes(packet), True, keys_for, replay.check if replay else lambda d, c: None)
    if replay is not None and isinstance(res, Accepted):
        replay.commit(res.device_id, res.counter)
    return res
