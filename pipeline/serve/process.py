"""Start ``python -m pipeline.serve`` as its own process and wait until it answers ready.

One place for the start-and-poll loop that the serving benchmark and the end-to-end tests share:
the server's own log is the error message when it exits early or never becomes ready.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_PATH = "/v2/health/ready"


class ServerStartError(RuntimeError):
    """The server process exited, or did not answer ready in time; the message carries its log."""


@dataclass(frozen=True)
class RunningServer:
    url: str  # http://127.0.0.1:<port>
    port: int
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    """Poll ``url``'s readiness endpoint until 200; raise with the server's log if it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerStartError(f"server exited with {proc.returncode}:\n{Path(log_path).read_text()}")
        try:
            if httpx.get(f"{url}{READY_PATH}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServerStartError(f"server not ready after {timeout_s} s:\n{Path(log_path).read_text()}")
        time.sleep(0.2)


@contextmanager
def server_process(
    args: list[str], log_path: Path, cwd: Path, env: Mapping[str, str] | None = None, timeout_s: float = 90
) -> Iterator[RunningServer]:
    """``python -m pipeline.serve <args>`` on a free loopback port, yielded once ready; stopped after.

    ``env`` replaces the environment as given; without it the server imports this checkout (``cwd``).
    """
    port = free_port()
    cmd = [sys.executable, "-m", "pipeline.serve", "--port", str(port), *args]
    run_env = {**os.environ, "PYTHONPATH": str(cwd)} if env is None else dict(env)
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=run_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, proc, log_path, timeout_s)
        yield RunningServer(url, port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
