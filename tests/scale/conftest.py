"""Fixtures for the Ray engine tests: one local Ray cluster per test module (num_cpus=2).

Ray costs 2-4 s and ~450 MB to start, so the tests of a module share one cluster, shut down at
the module's end (so no later test forks a process with Ray's threads in it); the
tests that need it are skipped, with the reason, when Ray is not installed (``pip install
'webvid[ray]'``, which ``make setup`` does).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")  # shut down before other tests fork processes (a fork with
# Ray's gRPC threads in it is unsafe; a session-wide cluster would outlive this folder)
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip(
        "ray", reason="the Ray engine tests need ray: pip install 'webvid[ray]'"
    )
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    temp = tempfile.mkdtemp(
        prefix="wvray-", dir="/tmp"
    )  # short: Ray's socket paths have a length limit
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def task_pids(title: str) -> list[int]:
    """PIDs of Ray worker processes whose title says they run ``title`` (``ray::NAME``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith(f"ray::{title}"):
            pids.append(int(entry.name))
    return pids


class Killer:
    """A thread that SIGKILLs the first Ray worker seen running ``title`` once ``ready()``."""

    def __init__(self, title: str, ready: Any = lambda: True, timeout_s: float = 60.0) -> None:
        self.title, self.ready, self.timeout_s = title, ready, timeout_s
        self.killed: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        end = time.monotonic() + self.timeout_s
        while not self._stop.is_set() and time.monotonic() < end:
            pids = task_pids(self.title) if self.ready() else []
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                self.killed = pids[0]
                return
            time.sleep(0.02)

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
