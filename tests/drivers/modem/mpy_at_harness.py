# MicroPython side of the engine tests: a scripted UART peer for modem.at / modem.core.
# Not a test module: imported by code that the tests run on the VM.
import asyncio
import json


class FakeUart:
    """reader + writer for At: replies come from `script` (command -> bytes) or push()."""

    def __init__(self, script=None):
        self.script = script or {}
        self.rx = bytearray()
        self.evt = asyncio.Event()
        self.written = []
        self.silent = False

    def push(self, data):
        self.rx.extend(data)
        self.evt.set()

    async def read(self, n):
        while not self.rx:
            self.evt.clear()
            await self.evt.wait()
        out = bytes(self.rx[:n])
        self.rx = self.rx[n:]
        return out

    def write(self, data):
        self.written.append(bytes(data))
        if self.silent:
            return
        cmd = bytes(data).decode().strip()
        reply = self.script.get(cmd)
        if reply is not None:
            self.push(reply)

    async def drain(self):
        await asyncio.sleep_ms(0)


def out(obj):
    print(json.dumps(obj))
