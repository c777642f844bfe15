"""`surge run` as a real child process, so a fault can SIGKILL it like a node or an OOM killer would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
SURGE = ROOT / ".venv" / "bin" / "surge"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class OperatorProcess:
    """One replica of the operator. Restarting keeps its ports, identity and log file (appended)."""

    kubeconfig: Path
    prometheus_url: str
    log_path: Path
    namespaces: tuple[str, ...] = ("f-*",)
    identity: str = ""
    lease: tuple[str, str] | None = None  # (name, namespace) -> --leader-elect
    extra_env: dict[str, str] = field(default_factory=dict)
    health_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)  # time.monotonic() of each start
    kills: list[float] = field(default_factory=list)

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/healthz"

    def command(self) -> list[str]:
        cmd = [
            str(SURGE),
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
            "--prometheus-url",
            self.prometheus_url,
            "--liveness",
            self.health_url,
            "--metrics-port",
            str(self.metrics_port),
            "--metrics-bind-address",
            "127.0.0.1",
            "--log-format",
            "json",
        ]
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        if self.lease is not None:
            cmd += ["--leader-elect", "--lease-name", self.lease[0], "--lease-namespace", self.lease[1]]
        return cmd

    def start(self) -> None:
        assert not self.alive(), "already running"
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
            "SURGE_WATCH_TIMEOUT": "10",  # kopf re-establishes its watches within seconds after an outage
            **({"SURGE_IDENTITY": self.identity} if self.identity else {}),
            **self.extra_env,
        }
        with self.log_path.open("ab") as out:
            out.write(f'{{"message": "=== harness: start {self.identity}", "harness": true}}\n'.encode())
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env)
        self.starts.append(time.monotonic())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:  # loopback only
                return bool(response.status == 200)
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 60) -> float:
        """Waits for /healthz to answer 200 and returns when (time.monotonic())."""

        def probe() -> bool:
            assert self.alive(), f"the operator exited ({self.exit_code()}):\n{self.tail()}"
            return self.healthy()

        wait_until(probe, timeout=timeout, what=f"operator {self.identity or ''} /healthz", interval=0.2)
        return time.monotonic()

    def metric(self, name: str) -> float:
        """Sum of every sample of `name` (all labels) on the replica's own /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=3) as response:  # loopback only
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " ")
        )

    def kill(self) -> float:
        """SIGKILL: no clean-up, no lease release, no last status write. Returns when (monotonic)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        at = time.monotonic()
        self.proc.wait(timeout=30)
        self.kills.append(at)
        return at

    def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL after 30 s); returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.exit_code()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records (one per line); a line that is not JSON becomes {"message": line}."""
        out: list[dict[str, Any]] = []
        for line in self.log_text().splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"message": line, "raw": True}
            out.append(rec if isinstance(rec, dict) else {"message": line, "raw": True})
        return out

    def tracebacks(self) -> list[dict[str, Any]]:
        """Records carrying a traceback (exc_info) or raw traceback lines."""
        return [
            r
            for r in self.records()
            if r.get("exc_info") or "Traceback (most recent call last)" in str(r.get("message", ""))
        ]
