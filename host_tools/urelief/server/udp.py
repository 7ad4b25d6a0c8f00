"""UDP ingest endpoint: one datagram = one packet; the ack goes back to the sender's address."""

from __future__ import annotations

import asyncio
import socket

from urelief.server.ingest import Ingest

MAX_DATAGRAM = 2048  # anything longer is cut here and rejected as oversized by the decoder


class UdpIngest(asyncio.DatagramProtocol):
    def __init__(self, ingest: Ingest):
        self.ingest = ingest
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        ingest = self.ingest
        ingest._spawn(ingest.handle(data[:MAX_DATAGRAM], "udp", f"udp:{addr[0]}",
                                    lambda pkt, a=addr: self.send(pkt, a), route=addr))

    def send(self, packet: bytes, addr) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(packet, addr)

    def error_received(self, exc) -> None:  # ICMP unreachable from a gone device: ignore
        pass


RCVBUF_BYTES = 8 << 20  # absorbs bursts (many devices at once) while the loop is busy


async def serve(ingest: Ingest, host: str, port: int) -> tuple[asyncio.DatagramTransport, UdpIngest]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: UdpIngest(ingest),
                                                           local_addr=(host, port))
    sock = transport.get_extra_info("socket")
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, RCVBUF_BYTES)
            break
        except OSError:  # FORCE needs CAP_NET_ADMIN; plain SO_RCVBUF is capped by rmem_max
            continue
    return transport, proto
