"""Is the process that wrote this still running? For leftovers of killed processes (temp files, MLflow runs).

A SIGKILLed or OOM-killed process runs no cleanup, so what it leaves behind records who it was
(pid, host, boot) and a later process decides from that whether the owner is gone. Only a
certain "gone" counts: an unknown host or a malformed record keeps the leftover.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")  # Linux: changes at every boot


def pid_running(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0 only asks)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def process_identity() -> dict[str, str]:
    """This process as ``process.host``, ``process.boot_id`` and ``process.pid`` (MLflow tags)."""
    return {"process.host": socket.gethostname(), "process.boot_id": _boot_id(), "process.pid": str(os.getpid())}


def process_gone(identity: Mapping[str, str]) -> bool | None:
    """True when the recorded process no longer runs, False when it does, None when this machine can't tell."""
    pid = identity.get("process.pid", "")
    if identity.get("process.host") != socket.gethostname() or not pid.isdigit():
        return None  # another machine's pid, or no record
    boot = identity.get("process.boot_id", "")
    if boot and _boot_id() and boot != _boot_id():
        return True  # the machine rebooted since
    return not pid_running(int(pid))
