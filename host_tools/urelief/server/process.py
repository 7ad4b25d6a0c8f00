"""`urelief server` as a child process, for the demo, the benches and the tests.

It is ready once it prints its `listening` line (server/cli.py) with the UDP and HTTP addresses
it bound (port 0: any free one); stop() is an operator's Ctrl-C (SIGINT, a clean shutdown),
kill() a kill -9 for crash tests. Its log goes to <workdir>/server.log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class ServerProcess:
    def __init__(self, workdir: Path, db_url: str, env: dict | None = None,
                 args: tuple[str, ...] = ()):
        self.workdir, self.db_url = Path(workdir), db_url
        self.env = {**os.environ, "URELIEF_VAR": str(self.workdir / "var"), **(env or {})}
        self.args = args  # further `urelief server` options
        self.log_path = self.workdir / "server.log"
        self.proc: subprocess.Popen | None = None
        self.http = ""
        self.udp: tuple[str, int] = ("", 0)

    def start(self, udp_port: int = 0, http_port: int = 0,
              timeout_s: float = 60.0) -> ServerProcess:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "urelief"), "server", "--db", self.db_url,
                 "--udp", f"127.0.0.1:{udp_port}", "--http", f"127.0.0.1:{http_port}",
                 *self.args], stdout=subprocess.PIPE, stderr=log, env=self.env, cwd=self.workdir)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server exited: " + self.log_tail())
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("event") == "listening":
                self.http = "http://{}:{}".format(*msg["http"])
                self.udp = tuple(msg["udp"])
                return self
        raise RuntimeError("server did not start in time: " + self.log_tail())

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, wait_s: float = 20.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
