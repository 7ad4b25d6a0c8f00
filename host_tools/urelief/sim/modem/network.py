"""The network behind the emulated modems: an SMS centre with a gateway interface, and UDP over
real loopback sockets."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Sms:
    """One short message as the network carries it. body: str (text) or bytes (8-bit data)."""

    sender: str
    to: str
    body: str | bytes
    udh: bytes = b""


class SmsEndpoint(Protocol):
    """What an SMS network hands messages to: an emulated modem, or the gateway."""

    def sms_delivered(self, sms: Sms) -> None: ...


@dataclass
class SmsFaults:
    drop: int = 0  # the next N messages vanish
    duplicate: int = 0  # the next N messages arrive twice
    delay_ms: float = 0.0  # extra delivery delay (device time), e.g. a late SMS


@dataclass
class SmsNetwork:
    """The SMS centre, seen by the SMS gateway as an in-process interface:
    - receive(sms): a device's message for a number no emulated modem holds (the gateway's
      number). Recorded in `received` and handed to `on_receive(sms)`, where the police server
      plugs in its inbound webhook.
    - deliver(to, body, sender): the gateway's message to a device (mobile-terminated).
    Modems attach with their MSISDN. Thread-safe: delivery is posted to the receiving device's clock."""

    on_receive: Callable[[Sms], None] | None = None
    faults: SmsFaults = field(default_factory=SmsFaults)
    submitted: list[Sms] = field(default_factory=list)  # everything the devices sent
    received: list[Sms] = field(default_factory=list)  # what reached the gateway
    delivery_ms: float = 1500.0  # SMSC store-and-forward to the receiving handset
    _modems: dict[str, tuple[SmsEndpoint, object]] = field(default_factory=dict)

    def attach(self, msisdn: str, modem: SmsEndpoint, clock) -> None:
        held = self._modems.get(msisdn)
        if held is not None and held[0] is not modem:
            raise ValueError(f"{msisdn} is already another modem's number on this network")
        self._modems[msisdn] = (modem, clock)

    def has(self, msisdn: str) -> bool:
        return msisdn in self._modems

    def submit(self, sms: Sms) -> None:
        """A device's SMS-SUBMIT accepted by the SMSC."""
        self.submitted.append(sms)
        self._route(sms)

    def deliver(self, to: str, body: str | bytes, sender: str = "+82112") -> bool:
        """Mobile-terminated SMS from the gateway side. False if no such device."""
        if to not in self._modems:
            return False
        self._route(Sms(sender, to, body))
        return True

    def receive(self, sms: Sms) -> None:
        self.received.append(sms)
        if self.on_receive:
            self.on_receive(sms)

    def _route(self, sms: Sms) -> None:
        f = self.faults
        if f.drop > 0:
            f.drop -= 1
            return
        copies = 1
        if f.duplicate > 0:
            f.duplicate -= 1
            copies = 2
        target = self._modems.get(sms.to)
        for _ in range(copies):
            if target is None:
                self.receive(sms)
            else:
                modem, clock = target
                delay = self.delivery_ms + f.delay_ms
                clock.post(lambda m=modem, c=clock, d=delay: c.call_later(d, lambda: m.sms_delivered(sms)))


class UdpLink:
    """One emulated socket: a real UDP socket on the host. Datagrams from the server are handed to
    `on_datagram(data)` on the device's clock thread. While a reply is awaited the device clock runs
    in real time (hold_realtime), so a real server's latency is seen as it is."""

    def __init__(self, clock, on_datagram: Callable[[bytes], None], reply_wait_s: float = 2.0):
        self.clock = clock
        self.on_datagram = on_datagram
        self.reply_wait_s = reply_wait_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.sent: list[tuple[tuple[str, int], bytes]] = []
        self.lost = 0  # datagrams to unresolvable or unreachable addresses
        self._hold = None
        self._hold_timer: threading.Timer | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._recv_loop, daemon=True, name="udp-link")
        self._thread.start()

    def send(self, addr: tuple[str, int], data: bytes) -> None:
        """A datagram into the network. Names the emulated network does not resolve (the
        modem's `resolve` map) are never looked up for real: the datagram is lost, as one to
        an unreachable host is; so is one the host's network refuses."""
        self.sent.append((addr, data))
        try:
            ipaddress.ip_address(addr[0])
            self.sock.sendto(data, addr)
        except (ValueError, OSError):
            self.lost += 1
            return
        self._hold_for_reply()

    def _hold_for_reply(self) -> None:
        if self._hold is None:
            self._hold = self.clock.hold_realtime()
        if self._hold_timer:
            self._hold_timer.cancel()
        self._hold_timer = threading.Timer(self.reply_wait_s, lambda: self.clock.post(self._release))
        self._hold_timer.daemon = True
        self._hold_timer.start()

    def _release(self) -> None:
        if self._hold is not None:
            self._hold.release()
            self._hold = None

    def _recv_loop(self) -> None:
        while not self._closed:
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.clock.post(lambda d=data: (self._release(), self.on_datagram(d)))

    def close(self) -> None:
        self._closed = True
        if self._hold_timer:
            self._hold_timer.cancel()
        self.clock.post(self._release)
        self.sock.close()
