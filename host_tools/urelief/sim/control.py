"""A standing virtual terminal's control port: another shell presses the button, moves the child,
changes the coverage and injects faults (`urelief sim press PORT --hold 3`).

The port is TCP on loopback; one JSON object a line each way:
    {"op": "press", "hold_s": 3}          {"op": "tap", "n": 3}
    {"op": "move", "lat": 37.57, "lon": 126.98}
    {"op": "coverage", "mode": "data" | "sms-only" | "none"}
    {"op": "fault", "kind": "modem-reboot" | "modem-hang" | "power-cut"}
    {"op": "state"}  -> the device's time, boots, position and its last console events
The answer is {"ok": true, ...} or {"ok": false, "error": "..."}. Any input is hostile: a line
longer than MAX_LINE or not an object of a known op is refused and the connection closed."""

from __future__ import annotations

import json
import socket
import socketserver
import threading

from urelief.sim import events

MAX_LINE = 4096
PRESS_MAX_S = 60.0  # a hold longer than a minute is a stuck finger, not a gesture
TAPS_MAX = 10


class ControlServer:
    def __init__(self, rig, host: str = "127.0.0.1", port: int = 0):
        self.rig = rig
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    line = self.rfile.readline(MAX_LINE + 1)
                    if not line:
                        return
                    answer, keep = outer.answer(line)
                    self.wfile.write((json.dumps(answer) + "\n").encode())
                    if not keep:
                        return

        self.server = socketserver.ThreadingTCPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="sim-control")

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, line: bytes) -> tuple[dict, bool]:
        """-> (answer, keep the connection open)."""
        if len(line) > MAX_LINE:
            return {"ok": False, "error": f"line longer than {MAX_LINE} bytes"}, False
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("not an object")
            return {"ok": True, **self.do(cmd)}, True
        except (ValueError, TypeError, KeyError) as e:
            return {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}, False

    def do(self, cmd: dict) -> dict:
        rig, op = self.rig, cmd.get("op")
        if op == "press":
            hold_s = _number(cmd.get("hold_s", 3.5), 0.01, PRESS_MAX_S)
            return {"released_in_ms": round(rig.child.press(hold_s * 1000, after_ms=50))}
        if op == "tap":
            n = int(_number(cmd.get("n", 1), 1, TAPS_MAX))
            return {"released_in_ms": round(rig.child.presses(n, after_ms=50))}
        if op == "move":
            lat, lon = _number(cmd["lat"], -90, 90), _number(cmd["lon"], -180, 180)
            rig.move(lat, lon)
            return {"at": [lat, lon]}
        if op == "coverage":
            rig.set_coverage(str(cmd.get("mode")))
            return {"coverage": cmd["mode"]}
        if op == "fault":
            rig.inject(str(cmd.get("kind")))
            return {"fault": cmd["kind"]}
        if op == "state":
            evs = events.events(rig.dev.output)[-12:]
            return {"device_ms": round(rig.dev.clock.now_ms()), "boots": rig.dev.boots,
                    "at": rig.where[:2], "msisdn": rig.msisdn,
                    "events": [{"event": e.name, **e.fields} for e in evs]}
        raise ValueError(f"unknown op {op!r}")


def _number(v, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise ValueError(f"{v!r} is not a number in [{lo}, {hi}]")
    return float(v)


def send(port: int, cmd: dict, host: str = "127.0.0.1", timeout_s: float = 10) -> dict:
    """One command to a standing device's control port. -> its answer."""
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.sendall((json.dumps(cmd) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf or b'{"ok": false, "error": "no answer"}')
