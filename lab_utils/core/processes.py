"""Ending what a run started: a process group, every process tagged with a run's token (also those that
detached from their group), and waiting for a process with a deadline and a stop flag."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path


def kill_group(pgid: int, grace: float = 2.0) -> None:
    """SIGKILL a process group and wait (up to ``grace`` s) until it is gone, so nothing spins on after a grade."""
    if pgid <= 1 or pgid == os.getpgrp():  # never the grader's own group, whatever a file says
        return
    deadline = time.monotonic() + grace
    try:
        os.killpg(pgid, signal.SIGKILL)
        while time.monotonic() < deadline:
            time.sleep(0.02)
            os.killpg(pgid, 0)  # raises ProcessLookupError once every member has exited
    except (ProcessLookupError, PermissionError):
        pass


TOKEN_ENV = "LAB_GRADER_RUN"


def kill_tagged(token: str) -> int:
    """SIGKILL every process whose environment carries ``TOKEN_ENV=token``: what a submission started and
    detached from its process group (``setsid``, a daemon) inherits the tag. Linux (``/proc``) only; returns how
    many were killed."""
    needle = f"{TOKEN_ENV}={token}".encode()
    killed = 0
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ProcessLookupError):
            continue
    return killed


def wait_or_reason(process: subprocess.Popen, timeout: float, stop: threading.Event | None) -> str | None:
    """Wait for the executor; why it must be killed ("timeout after ... s", "interrupted"), or None if it ended."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            process.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            return None
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return f"timeout after {timeout:g} s"
            if stop is not None and stop.is_set():
                return "interrupted"
