"""UDP ingest endpoint: one datagram = one packet; the ack goes back to the sender's address.

Read with the loop's `add_reader` and drained up to READ_BURST datagrams per wake-up (asyncio's
datagram transport reads one per loop turn, costing a poll per packet under load)."""

from __future__ import annotations

import asyncio
import socket

from urelief.server import logs
from urelief.server.ingest import Ingest

MAX_DATAGRAM = 2048  # anything longer is cut here and rejected as oversized by the decoder
READ_BURST = 256
RCVBUF_BYTES = 8 << 20  # absorbs bursts (many devices at once) while the loop is busy


class UdpEndpoint:
    def __init__(self, ingest: Ingest, sock: socket.socket, loop: asyncio.AbstractEventLoop):
        self.ingest, self.sock, self.loop = ingest, sock, loop
        self.addr = sock.getsockname()[:2]
        self.send_dropped = 0
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        ingest = self.ingest
        for _ in range(READ_BURST):
            try:
                data, addr = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP errors surface here on Linux: ignore, keep reading
                continue
            ingest.handle_nowait(data, "udp", f"udp:{addr[0]}",
                                 lambda pkt, a=addr: self.send(pkt, a), addr)

    def send(self, packet: bytes, addr) -> None:
        try:
            self.sock.sendto(packet, addr)
        except (BlockingIOError, InterruptedError):
            self.send_dropped += 1  # socket buffer full: the device retries, we re-ack
        except OSError as e:
            logs.event("udp_send_failed", level=30, addr=str(addr), error=repr(e))

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


async def serve(ingest: Ingest, host: str, port: int) -> UdpEndpoint:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, RCVBUF_BYTES)
            break
        except OSError:  # FORCE needs CAP_NET_ADMIN; plain SO_RCVBUF is capped by rmem_max
            continue
    sock.bind((host, port))
    sock.setblocking(False)
    return UdpEndpoint(ingest, sock, asyncio.get_running_loop())
