"""The yardstick for the police server's ingest (`bench/server.py` runs it beside the server,
under the same load generator): one thread, a plain blocking UDP loop, the project's own codec
(urelief.protocol: verify, decrypt, replay check, seal the ack) and the server's durability
(SQLite in WAL mode, synchronous=FULL, packets committed before their acks leave) — and
nothing else: no asyncio, no writer process, no ORM. What the socket holds (up to BATCH
datagrams) is verified, stored and committed in one transaction with the devices' replay
windows and downlink counters, then acked.

    python -m urelief.bench._floor DEVICES.json DB PORT_FILE
"""

from __future__ import annotations

import dataclasses
import json
import select
import socket
import sqlite3
import sys
import time

from urelief import protocol as p

BATCH = 256


def serve(devices: dict[int, bytes], db_path: str, port_file: str) -> None:
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS packet (id INTEGER PRIMARY KEY, device_id INTEGER, "
               "counter INTEGER, kind TEXT, transport TEXT, received_at REAL, payload TEXT, "
               "raw BLOB, UNIQUE (device_id, counter))")
    db.execute("CREATE TABLE IF NOT EXISTS device (id INTEGER PRIMARY KEY, high INTEGER, "
               "bitmap INTEGER, downlink INTEGER)")
    db.executemany("INSERT OR IGNORE INTO device VALUES (?, 0, 0, 0)", [(d,) for d in devices])
    keys = p.MemoryKeyStore({(d, 1): s for d, s in devices.items()})
    window = p.MemoryReplayWindow()
    downlink = {d: 0 for d in devices}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    with open(port_file, "w") as f:
        f.write(str(sock.getsockname()[1]))
    sock.setblocking(False)
    while True:
        select.select([sock], [], [])
        batch: list[tuple[p.Accepted, tuple, bytes]] = []
        while len(batch) < BATCH:
            try:
                data, addr = sock.recvfrom(2048)
            except BlockingIOError:
                break
            res = p.decode_uplink(data, keys, window, commit=False)
            if isinstance(res, p.Accepted):
                batch.append((res, addr, data))
        if not batch:
            continue
        now = time.time()
        db.execute("BEGIN")
        # what the server keeps of a packet: its kind, the decoded fields as JSON, the bytes
        db.executemany("INSERT OR IGNORE INTO packet (device_id, counter, kind, transport, "
                       "received_at, payload, raw) VALUES (?, ?, ?, 'udp', ?, ?, ?)",
                       [(r.device_id, r.counter, r.type.name.lower(), now,
                         json.dumps(dataclasses.asdict(r.message)), raw) for r, _, raw in batch])
        for r, _, _ in batch:
            window.commit(r.device_id, r.counter)
            downlink[r.device_id] += 1
        touched = {r.device_id for r, _, _ in batch}
        db.executemany("UPDATE device SET high = ?, bitmap = ?, downlink = ? WHERE id = ?",
                       [(window.states[d].highest, window.states[d].bitmap, downlink[d], d)
                        for d in touched])
        db.execute("COMMIT")
        base = {d: downlink[d] - sum(1 for r, _, _ in batch if r.device_id == d) for d in touched}
        for r, addr, _ in batch:
            base[r.device_id] += 1
            ack = p.encode_downlink(p.Ack(acked_counter=r.counter), device_id=r.device_id,
                                    key_id=1, secret=devices[r.device_id],
                                    counter=base[r.device_id])
            sock.sendto(ack, addr)


if __name__ == "__main__":
    devs = {int(d): bytes.fromhex(s) for d, s in json.load(open(sys.argv[1])).items()}
    serve(devs, sys.argv[2], sys.argv[3])
